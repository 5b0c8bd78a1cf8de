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
crop_size = (500, 500)
model = dict(
    data_preprocessor=dict(size=crop_size), decode_head=dict(num_classes=37))
train_dataloader = dict(drop_last=True)
randomness = dict(seed=42)
