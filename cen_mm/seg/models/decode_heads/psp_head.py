# Copyright (c) cen_mm contributors. All rights reserved.
from typing import Optional

from mmseg.models.decode_heads import PSPHead
from mmseg.registry import MODELS

from .multi_stream_head import (MultiStreamDecodeHead,
                                register_multi_stream_head)

__all__ = ['CENPSPHead']


@MODELS.register_module()
class CENPSPHead(MultiStreamDecodeHead, PSPHead):
    """Multi-stream `PSPNet <https://arxiv.org/abs/1612.01105>`_ head.

    ``multi_stream_head(PSPHead)`` (see :func:`multi_stream_head`) under a
    registered name, with a per-stream BN by default: mmseg's
    :class:`PSPHead` on stream-folded features, convs shared by the streams,
    norms private per stream (CEN's decoder), plus the learned ensemble.

    Args:
        norm_cfg (dict, optional): Norm config, made private per stream
            (``BN`` -> ``ExchangeBN(exchange=False)``). Default:
            ``dict(type='ExchangeBN', requires_grad=True)``.
        **kwargs: Arguments of :class:`MultiStreamDecodeHead` and
            :class:`PSPHead` (``pool_scales``, ``in_channels``, ``channels``,
            ``num_classes``, ...).
    """

    forward_streams = PSPHead.forward

    def __init__(self,
                 norm_cfg: Optional[dict] = dict(
                     type='ExchangeBN', requires_grad=True),
                 **kwargs) -> None:
        super().__init__(norm_cfg=norm_cfg, **kwargs)


register_multi_stream_head(PSPHead, CENPSPHead)
