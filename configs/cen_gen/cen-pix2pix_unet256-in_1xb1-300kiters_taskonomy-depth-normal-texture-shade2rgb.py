# Depth + Normal + Texture + Shade -> RGB on Taskonomy (CEN U-Net-256,
# official settings).
# Table 5 (4 inputs; exchange replaces by the mean of the other streams, Eq. 4)
_base_ = '../_base_/gen_cen_pix2pix_unet256_taskonomy_300k.py'

__domains = dict(
    source_domains=['depth_euclidean', 'normal', 'edge_texture', 'reshading'],
    target_domain='rgb')
model = __domains
train_dataloader = val_dataloader = test_dataloader = dict(dataset=__domains)
