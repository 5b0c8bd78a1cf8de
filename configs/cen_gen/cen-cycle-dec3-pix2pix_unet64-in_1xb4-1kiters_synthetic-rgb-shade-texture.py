# CPU-sized CEN-cycle with a decoder per flow (dec x3) on the synthetic
# scenes.
_base_ = ['./cen-cycle-dec1-pix2pix_unet64-in_1xb4-1kiters_synthetic-rgb-shade-texture.py']

model = dict(generator=dict(decoder_weights='unit'))
