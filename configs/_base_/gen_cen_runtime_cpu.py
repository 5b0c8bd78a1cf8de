# The translation runtime (gen_cen_runtime.py) for the CPU demos on the
# synthetic scenes: validation every 500 iterations, a log line every 50, a
# checkpoint every 1000; no cuDNN, gloo. Children set `train_cfg.max_iters`.
_base_ = ['./gen_cen_runtime.py']

train_cfg = dict(val_interval=500)
default_hooks = dict(
    logger=dict(interval=50), checkpoint=dict(interval=1000))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
