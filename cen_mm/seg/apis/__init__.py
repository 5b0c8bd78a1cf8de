# Copyright (c) cen_mm contributors. All rights reserved.
from .inference import get_palette_for, inference_rgbd, init_cen_model

__all__ = ['init_cen_model', 'inference_rgbd', 'get_palette_for']
