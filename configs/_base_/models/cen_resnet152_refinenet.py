# CEN RGB-D segmentation with the official ResNet-152 encoder (blocks
# 3-8-36-3, 50 exchange sites); otherwise as cen_resnet101_refinenet.py.
_base_ = './cen_resnet101_refinenet.py'
model = dict(
    backbone=dict(
        depth=152,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet152')))
