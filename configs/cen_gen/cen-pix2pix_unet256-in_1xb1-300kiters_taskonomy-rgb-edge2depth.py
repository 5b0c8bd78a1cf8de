# RGB + Edge -> Depth on Taskonomy (CEN U-Net-256, official settings).
# Table 4
_base_ = '../_base_/gen_cen_pix2pix_unet256_taskonomy_300k.py'

source_domains = ['rgb', 'edge_occlusion']
target_domain = 'depth_euclidean'

model = dict(source_domains=source_domains, target_domain=target_domain)
train_dataloader = val_dataloader = test_dataloader = dict(
    dataset=dict(source_domains=source_domains, target_domain=target_domain))
# no FID to select by: keep the periodic checkpoints only
default_hooks = dict(checkpoint=dict(save_best=None, rule=None))
