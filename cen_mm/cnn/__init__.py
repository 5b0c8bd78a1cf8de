# Copyright (c) cen_mm contributors. All rights reserved.
"""Stream-aware building blocks; torch + mmengine only (no mmseg/mmagic)."""
from .exchange_norm import (ExchangeBN, ExchangeIN, ExchangeNorm,
                            exchange_norms, stream_parts)
from .stream_ensemble import StreamEnsemble
from .streams import check_folded, fold_channels, unfold_streams

__all__ = [
    'ExchangeNorm', 'ExchangeBN', 'ExchangeIN', 'exchange_norms',
    'stream_parts', 'StreamEnsemble', 'check_folded', 'fold_channels',
    'unfold_streams'
]
