# Generic CEN conversion of a stock mmseg model, without a special backbone:
# mmseg's PSPNet model config with its MobileNetV2-d8 backbone (as in
# mmseg's mobilenet_v2 configs) becomes a 2-stream RGB-D CEN by changing a
# few keys:
# - segmentor `CENEncoderDecoder`: the stacked [RGB, depth] input is folded
#   into the batch, so the unchanged MobileNetV2 shares every conv between
#   the streams;
# - backbone `norm_cfg` = ExchangeBN: one BN per stream, channel exchange at
#   every BN, L1 on each stream's own part of γ (the paper's main text);
# - the stock PSPHead and FCN auxiliary head become multi-stream heads
#   (shared convs, private non-exchanging BNs per stream, learned ensemble);
# - `CENSegDataPreProcessor` with the official RGB-D normalisation.
_base_ = [
    'mmseg::_base_/models/pspnet_r50-d8.py',
    '../_base_/datasets/nyudv2_rgbd.py', '../_base_/default_runtime.py',
    '../_base_/schedules/cen_staged_300e.py',
    '../_base_/models/cen_rgbd_preprocessor.py'
]
custom_imports = dict(
    imports=['cen_mm.seg', 'cen_mm.engine'], allow_failed_imports=False)
# Official CEN normalisation (ImageNet RGB; raw depth x 1/5000), 500x500
data_preprocessor = dict(_delete_=True, **_base_.cen_rgbd_preprocessor)
model = dict(
    type='CENEncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained='mmcls://mobilenet_v2',
    stream_names=('rgb', 'depth'),
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        widen_factor=1.,
        strides=(1, 2, 2, 1, 1, 1, 1),
        dilations=(1, 1, 1, 2, 2, 4, 4),
        out_indices=(1, 2, 4, 6),
        norm_cfg=dict(
            type='ExchangeBN',
            requires_grad=True,
            exchange=True,
            threshold=2e-2,
            exchange_scope='any',
            sparsity='own')),
    # mmseg's PSPHead and FCNHead (its SyncBN becomes a private BN per
    # stream); only the input widths and classes change.
    decode_head=dict(in_channels=320, num_classes=40),
    auxiliary_head=dict(in_channels=96, num_classes=40))
custom_hooks = [dict(type='GammaSparsityHook', lam=6e-4)]
