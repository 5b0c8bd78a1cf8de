# CPU-sized multimodal multitask CEN-enc & dec (Eq. 8, Table 9) on the
# synthetic scenes: RGB + Depth -> Normal + Shade. Variants by the
# generator's encoder_exchange / decoder_exchange / encoder_weights.
_base_ = ['./cen-dec-pix2pix_unet64-in_1xb4-1kiters_synthetic-rgb2semseg-depth.py']

source_domains = ['rgb', 'depth_zbuffer']
target_domains = ['normal', 'reshading']
flows = [dict(sources=source_domains, target=t) for t in target_domains]

model = dict(
    flows=flows,
    generator=dict(encoder_exchange=True, decoder_exchange=True))
train_dataloader = val_dataloader = test_dataloader = dict(
    dataset=dict(source_domains=source_domains, target_domains=target_domains))
custom_hooks = [dict(type='GammaSparsityHook', lam=1e-3, interval=50)]
