# Copyright (c) cen_mm contributors. All rights reserved.
from .exchange_visualization_hook import (ExchangeVisualizationHook,
                                          exchange_site_statistics)
from .gamma_sparsity_hook import GammaSparsityHook

__all__ = [
    'GammaSparsityHook', 'ExchangeVisualizationHook',
    'exchange_site_statistics'
]
