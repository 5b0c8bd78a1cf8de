# CPU-sized Table 7 baseline: Indiv (enc x2, dec x2), independent U-Nets per
# task, on the synthetic scenes.
_base_ = ['./cen-dec-pix2pix_unet64-in_1xb4-1kiters_synthetic-rgb2semseg-depth.py']

model = dict(
    units='per_flow',
    generator=dict(
        encoder_weights='unit', decoder_weights='unit',
        decoder_exchange=False))
custom_hooks = []
