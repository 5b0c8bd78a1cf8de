# Copyright (c) cen_mm contributors. All rights reserved.
"""Stream-aware building blocks; torch + mmengine only (no mmseg/mmagic)."""
from .exchange_norm import (EXCHANGE_MODES, ExchangeBN, ExchangeIN,
                            ExchangeNorm, exchange_norms, stream_parts)
from .stream_ensemble import StreamEnsemble
from .stream_fusion import (AlignFusion, AverageFusion, ConcatFusion,
                            SSMAFusion, StreamFusion, attach_stream_fusion,
                            fusion_loss, module_out_channels,
                            multi_kernel_mmd)
from .stream_sharing import StreamParallel, share_norms, unshare_convs
from .streams import check_folded, fold_channels, unfold_streams

__all__ = [
    'ExchangeNorm', 'ExchangeBN', 'ExchangeIN', 'EXCHANGE_MODES',
    'exchange_norms', 'stream_parts', 'StreamEnsemble', 'check_folded',
    'fold_channels', 'unfold_streams', 'StreamFusion', 'ConcatFusion',
    'AverageFusion', 'SSMAFusion', 'AlignFusion', 'multi_kernel_mmd',
    'attach_stream_fusion', 'fusion_loss', 'module_out_channels',
    'StreamParallel', 'unshare_convs', 'share_norms'
]
