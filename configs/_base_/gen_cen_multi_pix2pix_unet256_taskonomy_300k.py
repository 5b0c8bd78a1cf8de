# CEN for several translation flows on Taskonomy (CENMultiPix2Pix,
# U-Net-256; Tables 6-9), official settings: runtime, model, data, the
# 300k-iteration schedule and the L1 hook (λ = 1e-3, every 100 iterations,
# from the fusion base). Children set `model.flows` and the dataloaders'
# domains (bases are resolved before a child's variables exist); the
# evaluator reads the flows from the model's predictions.
_base_ = [
    './gen_cen_runtime.py',
    './gen_cen_multi_pix2pix_unet256.py',
    './datasets/taskonomy_256x256.py',
]

# several targets (`target_domains`) or flows instead of one target domain
train_dataloader = dict(dataset=dict(target_domain=None))
val_dataloader = test_dataloader = train_dataloader

# official: 300 epochs x 1000 images at batch 1; validation every 5 epochs
train_cfg = dict(max_iters=300000, val_interval=5000)
default_hooks = dict(checkpoint=dict(interval=100000))

# per flow: FID / KID (x100) for RGB outputs (stored BGR), the paper's
# MAE / MSE (x100 on [-1, 1], MSE = root mean squared error) otherwise
val_evaluator = dict(
    type='CENTranslationEvaluator',
    metrics=[])
test_evaluator = val_evaluator
