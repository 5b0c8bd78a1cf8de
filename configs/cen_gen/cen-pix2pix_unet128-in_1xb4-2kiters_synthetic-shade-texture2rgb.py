# CPU-sized demo: Shade + Texture -> RGB on the procedural synthetic scenes
# (Taskonomy layout). Render them first with
#   python tools/misc/generate_synthetic_scenes.py data/synthetic_scenes
# A U-Net-128 (7 downs, base 32) on 128x128 crops, batch 4, 2k iterations;
# everything else (exchange, L1 on γ, losses, optimisers) as the Taskonomy
# configs. Validation reports MAE / MSE of the ensemble and of each stream
# (offline; FID/KID need Inception weights).
_base_ = [
    '../_base_/gen_cen_runtime_cpu.py',
    '../_base_/gen_cen_pix2pix_unet256.py',
    '../_base_/datasets/synthetic_scenes_cpu.py',
]

source_domains = ['reshading', 'edge_texture']
target_domain = 'rgb'

model = dict(
    source_domains=source_domains,
    target_domain=target_domain,
    generator=dict(num_down=7, base_channels=32),
    discriminator=dict(base_channels=32))

train_pipeline = _base_.cpu_pipelines.px128.train
test_pipeline = _base_.cpu_pipelines.px128.test
data = dict(source_domains=source_domains, target_domain=target_domain)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline, **data))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline, **data))
test_dataloader = val_dataloader

train_cfg = dict(max_iters=2000)
custom_hooks = [
    dict(
        type='GammaSparsityHook',
        lam=1e-3,
        interval=50,
        stream_names=source_domains)
]

# MAE / MSE (x100 on [0, 1]) of the ensemble and of every stream
val_evaluator = test_evaluator = dict(
    type='CENTranslationEvaluator',
    feature_targets=[],
    convention='plain',
    metrics=[])
