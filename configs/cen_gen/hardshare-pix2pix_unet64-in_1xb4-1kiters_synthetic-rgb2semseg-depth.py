# CPU-sized Table 7 baseline: hard parameter sharing (enc x1, dec x2, no
# exchange) on the synthetic scenes.
_base_ = ['./cen-dec-pix2pix_unet64-in_1xb4-1kiters_synthetic-rgb2semseg-depth.py']

model = dict(generator=dict(decoder_exchange=False))
