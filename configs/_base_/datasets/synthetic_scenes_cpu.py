# The synthetic scenes (synthetic_scenes.py) at CPU-demo sizes, batch 4: the
# official crop recipe (resize to 286, random 256 crop, flip; test resize
# to 256) scaled to 64 px (U-Net-64 multitask / cycle demos) and to 128 px
# (U-Net-128 fusion demo). A config picks its size:
#   train_pipeline = _base_.cpu_pipelines.px64.train
#   test_pipeline = _base_.cpu_pipelines.px64.test
# and passes them to its dataloaders with its domains.
_base_ = ['./synthetic_scenes.py']

cpu_pipelines = {
    f'px{crop}': dict(
        train=[
            dict(type='LoadTaskonomyDomains', domains='{domains}'),
            dict(
                type='Resize',
                keys='{img_keys}',
                scale=(resize, resize),
                keep_ratio=False,
                interpolation='bilinear',
                backend='pillow'),
            dict(type='FixedCrop', keys='{img_keys}', crop_size=(crop, crop)),
            dict(
                type='Flip',
                keys='{img_keys}',
                flip_ratio=0.5,
                direction='horizontal'),
            dict(type='PackInputs', keys='{img_keys}',
                 meta_keys='{meta_keys}'),
        ],
        test=[
            dict(type='LoadTaskonomyDomains', domains='{domains}'),
            dict(
                type='Resize',
                keys='{img_keys}',
                scale=(crop, crop),
                keep_ratio=False,
                interpolation='bilinear',
                backend='pillow'),
            dict(type='PackInputs', keys='{img_keys}',
                 meta_keys='{meta_keys}'),
        ])
    # (crop, resize): resize / crop = 286 / 256 as the Taskonomy recipe
    for crop, resize in ((64, 72), (128, 143))
}
train_dataloader = dict(batch_size=4)
val_dataloader = dict(batch_size=4)
test_dataloader = val_dataloader
