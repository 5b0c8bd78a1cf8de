# Copyright (c) cen_mm contributors. All rights reserved.
"""NYU Depth V2 with the 40-class labels of Gupta et al. (RGB-D)."""
from mmseg.registry import DATASETS

from .rgbd_seg_dataset import RGBDSegDataset

__all__ = ['NYUDv2RGBDDataset']

NYUDV2_40_CLASSES = (
    'wall', 'floor', 'cabinet', 'bed', 'chair', 'sofa', 'table', 'door',
    'window', 'bookshelf', 'picture', 'counter', 'blinds', 'desk', 'shelves',
    'curtain', 'dresser', 'pillow', 'mirror', 'floor mat', 'clothes',
    'ceiling', 'books', 'refrigerator', 'television', 'paper', 'towel',
    'shower curtain', 'box', 'whiteboard', 'person', 'night stand', 'toilet',
    'sink', 'lamp', 'bathtub', 'bag', 'otherstructure', 'otherfurniture',
    'otherprop')

# PASCAL VOC colour map, entries 1..40 (entry 0, black, is left for void).
NYUDV2_40_PALETTE = [
    [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128], [128, 0, 128],
    [0, 128, 128], [128, 128, 128], [64, 0, 0], [192, 0, 0], [64, 128, 0],
    [192, 128, 0], [64, 0, 128], [192, 0, 128], [64, 128, 128],
    [192, 128, 128], [0, 64, 0], [128, 64, 0], [0, 192, 0], [128, 192, 0],
    [0, 64, 128], [128, 64, 128], [0, 192, 128], [128, 192, 128], [64, 64, 0],
    [192, 64, 0], [64, 192, 0], [192, 192, 0], [64, 64, 128], [192, 64, 128],
    [64, 192, 128], [192, 192, 128], [0, 0, 64], [128, 0, 64], [0, 128, 64],
    [128, 128, 64], [0, 0, 192], [128, 0, 192], [0, 128, 192],
    [128, 128, 192], [64, 0, 64]
]


@DATASETS.register_module()
class NYUDv2RGBDDataset(RGBDSegDataset):
    """NYUDv2 RGB-D semantic segmentation, 40 classes (795 train / 654 test).

    Labels are 0-based (0 = wall ... 39 = otherprop) with 255 = void, as
    written by ``tools/dataset_converters/nyudv2.py`` and as in the
    preprocessed release used by the official CEN code. Depth is a uint16
    PNG in metres x 5000 (0 = no reading). Layout and split-file formats are
    those of :class:`RGBDSegDataset` (see docs/datasets.md).

    Note:
        mmseg's ``NYUDataset`` is an unrelated depth-estimation dataset.
    """
    METAINFO = dict(classes=NYUDV2_40_CLASSES, palette=NYUDV2_40_PALETTE)
