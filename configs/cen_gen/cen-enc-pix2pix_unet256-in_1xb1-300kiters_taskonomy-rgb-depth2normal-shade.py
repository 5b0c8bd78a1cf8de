# Table 9: CEN-enc (IN x4, enc x1, dec x2; Gen 89.3 M): exchange between the
# inputs only.
_base_ = ['./cen-encdec-pix2pix_unet256-in_1xb1-300kiters_taskonomy-rgb-depth2normal-shade.py']

model = dict(
    generator=dict(
        encoder_exchange=True,
        decoder_exchange=False))
