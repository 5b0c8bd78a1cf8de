# RGB + Edge -> Depth on Taskonomy (CEN U-Net-256, official settings).
# Table 4
_base_ = '../_base_/gen_cen_pix2pix_unet256_taskonomy_300k.py'

__domains = dict(
    source_domains=['rgb', 'edge_occlusion'],
    target_domain='depth_euclidean')
model = __domains
train_dataloader = val_dataloader = test_dataloader = dict(dataset=__domains)
# no FID to select by: keep the periodic checkpoints only
default_hooks = dict(checkpoint=dict(save_best=None, rule=None))
