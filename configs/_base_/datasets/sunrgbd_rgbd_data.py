# SUN RGB-D semantic segmentation, 37 classes: 5285 train / 5050 test
# images of varying size. Layout (see docs/datasets.md):
# data/sunrgbd/{rgb,depth,label}/{train,test}/<stem>.png, with depth stored
# like NYUDv2 (uint16 metres x 5000) and labels 0..36, 255 = void.
# Pipelines, loaders and metric: the official CEN NYUDv2 recipe of
# nyudv2_rgbd_data.py (the official code has no SUN RGB-D recipe). Like it,
# everything is in `rgbd_data`, so this file also combines with a full mmseg
# config; `sunrgbd_rgbd.py` maps it to the usual keys.
_base_ = './nyudv2_rgbd_data.py'
__dataset = dict(type='SUNRGBDDataset', data_root='data/sunrgbd')
rgbd_data = dict(
    num_classes=37,
    train_dataloader=dict(dataset=__dataset),
    val_dataloader=dict(dataset=__dataset),
    test_dataloader=dict(dataset=__dataset))
