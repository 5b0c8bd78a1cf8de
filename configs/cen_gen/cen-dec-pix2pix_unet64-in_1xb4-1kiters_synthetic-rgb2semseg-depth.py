# CPU-sized multitask CEN-dec (Eq. 7) on the procedural synthetic scenes:
# RGB -> SemSeg + Depth (the first row family of Table 7). Render the scenes
# first with
#   python tools/misc/generate_synthetic_scenes.py data/synthetic_scenes
# A U-Net-64 (6 downs, base 16) on 64x64 images, batch 4, 1k iterations;
# everything else as the Taskonomy configs. Validation reports the paper's
# MAE / MSE (x100 on [-1, 1], MSE = root mean squared error) per task.
_base_ = [
    '../_base_/gen_cen_runtime_cpu.py',
    '../_base_/gen_cen_multi_pix2pix_unet256.py',
    '../_base_/datasets/synthetic_scenes_cpu.py',
]

source_domains = ['rgb']
target_domains = ['segment_semantic', 'depth_zbuffer']
flows = [dict(sources=source_domains, target=t) for t in target_domains]

model = dict(
    flows=flows,
    generator=dict(num_down=6, base_channels=16),
    discriminator=dict(base_channels=16))

train_pipeline = _base_.cpu_pipelines.px64.train
test_pipeline = _base_.cpu_pipelines.px64.test
__domains = dict(
    source_domains=source_domains,
    target_domain=None,
    target_domains=target_domains)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline, **__domains))
val_dataloader = test_dataloader = dict(
    dataset=dict(pipeline=test_pipeline, **__domains))

train_cfg = dict(max_iters=1000)
custom_hooks = [
    dict(
        type='GammaSparsityHook',
        lam=1e-3,
        interval=50,
        stream_names=target_domains)
]

# per task: the paper's MAE / MSE (also for RGB: FID / KID need the
# Inception weights)
val_evaluator = test_evaluator = dict(
    type='CENTranslationEvaluator',
    feature_targets=[],
    metrics=[])
