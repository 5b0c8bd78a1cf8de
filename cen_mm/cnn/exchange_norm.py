# Copyright (c) cen_mm contributors. All rights reserved.
"""Exchanging normalisation layers, the heart of CEN.

Wang et al., "Channel Exchanging Networks for Multimodal and Multitask Dense
Image Prediction", TPAMI 2023, Eq. 3-4.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor

from .row_kernel import (MAX_STREAMS, frozen_stream_rows, input_stream_rows,
                         row_kernel, threshold_sources)
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


def _repeat_per_sample(t: Optional[Tensor], n: int) -> Optional[Tensor]:
    """``(M, C) -> (M * N * C,)``: a per-stream vector for every sample."""
    return None if t is None else t[:, None].expand(-1, n, -1).reshape(-1)


def _reshaped(t: Tensor, shape: torch.Size) -> Tensor:
    """``t`` (fresh, contiguous, not saved by anyone) in ``shape``, as a
    tensor autograd does not treat as a view.

    A view would make every in-place op after the norm (ReLU(inplace=True),
    the residual ``+=``) record a ``CopySlices`` whose backward zero-fills
    and copies the full tensor twice. ``aten::_unsafe_view`` is the op torch
    itself uses for such results (matmul, reshape of fresh tensors); where a
    torch build lacks it, a copy is the safe fallback.
    """
    if t.shape == shape:
        return t
    if _UNSAFE_VIEW is None:
        return t.reshape(shape).clone()
    return _UNSAFE_VIEW(t, shape)


_UNSAFE_VIEW = getattr(getattr(torch.ops.aten, '_unsafe_view', None),
                       'default', None)


def _same_key(cached: Optional[tuple], key: tuple) -> bool:
    """Whether a cache key still matches: tensors by identity (the cache
    holds them, so their ids cannot be reused), anything else by ``==``."""
    return cached is not None and len(cached) == len(key) and all(
        a is b if isinstance(a, Tensor) else a == b
        for a, b in zip(cached, key))


class _RepeatStreams(torch.autograd.Function):
    """M per-stream ``(C,)`` tensors -> ``(M * N * C,)``, each repeated over
    its stream's N samples, as ONE autograd node (instead of stack + index +
    expand + reshape; the per-layer overhead matters on small maps)."""

    @staticmethod
    def forward(ctx, n, *tensors):
        ctx.n = n
        return _repeat_per_sample(torch.stack(tensors), n)

    @staticmethod
    def backward(ctx, grad):
        streams = len(ctx.needs_input_grad) - 1
        return None, *grad.view(streams, ctx.n, -1).sum(dim=1).unbind(0)


def _sample_channel_norm(x: Tensor, num_streams: int,
                         weight: Sequence[Tensor], bias: Sequence[Tensor],
                         stats: Optional[Sequence[Tensor]],
                         use_input_stats: bool, momentum: float,
                         eps: float) -> Tensor:
    """Normalise every (sample, channel) of a folded batch in ONE
    ``F.batch_norm`` call, with per-stream affine parameters.

    The contiguous ``(M * N, C, ...)`` batch is viewed as ``(1, M*N*C, L)``,
    i.e. every (sample, channel) pair becomes a batch-norm channel, and each
    stream's ``(C,)`` vectors are repeated over its N samples. With
    ``use_input_stats`` this is instance norm (what ``torch.instance_norm``
    does internally); with running statistics it is any per-stream frozen
    norm, a per-channel affine map. One fused native pass forward and
    backward, public API only.

    Args:
        x (Tensor): Stream-folded input ``(M * N, C, ...)``.
        weight, bias (Sequence[Tensor]): Each stream's γ and β, ``(C,)``.
        stats (Sequence[Tensor], optional): Running mean and variance per
            (sample, channel), ``(M * N * C,)`` each (see
            :func:`_repeat_per_sample`); updated in place when
            ``use_input_stats``.

    Returns:
        Tensor: A fresh ``(1, M*N*C, L)`` tensor (not a view, so in-place
        ops on it need no ``CopySlices``); view it as ``x.shape``.
    """
    n = x.size(0) // num_streams
    return F.batch_norm(
        x.reshape(1, x.size(0) * x.size(1), -1),
        *(stats if stats is not None else (None, None)),
        _RepeatStreams.apply(n, *weight), _RepeatStreams.apply(n, *bias),
        use_input_stats, momentum, eps)


def _moved_rows(shape: Tuple[int, ...], cols: Tensor,
                weights: Tensor) -> Optional[Tuple[Tensor, Tensor]]:
    """For a mixing where every output takes exactly one stream (one-hot
    rows: swaps and copies, e.g. every M = 2 threshold exchange), the rows
    of the ``(M * N * C, L)`` view that move: ``(dst, src)`` with
    ``out[dst] = y[src]``. None for any other mixing."""
    if not bool(((weights == 0) | (weights == 1)).all()) or not bool(
            (weights.sum(dim=-1) == 1).all()):
        return None
    m, n, c, _ = shape
    src = weights.argmax(dim=-1).t()  # (M_out, K): source stream
    streams = torch.arange(m, device=cols.device)[:, None]
    moved = (src != streams)[:, None, :].expand(m, n, -1)
    base = torch.arange(n, device=cols.device)[None, :, None] * c + cols
    dst = (streams[:, :, None] * (n * c) + base)[moved]
    return dst, (src[:, None, :] * (n * c) + base)[moved]


def _source_streams(shape: Tuple[int, int], device: torch.device,
                    mixing: Tuple[Tensor, ...]) -> Optional[Tensor]:
    """The source stream of every output (stream, channel) of a one-source
    ``mixing`` (``(cols, weights)`` of ``_mixing()``, or ``()``: none),
    ``(M, C)`` int64, -1 where zeroed; None if an output mixes streams."""
    m, c = shape
    src = torch.arange(m, device=device)[:, None].repeat(1, c)
    if not mixing or not mixing[0].numel():
        return src
    cols, weights = mixing
    if not bool(((weights == 0) | (weights == 1)).all()) or bool(
            (weights.sum(dim=-1) > 1).any()):
        return None
    taken = torch.where(weights.sum(dim=-1) == 0, -1, weights.argmax(dim=-1))
    src[:, cols] = taken.t()
    return src


class _ExchangeChannels(torch.autograd.Function):
    """In-place mix of the K channels ``cols`` of a fresh normalised batch.

    ``y[o, :, k] <- Σ_m w[k, o, m] y[m, :, k]`` on the ``(M, N, C, L)`` view.
    One-hot mixings (swaps and copies) are row copies of the
    ``(M * N * C, L)`` view; others are computed by :func:`_mix`. Unlike the
    autograd of ``index_copy_`` (which zero-fills and scatter-adds full-size
    gradients), the backward touches the K channels plus one copy of the
    incoming gradient: batch norm is channel-separable, so un-mixing the
    gradient of those K channels is the whole backward.
    """

    @staticmethod
    def forward(ctx, y, shape, cols, weights, rows):
        # `y` is contiguous and not a view; `shape` is its (M, N, C, L);
        # `rows` is `_moved_rows(shape, cols, weights)`.
        view = y.view(shape)
        if rows is None:
            view.index_copy_(2, cols,
                             _mix(weights, view.index_select(2, cols)))
        else:
            flat = y.view(-1, shape[-1])
            flat.index_copy_(0, rows[0], flat.index_select(0, rows[1]))
        ctx.mark_dirty(y)
        ctx.shape, ctx.rows = shape, rows
        ctx.save_for_backward(cols, weights)
        return y

    @staticmethod
    def backward(ctx, grad):
        cols, weights = ctx.saved_tensors
        grad = grad.contiguous()
        if ctx.rows is not None:
            # A row that took another stream's value gets nothing back; its
            # source collects the row's gradient.
            dst, src = ctx.rows
            flat = grad.view(-1, ctx.shape[-1])
            out = flat.index_fill(0, dst, 0)
            return out.index_add_(0, src, flat.index_select(0, dst)).view(
                grad.shape), None, None, None, None
        view = grad.view(ctx.shape)
        unmixed = _mix(weights, view.index_select(2, cols), transpose=True)
        # Never modify `grad` in place: a residual add hands the same tensor
        # to both of its inputs.
        return view.index_copy(2, cols, unmixed).view(grad.shape), None, \
            None, None, None


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

    Attributes:
        fused (bool): Use the fused kernels when the streams allow it
            (stock norm children in one mode). False forces
            :meth:`reference_forward`, the readable per-stream path the fused
            one is tested against. Default: True.
        cpu_kernel (bool): On the CPU (float32/64), with a one-source
            exchange and frozen statistics (or batch statistics in
            ``ExchangeBN``), run norm + exchange as C row kernels
            (:mod:`cen_mm.cnn.row_kernel`) instead of torch's kernels.
            Default: True.
    """

    _abbr_ = 'norm'
    # Derived, never saved: see `_mixing`, `_moved_rows`, `_frozen_stats`,
    # `_source_streams`.
    _mixing_cache = _rows_cache = _frozen_cache = None
    _source_cache = None

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
        self.fused = True
        self.cpu_kernel = True
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

    def _replaced(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """Which (stream, channel) outputs are replaced, ``(M, C)``: a bool
        tensor, except for ``'random'`` in eval mode, where it is the
        replacement probability (of ``dtype``) of each candidate channel."""
        mode = self.exchange_mode
        if mode in ('threshold', 'discard'):
            with torch.no_grad():
                replaced = self.gamma.abs() < self.threshold
            if self.exchange_scope == 'own':
                replaced &= self.parts
            return replaced
        if mode == 'fixed':
            return self.fixed_exchange
        if mode == 'random' and self.training:
            if self._random_exchange is None:
                self._random_exchange = self._draw_portion()
            return self._random_exchange
        if mode == 'random':
            count = self.candidates.sum(dim=1, keepdim=True).to(dtype)
            return self.candidates.to(dtype) * (self.portion_size / count)
        return torch.zeros_like(self.parts)

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
        return self._replaced() != 0

    def exchanged_fraction(self) -> Tensor:
        """Tensor: Fraction of channels each stream takes from others (or
        zeroes), shape ``(M,)``; the expected fraction for ``'random'`` in
        eval mode."""
        return self._replaced().float().mean(dim=1)

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
        if self.fused and self._fusable():
            return self._fused_forward(x.contiguous())
        return self.reference_forward(x)

    def _fused_forward(self, x: Tensor) -> Tensor:
        """Fused kernels: the CPU row kernels where they apply, else the
        subclass's ``_fused_norm`` + the exchange."""
        if (self.cpu_kernel and x.is_cpu and x.numel()
                and x.dtype in (torch.float32, torch.float64)
                and self.num_streams <= MAX_STREAMS
                and row_kernel() is not None):
            norms = list(self.streams)
            src = self._source_streams(norms)
            if src is not None:
                out = self._row_kernel_forward(x, src, norms)
                if out is not None:
                    return out
        shape = (self.num_streams, x.size(0) // self.num_streams, x.size(1),
                 x[0, 0].numel())
        out = self._fused_norm(x)
        if self.exchange:
            mixing = self._mixing(out.dtype)
            if mixing[0].numel():
                out = _ExchangeChannels.apply(out, shape, *mixing,
                                              self._moved_rows(shape, mixing))
        return _reshaped(out, x.shape)

    def _row_kernel_forward(self, x: Tensor, src: Tensor,
                            norms: List[nn.Module]) -> Optional[Tensor]:
        """Norm + exchange by the CPU row kernels (``norms``: the streams'
        norm layers), or None where they do not apply: frozen statistics here
        (the subclasses add input statistics)."""
        return self._frozen_rows(x, src, norms) if self._frozen() else None

    def _frozen_rows(self, x: Tensor, src: Tensor,
                     norms: List[nn.Module]) -> Tensor:
        return frozen_stream_rows(x, src, [n.weight for n in norms],
                                  [n.bias for n in norms],
                                  [n.running_mean for n in norms],
                                  [n.running_var for n in norms], norms[0].eps)

    def _frozen(self) -> bool:
        """Whether the streams normalise with their running statistics,
        i.e. are affine maps (as ``nn.InstanceNorm2d`` decides)."""
        ref = self._first_norm
        return not ref.training and ref.track_running_stats

    def _builtin_rule(self) -> bool:
        """Whether the exchange set is the built-in rule's, i.e. neither
        ``_replaced`` nor ``_mixing`` (the seam of new exchange modes) is
        overridden by a subclass or on the instance."""
        cls = type(self)
        return (cls._replaced is ExchangeNorm._replaced
                and cls._mixing is ExchangeNorm._mixing
                and '_replaced' not in self.__dict__
                and '_mixing' not in self.__dict__)

    @property
    def _first_norm(self) -> nn.Module:
        # Iterating is several times cheaper than ModuleList indexing, which
        # counts for a layer called on 8 x 8 maps.
        return next(iter(self.streams))

    def _source_streams(self, norms: List[nn.Module]) -> Optional[Tensor]:
        """The stream each output (stream, channel) reads, ``(M, C)`` int64
        (-1: zeroed), for one-source exchanges; None where an output mixes
        several streams. The threshold rule's is one C call per forward (γ
        moves every step); the others' are kept while ``_mixing()`` returns
        the same mixing. ``norms``: the streams' norm layers. Call
        :func:`row_kernel` first."""
        mode = self.exchange_mode
        if (self.exchange and mode in ('threshold', 'discard')
                and self._builtin_rule()):
            return threshold_sources(
                [n.weight for n in norms], self.threshold, mode == 'discard',
                self.parts if self.exchange_scope == 'own' else None)
        mixing = self._mixing(torch.float32) if self.exchange else ()
        key = (self.parts, *mixing)
        cached = self._source_cache
        if not _same_key(cached and cached[0], key):
            cached = self._source_cache = (
                key, _source_streams(self.parts.shape, self.parts.device,
                                     mixing))
        return cached[1]

    def _moved_rows(self, shape: Tuple[int, int, int, int],
                    mixing: Tuple[Tensor, Tensor]
                    ) -> Optional[Tuple[Tensor, Tensor]]:
        """:func:`_moved_rows` of ``mixing``, kept while ``_mixing()``
        returns the same mixing (it caches it) for the same batch shape."""
        key = (*mixing, *shape[:3])
        cached = self._rows_cache
        if not _same_key(cached and cached[0], key):
            cached = self._rows_cache = (key, _moved_rows(shape, *mixing))
        return cached[1]

    def reference_forward(self, x: Tensor) -> Tensor:
        """The readable definition the fused path is tested against: each
        stream's own norm module on its chunk, concatenated, then the
        exchange through plain autograd ops."""
        out = torch.cat([
            norm(chunk)
            for norm, chunk in zip(self.streams, x.chunk(self.num_streams))
        ])
        if self.exchange:
            out = self._exchange(out)
        return out

    def _fusable(self) -> bool:
        """Whether the fused kernels apply: stock norm children (not SyncBN)
        that agree on mode and hyper-parameters."""
        norms = self.streams
        return (all(type(n) is self._stream_type for n in norms) and len(
            {(n.training, n.eps, n.momentum, n.track_running_stats)
             for n in norms}) == 1)

    def _fused_norm(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _frozen_stats(self, batch: int) -> Tuple[Tensor, Tensor]:
        """The running mean and variance of every stream, repeated per
        sample, ``(M * N * C,)``; rebuilt only when a running statistic
        changed or was replaced (they are constant while frozen)."""
        tensors = [t for n in self.streams
                   for t in (n.running_mean, n.running_var)]
        key = (batch, *tensors, *(t._version for t in tensors))
        cached = self._frozen_cache
        if not _same_key(cached and cached[0], key):
            n = batch // self.num_streams
            with torch.no_grad():
                stats = tuple(
                    _repeat_per_sample(torch.stack(tensors[i::2]), n)
                    for i in (0, 1))
            cached = self._frozen_cache = (key, stats)
        return cached[1]

    def _stacked(self, key: str) -> Optional[Tensor]:
        """Stack one tensor attribute of the per-stream norms, ``(M, C)``."""
        tensors = [getattr(norm, key) for norm in self.streams]
        return None if tensors[0] is None else torch.stack(tensors)

    def _mixing(self, dtype: torch.dtype) -> Tuple[Tensor, Tensor]:
        """The touched channels and their ``(K, M_out, M_in)`` mixing
        matrices: row o is the identity for a kept stream, the mean of the
        others for a replaced one (zero with ``'discard'``), and their blend
        ``(1 - r) · own + r · others`` for a replace rate r. The entries of a
        hard exchange are exact (0, 1, 1/2, ...), so M = 2 is an exact
        swap."""
        replaced = self._replaced(dtype)
        cached = self._mixing_cache
        # The set changes rarely (γ crossing θ); rebuilding it is a dozen
        # small ops per layer and call.
        key = (dtype, self.exchange_mode, replaced.dtype, replaced.device)
        if cached is not None and cached[1] == key and torch.equal(
                cached[0], replaced):
            return cached[2]
        mixing = self._build_mixing(replaced, dtype)
        self._mixing_cache = (replaced.clone(), key, mixing)
        return mixing

    def _build_mixing(self, replaced: Tensor,
                      dtype: torch.dtype) -> Tuple[Tensor, Tensor]:
        cols = replaced.any(dim=0).nonzero().flatten()
        m = self.num_streams
        if not cols.numel():
            return cols, torch.zeros(0, m, m, dtype=dtype,
                                     device=cols.device)
        eye = torch.eye(m, dtype=dtype, device=cols.device)
        target = torch.zeros_like(eye) if self.exchange_mode == 'discard' \
            else (1 - eye) / (m - 1)
        rate = replaced[:, cols].t().to(dtype)[:, :, None]  # (K, M_out, 1)
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

    _stream_type = nn.BatchNorm2d

    def _fused_norm(self, x: Tensor) -> Tensor:
        ref = self._first_norm
        if ref.training or not ref.track_running_stats:
            # Batch statistics: the streams' own kernels on contiguous
            # chunks (running statistics, momentum=None, counters as torch).
            return torch.cat([
                norm(chunk) for norm, chunk in zip(self.streams,
                                                   x.chunk(self.num_streams))
            ])
        # Frozen statistics: one per-(stream, channel) affine pass.
        return _sample_channel_norm(x, self.num_streams,
                                    [n.weight for n in self.streams],
                                    [n.bias for n in self.streams],
                                    self._frozen_stats(x.size(0)), False,
                                    0.0, ref.eps)

    def _frozen(self) -> bool:
        # As nn.BatchNorm2d decides: eval mode with running statistics.
        ref = self._first_norm
        return not ref.training and ref.running_mean is not None

    def _row_kernel_forward(self, x: Tensor, src: Tensor,
                            norms: List[nn.Module]) -> Optional[Tensor]:
        if self._frozen():
            return self._frozen_rows(x, src, norms)
        count = x.numel() // (x.size(1) * self.num_streams)  # N * H * W
        if count < 2:
            return None  # torch's kernels raise torch's error
        ref = norms[0]
        out, mean, var = input_stream_rows(x, src, ref.eps,
                                           [n.weight for n in norms],
                                           [n.bias for n in norms])
        if ref.training and ref.track_running_stats:
            # As nn.BatchNorm2d: the unbiased variance; momentum None is a
            # cumulative average.
            with torch.no_grad():
                for norm, mu, v in zip(norms, mean,
                                       var * (count / (count - 1))):
                    factor = norm.momentum or 0.0
                    if norm.num_batches_tracked is not None:
                        norm.num_batches_tracked.add_(1)
                        if norm.momentum is None:
                            factor = 1.0 / float(norm.num_batches_tracked)
                    norm.running_mean.lerp_(mu.to(norm.running_mean), factor)
                    norm.running_var.lerp_(v.to(norm.running_var), factor)
        return out

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

    _stream_type = nn.InstanceNorm2d

    def _fused_norm(self, x: Tensor) -> Tensor:
        ref = self._first_norm
        weight = [n.weight for n in self.streams]
        bias = [n.bias for n in self.streams]
        if not ref.track_running_stats:
            return _sample_channel_norm(x, self.num_streams, weight, bias,
                                        None, True, 0.0, ref.eps)
        if not ref.training:
            return _sample_channel_norm(x, self.num_streams, weight, bias,
                                        self._frozen_stats(x.size(0)), False,
                                        0.0, ref.eps)
        # Input statistics: the running statistics, repeated per sample
        # (own copies: batch_norm updates them in place and saves them for
        # backward), are averaged over the samples afterwards, as
        # nn.InstanceNorm2d does.
        n = x.size(0) // self.num_streams
        stats = [_repeat_per_sample(self._stacked(key), n).clone()
                 for key in ('running_mean', 'running_var')]
        out = _sample_channel_norm(x, self.num_streams, weight, bias, stats,
                                   True, ref.momentum or 0.0, ref.eps)
        with torch.no_grad():
            for key, per_sample in zip(('running_mean', 'running_var'),
                                       stats):
                for norm, value in zip(
                        self.streams,
                        per_sample.view(self.num_streams, n, -1).mean(1)):
                    getattr(norm, key).copy_(value)
        return out

    def _row_kernel_forward(self, x: Tensor, src: Tensor,
                            norms: List[nn.Module]) -> Optional[Tensor]:
        if self._frozen():
            return self._frozen_rows(x, src, norms)
        count = x.numel() // (x.size(0) * x.size(1))  # H * W
        if count < 2:
            return None  # torch's kernels raise torch's error
        ref = norms[0]
        out, mean, var = input_stream_rows(x, src, ref.eps,
                                           [n.weight for n in norms],
                                           [n.bias for n in norms],
                                           per_sample=True)
        if ref.training and ref.track_running_stats:
            # As nn.InstanceNorm2d: the samples' mean of the per-sample
            # statistics (unbiased variance); momentum None counts as 0.
            factor = ref.momentum or 0.0
            with torch.no_grad():
                for norm, mu, v in zip(norms, mean.mean(dim=1),
                                       var.mean(dim=1) * (count /
                                                          (count - 1))):
                    norm.running_mean.lerp_(mu.to(norm.running_mean), factor)
                    norm.running_var.lerp_(v.to(norm.running_var), factor)
        return out

    def _build_norm(self, num_features, eps, momentum, track_running_stats):
        return nn.InstanceNorm2d(num_features, eps=eps, momentum=momentum,
                                 affine=True,
                                 track_running_stats=track_running_stats)


def exchange_norms(model: nn.Module) -> List[Tuple[str, ExchangeNorm]]:
    """List ``(name, layer)`` for every exchanging norm inside ``model``."""
    return [(name, mod) for name, mod in model.named_modules()
            if isinstance(mod, ExchangeNorm)]
