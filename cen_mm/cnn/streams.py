# Copyright (c) cen_mm contributors. All rights reserved.
"""Helpers for the stream-folded batch layout ``(M * N, C, ...)``.

cen_mm carries M streams (modalities or tasks) as one batch tensor whose first
dimension is stream-major: rows ``[m * N, (m + 1) * N)`` belong to stream m.
Shared layers see a bigger batch; only stream-aware layers look at M.
"""
import math
from typing import Sequence

import torch
from torch import Tensor

__all__ = ['fold_channels', 'unfold_streams', 'check_folded']


def check_folded(x: Tensor, num_streams: int, name: str = 'input') -> int:
    """Check that ``x`` is stream-folded and return the per-stream batch N.

    Raises:
        ValueError: If the batch size is not divisible by ``num_streams``.
    """
    if x.dim() < 1 or x.size(0) % num_streams != 0:
        raise ValueError(
            f'{name}: a stream-folded batch (M*N, ...) with M={num_streams} '
            f'was expected, but the batch size {tuple(x.shape)[:1]} is not '
            f'divisible by {num_streams}')
    return x.size(0) // num_streams


def fold_channels(x: Tensor, stream_channels: Sequence[int]) -> Tensor:
    """Fold channel-stacked modalities ``(N, sum(C_m), ...)`` into the batch.

    Streams with fewer channels are widened to the least common multiple of
    all channel counts by repeating their channels (the paper's footnote;
    e.g. a 1-channel depth map becomes 3 identical channels next to RGB).

    Args:
        x (Tensor): Input of shape ``(N, sum(stream_channels), ...)``.
        stream_channels (Sequence[int]): Channels of each modality, in the
            order they are stacked.

    Returns:
        Tensor: Stream-folded tensor of shape ``(M * N, C, ...)`` with
        ``C = lcm(stream_channels)``.
    """
    stream_channels = tuple(int(c) for c in stream_channels)
    if x.size(1) != sum(stream_channels):
        raise ValueError(
            f'expected {sum(stream_channels)} stacked input channels '
            f'(modalities {stream_channels}), got {x.size(1)} channels in an '
            f'input of shape {tuple(x.shape)}')
    width = math.lcm(*stream_channels)
    streams = x.split(stream_channels, dim=1)
    if all(c == width for c in stream_channels):
        # (N, M, C, ...) -> (M, N, C, ...) -> (M*N, C, ...)
        n = x.size(0)
        return x.reshape(n, len(stream_channels), width,
                         *x.shape[2:]).transpose(0, 1).reshape(
                             -1, width, *x.shape[2:])
    return torch.cat([
        s.repeat(1, width // c, *([1] * (x.dim() - 2)))
        for s, c in zip(streams, stream_channels)
    ], dim=0)


def unfold_streams(x: Tensor, num_streams: int) -> Tensor:
    """View a stream-folded ``(M * N, ...)`` tensor as ``(M, N, ...)``."""
    n = check_folded(x, num_streams)
    return x.view(num_streams, n, *x.shape[1:])

