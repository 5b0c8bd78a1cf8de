# Copyright (c) cen_mm contributors. All rights reserved.
"""The L1 penalty on the exchanging norms' scales γ as a loss term."""
import torch
import torch.nn as nn
from mmengine.model import is_model_wrapper
from torch import Tensor

from cen_mm.cnn import exchange_norms

__all__ = ['sparsity_loss', 'unwrap_model']


def unwrap_model(model: nn.Module) -> nn.Module:
    """Return the wrapped module of a DDP-style wrapper, else ``model``.

    Covers every wrapper registered in mmengine's ``MODEL_WRAPPERS``
    (``DistributedDataParallel``, ``MMDistributedDataParallel``,
    ``MMSeparateDistributedDataParallel`` used by mmagic, ...), which all
    keep the model in ``.module``.
    """
    while is_model_wrapper(model):
        model = model.module
    return model


def sparsity_loss(model: nn.Module) -> Tensor:
    """Σ over every exchanging norm of ``layer.sparsity_penalty()``.

    This is the loss-term form of the CEN slimming penalty (the official
    code adds ``λ · Σ |γ_masked|`` to the loss); multiply by λ and add it to
    the loss, e.g. as ``losses['loss_slim']``. Its gradient is
    ``sign(γ)`` on the penalised entries and 0 elsewhere, so with plain SGD
    it equals what :class:`GammaSparsityHook` adds to ``γ.grad``.

    Args:
        model (nn.Module): The model, possibly inside a DDP wrapper.

    Returns:
        Tensor: A scalar; a zero tensor (on the model's device) when the
        model holds no exchanging norm.
    """
    layers = exchange_norms(unwrap_model(model))
    if not layers:
        param = next(model.parameters(), None)
        device = param.device if param is not None else None
        return torch.zeros((), device=device)
    return sum(layer.sparsity_penalty() for _, layer in layers)
