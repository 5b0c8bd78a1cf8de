# Copyright (c) cen_mm contributors. All rights reserved.
from .inference import init_model, load_rgbd, rgbd_inference_pipeline

__all__ = ['init_model', 'load_rgbd', 'rgbd_inference_pipeline']
