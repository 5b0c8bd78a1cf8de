# RGB + Normal -> Shade on Taskonomy (CEN U-Net-256, official settings).
# Table 4; paper: MAE 11.03 / MSE 17.16 (x1e-2)
_base_ = '../_base_/gen_cen_pix2pix_unet256_taskonomy_300k.py'

__domains = dict(source_domains=['rgb', 'normal'], target_domain='reshading')
model = __domains
train_dataloader = val_dataloader = test_dataloader = dict(dataset=__domains)
# no FID to select by: keep the periodic checkpoints only
default_hooks = dict(checkpoint=dict(save_best=None, rule=None))
