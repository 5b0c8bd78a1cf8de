# Copyright (c) cen_mm contributors. All rights reserved.
from .exchange_visualization_hook import (ExchangeVisualizationHook,
                                          exchange_site_statistics)
from .gamma_sparsity_hook import GammaSparsityHook
from .non_finite_guard_hook import NonFiniteError, NonFiniteGuardHook
from .safe_checkpoint_hook import SafeCheckpointHook

__all__ = [
    'GammaSparsityHook', 'ExchangeVisualizationHook',
    'exchange_site_statistics', 'SafeCheckpointHook', 'NonFiniteGuardHook',
    'NonFiniteError'
]
