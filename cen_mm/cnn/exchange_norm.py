# Copyright (c) cen_mm contributors. All rights reserved.
"""Exchanging normalisation layers, the heart of CEN.

Wang et al., "Channel Exchanging Networks for Multimodal and Multitask Dense
Image Prediction", TPAMI 2023, Eq. 3-4.
"""
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
from mmengine.registry import MODELS
from torch import Tensor

from .streams import check_folded

__all__ = [
    'ExchangeNorm', 'ExchangeBN', 'ExchangeIN', 'stream_parts',
    'exchange_norms', 'EXCHANGE_MODES'
]

EXCHANGE_SCOPES = ('any', 'own')
EXCHANGE_MODES = ('none', 'threshold', 'fixed', 'random', 'discard')
SPARSITY_MODES = ('own', 'all', 'none')
_STATE_KEYS = ('weight', 'bias', 'running_mean', 'running_var',
               'num_batches_tracked')


def stream_parts(num_channels: int, num_streams: int) -> Tensor:
    """Split channels into M disjoint, (nearly) equal, contiguous parts.

    Part m is ``[m * C // M, (m + 1) * C // M)``; for M = 2 this is the
    official split (stream 0 owns ``[:C // 2]``, stream 1 ``[C // 2:]``).

    Returns:
        Tensor: Bool tensor of shape ``(M, C)``; row m marks part m.
    """
    bounds = [m * num_channels // num_streams for m in range(num_streams + 1)]
    parts = torch.zeros(num_streams, num_channels, dtype=torch.bool)
    for m in range(num_streams):
        parts[m, bounds[m]:bounds[m + 1]] = True
    return parts


def _mix(weights: Tensor, streams: Tensor, transpose: bool = False) -> Tensor:
    """Combine streams per channel: ``out[o, :, k] = Σ_m w[k, o, m] s[m, :, k]``
    for ``streams`` of shape ``(M, N, K, L)`` and ``weights`` ``(K, M, M)``;
    ``transpose`` applies ``w^T`` (the backward of the mixing)."""
    weights = weights.permute(2, 1, 0) if transpose else weights.permute(
        1, 2, 0)  # (M_out, M_in, K)
    return (weights[:, :, None, :, None] * streams[None]).sum(dim=1)


def _streams_view(x: Tensor, num_streams: int) -> Tensor:
    """View a contiguous ``(M * N, C, ...)`` tensor as ``(M, N, C, L)``."""
    return x.view(num_streams, x.size(0) // num_streams, x.size(1), -1)


class _FoldedBatchNorm(torch.autograd.Function):
    """Per-stream batch norm + exchange on a stream-folded ``(M, N, C, L)``
    view, with a hand-written backward.

    Each stream runs torch's native batch-norm kernel on its contiguous slice
    and writes straight into one output (no chunks, concatenation or layout
    copies); the exchange, forward and backward, only touches the K
    exchanged channels ``cols``. Running statistics are updated in place by
    the native kernel, as ``nn.BatchNorm2d`` does.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, norms, batch_stats, factor, mix,
                cols):
        # Return a fresh tensor of the input's shape, never a view of one:
        # in-place ReLUs and activation checkpointing modify the output.
        out4d = torch.empty_like(x, memory_format=torch.contiguous_format)
        x = _streams_view(x, len(norms))
        out = _streams_view(out4d, len(norms))
        stats = []
        for m, norm in enumerate(norms):
            running = (norm.running_mean, norm.running_var) \
                if norm.track_running_stats else (None, None)
            _, mean, invstd = torch.ops.aten.native_batch_norm.out(
                x[m], weight[m], bias[m], *running, batch_stats, factor,
                norm.eps, out=out[m], save_mean=x.new_empty(0),
                save_invstd=x.new_empty(0))
            stats.append((*running, mean, invstd))
        if cols.numel():
            out.index_copy_(2, cols, _mix(mix, out.index_select(2, cols)))
        ctx.norms, ctx.stats, ctx.batch_stats = norms, stats, batch_stats
        ctx.save_for_backward(x, weight, mix, cols)
        return out4d

    @staticmethod
    def backward(ctx, grad):
        x, weight, mix, cols = ctx.saved_tensors
        grad4d = torch.empty(grad.shape, dtype=x.dtype, device=x.device)
        grad = _streams_view(grad.contiguous(), len(ctx.norms))
        grad_x = _streams_view(grad4d, len(ctx.norms))
        grad_weight, grad_bias = torch.empty_like(weight), torch.empty_like(
            weight)

        def bn_backward(g, xs, m, index=slice(None), out=None):
            stats = [t[index] if t is not None and t.numel() else t
                     for t in ctx.stats[m]]
            return torch.ops.aten.native_batch_norm_backward(
                g, xs, weight[m][index], *stats, ctx.batch_stats,
                ctx.norms[m].eps, [True, True, True]) if out is None else \
                torch.ops.aten.native_batch_norm_backward.out(
                    g, xs, weight[m][index], *stats, ctx.batch_stats,
                    ctx.norms[m].eps, [True, True, True], out0=out[0],
                    out1=out[1], out2=out[2])

        for m in range(len(ctx.norms)):
            bn_backward(grad[m], x[m], m,
                        out=(grad_x[m], grad_weight[m], grad_bias[m]))
        if cols.numel():
            # Channel-separable: redo the exchanged channels with the
            # gradient w.r.t. the pre-exchange output.
            grad_k = _mix(mix, grad.index_select(2, cols), transpose=True)
            x_k = x.index_select(2, cols)
            for m in range(len(ctx.norms)):
                gx, gw, gb = bn_backward(grad_k[m], x_k[m], m, cols)
                grad_x[m].index_copy_(1, cols, gx)
                grad_weight[m, cols], grad_bias[m, cols] = gw, gb
        return (grad4d, grad_weight, grad_bias) + (None, ) * 5


class ExchangeNorm(nn.Module):
    """Base of the exchanging norms: one private norm per stream + exchange.

    The input is stream-folded ``(M * N, C, ...)``. Each stream is normalised
    by its own norm layer (own γ, β and running statistics); then, where
    ``|γ_m,c| < threshold``, stream m's normalised channel c is replaced by
    the mean of the other streams' normalised channel c (Eq. 4). For M = 2
    this is the official rule: ``|γ| >= θ`` keeps, and a channel that is
    below θ in both streams is swapped. A replaced channel receives no
    gradient; its donors receive gradient from every stream that took them.

    The per-stream norms are plain ``nn.BatchNorm2d`` / ``nn.InstanceNorm2d``
    children, so ``norm_eval``, SyncBN conversion and ``requires_grad`` act
    on them as on any mmcv norm.

    Args:
        num_features (int): Number of channels C.
        num_streams (int): Number of streams M (>= 2). Default: 2.
        threshold (float): Exchange threshold θ on ``|γ|``. Default: 2e-2.
        exchange (bool): Whether to exchange channels. With False the layer
            is a plain per-stream norm (same as ``exchange_mode='none'``).
            Default: True.
        exchange_mode (str): Which (stream, channel) pairs are replaced, and
            by what (the Table-1 ablations):

            - ``'threshold'``: pairs with ``|γ| < θ`` take the mean of the
              other streams (CEN, Eq. 4);
            - ``'fixed'``: ``round(exchange_portion * C)`` channels per
              stream, drawn once at construction (torch's global RNG) and
              kept in the persistent buffer ``fixed_exchange``, so the same
              channels are exchanged at every step and after a reload;
            - ``'random'``: a fresh set of ``round(exchange_portion * C)``
              channels per stream at every training forward (ShuffleNet
              style); in eval mode every candidate channel is mixed with its
              replacement probability (the expectation, as dropout does);
            - ``'discard'``: pairs with ``|γ| < θ`` are set to zero instead
              of taking the other streams' channel;
            - ``'none'``: no exchange.

            Default: ``'threshold'``.
        exchange_portion (float): Portion of each stream's channels exchanged
            by the ``'fixed'`` and ``'random'`` modes. Default: 0.3.
        exchange_scope (str): ``'any'`` exchanges every channel below θ (the
            official code); ``'own'`` only channels in the stream's own
            sub-part (the paper's text). For ``'fixed'`` / ``'random'`` it
            restricts the candidate channels the same way.
            Default: ``'any'``.
        sparsity (str): Which γ entries the L1 penalty acts on: ``'own'``
            (stream m's own disjoint sub-part, the official split), ``'all'``
            or ``'none'``. Default: ``'own'``.
        eps (float): Norm epsilon. Default: 1e-5.
        momentum (float): Running statistics momentum. Default: 0.1.
        affine (bool): Must be True: γ is the exchange criterion.
        track_running_stats (bool): Keep running statistics. Default: True.
    """

    _abbr_ = 'norm'

    def __init__(self,
                 num_features: int,
                 num_streams: int = 2,
                 threshold: float = 2e-2,
                 exchange: bool = True,
                 exchange_scope: str = 'any',
                 sparsity: str = 'own',
                 exchange_mode: str = 'threshold',
                 exchange_portion: float = 0.3,
                 eps: float = 1e-5,
                 momentum: float = 0.1,
                 affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        if int(num_streams) != num_streams or num_streams < 2:
            raise ValueError(f'{name}: num_streams must be an integer >= 2, '
                             f'got {num_streams!r}')
        if not threshold >= 0:
            raise ValueError(
                f'{name}: threshold must be >= 0, got {threshold!r}')
        if exchange_scope not in EXCHANGE_SCOPES:
            raise ValueError(f'{name}: exchange_scope must be one of '
                             f'{EXCHANGE_SCOPES}, got {exchange_scope!r}')
        if exchange_mode not in EXCHANGE_MODES:
            raise ValueError(f'{name}: exchange_mode must be one of '
                             f'{EXCHANGE_MODES}, got {exchange_mode!r}')
        if not 0 <= exchange_portion <= 1:
            raise ValueError(f'{name}: exchange_portion must be in [0, 1], '
                             f'got {exchange_portion!r}')
        if sparsity not in SPARSITY_MODES:
            raise ValueError(f'{name}: sparsity must be one of '
                             f'{SPARSITY_MODES}, got {sparsity!r}')
        if not affine:
            raise ValueError(f'{name}: affine=False leaves no γ to exchange '
                             'on; use a plain norm layer instead')
        self.num_features = num_features
        self.num_streams = int(num_streams)
        self.threshold = float(threshold)
        self.exchange = bool(exchange) and exchange_mode != 'none'
        self.exchange_mode = exchange_mode if self.exchange else 'none'
        self.exchange_portion = float(exchange_portion)
        self.exchange_scope = exchange_scope
        self.sparsity = sparsity
        self.streams = nn.ModuleList(
            self._build_norm(num_features, eps, momentum, track_running_stats)
            for _ in range(self.num_streams))
        parts = stream_parts(num_features, self.num_streams)
        self.register_buffer('parts', parts, persistent=False)
        masks = {'own': parts, 'all': torch.ones_like(parts),
                 'none': torch.zeros_like(parts)}
        self.register_buffer(
            'sparsity_mask', masks[sparsity], persistent=False)
        # Candidate (stream, channel) pairs of the portion-based modes.
        self.register_buffer(
            'candidates',
            parts.clone() if exchange_scope == 'own' else
            torch.ones_like(parts), persistent=False)
        if self.exchange_mode == 'fixed':
            self.register_buffer('fixed_exchange', self._draw_portion())
        # The set of the latest training forward of the 'random' mode.
        self._random_exchange = None

    def _build_norm(self, num_features: int, eps: float, momentum: float,
                    track_running_stats: bool) -> nn.Module:
        raise NotImplementedError

    @property
    def gamma(self) -> Tensor:
        """Tensor: The stacked per-stream scales γ, shape ``(M, C)``."""
        return torch.stack([norm.weight for norm in self.streams])

    @property
    def portion_size(self) -> int:
        """int: Channels per stream exchanged by the ``'fixed'`` and
        ``'random'`` modes (at most the stream's candidate channels)."""
        return min(round(self.exchange_portion * self.num_features),
                   int(self.candidates.sum(dim=1).min()))

    def _draw_portion(self) -> Tensor:
        """Draw :attr:`portion_size` candidate channels per stream, uniformly
        and independently per stream, from torch's global RNG."""
        scores = torch.rand(self.candidates.shape,
                            device=self.candidates.device)
        scores = scores.masked_fill(~self.candidates, -1)
        chosen = scores.topk(self.portion_size, dim=1).indices
        return torch.zeros_like(self.candidates).scatter_(1, chosen, True)

    def _replace_rate(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """How much of each (stream, channel) output is replaced, ``(M, C)``
        in ``[0, 1]``: 1 or 0 except for ``'random'`` in eval mode, where it
        is the replacement probability of a candidate channel."""
        mode = self.exchange_mode
        if mode in ('threshold', 'discard'):
            with torch.no_grad():
                replaced = self.gamma.abs() < self.threshold
            if self.exchange_scope == 'own':
                replaced &= self.parts
        elif mode == 'fixed':
            replaced = self.fixed_exchange
        elif mode == 'random' and self.training:
            if self._random_exchange is None:
                self._random_exchange = self._draw_portion()
            replaced = self._random_exchange
        elif mode == 'random':
            count = self.candidates.sum(dim=1, keepdim=True).to(dtype)
            return self.candidates.to(dtype) * (self.portion_size / count)
        else:
            replaced = torch.zeros_like(self.parts)
        return replaced.to(dtype)

    def exchange_mask(self) -> Tensor:
        """Which (stream, channel) pairs are replaced in the forward pass
        (taken from the other streams, or zeroed with ``'discard'``).

        With ``'random'`` this is the set of the latest training forward (a
        fresh draw before the first one); in eval mode, every pair that is
        partly mixed.

        Returns:
            Tensor: Bool tensor of shape ``(M, C)``; all False when exchange
            is off.
        """
        return self._replace_rate() > 0

    def exchanged_fraction(self) -> Tensor:
        """Tensor: Fraction of channels each stream takes from others (or
        zeroes), shape ``(M,)``; the expected fraction for ``'random'`` in
        eval mode."""
        return self._replace_rate().mean(dim=1)

    def sparsity_penalty(self) -> Tensor:
        """Σ |γ| over the entries selected by ``sparsity`` (a scalar whose
        gradient is ``sign(γ)`` on those entries and 0 elsewhere)."""
        return (self.gamma.abs() * self.sparsity_mask).sum()

    def penalised_below_threshold(self) -> Tuple[int, int]:
        """Count the penalised γ entries with ``|γ| < threshold``.

        Returns:
            tuple[int, int]: ``(below, total)`` over the sparsity mask.
        """
        with torch.no_grad():
            below = (self.gamma.abs() < self.threshold) & self.sparsity_mask
        return int(below.sum()), int(self.sparsity_mask.sum())

    def forward(self, x: Tensor) -> Tensor:
        name = type(self).__name__
        check_folded(x, self.num_streams, name)
        if x.dim() < 2 or x.size(1) != self.num_features:
            raise ValueError(
                f'{name}: expected {self.num_features} channels, got input '
                f'of shape {tuple(x.shape)}')
        if self.exchange_mode == 'random' and self.training:
            # A fresh set per training forward. Drawn from the global RNG,
            # so activation checkpointing (which restores the RNG state)
            # recomputes the same set.
            self._random_exchange = self._draw_portion()
        if self._fusable(x):
            return self._fused_forward(x)
        out = torch.cat([
            norm(chunk)
            for norm, chunk in zip(self.streams, x.chunk(self.num_streams))
        ])
        if self.exchange:
            out = self._exchange(out)
        return out

    def _fusable(self, x: Tensor) -> bool:
        return False

    def _mixing(self, dtype: torch.dtype) -> Tuple[Tensor, Tensor]:
        """The touched channels and their ``(K, M_out, M_in)`` mixing
        matrices: row o is the identity for a kept stream, the mean of the
        others for a replaced one (zero with ``'discard'``), and their blend
        ``(1 - r) · own + r · others`` for a replace rate r. The entries of a
        hard exchange are exact (0, 1, 1/2, ...), so M = 2 is an exact
        swap."""
        rate = self._replace_rate(dtype)
        cols = (rate > 0).any(dim=0).nonzero().flatten()
        m = self.num_streams
        eye = torch.eye(m, dtype=dtype, device=rate.device)
        target = torch.zeros_like(eye) if self.exchange_mode == 'discard' \
            else (1 - eye) / (m - 1)
        rate = rate[:, cols].t()[:, :, None]  # (K, M_out, 1)
        weights = torch.where(rate == 1, target,
                              torch.lerp(eye, target, rate))
        return cols, weights

    def _exchange(self, y: Tensor) -> Tensor:
        cols, weights = self._mixing(y.dtype)
        if cols.numel() == 0:
            return y
        y = y.view(self.num_streams, -1, *y.shape[1:])
        mixed = _mix(weights, y.index_select(2, cols).flatten(3))
        # `y` is a fresh concatenation that nothing saved for backward.
        y.index_copy_(2, cols, mixed.view(-1, *mixed.shape[1:3],
                                          *y.shape[3:]))
        return y.view(-1, *y.shape[2:])

    def _load_from_state_dict(self, state_dict: Dict, prefix: str, *args,
                              **kwargs) -> None:
        # Expand single-stream tensors (e.g. ImageNet BN) into every stream,
        # and map the official checkpoints' `bn_{m}.` / `insnorm_{m}.` names.
        for key in _STATE_KEYS:
            single = prefix + key
            if single in state_dict and prefix + f'streams.0.{key}' \
                    not in state_dict:
                value = state_dict.pop(single)
                for m in range(self.num_streams):
                    state_dict[prefix + f'streams.{m}.{key}'] = value
        for old in [k for k in state_dict if k.startswith(prefix)]:
            rest = old[len(prefix):].split('.', 1)
            base, _, index = rest[0].rpartition('_')
            if len(rest) == 2 and base in ('bn', 'insnorm') and index.isdigit():
                state_dict[prefix + f'streams.{index}.{rest[1]}'] = \
                    state_dict.pop(old)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return (f'{self.num_features}, num_streams={self.num_streams}, '
                f'threshold={self.threshold}, exchange={self.exchange}, '
                f'exchange_mode={self.exchange_mode!r}, '
                f'exchange_portion={self.exchange_portion}, '
                f'exchange_scope={self.exchange_scope!r}, '
                f'sparsity={self.sparsity!r}')


@MODELS.register_module('ExchangeBN')
class ExchangeBN(ExchangeNorm):
    """Exchanging batch norm: a private ``nn.BatchNorm2d`` per stream.

    In training mode each stream is normalised with its own batch statistics.
    See :class:`ExchangeNorm` for the arguments.
    """

    _abbr_ = 'bn'

    def _fusable(self, x: Tensor) -> bool:
        # Plain BatchNorm2d children with one mode; SyncBN and odd mixes take
        # the generic per-stream path.
        norms = self.streams
        return (all(type(n) is nn.BatchNorm2d for n in norms)
                and len({(n.training, n.eps, n.momentum) for n in norms}) == 1)

    def _fused_forward(self, x: Tensor) -> Tensor:
        norms = list(self.streams)
        ref = norms[0]
        batch_stats = ref.training or not ref.track_running_stats
        factor = 0.0
        if ref.training and ref.track_running_stats:
            for norm in norms:
                norm.num_batches_tracked.add_(1)
            factor = ref.momentum
            if factor is None:  # cumulative moving average
                factor = 1.0 / float(ref.num_batches_tracked)
        if self.exchange:
            cols, mix = self._mixing(x.dtype)
        else:
            cols, mix = x.new_zeros(0, dtype=torch.long), x.new_zeros(0)
        return _FoldedBatchNorm.apply(
            x.contiguous(), self.gamma,
            torch.stack([norm.bias for norm in norms]), norms, batch_stats,
            factor, mix, cols)

    def _build_norm(self, num_features, eps, momentum, track_running_stats):
        return nn.BatchNorm2d(num_features, eps=eps, momentum=momentum,
                              track_running_stats=track_running_stats)


@MODELS.register_module('ExchangeIN')
class ExchangeIN(ExchangeNorm):
    """Exchanging instance norm: a private affine ``nn.InstanceNorm2d`` with
    running statistics per stream (the image-translation setting).

    See :class:`ExchangeNorm` for the arguments; ``threshold`` defaults to
    the translation setting's 1e-2.
    """

    _abbr_ = 'in'

    def __init__(self, num_features: int, threshold: float = 1e-2,
                 **kwargs) -> None:
        super().__init__(num_features, threshold=threshold, **kwargs)

    def _build_norm(self, num_features, eps, momentum, track_running_stats):
        return nn.InstanceNorm2d(num_features, eps=eps, momentum=momentum,
                                 affine=True,
                                 track_running_stats=track_running_stats)


def exchange_norms(model: nn.Module) -> List[Tuple[str, ExchangeNorm]]:
    """List ``(name, layer)`` for every exchanging norm inside ``model``."""
    return [(name, mod) for name, mod in model.named_modules()
            if isinstance(mod, ExchangeNorm)]
