# The CEN RGB-D segmentor the model bases share: the RGB and depth streams
# (declared once, here: the preprocessor, backbone and heads get them from
# the model), the official normalisation and exchanging BN after every
# bottleneck 3x3 conv (|γ| < 2e-2). Each model base adds the backbone's and
# decode head's type and shape.
_base_ = './cen_rgbd_preprocessor.py'
custom_imports = dict(imports=['cen_mm.seg'], allow_failed_imports=False)
norm_cfg = dict(type='ExchangeBN', requires_grad=True)
# The official normalisation of cen_rgbd_preprocessor.py, without a fixed
# batch size (the full configs set `size` to their crop).
data_preprocessor = dict(_base_.cen_rgbd_preprocessor, size=None)
model = dict(
    type='CENEncoderDecoder',
    data_preprocessor=data_preprocessor,
    stream_names=('rgb', 'depth'),
    # Official parity for the L1 on γ is loss_slim with 3 * 2e-4; the
    # default mechanism is GammaSparsityHook (see the schedules).
    slim_loss_weight=0.,
    backbone=dict(
        depth=101,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        style='pytorch',
        norm_cfg=norm_cfg,
        exchange_sites=('norm2', ),
        exchange_cfg=dict(
            threshold=2e-2, exchange_scope='any', sparsity='own')),
    decode_head=dict(
        num_classes=40,
        ensemble=dict(detach=True),
        align_corners=False,
        # Mean over labelled pixels, as the official NLL loss.
        loss_decode=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            loss_weight=1.0,
            avg_non_ignore=True)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
