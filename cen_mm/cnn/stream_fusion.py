# Copyright (c) cen_mm contributors. All rights reserved.
"""Fusion baselines of the CEN paper (Tables 2 and 4, appendix B) for
stream-folded features.

Every block maps stream-folded features ``(M * N, C, H, W)`` to the same
shape, so each stream keeps its own propagation after the fusion ("same
setting as ours": shared convs, private norms, all sub-networks kept). Stream
m's output is computed from ``[x_m, x_others...]`` (its own features first),
so a block's weights are shared by the streams while the outputs stay
stream-specific (``AlignFusion``'s branches are private per stream, as in its
paper). Blocks are attached after named sub-modules with forward
hooks (:func:`attach_stream_fusion`), so no network has to be edited.
"""
from typing import Dict, Iterable, List, Optional, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.registry import MODELS
from torch import Tensor

from .streams import unfold_streams

__all__ = [
    'StreamFusion', 'ConcatFusion', 'AverageFusion', 'SSMAFusion',
    'AlignFusion', 'multi_kernel_mmd', 'attach_stream_fusion',
    'fusion_loss', 'module_out_channels'
]


def _own_first(x: Tensor, num_streams: int) -> Tensor:
    """``(M*N, C, ...)`` -> ``(M*N, M*C, ...)`` where stream m's row holds
    ``cat(x_m, x_{m+1}, ..., x_{m-1})`` (own stream first, then the others in
    cyclic order)."""
    streams = unfold_streams(x, num_streams)
    return torch.cat([
        torch.cat(list(streams.roll(-m, dims=0)), dim=1)
        for m in range(num_streams)
    ])


class StreamFusion(nn.Module):
    """Base class of the fusion blocks on stream-folded features.

    Args:
        channels (int): Channels C of every stream's features.
        num_streams (int): Number of streams M. Default: 2.
    """

    #: Numbers of streams the block supports (None: any M >= 2).
    supported_streams: Optional[Sequence[int]] = None

    def __init__(self, channels: int, num_streams: int = 2) -> None:
        super().__init__()
        name = type(self).__name__
        if int(num_streams) != num_streams or num_streams < 2:
            raise ValueError(f'{name}: num_streams must be an integer >= 2, '
                             f'got {num_streams!r}')
        if self.supported_streams is not None and \
                num_streams not in self.supported_streams:
            raise ValueError(
                f'{name} fuses exactly {self.supported_streams} streams, got '
                f'num_streams={num_streams}')
        self.channels = int(channels)
        self.num_streams = int(num_streams)

    def aux_loss(self) -> Optional[Tensor]:
        """Tensor, optional: The block's loss from the latest training
        forward (None for the aggregation blocks)."""
        return None

    def extra_repr(self) -> str:
        return f'{self.channels}, num_streams={self.num_streams}'


@MODELS.register_module()
class ConcatFusion(StreamFusion):
    """Concatenation fusion: stack the streams' features along channels and
    reduce them back to C with a 1x1 conv (with bias), shared by the streams:
    ``out_m = conv1x1(cat(x_m, x_others))``."""

    def __init__(self, channels: int, num_streams: int = 2) -> None:
        super().__init__(channels, num_streams)
        self.conv = nn.Conv2d(num_streams * channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(_own_first(x, self.num_streams))


@MODELS.register_module()
class AverageFusion(StreamFusion):
    """Average fusion: every stream continues with the mean of all streams'
    features (parameter-free)."""

    def forward(self, x: Tensor) -> Tensor:
        mean = unfold_streams(x, self.num_streams).mean(dim=0)
        return mean.repeat(self.num_streams, *([1] * (x.dim() - 1)))


@MODELS.register_module()
class SSMAFusion(StreamFusion):
    """Self-supervised model adaptation (SSMA) block of AdapNet++ (Valada et
    al., IJCV 2019) for two streams.

    ``z = cat(x_own, x_other)``; ``g = sigmoid(conv3x3(relu(conv3x3(z))))``
    with a bottleneck of ``C / reduction`` channels (this matches the
    paper's Table 2 fusion parameter counts);
    ``out = norm(conv3x3(g * z))`` back to C channels. The weights are shared
    by the streams (each stream puts its own features first) and the norm is
    private per stream by default.

    Args:
        channels (int): Channels C of each stream.
        num_streams (int): Must be 2.
        reduction (int): Bottleneck reduction η. Default: 16.
        norm_cfg (dict, optional): Norm after the output conv;
            ``num_streams`` is filled in for exchanging norms. None: no norm
            (e.g. at a 1x1 innermost layer). Default: a private BN per stream
            (``ExchangeBN`` without exchange or L1).
    """

    supported_streams = (2, )

    def __init__(self,
                 channels: int,
                 num_streams: int = 2,
                 reduction: int = 16,
                 norm_cfg: Optional[Dict] = dict(
                     type='ExchangeBN', exchange=False, sparsity='none')
                 ) -> None:
        super().__init__(channels, num_streams)
        if int(reduction) != reduction or reduction < 1:
            raise ValueError('SSMAFusion: reduction must be a positive '
                             f'integer, got {reduction!r}')
        width = 2 * channels
        hidden = max(channels // reduction, 1)
        self.reduction = int(reduction)
        self.gate = nn.Sequential(
            nn.Conv2d(width, hidden, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, width, 3, padding=1), nn.Sigmoid())
        self.out_conv = nn.Conv2d(width, channels, 3, padding=1, bias=False)
        self.norm = nn.Identity()
        if norm_cfg is not None:
            norm_cfg = dict(norm_cfg)
            if norm_cfg.get('type') in ('ExchangeBN', 'ExchangeIN'):
                norm_cfg.setdefault('num_streams', num_streams)
            self.norm = build_norm_layer(norm_cfg, channels)[1]

    def forward(self, x: Tensor) -> Tensor:
        z = _own_first(x, self.num_streams)
        return self.norm(self.out_conv(self.gate(z) * z))


def multi_kernel_mmd(x: Tensor,
                     y: Tensor,
                     num_kernels: int = 11,
                     kernel_mul: float = 2.0) -> Tensor:
    """Squared maximum mean discrepancy with a sum of Gaussian kernels.

    ``MMD² = mean k(x, x') + mean k(y, y') - 2 mean k(x, y)`` (the biased
    V-statistic, >= 0 and exactly 0 for identical sets) with
    ``k = Σ_i exp(-|a - b|² / (σ² · kernel_mul^(i - num_kernels // 2)))``
    and σ² the mean pairwise squared distance of the pooled samples
    (detached), i.e. bandwidths spread geometrically around the data's scale
    (DAN / the ECCV 2016 alignment fusion use 11 kernels).

    Args:
        x (Tensor): Samples ``(P, D)``.
        y (Tensor): Samples ``(Q, D)``.
        num_kernels (int): Number of Gaussian kernels. Default: 11.
        kernel_mul (float): Ratio of neighbouring bandwidths. Default: 2.

    Returns:
        Tensor: A scalar.
    """
    if x.dim() != 2 or y.dim() != 2 or x.size(1) != y.size(1):
        raise ValueError('multi_kernel_mmd: expected samples (P, D) and '
                         f'(Q, D), got {tuple(x.shape)} and {tuple(y.shape)}')
    z = torch.cat([x, y])
    dist = torch.cdist(z, z).pow(2)
    n = z.size(0)
    scale = dist.detach().sum() / max(n * n - n, 1)
    scale = scale.clamp_min(torch.finfo(z.dtype).tiny)
    kernels = sum(
        torch.exp(-dist / (scale * kernel_mul**(i - num_kernels // 2)))
        for i in range(num_kernels))
    p = x.size(0)
    return (kernels[:p, :p].mean() + kernels[p:, p:].mean() -
            2 * kernels[:p, p:].mean())


@MODELS.register_module()
class AlignFusion(StreamFusion):
    """Alignment fusion with common and specific features (Wang et al., ECCV
    2016, re-implemented as in the CEN paper's appendix B).

    Each stream m splits its features into a common part
    ``c_m = conv1x1(x_m)`` and a specific part ``s_m = conv1x1(x_m)`` (both
    C -> C without bias, private per stream); a multiple-kernel MMD loss between every
    pair of streams' common features pulls them together, and each stream
    continues with
    ``out_m = conv1x1(cat(s_m, c_m, mean_{k != m} c_k))`` (3C -> C, private
    per stream): its own specific features plus the common features of all
    streams. With two streams this is ``10 C²`` parameters, exactly the
    paper's Table-2 fusion counts (2.6 / 10.5 / 41.9 / 55.7 M with R101).
    ``branches=False`` keeps only the loss: the features pass through
    unchanged and the MMD is taken between them (no parameters).

    Every spatial position of the aligned features (average-pooled to
    ``pool_size``) is one MMD sample of dimension C. The loss is computed
    and stored (read by :meth:`aux_loss`) only in training mode with
    gradients enabled.

    Args:
        channels (int): Channels C of each stream.
        num_streams (int): Number of streams M. Default: 2.
        branches (bool): Common/specific branches (True) or the MMD loss on
            the unchanged features only (False). Default: True.
        loss_weight (float): Weight of the MMD loss. Default: 1.0.
        num_kernels (int): Gaussian kernels of the MMD. Default: 11.
        pool_size (int): Features are average-pooled to at most
            ``pool_size x pool_size`` positions first. Default: 8.
    """

    def __init__(self,
                 channels: int,
                 num_streams: int = 2,
                 branches: bool = True,
                 loss_weight: float = 1.0,
                 num_kernels: int = 11,
                 pool_size: int = 8) -> None:
        super().__init__(channels, num_streams)
        self.branches = bool(branches)
        self.loss_weight = float(loss_weight)
        self.num_kernels = int(num_kernels)
        self.pool_size = int(pool_size)
        self._loss: Optional[Tensor] = None
        if self.branches:

            def convs(in_channels: int) -> nn.ModuleList:
                return nn.ModuleList(
                    nn.Conv2d(in_channels, self.channels, 1, bias=False)
                    for _ in range(self.num_streams))

            self.common = convs(self.channels)
            self.specific = convs(self.channels)
            self.combine = convs(3 * self.channels)

    def samples(self, x: Tensor) -> List[Tensor]:
        """Per stream, the pooled positions as samples ``(N * h * w, C)``."""
        h, w = x.shape[-2:]
        x = nn.functional.adaptive_avg_pool2d(
            x, (min(h, self.pool_size), min(w, self.pool_size)))
        return [
            s.flatten(2).transpose(1, 2).flatten(0, 1)
            for s in unfold_streams(x, self.num_streams)
        ]

    def forward(self, x: Tensor) -> Tensor:
        aligned = out = x
        if self.branches:
            streams = unfold_streams(x, self.num_streams)
            common = torch.stack(
                [conv(s) for conv, s in zip(self.common, streams)])
            others = (common.sum(0, keepdim=True) - common) / (
                self.num_streams - 1)
            out = torch.cat([
                combine(torch.cat([specific(s), c, o], dim=1))
                for combine, specific, s, c, o in zip(
                    self.combine, self.specific, streams, common, others)
            ])
            aligned = common.flatten(0, 1)
        # Only a training forward that can backpropagate needs the loss
        # (pix2pix also tests in train mode, under no_grad).
        if self.training and torch.is_grad_enabled():
            samples = self.samples(aligned)
            pairs = [(a, b) for a in range(self.num_streams)
                     for b in range(a + 1, self.num_streams)]
            self._loss = self.loss_weight * sum(
                multi_kernel_mmd(samples[a], samples[b], self.num_kernels)
                for a, b in pairs) / len(pairs)
        return out

    def aux_loss(self) -> Optional[Tensor]:
        loss, self._loss = self._loss, None
        return loss

    def extra_repr(self) -> str:
        return super().extra_repr() + f', branches={self.branches}'


def module_out_channels(module: nn.Module) -> int:
    """Channels of a sub-network's output: those of its last registered
    conv or norm layer (e.g. a ResNet stage's last ``bn3``).

    Raises:
        ValueError: If the module holds no conv or norm layer.
    """
    for mod in reversed(list(module.modules())):
        for attr in ('num_features', 'out_channels'):
            value = getattr(mod, attr, None)
            if isinstance(value, int):
                return value
    raise ValueError(f'cannot tell the output channels of '
                     f'{type(module).__name__}: it has no conv or norm layer')


def fusion_loss(blocks: Iterable[StreamFusion]) -> Optional[Tensor]:
    """Sum of the blocks' losses from their latest training forward (the
    align MMD; each read consumes it), or None if no block has one."""
    losses = [block.aux_loss() for block in blocks]
    losses = [loss for loss in losses if loss is not None]
    return sum(losses) if losses else None


def attach_stream_fusion(model: nn.Module, fusion: Dict,
                         positions: Sequence[str],
                         num_streams: int) -> nn.ModuleDict:
    """Build one fusion block per position and run it on the output of the
    sub-module of ``model`` at that position (a forward hook).

    Args:
        model (nn.Module): The stream-folded network (e.g. a CEN backbone).
        fusion (dict): Config of the block (``type`` and its arguments
            besides ``channels`` / ``num_streams``).
        positions (Sequence[str]): Names of sub-modules of ``model``
            (``model.get_submodule`` names, e.g. ``'layer2'``).
        num_streams (int): Number of streams M.

    Returns:
        nn.ModuleDict: The blocks, keyed by position (dots as ``'_'``); the
        caller owns them (registers them as a child) so they train and save.
    """
    blocks = nn.ModuleDict()
    if not positions:
        raise ValueError('attach_stream_fusion: no fusion position given')
    for position in positions:
        try:
            target = model.get_submodule(position)
        except AttributeError:
            raise ValueError(
                f'fusion position {position!r} is not a sub-module of '
                f'{type(model).__name__}') from None
        cfg = dict(fusion)
        cfg.setdefault('channels', module_out_channels(target))
        cfg['num_streams'] = num_streams
        block = MODELS.build(cfg)
        if not isinstance(block, StreamFusion):
            raise TypeError(f'fusion type {cfg["type"]!r} is not a '
                            'StreamFusion block')
        target.register_forward_hook(_FusionHook(block))
        blocks[position.replace('.', '_')] = block
    return blocks


class _FusionHook:
    """Forward hook replacing a sub-module's output by the fusion block's."""

    def __init__(self, block: StreamFusion) -> None:
        self.block = block

    def __call__(self, module: nn.Module, inputs, output: Tensor) -> Tensor:
        return self.block(output)
