# CEN RGB-D segmentation with a PSPNet decoder (the paper's second decoder):
# mmseg's dilated ResNetV1c-101 (output stride 8) converted to CEN (shared
# convs, per-stream BN, exchange after every bottleneck 3x3 conv) and a
# multi-stream PSPHead with shared convs and private per-stream BN.
# No auxiliary head (the official model has none; any mmseg head, e.g.
# FCNHead, can be added as `auxiliary_head` and runs multi-stream).
custom_imports = dict(imports=['cen_mm.seg'], allow_failed_imports=False)
norm_cfg = dict(type='ExchangeBN', requires_grad=True)
data_preprocessor = dict(
    type='CENSegDataPreProcessor',
    stream_channels=(3, 3),  # modalities stacked [B, G, R, d, d, d]
    # Official CEN normalisation (see cen_resnet101_refinenet.py).
    mean=[123.675, 116.28, 103.53, 0., 0., 0.],
    std=[58.395, 57.12, 57.375, 5000., 5000., 5000.],
    bgr_to_rgb=(True, False),
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='CENEncoderDecoder',
    data_preprocessor=data_preprocessor,
    # The streams, declared once: the preprocessor, backbone and heads
    # get them from here.
    stream_names=('rgb', 'depth'),
    slim_loss_weight=0.,
    backbone=dict(
        type='CENResNetV1c',
        depth=101,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        style='pytorch',
        contract_dilation=True,
        norm_cfg=norm_cfg,
        norm_eval=False,
        exchange_sites=('norm2', ),
        exchange_cfg=dict(
            threshold=2e-2, exchange_scope='any', sparsity='own'),
        init_cfg=dict(type='Pretrained',
                      checkpoint='open-mmlab://resnet101_v1c')),
    decode_head=dict(
        type='CENPSPHead',
        in_channels=2048,
        in_index=3,
        channels=512,
        pool_scales=(1, 2, 3, 6),
        dropout_ratio=0.1,
        num_classes=40,
        ensemble=dict(detach=True),
        norm_cfg=norm_cfg,
        align_corners=False,
        # Mean over labelled pixels, as the official NLL loss.
        loss_decode=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=1.0,
            avg_non_ignore=True)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
