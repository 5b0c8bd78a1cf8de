# Shade + Texture -> RGB on Taskonomy (CEN U-Net-256, official settings).
# Table 4 (and the official default "--img-types 2 7 0");
# paper: FID 62.63 / KID 1.65
_base_ = [
    '../_base_/gen_cen_runtime.py',
    '../_base_/gen_cen_pix2pix_unet256.py',
    '../_base_/datasets/taskonomy_256x256.py',
]

source_domains = ['reshading', 'edge_texture']
target_domain = 'rgb'

model = dict(source_domains=source_domains, target_domain=target_domain)
# L1 on γ, λ = 1e-3; exchange statistics logged per source domain
custom_hooks = [
    dict(
        type='GammaSparsityHook',
        lam=1e-3,
        interval=100,
        stream_names=source_domains)
]

train_dataloader = dict(
    dataset=dict(source_domains=source_domains, target_domain=target_domain))
val_dataloader = dict(
    dataset=dict(source_domains=source_domains, target_domain=target_domain))
test_dataloader = val_dataloader

# official: 300 epochs x 1000 images at batch 1; validation every 5 epochs
train_cfg = dict(max_iters=300000, val_interval=5000)
# official: the reported number is the best epoch's FID; keep the checkpoint
# with the best ensemble FID
default_hooks = dict(
    checkpoint=dict(interval=100000, save_best='ens/FID', rule='less'))

# paper metrics for RGB targets: FID / KID (x100); the ensemble is
# 'pred_img' (prefix 'ens'), every stream 'pred_img_{domain}'; the model
# stores images de-normalised by mmagic's DataPreprocessor, i.e. BGR
val_evaluator = dict(metrics=[
    dict(
        type=metric,
        prefix=prefix,
        fake_key=key,
        channel_order='bgr',
        minmax_stretch=True)  # official per-image min-max stretch
    for prefix, key in [('ens', 'pred_img')] +
    [(d, f'pred_img_{d}') for d in source_domains]
    for metric in ('CENFID', 'CENKID')
])
test_evaluator = val_evaluator
