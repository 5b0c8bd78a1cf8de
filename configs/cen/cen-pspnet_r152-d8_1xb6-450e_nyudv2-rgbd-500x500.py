# CEN, PSPNet decoder, dilated ResNet-152 (output stride 8), NYUDv2 RGB-D
# (paper Table 3: 77.7 / 65.0 / 52.5 pixel acc. / mean acc. / mIoU,
# multi-scale). The official code has no PSPNet; this config uses the
# RefineNet ResNet-152 recipe (batch 6, 500 crops, staged LR over 450
# epochs, θ = 2e-2, λ = 6e-4) with mmseg's PSPHead made multi-stream
# (shared convs, private BN per stream, learned ensemble), no auxiliary
# head, and the torchvision ResNet-152 (7x7 stem) used by CEN, since
# mmseg's model zoo has no ResNetV1c-152.
_base_ = [
    '../_base_/models/cen_resnet101-d8_pspnet.py',
    '../_base_/datasets/nyudv2_rgbd.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/cen_staged_450e.py',
]
crop_size = (500, 500)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        type='CENResNet',
        depth=152,
        deep_stem=False,
        # Official CEN: BN statistics frozen at their ImageNet values.
        norm_eval=True,
        init_cfg=dict(
            type='Pretrained', checkpoint='torchvision://resnet152')))
train_dataloader = dict(drop_last=True)
randomness = dict(seed=42)
