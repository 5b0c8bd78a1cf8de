# Copyright (c) cen_mm contributors. All rights reserved.
"""Training-side pieces: the γ sparsity hook and loss, safe checkpoints.

Importing this package makes mmengine checkpoints loadable with
``weights_only`` and their writes atomic (see :mod:`.checkpoint`).
"""
from .checkpoint import (atomic_save_checkpoint, checkpoint_safe_globals,
                         install_safe_checkpointing)
from .hooks import ExchangeVisualizationHook, GammaSparsityHook
from .sparsity import sparsity_loss, unwrap_model

install_safe_checkpointing()

__all__ = [
    'GammaSparsityHook', 'ExchangeVisualizationHook', 'sparsity_loss', 'unwrap_model',
    'install_safe_checkpointing', 'checkpoint_safe_globals',
    'atomic_save_checkpoint'
]
