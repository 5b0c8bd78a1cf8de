# CPU-sized CEN-random (one flow per step, dec x3) on the synthetic scenes.
_base_ = ['./cen-cycle-dec3-pix2pix_unet64-in_1xb4-1kiters_synthetic-rgb-shade-texture.py']

model = dict(flow_sampling='random')
