# CEN RGB-D segmentation, official architecture: a torchvision-style
# ResNet-101 whose convs are shared by the RGB and depth streams, a private
# BN per stream that exchanges channels after every bottleneck 3x3 conv
# (cen_rgbd_encoder_decoder.py), BN statistics frozen (norm_eval), the full
# RefineNet decoder with shared convs and a learned softmax ensemble of
# detached stream logits. Inputs are stacked [B, G, R, d, d, d]
# (LoadRGBDFromFile, raw depth units).
_base_ = './cen_rgbd_encoder_decoder.py'
model = dict(
    backbone=dict(
        type='CENResNet',
        strides=(1, 2, 2, 2),
        dilations=(1, 1, 1, 1),
        deep_stem=False,
        norm_eval=True,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')),
    decode_head=dict(
        type='CENRefineNetHead',
        in_channels=(256, 512, 1024, 2048),
        in_index=(0, 1, 2, 3),
        channels=256,
        top_channels=512,
        rcu_residual='relu',
        feat_dropout_ratio=0.5,
        dropout_ratio=0.5))
