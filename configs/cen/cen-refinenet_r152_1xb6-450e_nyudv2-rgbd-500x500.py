# CEN, RefineNet decoder, ResNet-152, NYUDv2 RGB-D (40 classes): the official
# README recipe (--enc 152 --num-epoch 150 150 150; 77.0 / 64.4 / 51.6 pixel
# acc. / mean acc. / mIoU single scale; paper, multi-scale: 77.4 / 64.8 /
# 52.2). Everything else as the ResNet-101 config.
_base_ = [
    '../_base_/models/cen_resnet152_refinenet.py',
    '../_base_/datasets/nyudv2_rgbd.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/cen_staged_450e.py',
]
crop_size = (500, 500)
model = dict(
    # The official centred pad (train_pipeline) makes every crop 500x500;
    # `size` only guards the batch shape.
    data_preprocessor=dict(size=crop_size),
    # The official test resizes the logits bicubically (cv2.INTER_CUBIC)
    # before the argmax.
    decode_head=dict(resize_mode='bicubic'))
# Official order: resize, centred pad to 500 (ImageNet-mean RGB values, also
# on depth; label 255), flip, crop (docs/parity.md).
train_pipeline = [
    dict(type='LoadRGBDFromFile'),
    dict(type='LoadRGBDAnnotations'),
    dict(
        type='RGBDRandomResize',
        ratio_range=(0.5, 2.0),
        min_short_side=350,
        interpolation='bicubic',
        depth_interpolation='nearest'),
    dict(type='RGBDCenterPad', size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    dict(type='PackSegInputs', meta_keys={{_base_.rgbd_data.meta_keys}})
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline), drop_last=True)
randomness = dict(seed=42)
