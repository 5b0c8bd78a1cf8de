# CEN RGB-D segmentation, official architecture: a torchvision-style
# ResNet-101 whose convs are shared by the RGB and depth streams, a private
# BN per stream that exchanges channels after every bottleneck 3x3 conv
# (|γ| < 2e-2), BN statistics frozen (norm_eval), the full RefineNet decoder
# with shared convs and a learned softmax ensemble of detached stream logits.
# Inputs are stacked [B, G, R, d, d, d] (LoadRGBDFromFile, raw depth units).
custom_imports = dict(imports=['cen_mm.seg'], allow_failed_imports=False)
norm_cfg = dict(type='ExchangeBN', requires_grad=True)
data_preprocessor = dict(
    type='CENSegDataPreProcessor',
    stream_channels=(3, 3),  # modalities stacked [B, G, R, d, d, d]
    # Official normalisation: ImageNet mean/std on RGB in RGB order; raw
    # uint16 depth x 1/5000 with no centring.
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
    # Official parity for the L1 on γ is loss_slim with 3 * 2e-4; the
    # default mechanism is GammaSparsityHook (see the full configs).
    slim_loss_weight=0.,
    backbone=dict(
        type='CENResNet',
        depth=101,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        strides=(1, 2, 2, 2),
        dilations=(1, 1, 1, 1),
        style='pytorch',
        deep_stem=False,
        norm_cfg=norm_cfg,
        norm_eval=True,
        exchange_sites=('norm2', ),
        exchange_cfg=dict(
            threshold=2e-2, exchange_scope='any', sparsity='own'),
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')),
    decode_head=dict(
        type='CENRefineNetHead',
        in_channels=(256, 512, 1024, 2048),
        in_index=(0, 1, 2, 3),
        channels=256,
        top_channels=512,
        num_classes=40,
        ensemble=dict(detach=True),
        rcu_residual='relu',
        feat_dropout_ratio=0.5,
        dropout_ratio=0.5,
        align_corners=False,
        # Mean over labelled pixels, as the official NLL loss.
        loss_decode=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=1.0,
            avg_non_ignore=True)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
