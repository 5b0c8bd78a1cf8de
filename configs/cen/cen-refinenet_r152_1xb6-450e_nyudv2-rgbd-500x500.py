# CEN, RefineNet decoder, ResNet-152, NYUDv2 RGB-D (40 classes): the official
# README recipe (--enc 152 --num-epoch 150 150 150; 77.0 / 64.4 / 51.6 pixel
# acc. / mean acc. / mIoU single scale; paper, multi-scale: 77.4 / 64.8 /
# 52.2): the ResNet-101 config with the ResNet-152 encoder and 3 stages of
# 150 epochs.
_base_ = ['./cen-refinenet_r101_1xb6-300e_nyudv2-rgbd-500x500.py']
model = dict(
    backbone=dict(
        depth=152,
        init_cfg=dict(checkpoint='torchvision://resnet152')))
param_scheduler = [dict(_base_.param_scheduler[0], milestones=[150, 300])]
train_cfg = dict(max_epochs=450)
