# Depth + Normal -> RGB on Taskonomy (CEN U-Net-256, official settings).
# Table 4 and Table 5 (2 inputs)
_base_ = '../_base_/gen_cen_pix2pix_unet256_taskonomy_300k.py'

__domains = dict(
    source_domains=['depth_euclidean', 'normal'],
    target_domain='rgb')
model = __domains
train_dataloader = val_dataloader = test_dataloader = dict(dataset=__domains)
