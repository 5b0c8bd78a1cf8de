# CEN RGB-D segmentation with a PSPNet decoder (the paper's second decoder):
# mmseg's dilated ResNetV1c-101 (output stride 8) converted to CEN (shared
# convs, per-stream BN, exchange after every bottleneck 3x3 conv:
# cen_rgbd_encoder_decoder.py) and a multi-stream PSPHead with shared convs
# and private per-stream BN.
# No auxiliary head (the official model has none; any mmseg head, e.g.
# FCNHead, can be added as `auxiliary_head` and runs multi-stream).
_base_ = './cen_rgbd_encoder_decoder.py'
model = dict(
    backbone=dict(
        type='CENResNetV1c',
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        contract_dilation=True,
        norm_eval=False,
        init_cfg=dict(type='Pretrained',
                      checkpoint='open-mmlab://resnet101_v1c')),
    decode_head=dict(
        type='CENPSPHead',
        in_channels=2048,
        in_index=3,
        channels=512,
        pool_scales=(1, 2, 3, 6),
        dropout_ratio=0.1,
        norm_cfg={{_base_.norm_cfg}}))
