# Table 7 baseline: Indiv (IN x2, enc x2, dec x2; Gen 108.8 M, paper 108.7):
# an encoder and a decoder per task, i.e. independent pix2pix U-Nets
# (a unit per flow with its own weights; no exchanging norm, so no L1 hook).
_base_ = ['./cen-dec-pix2pix_unet256-in_1xb1-300kiters_taskonomy-rgb2semseg-depth.py']

model = dict(
    units='per_flow',
    generator=dict(
        encoder_weights='unit', decoder_weights='unit',
        decoder_exchange=False))
custom_hooks = []
