# CEN multimodal image translation on Taskonomy (CENPix2Pix, U-Net-256),
# official settings: runtime, model, data, 300k-iteration schedule and the
# paper's metrics for the ensemble and every stream. Children name their
# domains once, `__domains = dict(source_domains=[...], target_domain=...)`,
# for `model` and the dataloaders' `dataset` (bases are resolved before a
# child's variables exist); the evaluator reads them from the model's
# predictions.
_base_ = [
    './gen_cen_runtime.py',
    './gen_cen_pix2pix_unet256.py',
    './datasets/taskonomy_256x256.py',
]

# official: 300 epochs x 1000 images at batch 1; validation every 5 epochs
train_cfg = dict(max_iters=300000, val_interval=5000)
# official: the reported number is the best epoch's FID; keep the checkpoint
# with the best ensemble FID (non-RGB targets: reset save_best / rule)
default_hooks = dict(
    checkpoint=dict(interval=100000, save_best='ens/FID', rule='less'))

# paper metrics for the ensemble 'pred_img' (prefix 'ens') and every stream
# 'pred_img_{domain}' against 'gt_img' (the domains as the model names them
# in its predictions): FID / KID (x100, BGR as mmagic's
# DataPreprocessor de-normalises, official per-image min-max stretch) for
# RGB targets, MAE / MSE (x100 on [0, 1], convention='plain') otherwise
val_evaluator = dict(
    type='CENTranslationEvaluator',
    convention='plain',
    metrics=[])
test_evaluator = val_evaluator
