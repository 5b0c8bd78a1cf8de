# Table 6 baseline: independent CEN per flow (IN x6, enc x3, dec x3;
# Gen 163.3 M), the three fusion CENs of Table 4 in one model (each flow's
# unit has its own encoder and decoder weights); the same as training
# cen-pix2pix_unet256-in_1xb1-300kiters_taskonomy-shade-texture2rgb.py and
# its two sibling flows separately.
_base_ = ['./cen-cycle-dec1-pix2pix_unet256-in_1xb1-300kiters_taskonomy-rgb-shade-texture.py']

model = dict(generator=dict(encoder_weights='unit', decoder_weights='unit'))
