# Table 6: CEN-cycle with a decoder per flow (IN x6, enc x1, dec x3;
# Gen 124.2 M); otherwise as the dec x1 config.
_base_ = ['./cen-cycle-dec1-pix2pix_unet256-in_1xb1-300kiters_taskonomy-rgb-shade-texture.py']

model = dict(generator=dict(decoder_weights='unit'))
