# Table 6 baseline: CEN-random (IN x6, enc x1, dec x3; Gen 124.2 M): one
# flow drawn uniformly per training step (only its unit and its
# discriminator are updated); all flows are evaluated.
_base_ = ['./cen-cycle-dec3-pix2pix_unet256-in_1xb1-300kiters_taskonomy-rgb-shade-texture.py']

model = dict(flow_sampling='random')
