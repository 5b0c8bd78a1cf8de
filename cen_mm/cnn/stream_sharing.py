# Copyright (c) cen_mm contributors. All rights reserved.
"""Which parameters the streams share (the Table-1 "Convs" / "BNs" columns).

CEN shares every convolution and keeps a private norm per stream. The
ablations need the two other combinations: private convolutions (one set of
weights per stream, exchange still possible between them) and norms shared by
the streams (one norm over the whole stream-folded batch).
"""
import copy
from typing import Dict

import torch
import torch.nn as nn
from mmengine.registry import MODELS
from torch import Tensor

from .exchange_norm import ExchangeNorm
from .streams import check_folded

__all__ = ['StreamParallel', 'unshare_convs', 'share_norms']


@MODELS.register_module()
class StreamParallel(nn.Module):
    """M private copies of a layer, copy m applied to stream m's block of a
    stream-folded batch ``(M * N, ...)``.

    The copies are independently re-initialised (``reset_parameters``), so a
    network built without pretrained weights does not start with M identical
    copies. A single-stream state dict (e.g. ImageNet weights) is copied into
    every stream on load.

    Args:
        layer (nn.Module): The layer to duplicate (becomes copy 0).
        num_streams (int): Number of streams M (>= 2).
    """

    def __init__(self, layer: nn.Module, num_streams: int) -> None:
        super().__init__()
        if int(num_streams) != num_streams or num_streams < 2:
            raise ValueError('StreamParallel: num_streams must be an integer '
                             f'>= 2, got {num_streams!r}')
        copies = [layer]
        for _ in range(1, num_streams):
            twin = copy.deepcopy(layer)
            if hasattr(twin, 'reset_parameters'):
                twin.reset_parameters()
            copies.append(twin)
        self.num_streams = int(num_streams)
        self.streams = nn.ModuleList(copies)

    def forward(self, x: Tensor) -> Tensor:
        check_folded(x, self.num_streams, type(self).__name__)
        return torch.cat([
            layer(chunk)
            for layer, chunk in zip(self.streams, x.chunk(self.num_streams))
        ])

    def _load_from_state_dict(self, state_dict: Dict, prefix: str, *args,
                              **kwargs) -> None:
        for key in [k for k in state_dict if k.startswith(prefix)]:
            rest = key[len(prefix):]
            if not rest.startswith('streams.'):
                value = state_dict.pop(key)
                for m in range(self.num_streams):
                    state_dict[f'{prefix}streams.{m}.{rest}'] = value
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f'num_streams={self.num_streams}'


def unshare_convs(module: nn.Module, num_streams: int) -> nn.Module:
    """Give every stream its own copy of each convolution of ``module``.

    Each ``nn.Conv2d`` becomes a :class:`StreamParallel`; exchanging norms
    are already private per stream. Any other layer with parameters (a
    linear layer, a shared norm, attention ...) cannot be told which stream
    a sample belongs to, so it is an error.

    Args:
        module (nn.Module): A stream-folded network (e.g. a CEN backbone),
            modified in place.
        num_streams (int): Number of streams M.

    Returns:
        nn.Module: ``module``.

    Raises:
        ValueError: If ``module`` holds a parametrised layer that is neither
            a ``nn.Conv2d`` nor inside an exchanging norm.
    """
    convs, private = [], set()
    for name, mod in module.named_modules():
        if isinstance(mod, (ExchangeNorm, StreamParallel)):
            private.update(id(m) for m in mod.modules())
        elif isinstance(mod, nn.Conv2d):
            convs.append(name)
        elif id(mod) not in private and any(
                True for _ in mod.parameters(recurse=False)):
            raise ValueError(
                f'unshared convs: {type(module).__name__} cannot be '
                f'duplicated per stream: its layer {name!r} '
                f'({type(mod).__name__}) has parameters but is neither a '
                'Conv2d nor a per-stream (exchanging) norm')
    if not convs:
        raise ValueError(f'unshared convs: {type(module).__name__} has no '
                         'Conv2d to duplicate')
    for name in convs:
        parent, _, child = name.rpartition('.')
        owner = module.get_submodule(parent) if parent else module
        setattr(owner, child,
                StreamParallel(getattr(owner, child), num_streams))
    return module


def share_norms(module: nn.Module) -> nn.Module:
    """Replace every exchanging norm of ``module`` by one plain norm shared
    by the streams (its stream-0 norm), normalising the whole folded batch.

    Args:
        module (nn.Module): A stream-folded network, modified in place.

    Returns:
        nn.Module: ``module``.

    Raises:
        ValueError: If a norm exchanges channels or carries the L1 penalty,
            both of which need a private γ per stream.
    """
    names = [name for name, mod in module.named_modules()
             if isinstance(mod, ExchangeNorm)]
    for name in names:
        parent, _, child = name.rpartition('.')
        owner = module.get_submodule(parent) if parent else module
        norm = getattr(owner, child)
        if norm.exchange or norm.sparsity != 'none':
            raise ValueError(
                f'shared norms: {name!r} has exchange_mode='
                f'{norm.exchange_mode!r} and sparsity={norm.sparsity!r}; '
                'exchanging channels and the L1 on γ need a private norm per '
                "stream (set exchange_mode='none' and sparsity='none')")
        setattr(owner, child, norm.streams[0])
    return module
