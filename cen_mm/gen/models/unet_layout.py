# Copyright (c) cen_mm contributors. All rights reserved.
"""The pix2pix U-Net layout shared by the CEN generators."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.logging import MMLogger
from mmengine.runner import load_checkpoint

from cen_mm.engine import safe_checkpoint_loading
from .weight_init import BIAS_INITS, NORM_INITS, init_norms_and_biases

__all__ = ['UnetLayout']


class UnetLayout(nn.Module):
    """Base of the CEN U-Net generators: pix2pix's U-Net layout, argument
    checks and initialisation, without any stream logic.

    Layers are numbered like the official code: encoder ``conv1 ..
    conv{num_down}`` (k4 s2 p1 convs with bias; ``conv1`` bare, the others
    LeakyReLU(0.2) -> conv -> norm), decoder ``deconv1 .. deconv{num_down}``
    (ReLU -> deconv -> norm; from ``deconv2`` on the input is ``cat(encoder
    skip, decoder)``). Channels after ``conv_k``: ``base_channels *
    min(2 ** (k - 1), 8)``. Subclasses decide where the norms live and how
    the streams flow; :class:`CENUnetGenerator` and
    :class:`CENMultiUnetGenerator` build their layers with
    :meth:`encoder_layer` / :meth:`decoder_layer`, so both have the same
    convs in the same order.

    Args:
        in_channels (int): Channels of one input image.
        out_channels (int): Channels of one output image.
        num_down (int): Number of downsamplings (>= 5).
        base_channels (int): Channels of ``conv1``.
        norm_init (str): ``'ones'`` or ``'uniform'`` (official) IN γ.
        bias_init (str): ``'zeros'`` or ``'pytorch'`` (official) conv
            biases.
        init_cfg (dict, optional): ``dict(type='normal', gain=0.02)``: conv
            and deconv weights ~ N(0, gain).
    """

    def __init__(self, in_channels: int, out_channels: int, num_down: int,
                 base_channels: int, norm_init: str, bias_init: str,
                 init_cfg: Optional[Dict]) -> None:
        super().__init__()
        name = type(self).__name__
        if num_down < 5:
            raise ValueError(f'{name}: num_down must be >= 5, got {num_down}')
        if norm_init not in NORM_INITS:
            raise ValueError(f'{name}: norm_init must be one of '
                             f'{NORM_INITS}, got {norm_init!r}')
        if bias_init not in BIAS_INITS:
            raise ValueError(f'{name}: bias_init must be one of '
                             f'{BIAS_INITS}, got {bias_init!r}')
        if init_cfg is not None and init_cfg.get('type', 'normal') != 'normal':
            raise ValueError(f"{name}: only init_cfg type 'normal' is "
                             f'supported, got {init_cfg!r}')
        self.num_down = num_down
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.norm_init = norm_init
        self.bias_init = bias_init
        self.init_gain = 0.02 if init_cfg is None else init_cfg.get(
            'gain', 0.02)
        self.channels: List[int] = [
            base_channels * min(2**k, 8) for k in range(num_down)
        ]

    def check_layers(self, layers: Optional[Sequence[int]],
                     allowed: Tuple[int, ...], arg: str) -> Tuple[int, ...]:
        """Sorted 1-based layer numbers, all in ``allowed`` (None: all)."""
        if layers is None:
            return allowed
        layers = tuple(sorted(set(int(k) for k in layers)))
        bad = [k for k in layers if k not in allowed]
        if bad:
            raise ValueError(
                f'{type(self).__name__}: {arg} {bad} are not valid; only '
                f'layers {allowed} (1-based) have an IN/dropout slot')
        return layers

    def encoder_layer(self, k: int,
                      norm_cfg: Optional[Dict] = None) -> ConvModule:
        """``conv{k}`` (1-based), with ``norm_cfg`` as its norm."""
        channels = self.channels
        return ConvModule(
            self.in_channels if k == 1 else channels[k - 2],
            channels[k - 1],
            kernel_size=4,
            stride=2,
            padding=1,
            bias=True,
            norm_cfg=norm_cfg,
            act_cfg=None if k == 1 else dict(
                type='LeakyReLU', negative_slope=0.2),
            inplace=False,
            order=('act', 'conv', 'norm'))

    def decoder_layer(self, k: int,
                      norm_cfg: Optional[Dict] = None) -> ConvModule:
        """``deconv{k}`` (1-based), with ``norm_cfg`` as its norm; its
        output meets encoder layer ``num_down - k``."""
        channels, skip = self.channels, self.num_down - k
        return ConvModule(
            channels[-1] if k == 1 else 2 * channels[skip],
            self.out_channels if k == self.num_down else channels[skip - 1],
            kernel_size=4,
            stride=2,
            padding=1,
            bias=True,
            conv_cfg=dict(type=nn.ConvTranspose2d),
            norm_cfg=norm_cfg,
            act_cfg=dict(type='ReLU'),
            inplace=False,
            order=('act', 'conv', 'norm'))

    def init_weights(self, pretrained: Optional[str] = None,
                     strict: bool = True) -> None:
        """Initialise the weights (mmagic's generator interface).

        Args:
            pretrained (str, optional): Checkpoint to load; None initialises
                conv/deconv weights ~ N(0, gain), IN γ by ``norm_init``,
                IN β = 0 and the biases by ``bias_init``.
            strict (bool): Strict checkpoint loading. Default: True.
        """
        if isinstance(pretrained, str):
            with safe_checkpoint_loading():
                load_checkpoint(self, pretrained, strict=strict,
                                logger=MMLogger.get_current_instance())
            return
        if pretrained is not None:
            raise TypeError("'pretrained' must be a str or None, but got "
                            f'{type(pretrained)}')
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(module.weight, 0.0, self.init_gain)
        init_norms_and_biases(self, self.norm_init, self.bias_init)
