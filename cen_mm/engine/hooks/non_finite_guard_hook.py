# Copyright (c) cen_mm contributors. All rights reserved.
import math
from typing import Optional, Sequence

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from cen_mm.cnn import exchange_norms
from ..sparsity import unwrap_model

__all__ = ['NonFiniteGuardHook', 'NonFiniteError']


class NonFiniteError(FloatingPointError):
    """A training loss or a norm scale γ became NaN or infinite."""


@HOOKS.register_module()
class NonFiniteGuardHook(Hook):
    """Stop training at the first non-finite loss or γ.

    After every training iteration, and before any other hook (the
    checkpoint hook in particular) sees it, every loss the model returned
    and every γ of the exchanging norms are checked. A NaN or infinite
    value raises :class:`NonFiniteError` naming the iteration and what went
    non-finite, so a diverging run neither saves its NaN weights (as
    ``best_*`` or as the latest checkpoint) nor rotates the good
    checkpoints away.

    ``tools/train.py`` adds this hook to every config that lacks it.

    Args:
        check_gamma (bool): Also check the γ of the exchanging norms.
            Default: True.
        keys (Sequence[str], optional): Names of the ``outputs`` entries to
            check; None checks every numeric entry (``loss`` and each
            ``loss_*`` of ``parse_losses``). Default: None.
    """
    priority = 'VERY_HIGH'

    def __init__(self,
                 check_gamma: bool = True,
                 keys: Optional[Sequence[str]] = None) -> None:
        self.check_gamma = check_gamma
        self.keys = None if keys is None else tuple(keys)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        """Raise :class:`NonFiniteError` on a non-finite loss or γ."""
        problems = []
        for name, value in (outputs or {}).items():
            if self.keys is not None and name not in self.keys:
                continue
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                value = float(value.detach())
            if isinstance(value, float) and not math.isfinite(value):
                problems.append(f'{name} = {value}')
        if self.check_gamma:
            for name, layer in exchange_norms(unwrap_model(runner.model)):
                gamma = layer.gamma.detach()
                bad = ~torch.isfinite(gamma)
                if bad.any():
                    problems.append(
                        f'γ of {name} ({int(bad.sum())} of {gamma.numel()} '
                        'values non-finite)')
        if problems:
            raise NonFiniteError(
                f'Training stopped at iteration {runner.iter + 1} (epoch '
                f'{runner.epoch + 1}) before saving anything: '
                f'{"; ".join(problems[:10])}. The checkpoints already on '
                'disk are from before this iteration. Lower the learning '
                'rate, enable gradient clipping, or check the data.')
