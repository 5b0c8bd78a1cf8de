# SUN RGB-D semantic segmentation, 37 classes: 5285 train / 5050 test
# images of varying size. Layout (see docs/datasets.md):
# data/sunrgbd/{rgb,depth,label}/{train,test}/<stem>.png, with depth stored
# like NYUDv2 (uint16 metres x 5000) and labels 0..36, 255 = void.
# `img` is float32 HxWx6 = [B, G, R, d, d, d] with raw depth units.
# Train uses the official CEN NYUDv2 recipe: random scale s ~ U(0.5, 2)
# with the shorter side kept >= 350 (bicubic RGB, nearest depth and labels), random
# 500x500 crop (the data preprocessor pads smaller crops with `size`), and a
# horizontal flip. Test is single-scale at full resolution, as official;
# `tta_pipeline` adds multi-scale + flip testing (tools/test.py --tta).
dataset_type = 'SUNRGBDDataset'
data_root = 'data/sunrgbd'
num_classes = 37
crop_size = (500, 500)
meta_keys = ('img_path', 'depth_path', 'seg_map_path', 'ori_shape',
             'img_shape', 'pad_shape', 'scale_factor', 'flip',
             'flip_direction', 'reduce_zero_label')
train_pipeline = [
    dict(type='LoadRGBDFromFile'),
    dict(type='LoadRGBDAnnotations', num_classes=num_classes),
    dict(
        type='RGBDRandomResize',
        ratio_range=(0.5, 2.0),
        min_short_side=350,
        interpolation='bicubic',
        depth_interpolation='nearest'),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs', meta_keys=meta_keys)
]
test_pipeline = [
    dict(type='LoadRGBDFromFile'),
    dict(type='LoadRGBDAnnotations', num_classes=num_classes),
    dict(type='PackSegInputs', meta_keys=meta_keys)
]
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadRGBDFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(type='RGBDResize', scale_factor=r, keep_ratio=True)
                for r in img_ratios
            ],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ],
            [dict(type='LoadRGBDAnnotations', num_classes=num_classes)],
            [dict(type='PackSegInputs', meta_keys=meta_keys)]
        ])
]
train_dataloader = dict(
    batch_size=6,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='rgb/train',
            depth_path='depth/train',
            seg_map_path='label/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='rgb/test',
            depth_path='depth/test',
            seg_map_path='label/test'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# Ensemble as aAcc/mIoU/mAcc, each stream as rgb/mIoU, depth/mIoU, ...
# (the stream names come from the model's predictions).
val_evaluator = dict(
    type='StreamIoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
