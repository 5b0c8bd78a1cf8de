# Table 7: multitask CEN-dec (Eq. 7; IN x2, enc x1, dec x2; Gen 89.3 M),
# rgb -> segment_semantic + depth_euclidean: a shared encoder, a decoder per task
# whose INs exchange channels (L1 on the decoder γ).
_base_ = [
    '../_base_/gen_cen_runtime.py',
    '../_base_/gen_cen_multi_pix2pix_unet256.py',
    '../_base_/datasets/taskonomy_256x256.py',
]

source_domains = ['rgb']
target_domains = ['segment_semantic', 'depth_euclidean']
flows = [dict(sources=source_domains, target=t) for t in target_domains]

model = dict(flows=flows)
# L1 on γ (λ = 1e-3); exchange statistics per decoder (task) stream
custom_hooks = [
    dict(
        type='GammaSparsityHook',
        lam=1e-3,
        interval=100,
        stream_names=target_domains)
]

data = dict(
    source_domains=source_domains,
    target_domain=None,
    target_domains=target_domains)
train_dataloader = dict(dataset=data)
val_dataloader = dict(dataset=data)
test_dataloader = val_dataloader

# official: 300 epochs x 1000 images at batch 1; validation every 5 epochs
train_cfg = dict(max_iters=300000, val_interval=5000)
default_hooks = dict(checkpoint=dict(interval=100000))

# per task: FID / KID (x100) for RGB outputs (stored BGR), the paper's
# MAE / MSE (x100 on [-1, 1], MSE = root mean squared error) otherwise
val_evaluator = dict(
    type='CENTranslationEvaluator', targets=target_domains, metrics=[])
test_evaluator = val_evaluator
