# Table 7 baseline: Indiv (IN x2, enc x1, dec x2; Gen 89.3 M), hard parameter
# sharing: CEN-dec without exchange.
_base_ = ['./cen-dec-pix2pix_unet256-in_1xb1-300kiters_taskonomy-texture2rgb-depth.py']

model = dict(
    generator=dict(
        decoder_exchange=False))
