# Shade + Texture -> RGB on Taskonomy (CEN U-Net-256, official settings).
# Table 4 (and the official default "--img-types 2 7 0");
# paper: FID 62.63 / KID 1.65
_base_ = '../_base_/gen_cen_pix2pix_unet256_taskonomy_300k.py'

__domains = dict(
    source_domains=['reshading', 'edge_texture'],
    target_domain='rgb')
model = __domains
train_dataloader = val_dataloader = test_dataloader = dict(dataset=__domains)
