# CEN segmentation schedule for SUN RGB-D: the paper's 3 stages of 20 epochs
# (the official code has no SUN RGB-D recipe), otherwise the official NYUDv2
# schedule of cen_staged_300e.py (per-stage learning rates, momentum reset).
_base_ = './cen_staged_300e.py'
param_scheduler = [dict(_base_.param_scheduler[0], milestones=[20, 40])]
train_cfg = dict(max_epochs=60)
