# Schedule of the Table-4 translation study on CPU (`tools/cen_study.py gen
# --config` this file; docs/ablations.md): the Shade + Texture -> RGB demo
# at 64 px (U-Net-64: 6 downs, base 32) for 600 iterations, so that CEN and
# the three baselines fit with several seeds each. The encoder IN γ start
# from U(0, 1) (the official PyTorch 1.0 environment) so that the weakest
# channels reach θ, and exchange, within the schedule: from γ = 1 the L1
# term needs thousands of Adam steps (≤ lr each) to bring any γ to θ.
_base_ = ['./cen-pix2pix_unet128-in_1xb4-2kiters_synthetic-shade-texture2rgb.py']

model = dict(generator=dict(num_down=6, norm_init='uniform'))

train_pipeline = _base_.cpu_pipelines.px64.train
test_pipeline = _base_.cpu_pipelines.px64.test
train_dataloader = dict(
    persistent_workers=True, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(max_iters=600, val_interval=600)
default_hooks = dict(checkpoint=dict(interval=-1))
