# CEN, RefineNet decoder, ResNet-101, SUN RGB-D (37 classes; 5285 train /
# 5050 test). Paper: 3 stages of 20 epochs, batch 6, SGD 0.9, weight decay
# 1e-5, θ = 2e-2 (the official code has no SUN RGB-D recipe; the rest follows
# the official NYUDv2 one).
_base_ = [
    '../_base_/models/cen_resnet101_refinenet.py',
    '../_base_/datasets/sunrgbd_rgbd.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/cen_staged_60e.py',
]
custom_imports = dict(imports=['cen_mm.seg'], allow_failed_imports=False)
crop_size = (500, 500)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(
        # Mean over labelled pixels, as the official NLL loss.
        loss_decode=dict(avg_non_ignore=True),
        num_classes=37))
train_dataloader = dict(
    batch_size=6,
    num_workers=4,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True))
custom_hooks = [
    dict(type='GammaSparsityHook', lam=6e-4)
]
randomness = dict(seed=42)
