# Copyright (c) cen_mm contributors. All rights reserved.
from .hha import NYU_INTRINSICS, depth_to_hha
from .loading import LoadRGBDAnnotations, LoadRGBDFromFile
from .transforms import (RGBDCenterPad, RGBDRandomResize, RGBDResize,
                         RGBPhotoMetricDistortion)

__all__ = [
    'LoadRGBDFromFile', 'LoadRGBDAnnotations', 'RGBDResize',
    'RGBDRandomResize', 'RGBPhotoMetricDistortion', 'RGBDCenterPad',
    'depth_to_hha', 'NYU_INTRINSICS'
]
