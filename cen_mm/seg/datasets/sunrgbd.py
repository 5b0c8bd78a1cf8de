# Copyright (c) cen_mm contributors. All rights reserved.
"""SUN RGB-D with its 37 semantic classes (RGB-D)."""
from mmseg.registry import DATASETS

from .nyudv2 import NYUDV2_40_PALETTE
from .rgbd_seg_dataset import RGBDSegDataset

__all__ = ['SUNRGBDDataset']

SUNRGBD_37_CLASSES = (
    'wall', 'floor', 'cabinet', 'bed', 'chair', 'sofa', 'table', 'door',
    'window', 'bookshelf', 'picture', 'counter', 'blinds', 'desk', 'shelves',
    'curtain', 'dresser', 'pillow', 'mirror', 'floor_mat', 'clothes',
    'ceiling', 'books', 'fridge', 'tv', 'paper', 'towel', 'shower_curtain',
    'box', 'whiteboard', 'person', 'night_stand', 'toilet', 'sink', 'lamp',
    'bathtub', 'bag')


@DATASETS.register_module()
class SUNRGBDDataset(RGBDSegDataset):
    """SUN RGB-D semantic segmentation, 37 classes (5285 train / 5050 test).

    The 37 classes are NYUDv2-40's classes 0..36 (same order and colours).
    Labels on disk are expected 0-based (0..36) with 255 = void; for the raw
    release encoding (0 = void, 1..37) pass ``reduce_zero_label=True``.
    Layout and split-file formats are those of :class:`RGBDSegDataset` (see
    docs/datasets.md).
    """
    METAINFO = dict(
        classes=SUNRGBD_37_CLASSES, palette=NYUDV2_40_PALETTE[:37])
