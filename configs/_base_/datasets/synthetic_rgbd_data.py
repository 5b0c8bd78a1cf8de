# Synthetic RGB-D scenes (cen_mm/datasets/synthetic_rgbd.py): 5 classes that
# need both modalities (colour x depth profile), 96x96, 60 train / 20 val.
# The data is generated into `data_root` on first use (seeded,
# deterministic, atomic), or beforehand with
# tools/misc/generate_synthetic_rgbd.py. Same encodings as NYUDv2 (uint16
# depth in metres x 5000), so the NYUDv2 preprocessor settings apply
# unchanged; the pipelines are NYUDv2's with milder scaling (0.75-1.5, no
# minimum side), 96 px crops and 3 test scales. Like nyudv2_rgbd_data.py,
# everything is in `rgbd_data`; `synthetic_rgbd.py` maps it to the usual
# keys.
_base_ = './nyudv2_rgbd_data.py'
__nyu = _base_.rgbd_data
__img_ratios = [0.75, 1.0, 1.25]
__train_pipeline = [
    *__nyu.train_pipeline[:2],
    dict(
        type='RGBDRandomResize',
        ratio_range=(0.75, 1.5),
        min_short_side=None,
        interpolation='bicubic',
        depth_interpolation='nearest'),
    dict(type='RandomCrop', crop_size=(96, 96), cat_max_ratio=1.0),
    *__nyu.train_pipeline[4:]
]
__generate = dict(num_train=60, num_val=20, size=96, seed=0)
__val_dataset = dict(
    type='SyntheticRGBDDataset',
    data_root='data/synthetic_rgbd',
    data_prefix=dict(
        img_path='rgb/val', depth_path='depth/val', seg_map_path='label/val'),
    generate=__generate)
rgbd_data = dict(
    num_classes=5,
    crop_size=(96, 96),
    img_ratios=__img_ratios,
    train_pipeline=__train_pipeline,
    tta_pipeline=[
        __nyu.tta_pipeline[0],
        dict(
            type='TestTimeAug',
            transforms=[
                [
                    dict(type='RGBDResize', scale_factor=r, keep_ratio=True)
                    for r in __img_ratios
                ],
                *__nyu.tta_pipeline[1].transforms[1:]
            ])
    ],
    train_dataloader=dict(
        batch_size=8,
        num_workers=2,
        dataset=dict(
            type='SyntheticRGBDDataset',
            data_root='data/synthetic_rgbd',
            generate=__generate,
            pipeline=__train_pipeline)),
    val_dataloader=dict(num_workers=2, dataset=__val_dataset),
    test_dataloader=dict(num_workers=2, dataset=__val_dataset))
