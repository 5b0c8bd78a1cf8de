# Copyright (c) cen_mm contributors. All rights reserved.
"""The translation fusion baselines of the CEN paper (Table 4)."""
from typing import Dict, Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmagic.registry import MODELS
from torch import Tensor

from cen_mm.cnn import attach_stream_fusion, fusion_loss
from .cen_unet_generator import CENUnetGenerator

__all__ = ['FusionUnetGenerator']

# Table 4: early / middle / late = at the 1st / 4th / 8th conv layer.
UNET_FUSION_LAYERS = dict(early=(1, ), middle=(4, ), late=(8, ))


@MODELS.register_module()
class FusionUnetGenerator(CENUnetGenerator):
    """:class:`CENUnetGenerator` with a fusion baseline block after encoder
    conv layers (paper Table 4 and appendix B).

    The streams keep their own propagation (shared convs, private INs, the
    ensemble of the M outputs); a :class:`cen_mm.cnn.StreamFusion` block
    (``ConcatFusion``, ``AlignFusion``, ``SSMAFusion``, ``AverageFusion``)
    runs on the output of the listed encoder layers, and the skip connections
    carry the fused features. The align MMD is read by :meth:`fusion_loss`
    (``CENPix2Pix`` adds it as ``loss_fusion``). Pair it with
    ``norm_cfg=dict(type='ExchangeIN', exchange_mode='none',
    sparsity='none')`` for the baselines without channel exchange.

    Args:
        fusion (dict): The block config plus ``positions``: ``'early'`` /
            ``'middle'`` / ``'late'`` (1st / 4th / 8th conv layer),
            ``'all'`` (every encoder layer) or a list of 1-based encoder
            layers. ``SSMAFusion`` defaults to a private IN per stream (no
            norm at the 1x1 innermost layer); ``AlignFusion`` has no norm
            (1x1 convs without bias), so it needs no default.
        **kwargs: Arguments of :class:`CENUnetGenerator`.
    """

    def __init__(self, fusion: Dict, **kwargs) -> None:
        super().__init__(**kwargs)
        fusion = dict(fusion)
        layers = self._fusion_layers(fusion.pop('positions', None))
        self.fusion_layers = layers
        self.fusion_blocks = nn.ModuleDict()
        for k in layers:
            cfg = dict(fusion)
            if cfg.get('type') == 'SSMAFusion' and 'norm_cfg' not in cfg:
                # A private IN per stream, none at the 1x1 innermost layer
                # (which has no norm in pix2pix either).
                cfg['norm_cfg'] = None if k == self.num_down else dict(
                    type='ExchangeIN', exchange=False, sparsity='none')
            self.fusion_blocks.update(
                attach_stream_fusion(self, cfg, [f'encoder.{k - 1}'],
                                     self.num_streams))

    def fusion_loss(self) -> Optional[Tensor]:
        """Sum of the fusion blocks' losses from the latest training
        forward (the align MMD), consumed; None if no block has one."""
        return fusion_loss(self.fusion_blocks.values())

    def _fusion_layers(
            self, positions: Union[str, Sequence[int], None]) -> Tuple[int]:
        name = type(self).__name__
        if self.num_streams < 2:
            raise ValueError(f'{name}: fusion needs num_streams >= 2')
        if positions == 'all':
            return tuple(range(1, self.num_down + 1))
        if isinstance(positions, str):
            if positions not in UNET_FUSION_LAYERS:
                raise ValueError(
                    f'{name}: fusion positions {positions!r} must be one of '
                    f'{tuple(UNET_FUSION_LAYERS) + ("all", )} or a list of '
                    '1-based encoder layers')
            positions = UNET_FUSION_LAYERS[positions]
        if not positions:
            raise ValueError(f'{name}: fusion needs positions (e.g. '
                             "positions='early')")
        layers = tuple(sorted(set(int(k) for k in positions)))
        bad = [k for k in layers if not 1 <= k <= self.num_down]
        if bad:
            raise ValueError(
                f'{name}: fusion layers {bad} do not exist; the encoder has '
                f'conv layers 1..{self.num_down}')
        return layers
