# CEN RGB-D segmentation with a ResNet-50 encoder (blocks 3-4-6-3, 16
# exchange sites); otherwise as cen_resnet101_refinenet.py.
_base_ = './cen_resnet101_refinenet.py'
model = dict(
    backbone=dict(
        depth=50,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet50')))
