# Copyright (c) cen_mm contributors. All rights reserved.
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ['get_sample_value', 'to_chw_tensor']


def get_sample_value(sample: dict, key: str) -> Any:
    """Look ``key`` up in a data-sample dict or in its ``output`` field.

    Models store predictions either on the data sample itself (mmagic's
    Pix2Pix: ``fake_{domain}``) or under ``output`` (mmagic's edit models:
    ``output.pred_img``); both are accepted.

    Raises:
        KeyError: Naming the key and the available keys.
    """
    if key in sample:
        return sample[key]
    output = sample.get('output')
    if isinstance(output, dict) and key in output:
        return output[key]
    available = sorted(sample)
    if isinstance(output, dict):
        available += [f'output.{k}' for k in sorted(output)]
    raise KeyError(f'Key "{key}" not found in the data sample; available: '
                   f'{available}')


def to_chw_tensor(value: Any, key: str) -> Tensor:
    """Convert a stored image to a float CHW tensor with 3 channels.

    Tensors are taken as CHW (mmagic's layout), numpy arrays as HWC or HW
    (image-file layout); single-channel images are replicated.
    """
    if isinstance(value, np.ndarray):
        if value.ndim == 2:
            value = value[..., None]
        if value.ndim != 3:
            raise ValueError(f'"{key}": expected an HxWxC array, got shape '
                             f'{value.shape}')
        value = torch.from_numpy(np.ascontiguousarray(value.transpose(2, 0,
                                                                      1)))
    if not isinstance(value, Tensor):
        raise TypeError(f'"{key}": expected a Tensor or ndarray image, got '
                        f'{type(value).__name__}')
    if value.ndim == 4 and value.shape[0] == 1:
        value = value[0]
    if value.ndim != 3 or value.shape[0] not in (1, 3):
        raise ValueError(f'"{key}": expected a (3, H, W) or (1, H, W) image, '
                         f'got shape {tuple(value.shape)}')
    if value.shape[0] == 1:
        value = value.expand(3, -1, -1)
    return value.detach().float().cpu()
