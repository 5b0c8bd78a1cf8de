# FCN R50-D8 (mmseg) as a 2-stream RGB-D CEN on NYUDv2, in a few keys
# (docs/mmseg_recipes.md). Inherited: the stock mmseg config (model, 40k
# schedule, runtime) and cen_mm's NYUDv2 RGB-D data. CENEncoderDecoder makes
# the stock FCNHead and FCN auxiliary head multi-stream (shared
# convs, a private BN per stream, a learned ensemble); CENResNetV1c shares
# the backbone convs and exchanges BN channels (θ = 2e-2) after every 3x3
# conv; GammaSparsityHook adds the L1 on γ (official λ).
_base_ = [
    'mmseg::fcn/fcn_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    '../_base_/datasets/nyudv2_rgbd_data.py',
    '../_base_/models/cen_rgbd_preprocessor.py',
]
custom_imports = dict(imports=['cen_mm.seg', 'cen_mm.engine'])
# The host's data keys -> NYUDv2 RGB-D (docs/datasets.md)
train_dataloader = dict(_delete_=True, **_base_.rgbd_data.train_dataloader)
val_dataloader = dict(_delete_=True, **_base_.rgbd_data.val_dataloader)
test_dataloader = dict(_delete_=True, **_base_.rgbd_data.test_dataloader)
val_evaluator = dict(_delete_=True, **_base_.rgbd_data.val_evaluator)
test_evaluator = dict(_delete_=True, **_base_.rgbd_data.test_evaluator)
test_pipeline = _base_.rgbd_data.test_pipeline
tta_pipeline = _base_.rgbd_data.tta_pipeline
# The model -> CEN
model = dict(
    type='CENEncoderDecoder',
    stream_names=('rgb', 'depth'),
    data_preprocessor=dict(_delete_=True, **_base_.cen_rgbd_preprocessor),
    backbone=dict(type='CENResNetV1c', norm_cfg=dict(type='ExchangeBN')),
    decode_head=dict(num_classes=40),
    auxiliary_head=dict(num_classes=40))
custom_hooks = [dict(type='GammaSparsityHook', lam=6e-4)]
tta_model = dict(type='CENSegTTAModel')
visualizer = dict(type='CENSegLocalVisualizer')
