# Copyright (c) cen_mm contributors. All rights reserved.
from .hha import NYU_INTRINSICS, depth_to_hha
from .loading import (LoadRGBDAnnotations, LoadRGBDFromFile,
                      LoadRGBDFromNDArray, check_channel_order,
                      check_depth_array, check_rgb_array)
from .transforms import (RGBDCenterPad, RGBDRandomResize, RGBDResize,
                         RGBPhotoMetricDistortion)

__all__ = [
    'LoadRGBDFromFile', 'LoadRGBDFromNDArray', 'LoadRGBDAnnotations',
    'check_rgb_array', 'check_depth_array', 'check_channel_order',
    'RGBDResize', 'RGBDRandomResize',
    'RGBPhotoMetricDistortion', 'RGBDCenterPad', 'depth_to_hha',
    'NYU_INTRINSICS'
]
