# Official CEN segmentation schedule for ResNet-152 on NYUDv2: the ResNet-101
# schedule (cen_staged_300e.py) with 3 stages of 150 epochs.
_base_ = './cen_staged_300e.py'
param_scheduler = [dict(_base_.param_scheduler[0], milestones=[150, 300])]
train_cfg = dict(max_epochs=450)
