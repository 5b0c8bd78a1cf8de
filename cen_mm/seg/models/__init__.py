# Copyright (c) cen_mm contributors. All rights reserved.
"""Segmentation models: CEN backbones, heads, segmentors, preprocessor."""
from .backbones import *  # noqa: F401,F403
from .decode_heads import *  # noqa: F401,F403
from .data_preprocessor import CENSegDataPreProcessor  # noqa: F401
from .segmentors import *  # noqa: F401,F403
