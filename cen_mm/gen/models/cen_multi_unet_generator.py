# Copyright (c) cen_mm contributors. All rights reserved.
"""The CEN U-Net family: encoder-side and decoder-side streams, shared or
private conv weights per side, private exchanging INs, and a combination
rule between the sides (paper §3.2-3.5, Eq. 5-8)."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmagic.registry import MODELS
from torch import Tensor

from cen_mm.cnn import ExchangeIN, StreamEnsemble
from .unet_layout import UnetLayout

__all__ = ['CENMultiUnetGenerator']

WEIGHT_SHARING = ('shared', 'unit', 'stream')
COMBINE_RULES = ('identity', 'softmax')


def _branch_sizes(units: Sequence[int], sharing: str) -> List[int]:
    """Streams per set of conv weights: one set for all streams, one per
    unit, or one per stream."""
    if sharing == 'shared':
        return [sum(units)]
    if sharing == 'unit':
        return list(units)
    return [1] * sum(units)


class _StreamCombination(nn.Module):
    """Per-unit softmax combination of encoder streams into decoder streams.

    Decoder stream d of unit u receives ``Σ_e softmax(α_u[d])_e · enc_e``
    over unit u's encoder streams (paper Eq. 8: z_{m2} = Σ_{m1}
    α^{m2}_{m1} C_{m1}(...)), at every U-Net level (bottleneck and skips).
    α is initialised to ones (uniform weights); with one encoder stream the
    decoder streams receive exact copies.
    """

    def __init__(self, units: Sequence[Tuple[int, int]]) -> None:
        super().__init__()
        self.units = [tuple(u) for u in units]
        self.alpha = nn.ParameterList(
            nn.Parameter(torch.ones(dec, enc)) for enc, dec in self.units)

    def weights(self, unit: int) -> Tensor:
        """Tensor: ``(dec_u, enc_u)`` softmax weights of unit ``unit``."""
        return self.alpha[unit].softmax(dim=1)

    def forward(self, x: Tensor, active: Sequence[int]) -> Tensor:
        n = x.size(0) // sum(self.units[u][0] for u in active)
        chunks = x.split([self.units[u][0] * n for u in active])
        out = []
        for u, chunk in zip(active, chunks):
            enc, dec = self.units[u]
            streams = chunk.view(enc, n, *chunk.shape[1:])
            weights = self.weights(u).to(chunk.dtype)
            out.append(
                torch.tensordot(weights, streams, 1).reshape(
                    dec * n, *chunk.shape[1:]))
        return torch.cat(out) if len(out) > 1 else out[0]


@MODELS.register_module()
class CENMultiUnetGenerator(UnetLayout):
    """U-Net generator of the CEN family (fusion, multitask, cycle).

    The layout is that of :class:`CENUnetGenerator` (pix2pix U-Net,
    ``num_down = 8`` is U-Net-256). Streams are grouped into *units*; unit u
    has ``enc_u`` encoder streams and ``dec_u`` decoder streams, and all
    streams travel as one stream-folded batch, unit-major. A unit is the
    scope of channel exchange (Eq. 4 among its streams), of the combination
    rule and of the ensemble, and the granularity at which flows can be
    sampled (CEN-random).

    Per side (encoder / decoder):

    - conv weights ``'shared'`` by every stream of the side (one stock conv
      on the folded batch), one set per ``'unit'`` or per ``'stream'`` (a
      loop over the weight sets; each sees its streams folded);
    - a private affine IN per stream (:class:`ExchangeIN`; a plain IN when
      the unit has one stream on that side), exchanging among the unit's
      streams when ``encoder_exchange`` / ``decoder_exchange`` is on; L1
      sparsity is marked on the exchanging layers only.

    Between the sides, ``combine``:

    - ``'identity'``: decoder stream s decodes encoder stream s (needs
      ``enc_u == dec_u``); the skips are the stream's own (fusion, Eq. 5 and
      cycle, Eq. 6);
    - ``'softmax'``: decoder stream d of unit u decodes
      ``Σ_e softmax(α_u[d])_e · enc_e`` at every level, skips included
      (multitask Eq. 7 with one encoder stream, multimodal multitask
      Eq. 8).

    With ``ensemble=True`` the tanh outputs of a unit's decoder streams are
    combined by a learned softmax ensemble (:class:`StreamEnsemble`, one α
    per unit, over detached outputs by default).

    ``units=[(M, M)]`` with shared weights, identity and ensemble is
    :class:`CENUnetGenerator` (same outputs for the same weights).

    Args:
        units (Sequence[tuple[int, int]]): ``(enc_u, dec_u)`` per unit.
            Default: ``[(2, 2)]``.
        encoder_weights (str): ``'shared'``, ``'unit'`` or ``'stream'``.
            Default: 'shared'.
        decoder_weights (str): Same choices. Default: 'shared'.
        encoder_exchange (bool): Exchange among a unit's encoder streams.
            Default: True.
        decoder_exchange (bool): Exchange among a unit's decoder streams
            (CEN-dec). Default: False.
        combine (str): ``'identity'`` or ``'softmax'``. Default: 'identity'.
        ensemble (bool): Softmax ensemble of each unit's decoder outputs.
            Default: True.
        in_channels (int): Channels of one input image. Default: 3.
        out_channels (int): Channels of one output image. Default: 3.
        num_down (int): Number of downsamplings (>= 5). Default: 8.
        base_channels (int): Channels of ``conv1``. Default: 64.
        norm_cfg (dict, optional): ``ExchangeIN`` options (``threshold``,
            ``exchange_scope``, ``sparsity``). Default: θ = 1e-2,
            ``exchange_scope='any'``, ``sparsity='own'`` (official).
        exchange_layers (Sequence[int], optional): Encoder layers (2 ..
            num_down - 1) that exchange; None = all. Default: None.
        decoder_exchange_layers (Sequence[int], optional): Decoder layers
            (1 .. num_down - 1) that exchange when ``decoder_exchange``;
            None = all. Default: None.
        dropout_layers (Sequence[int]): Decoder layers followed by
            Dropout(0.5). Default: (1, 2, 3).
        ensemble_detach (bool): Ensemble detached outputs. Default: True.
        norm_init (str): ``'ones'`` or ``'uniform'`` (official) IN γ.
            Default: 'ones'.
        bias_init (str): ``'zeros'`` or ``'pytorch'`` (official) conv
            biases. Default: 'zeros'.
        init_cfg (dict, optional): ``dict(type='normal', gain=0.02)``.
    """

    def __init__(self,
                 units: Sequence[Sequence[int]] = ((2, 2), ),
                 encoder_weights: str = 'shared',
                 decoder_weights: str = 'shared',
                 encoder_exchange: bool = True,
                 decoder_exchange: bool = False,
                 combine: str = 'identity',
                 ensemble: bool = True,
                 in_channels: int = 3,
                 out_channels: int = 3,
                 num_down: int = 8,
                 base_channels: int = 64,
                 norm_cfg: Optional[Dict] = None,
                 exchange_layers: Optional[Sequence[int]] = None,
                 decoder_exchange_layers: Optional[Sequence[int]] = None,
                 dropout_layers: Sequence[int] = (1, 2, 3),
                 ensemble_detach: bool = True,
                 norm_init: str = 'ones',
                 bias_init: str = 'zeros',
                 init_cfg: Optional[Dict] = dict(type='normal', gain=0.02)
                 ) -> None:
        super().__init__(in_channels, out_channels, num_down, base_channels,
                         norm_init, bias_init, init_cfg)
        name = type(self).__name__
        units = [tuple(int(v) for v in u) for u in units]
        if not units or any(len(u) != 2 or min(u) < 1 for u in units):
            raise ValueError(f'{name}: units must be a non-empty list of '
                             f'(encoder_streams, decoder_streams) pairs '
                             f'>= 1, got {units}')
        for arg, value in (('encoder_weights', encoder_weights),
                           ('decoder_weights', decoder_weights)):
            if value not in WEIGHT_SHARING:
                raise ValueError(f'{name}: {arg} must be one of '
                                 f'{WEIGHT_SHARING}, got {value!r}')
        if combine not in COMBINE_RULES:
            raise ValueError(f'{name}: combine must be one of '
                             f'{COMBINE_RULES}, got {combine!r}')
        if combine == 'identity' and any(e != d for e, d in units):
            raise ValueError(
                f"{name}: combine='identity' decodes each encoder stream, so "
                f'every unit needs as many decoder as encoder streams; got '
                f"units {units} (use combine='softmax')")
        self.units = units
        self.encoder_weights = encoder_weights
        self.decoder_weights = decoder_weights
        self.combine_rule = combine
        self.exchange_layers = self.check_layers(
            exchange_layers, tuple(range(2, num_down)), 'exchange_layers')
        self.decoder_exchange_layers = self.check_layers(
            decoder_exchange_layers, tuple(range(1, num_down)),
            'decoder_exchange_layers')
        self.dropout_layers = self.check_layers(
            dropout_layers, tuple(range(1, num_down)), 'dropout_layers')
        self.norm_cfg = dict(
            type='ExchangeIN', threshold=1e-2, exchange_scope='any',
            sparsity='own')
        self.norm_cfg.update(norm_cfg or {})
        self.norm_cfg.pop('type')

        enc_units = [e for e, _ in units]
        dec_units = [d for _, d in units]
        self.enc_branches = _branch_sizes(enc_units, encoder_weights)
        self.dec_branches = _branch_sizes(dec_units, decoder_weights)
        channels = self.channels
        layers = range(1, num_down + 1)
        # norms live outside the convs: per unit, below
        self.encoders = nn.ModuleList(
            nn.ModuleList(self.encoder_layer(k) for k in layers)
            for _ in self.enc_branches)
        self.decoders = nn.ModuleList(
            nn.ModuleList(self.decoder_layer(k) for k in layers)
            for _ in self.dec_branches)
        # norms[k][u]: the k-th layer's norm of unit u (None: no norm there)
        self.encoder_norms = nn.ModuleList(
            self._build_norms(enc_units, channels[k - 1],
                              encoder_exchange and k in self.exchange_layers)
            if 2 <= k < num_down else nn.ModuleList()
            for k in range(1, num_down + 1))
        self.decoder_norms = nn.ModuleList(
            self._build_norms(
                dec_units, channels[num_down - k - 1], decoder_exchange
                and k in self.decoder_exchange_layers)
            for k in range(1, num_down))
        self.dropouts = nn.ModuleList(
            nn.Dropout(0.5) if k in self.dropout_layers else nn.Identity()
            for k in range(1, num_down + 1))
        self.combination = (_StreamCombination(units)
                            if combine == 'softmax' else None)
        self.ensembles = nn.ModuleList(
            StreamEnsemble(d, detach=ensemble_detach)
            if ensemble else nn.Identity() for d in dec_units)
        self.ensemble = ensemble

    def _build_norms(self, streams: List[int], num_features: int,
                     exchange: bool) -> nn.ModuleList:
        norms = nn.ModuleList()
        for count in streams:
            if count == 1:
                norms.append(
                    nn.InstanceNorm2d(num_features, affine=True,
                                      track_running_stats=True))
                continue
            cfg = dict(self.norm_cfg)
            if not exchange:
                cfg['sparsity'] = 'none'
            norms.append(
                ExchangeIN(num_features, num_streams=count,
                           exchange=exchange, **cfg))
        return norms

    # ------------------------------------------------------------------
    @property
    def num_encoder_streams(self) -> int:
        """int: Encoder streams over all units."""
        return sum(e for e, _ in self.units)

    @property
    def num_decoder_streams(self) -> int:
        """int: Decoder streams over all units."""
        return sum(d for _, d in self.units)

    def _active_units(self, units: Optional[Sequence[int]]) -> List[int]:
        if units is None:
            return list(range(len(self.units)))
        active = sorted(set(int(u) for u in units))
        if not active or active[0] < 0 or active[-1] >= len(self.units):
            raise ValueError(f'{type(self).__name__}: active units {units} '
                             f'are not in 0..{len(self.units) - 1}')
        return active

    @staticmethod
    def _counts(branches: List[int], unit_sizes: List[int],
                active: List[int]) -> List[int]:
        """Active streams per weight set, in stream order."""
        live = []
        for u, size in enumerate(unit_sizes):
            live += [u in active] * size
        counts, start = [], 0
        for size in branches:
            counts.append(sum(live[start:start + size]))
            start += size
        return counts

    @staticmethod
    def _run_branches(layers: List[nn.Module], counts: List[int], x: Tensor,
               n: int) -> Tensor:
        """Apply per-weight-set layers to their chunks of the folded batch
        (one call when all streams share the weights)."""
        if len(layers) == 1:
            return layers[0](x)
        chunks = x.split([c * n for c in counts])
        return torch.cat(
            [layer(chunk) for layer, chunk, c in zip(layers, chunks, counts)
             if c])

    @staticmethod
    def _norm(norms: nn.ModuleList, sizes: List[int], active: List[int],
              x: Tensor, n: int) -> Tensor:
        if len(norms) == 0:
            return x
        if len(active) == 1:
            return norms[active[0]](x)
        chunks = x.split([sizes[u] * n for u in active])
        return torch.cat([norms[u](c) for u, c in zip(active, chunks)])

    def forward(self, x: Tensor,
                units: Optional[Sequence[int]] = None) -> Dict[str, Tensor]:
        """Translate the encoder streams of the active units.

        Args:
            x (Tensor): Stream-folded inputs ``(E * N, in_channels, H, W)``,
                unit-major, where E is the number of encoder streams of the
                active units; H and W divisible by ``2 ** num_down``.
            units (Sequence[int], optional): Active units (sorted); None runs
                all of them. Inactive units' weights, norms and α get no
                gradient.

        Returns:
            dict: ``streams``: ``(D * N, out_channels, H, W)`` tanh outputs
            of the active decoder streams, unit-major; ``ensembles``:
            ``(U * N, ...)`` one ensemble per active unit (only with
            ``ensemble=True``).
        """
        name = type(self).__name__
        active = self._active_units(units)
        enc_sizes = [e for e, _ in self.units]
        dec_sizes = [d for _, d in self.units]
        num_enc = sum(enc_sizes[u] for u in active)
        size = 2**self.num_down
        if (x.dim() != 4 or x.size(1) != self.in_channels
                or x.size(0) % num_enc or x.size(2) % size
                or x.size(3) % size):
            raise ValueError(
                f'{name}: expected stream-folded input ({num_enc}*N, '
                f'{self.in_channels}, H, W) for units {active} with H and W '
                f'divisible by 2**num_down = {size}, got {tuple(x.shape)}')
        n = x.size(0) // num_enc
        enc_counts = self._counts(self.enc_branches, enc_sizes, active)
        dec_counts = self._counts(self.dec_branches, dec_sizes, active)
        enc_layers = [b for b, c in zip(self.encoders, enc_counts) if c]
        dec_layers = [b for b, c in zip(self.decoders, dec_counts) if c]
        enc_counts = [c for c in enc_counts if c]
        dec_counts = [c for c in dec_counts if c]

        skips = []
        for k in range(self.num_down):
            x = self._run_branches([b[k] for b in enc_layers], enc_counts, x, n)
            x = self._norm(self.encoder_norms[k], enc_sizes, active, x, n)
            skips.append(x)
        if self.combination is not None:
            skips = [self.combination(s, active) for s in skips]
        x = skips.pop()
        for k in range(self.num_down):
            if k > 0:
                x = torch.cat([skips.pop(), x], dim=1)
            x = self._run_branches([b[k] for b in dec_layers], dec_counts, x, n)
            if k < self.num_down - 1:
                x = self._norm(self.decoder_norms[k], dec_sizes, active, x, n)
            x = self.dropouts[k](x)
        streams = torch.tanh(x)
        out = dict(streams=streams)
        if self.ensemble:
            chunks = streams.split([dec_sizes[u] * n for u in active])
            out['ensembles'] = torch.cat(
                [self.ensembles[u](c) for u, c in zip(active, chunks)])
        return out
