# Table 9: multimodal multitask CEN-enc & dec (Eq. 8; IN x4, enc x1, dec x2;
# Gen 89.3 M), RGB + Depth -> Normal + Shade: a shared encoder with a
# private IN per input exchanging between inputs, a per-decoder softmax α
# over the inputs (skips included), decoders exchanging between tasks.
_base_ = [
    '../_base_/gen_cen_runtime.py',
    '../_base_/gen_cen_multi_pix2pix_unet256.py',
    '../_base_/datasets/taskonomy_256x256.py',
]

source_domains = ['rgb', 'depth_euclidean']
target_domains = ['normal', 'reshading']
flows = [dict(sources=source_domains, target=t) for t in target_domains]

model = dict(
    flows=flows,
    generator=dict(encoder_exchange=True, decoder_exchange=True))
# L1 on γ (λ = 1e-3); exchange statistics by stream index (encoder: the
# inputs, decoder: the tasks)
custom_hooks = [dict(type='GammaSparsityHook', lam=1e-3, interval=100)]

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
