# Copyright (c) cen_mm contributors. All rights reserved.
"""Training-side pieces: the γ sparsity hook and loss, safe checkpoints.

Importing this package registers hooks and changes nothing else: safe
(``weights_only``) and atomic checkpointing is switched on by
:class:`SafeCheckpointHook` in a config or by the tools
(:func:`safe_checkpoint_loading`, see :mod:`.checkpoint`).
"""
from .checkpoint import (atomic_write, atomic_write_text, check_resumable,
                         check_state_dict, checkpoint_safe_globals,
                         find_resume_checkpoint, is_intact_checkpoint,
                         load_model_checkpoint, portable_message_hub,
                         remove_stray_temporaries, safe_checkpoint_loading)
from .combination_checks import (check_norm_types, check_num_classes,
                                 check_stream_host, dataset_classes)
from .hooks import (ExchangeVisualizationHook, GammaSparsityHook,
                    NonFiniteError, NonFiniteGuardHook, SafeCheckpointHook)
from .sparsity import sparsity_loss, unwrap_model
from .work_dir_lock import work_dir_lock

__all__ = [
    'GammaSparsityHook', 'ExchangeVisualizationHook', 'SafeCheckpointHook',
    'sparsity_loss', 'unwrap_model', 'checkpoint_safe_globals', 'safe_checkpoint_loading',
    'portable_message_hub', 'atomic_write', 'atomic_write_text',
    'remove_stray_temporaries', 'is_intact_checkpoint',
    'find_resume_checkpoint', 'check_resumable', 'check_state_dict',
    'load_model_checkpoint', 'NonFiniteGuardHook', 'NonFiniteError',
    'work_dir_lock', 'check_stream_host', 'check_num_classes',
    'dataset_classes', 'check_norm_types'
]
