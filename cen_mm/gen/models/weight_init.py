# Copyright (c) cen_mm contributors. All rights reserved.
"""Initial values of norms and biases as the official CEN environment had."""
import math

import torch.nn as nn

__all__ = ['NORM_INITS', 'BIAS_INITS', 'init_norms_and_biases']

NORM_INITS = ('ones', 'uniform')
BIAS_INITS = ('zeros', 'pytorch')


def init_norms_and_biases(module: nn.Module,
                          norm_init: str = 'ones',
                          bias_init: str = 'zeros') -> None:
    """Re-draw the affine IN scales and the conv biases of ``module``.

    Args:
        module (nn.Module): Model whose ``nn.InstanceNorm2d`` (affine) and
            ``nn.Conv2d`` / ``nn.ConvTranspose2d`` layers are re-initialised.
        norm_init (str): ``'ones'``: γ = 1 (current PyTorch, and what mmcv /
            mmagic leave); ``'uniform'``: γ ~ U(0, 1), PyTorch 1.0's default
            and hence the official code's. β is set to 0 either way.
            Default: 'ones'.
        bias_init (str): ``'zeros'``: conv biases 0 (what mmcv's
            ``ConvModule`` and mmagic's ``generation_init_weights`` leave);
            ``'pytorch'``: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's
            default that the official code keeps (its init only draws the
            weights). Default: 'zeros'.
    """
    if norm_init not in NORM_INITS:
        raise ValueError(
            f'norm_init must be one of {NORM_INITS}, got {norm_init!r}')
    if bias_init not in BIAS_INITS:
        raise ValueError(
            f'bias_init must be one of {BIAS_INITS}, got {bias_init!r}')
    for m in module.modules():
        if isinstance(m, nn.InstanceNorm2d) and m.affine:
            if norm_init == 'uniform':
                nn.init.uniform_(m.weight)
            else:
                nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and \
                m.bias is not None:
            if bias_init == 'pytorch':
                fan_in, _ = nn.init._calculate_fan_in_and_fan_out(m.weight)
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                nn.init.uniform_(m.bias, -bound, bound)
            else:
                nn.init.zeros_(m.bias)
