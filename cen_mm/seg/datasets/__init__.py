# Copyright (c) cen_mm contributors. All rights reserved.
from .nyudv2 import NYUDV2_40_CLASSES, NYUDv2RGBDDataset
from .rgbd_seg_dataset import RGBDSegDataset
from .sunrgbd import SUNRGBD_37_CLASSES, SUNRGBDDataset
from .synthetic import (SyntheticAgreementRGBDDataset,
                        SyntheticConjunctionRGBDDataset, SyntheticRGBDDataset)
from .transforms import *  # noqa: F401,F403

__all__ = [
    'RGBDSegDataset', 'NYUDv2RGBDDataset', 'SUNRGBDDataset',
    'SyntheticRGBDDataset', 'SyntheticAgreementRGBDDataset',
    'SyntheticConjunctionRGBDDataset',
    'NYUDV2_40_CLASSES', 'SUNRGBD_37_CLASSES',
    'LoadRGBDFromFile', 'LoadRGBDAnnotations', 'RGBDResize',
    'RGBDRandomResize', 'RGBPhotoMetricDistortion', 'depth_to_hha'
]
