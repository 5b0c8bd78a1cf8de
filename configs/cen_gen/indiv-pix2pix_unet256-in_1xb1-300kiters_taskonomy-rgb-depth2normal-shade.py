# Table 9 baseline: Indiv (IN x4, enc x2, dec x2; Gen 108.8 M, paper 108.7):
# an encoder per input, a decoder per task, no exchange.
_base_ = ['./cen-encdec-pix2pix_unet256-in_1xb1-300kiters_taskonomy-rgb-depth2normal-shade.py']

model = dict(
    generator=dict(
        encoder_weights='stream',
        encoder_exchange=False,
        decoder_exchange=False))
