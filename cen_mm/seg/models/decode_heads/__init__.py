# Copyright (c) cen_mm contributors. All rights reserved.
from .multi_stream_head import (MultiStreamDecodeHead, multi_stream_head,
                                private_norm_cfg)
from .psp_head import CENPSPHead
from .refinenet_head import (CENRefineNetHead, ChainedResidualPool,
                             ResidualConvUnit)

__all__ = [
    'MultiStreamDecodeHead', 'multi_stream_head', 'private_norm_cfg',
    'CENRefineNetHead', 'CENPSPHead', 'ResidualConvUnit',
    'ChainedResidualPool'
]
