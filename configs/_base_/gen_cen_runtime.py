# Runtime of the CEN translation configs: mmagic's
# `mmagic::_base_/gen_default_runtime.py` without `optim_wrapper` and the
# evaluators, which `gen_cen_pix2pix_unet256.py` and the dataset bases
# define (mmengine forbids the same key in two sibling bases).
default_scope = 'mmagic'

randomness = dict(seed=2022, diff_rank_seed=True)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook',
        interval=10000,
        by_epoch=False,
        max_keep_ckpts=20,
        save_optimizer=True))

env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

log_level = 'INFO'
log_processor = dict(type='LogProcessor', by_epoch=False)
load_from = None
resume = False

# G and D are wrapped separately (mmagic's GAN convention)
model_wrapper_cfg = dict(
    type='MMSeparateDistributedDataParallel',
    broadcast_buffers=False,
    find_unused_parameters=False)

vis_backends = [dict(type='VisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)

train_cfg = dict(by_epoch=False, val_begin=1, val_interval=10000)
val_cfg = dict(type='MultiValLoop')
test_cfg = dict(type='MultiTestLoop')
