# Copyright (c) cen_mm contributors. All rights reserved.
"""CEN for MMSegmentation: registers the cen_mm pieces in mmseg's registries.

Load it from a config with ``custom_imports=dict(imports=['cen_mm.seg'])``.
"""
import mmseg  # noqa: F401  (mmseg's registries must exist first)

from . import (apis, datasets, engine, evaluation, models,  # noqa: F401
               visualization)

__all__ = [
    'apis', 'datasets', 'engine', 'evaluation', 'models', 'visualization'
]
