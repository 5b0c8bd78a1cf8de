# NYUDv2 RGB-D (40 classes) under the usual mmseg keys, for configs built from
# model bases; the settings and their description are in nyudv2_rgbd_data.py
# (use that file beside a full mmseg config).
_base_ = ['./nyudv2_rgbd_data.py']
test_pipeline = {{_base_.rgbd_data.test_pipeline}}
tta_pipeline = {{_base_.rgbd_data.tta_pipeline}}
train_dataloader = {{_base_.rgbd_data.train_dataloader}}
val_dataloader = test_dataloader = {{_base_.rgbd_data.val_dataloader}}
val_evaluator = test_evaluator = {{_base_.rgbd_data.val_evaluator}}
