# Shade -> RGB on Taskonomy (single-input pix2pix U-Net-256 baseline).
# Table 5 (1 input, the pix2pix baseline)
_base_ = '../_base_/gen_cen_pix2pix_unet256_taskonomy_300k.py'

__domains = dict(source_domains=['reshading'], target_domain='rgb')
model = __domains
train_dataloader = val_dataloader = test_dataloader = dict(dataset=__domains)
# One input: the generator is a plain pix2pix U-Net-256 (affine IN with
# running statistics); no exchanging norm, so no sparsity hook.
custom_hooks = []
