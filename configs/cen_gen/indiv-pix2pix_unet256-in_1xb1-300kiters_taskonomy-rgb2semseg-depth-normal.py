# Table 8 baseline: Indiv (IN x3, enc x3, dec x3; Gen 163.3 M, paper 163.1):
# an encoder and a decoder per task, i.e. independent pix2pix U-Nets
# (a unit per flow with its own weights; no exchanging norm, so no L1 hook).
_base_ = ['./cen-dec-pix2pix_unet256-in_1xb1-300kiters_taskonomy-rgb2semseg-depth-normal.py']

model = dict(
    units='per_flow',
    generator=dict(
        encoder_weights='unit', decoder_weights='unit',
        decoder_exchange=False))
custom_hooks = []
