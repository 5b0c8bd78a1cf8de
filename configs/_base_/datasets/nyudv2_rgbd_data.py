# NYUDv2 RGB-D semantic segmentation, 40 classes: 795 train / 654 test
# images, 640x480. Layout (tools/dataset_converters/nyudv2.py, see
# docs/datasets.md): data/nyudv2/{rgb,depth,label}/{train,test}/<stem>.png.
# `img` is float32 HxWx6 = [B, G, R, d, d, d] with raw depth (metres x 5000).
# Train follows the official CEN recipe: random scale s ~ U(0.5, 2) with the
# shorter side kept >= 350 (bicubic RGB, nearest depth and labels), random
# 500x500 crop (the data preprocessor pads smaller crops with `size`), and a
# horizontal flip. Test is single-scale at full resolution, as official;
# `tta_pipeline` adds multi-scale + flip testing (tools/test.py --tta).
# LoadRGBDAnnotations checks labels against the dataset's class count, so
# the pipelines serve every RGB-D dataset base.
#
# Everything lives in `rgbd_data`, a key no mmseg config defines, so this
# file also sits beside a full mmseg config in `_base_` (mmengine refuses a
# key defined by two sibling bases); `nyudv2_rgbd.py` maps it to the usual
# keys for configs built from model bases. With a full mmseg config, replace
# its data keys in your config (docs/datasets.md, "RGB-D data under any
# mmseg config"):
#   _base_ = ['mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-40k_'
#             'cityscapes-512x1024.py', '<cen_mm>/configs/_base_/datasets/'
#             'nyudv2_rgbd_data.py']
#   train_dataloader = dict(_delete_=True, **_base_.rgbd_data.train_dataloader)
#   (the same for val/test_dataloader and val/test_evaluator)
#   tta_pipeline = _base_.rgbd_data.tta_pipeline
__meta_keys = ('img_path', 'depth_path', 'seg_map_path', 'ori_shape',
               'img_shape', 'pad_shape', 'scale_factor', 'flip',
               'flip_direction', 'reduce_zero_label')
__img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
__train_pipeline = [
    dict(type='LoadRGBDFromFile'),
    dict(type='LoadRGBDAnnotations'),
    dict(
        type='RGBDRandomResize',
        ratio_range=(0.5, 2.0),
        min_short_side=350,
        interpolation='bicubic',
        depth_interpolation='nearest'),
    dict(type='RandomCrop', crop_size=(500, 500), cat_max_ratio=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs', meta_keys=__meta_keys)
]
__test_pipeline = [
    dict(type='LoadRGBDFromFile'),
    dict(type='LoadRGBDAnnotations'),
    dict(type='PackSegInputs', meta_keys=__meta_keys)
]
__val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='NYUDv2RGBDDataset',
        data_root='data/nyudv2',
        data_prefix=dict(
            img_path='rgb/test',
            depth_path='depth/test',
            seg_map_path='label/test'),
        pipeline=__test_pipeline))
# Ensemble as aAcc/mIoU/mAcc, each stream as rgb/mIoU, depth/mIoU, ...
# (the stream names come from the model's predictions).
__val_evaluator = dict(type='StreamIoUMetric', iou_metrics=['mIoU'])
rgbd_data = dict(
    num_classes=40,
    crop_size=(500, 500),
    meta_keys=__meta_keys,
    img_ratios=__img_ratios,
    train_pipeline=__train_pipeline,
    test_pipeline=__test_pipeline,
    tta_pipeline=[
        dict(type='LoadRGBDFromFile'),
        dict(
            type='TestTimeAug',
            transforms=[
                [
                    dict(type='RGBDResize', scale_factor=r, keep_ratio=True)
                    for r in __img_ratios
                ],
                [
                    dict(type='RandomFlip', prob=0., direction='horizontal'),
                    dict(type='RandomFlip', prob=1., direction='horizontal')
                ],
                [dict(type='LoadRGBDAnnotations')],
                [dict(type='PackSegInputs', meta_keys=__meta_keys)]
            ])
    ],
    train_dataloader=dict(
        batch_size=6,
        num_workers=4,
        persistent_workers=True,
        sampler=dict(type='DefaultSampler', shuffle=True),
        dataset=dict(
            type='NYUDv2RGBDDataset',
            data_root='data/nyudv2',
            data_prefix=dict(
                img_path='rgb/train',
                depth_path='depth/train',
                seg_map_path='label/train'),
            pipeline=__train_pipeline)),
    val_dataloader=__val_dataloader,
    test_dataloader=__val_dataloader,
    val_evaluator=__val_evaluator,
    test_evaluator=__val_evaluator)
