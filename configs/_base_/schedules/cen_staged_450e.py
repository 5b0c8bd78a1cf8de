# Official CEN segmentation schedule for ResNet-152 on NYUDv2: the ResNet-101
# schedule (cen_staged_300e.py) with 3 stages of 150 epochs.
_base_ = './cen_staged_300e.py'
param_scheduler = [
    dict(
        type='StagedLR',
        milestones=[150, 300],
        lrs=dict(
            encoder={{_base_.enc_lrs}}, default={{_base_.dec_lrs}}),
        reset_state=True,
        by_epoch=True)
]
train_cfg = dict(max_epochs=450)
