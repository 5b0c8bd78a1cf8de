# Copyright (c) cen_mm contributors. All rights reserved.
import torch
import torch.nn as nn
from mmengine.registry import MODELS
from torch import Tensor

from .streams import unfold_streams

__all__ = ['StreamEnsemble']


@MODELS.register_module()
class StreamEnsemble(nn.Module):
    """Learned softmax ensemble of M stream outputs (paper Eq. 5).

    ``ens = sum_m softmax(alpha)_m * out_m``, with α a global M-vector
    initialised to ones. The official code ensembles *detached* stream
    outputs, so the ensemble loss trains α only (``detach=True``).

    Args:
        num_streams (int): Number of streams M.
        detach (bool): Ensemble detached stream outputs. Default: True.
    """

    def __init__(self, num_streams: int, detach: bool = True) -> None:
        super().__init__()
        if num_streams < 1:
            raise ValueError(f'num_streams must be >= 1, got {num_streams}')
        self.num_streams = num_streams
        self.detach = detach
        self.alpha = nn.Parameter(torch.ones(num_streams))

    @property
    def weights(self) -> Tensor:
        """Tensor: ``softmax(alpha)``, shape ``(M,)``."""
        return self.alpha.softmax(dim=0)

    def forward(self, x: Tensor) -> Tensor:
        """Combine stream-folded outputs ``(M * N, ...)`` into ``(N, ...)``."""
        streams = unfold_streams(x, self.num_streams)
        if self.detach:
            streams = streams.detach()
        return torch.tensordot(self.weights.to(streams.dtype), streams, 1)

    def extra_repr(self) -> str:
        return f'num_streams={self.num_streams}, detach={self.detach}'
