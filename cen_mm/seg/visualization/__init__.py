# Copyright (c) cen_mm contributors. All rights reserved.
from .cen_seg_visualizer import CENSegLocalVisualizer

__all__ = ['CENSegLocalVisualizer']
