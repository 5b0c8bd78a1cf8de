# CPU-sized independent CEN per flow (enc x3, dec x3) on the synthetic
# scenes.
_base_ = ['./cen-cycle-dec1-pix2pix_unet64-in_1xb4-1kiters_synthetic-rgb-shade-texture.py']

model = dict(generator=dict(encoder_weights='unit', decoder_weights='unit'))
