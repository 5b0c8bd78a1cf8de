# Copyright (c) cen_mm contributors. All rights reserved.
from .multi_stream_head import MultiStreamDecodeHead
from .psp_head import CENPSPHead
from .refinenet_head import (CENRefineNetHead, ChainedResidualPool,
                             ResidualConvUnit)

__all__ = [
    'MultiStreamDecodeHead', 'CENRefineNetHead', 'CENPSPHead',
    'ResidualConvUnit', 'ChainedResidualPool'
]
