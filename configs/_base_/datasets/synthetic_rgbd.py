# Synthetic RGB-D scenes (cen_mm/datasets/synthetic_rgbd.py): 5 classes that
# need both modalities (colour x depth profile), 96x96, 60 train / 20 val.
# The data is generated into `data_root` on first use (seeded,
# deterministic), or beforehand with tools/misc/generate_synthetic_rgbd.py.
# Same encodings as NYUDv2 (uint16 depth in metres x 5000), so the NYUDv2
# data preprocessor settings apply unchanged.
dataset_type = 'SyntheticRGBDDataset'
data_root = 'data/synthetic_rgbd'
num_classes = 5
crop_size = (96, 96)
meta_keys = ('img_path', 'depth_path', 'seg_map_path', 'ori_shape',
             'img_shape', 'pad_shape', 'scale_factor', 'flip',
             'flip_direction', 'reduce_zero_label')
generate = dict(num_train=60, num_val=20, size=96, seed=0)
train_pipeline = [
    dict(type='LoadRGBDFromFile'),
    dict(type='LoadRGBDAnnotations', num_classes=num_classes),
    dict(
        type='RGBDRandomResize',
        ratio_range=(0.75, 1.5),
        min_short_side=None,
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
img_ratios = [0.75, 1.0, 1.25]
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
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='rgb/train',
            depth_path='depth/train',
            seg_map_path='label/train'),
        generate=generate,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='rgb/val', depth_path='depth/val',
            seg_map_path='label/val'),
        generate=generate,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='StreamIoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
