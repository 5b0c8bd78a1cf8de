# Copyright (c) cen_mm contributors. All rights reserved.
from typing import Optional, Tuple

from mmseg.models.decode_heads import PSPHead
from mmseg.registry import MODELS
from torch import Tensor

from .multi_stream_head import MultiStreamDecodeHead

__all__ = ['CENPSPHead']

EXCHANGE_NORMS = ('ExchangeBN', 'ExchangeIN')


@MODELS.register_module()
class CENPSPHead(MultiStreamDecodeHead, PSPHead):
    """Multi-stream `PSPNet <https://arxiv.org/abs/1612.01105>`_ head.

    mmseg's :class:`PSPHead` applied to stream-folded features: its convs are
    shared by the streams, while its norm layers are private per stream
    (:class:`cen_mm.cnn.ExchangeBN` with ``exchange=False``), i.e. CEN's
    "shared convs, private BNs"; the stream logits are combined by the
    learned ensemble of :class:`MultiStreamDecodeHead`.

    For an exchanging norm type, ``num_streams`` is filled in from the head,
    and ``exchange`` defaults to False and ``sparsity`` to ``'none'`` (no
    channel exchange and no L1 on γ in the decoder, as in CEN). Another norm
    type (e.g. ``'BN'``) is used as given, and then shares its statistics
    and affine parameters between the streams.

    Args:
        norm_cfg (dict, optional): Norm config. Default:
            ``dict(type='ExchangeBN', requires_grad=True)``.
        **kwargs: Arguments of :class:`MultiStreamDecodeHead` and
            :class:`PSPHead` (``pool_scales``, ``in_channels``, ``channels``,
            ``num_classes``, ...).
    """

    def __init__(self,
                 norm_cfg: Optional[dict] = dict(
                     type='ExchangeBN', requires_grad=True),
                 num_streams: int = 2,
                 **kwargs) -> None:
        if norm_cfg is not None and norm_cfg.get('type') in EXCHANGE_NORMS:
            norm_cfg = dict(norm_cfg)
            streams = norm_cfg.setdefault('num_streams', num_streams)
            if streams != num_streams:
                raise ValueError(
                    f'CENPSPHead: norm_cfg num_streams={streams} differs '
                    f'from the head num_streams={num_streams}')
            norm_cfg.setdefault('exchange', False)
            norm_cfg.setdefault('sparsity', 'none')
        super().__init__(
            norm_cfg=norm_cfg, num_streams=num_streams, **kwargs)

    def forward_streams(self, inputs: Tuple[Tensor]) -> Tensor:
        """Run :class:`PSPHead` on the stream-folded features.

        Args:
            inputs (tuple[Tensor]): Stream-folded multi-level features.

        Returns:
            Tensor: Stream-folded logits ``(M * N, K, h, w)``.
        """
        return PSPHead.forward(self, inputs)
