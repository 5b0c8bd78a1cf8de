# Copyright (c) cen_mm contributors. All rights reserved.
"""CEN U-Net generator: a pix2pix U-Net whose convolutions are shared by M
input streams, with private (exchanging) instance norms per stream."""
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from mmagic.registry import MODELS
from torch import Tensor

from cen_mm.cnn import StreamEnsemble, check_folded
from .unet_layout import UnetLayout

__all__ = ['CENUnetGenerator']

DECODER_NORMS = ('stream', 'shared')
# A plain affine IN with running statistics, as the official code uses it.
_PLAIN_IN = dict(type='IN', affine=True, track_running_stats=True)


@MODELS.register_module()
class CENUnetGenerator(UnetLayout):
    """U-Net generator of CEN for multimodal image translation.

    The layout is pix2pix's U-Net (``num_down = 8`` is U-Net-256) written with
    explicit encoder and decoder lists, numbered like the official code:

    - encoder ``conv1 .. conv{num_down}``: ``conv1`` is a bare conv; ``conv2``
      to ``conv{num_down - 1}`` are LeakyReLU(0.2) -> conv -> IN; the
      innermost ``conv{num_down}`` is LeakyReLU -> conv without a norm (its
      output is 1x1 at 256 px). All convs are k4 s2 p1 with bias.
    - decoder ``deconv1 .. deconv{num_down}``: ReLU -> deconv -> IN
      (-> Dropout(0.5) at ``dropout_layers``); ``deconv{num_down}`` is
      ReLU -> deconv -> tanh. From ``deconv2`` on, the input is
      ``cat(encoder skip, decoder)`` in mmagic's channel order.

    M streams travel as one stream-folded batch ``(M * N, C, H, W)``: every
    conv/deconv is a stock layer shared by all streams, and each encoder IN
    is an :class:`~cen_mm.cnn.ExchangeIN` holding a private affine IN (own
    γ, β and running statistics) per stream; at ``exchange_layers`` channels
    whose |γ| is below θ are replaced by the other streams' (paper Eq. 4),
    and the skip connections carry the exchanged features (as official).
    The M tanh outputs are combined by a learned softmax ensemble α over the
    detached outputs (:class:`~cen_mm.cnn.StreamEnsemble`).

    With ``num_streams=1`` every norm is a plain affine IN with running
    statistics and the network is mmagic's ``UnetGenerator`` with
    ``norm_cfg=dict(type='IN', affine=True, track_running_stats=True)``
    (same layers in the same parameter order; the ensemble is the identity).

    Official-code parity and paper options:

    - ``exchange_layers``: the official code exchanges at conv2..conv7 (the
      encoder INs in the forward pass); this is the default.
    - ``penalised_layers``: the official code L1-penalises the IN γ of "all 8"
      encoder blocks, but conv1 and conv8 have no IN in the forward pass, so
      their γ are unused parameters whose penalty changes no output. We
      represent "all 8" as all encoder INs that exist (the default, conv2 to
      conv7); the layers not listed get ``sparsity='none'``.
    - ``decoder_norm='stream'`` (official: per-stream IN in the decoder, no
      exchange, no L1) or ``'shared'`` (the paper's text: decoder INs are
      shared by all streams).
    - ``dropout_layers``: official CEN (and the original pix2pix) drop out
      after deconv1..3; mmagic's ``UnetGenerator`` uses deconv2..4.
    - ``norm_init='uniform'`` draws IN γ from U(0, 1) like PyTorch 1.0 (the
      official environment); ``'ones'`` is current PyTorch's default.
    - ``bias_init='pytorch'`` draws the conv/deconv biases like PyTorch's
      default (the official code keeps them); ``'zeros'`` is what mmcv's
      ``ConvModule`` init leaves.

    Args:
        in_channels (int): Channels of one stream's input image. Default: 3.
        out_channels (int): Channels of the output image. Default: 3.
        num_streams (int): Number of input streams M. Default: 2.
        num_down (int): Number of downsamplings (>= 5); 8 turns a 256x256
            image into 1x1 at the bottleneck. Default: 8.
        base_channels (int): Channels of ``conv1``. Default: 64.
        norm_cfg (dict): Config of the encoder norms for M >= 2, an
            ``ExchangeIN`` config (``threshold``, ``exchange_scope``,
            ``sparsity`` ...); ``num_streams`` and ``exchange`` are set per
            layer. Ignored for M = 1. Default: ExchangeIN with θ = 1e-2,
            ``exchange_scope='any'`` and ``sparsity='own'`` (official).
        exchange_layers (Sequence[int], optional): 1-based encoder layers
            that exchange; each must have an IN (2 .. num_down - 1). None
            means all of them. Default: None.
        penalised_layers (Sequence[int], optional): Encoder layers whose γ
            the L1 sparsity acts on (same rule). None means all encoder INs.
            Default: None.
        decoder_norm (str): ``'stream'`` or ``'shared'``. Default: 'stream'.
        dropout_layers (Sequence[int]): 1-based decoder layers followed by
            Dropout(0.5). Default: (1, 2, 3).
        ensemble_detach (bool): Ensemble detached stream outputs, so the
            ensemble loss trains α only. Default: True.
        norm_init (str): ``'ones'`` or ``'uniform'`` initial IN γ.
            Default: 'ones'.
        bias_init (str): ``'zeros'`` or ``'pytorch'`` (official) initial
            conv/deconv biases. Default: 'zeros'.
        init_cfg (dict, optional): ``dict(type='normal', gain=0.02)``: conv
            and deconv weights ~ N(0, gain). Default: normal with gain 0.02.
    """

    def __init__(self,
                 in_channels: int = 3,
                 out_channels: int = 3,
                 num_streams: int = 2,
                 num_down: int = 8,
                 base_channels: int = 64,
                 norm_cfg: Optional[Dict] = None,
                 exchange_layers: Optional[Sequence[int]] = None,
                 penalised_layers: Optional[Sequence[int]] = None,
                 decoder_norm: str = 'stream',
                 dropout_layers: Sequence[int] = (1, 2, 3),
                 ensemble_detach: bool = True,
                 norm_init: str = 'ones',
                 bias_init: str = 'zeros',
                 init_cfg: Optional[Dict] = dict(type='normal', gain=0.02)
                 ) -> None:
        super().__init__(in_channels, out_channels, num_down, base_channels,
                         norm_init, bias_init, init_cfg)
        name = type(self).__name__
        if int(num_streams) != num_streams or num_streams < 1:
            raise ValueError(f'{name}: num_streams must be an integer >= 1, '
                             f'got {num_streams!r}')
        if decoder_norm not in DECODER_NORMS:
            raise ValueError(f'{name}: decoder_norm must be one of '
                             f'{DECODER_NORMS}, got {decoder_norm!r}')
        self.num_streams = int(num_streams)
        self.decoder_norm = decoder_norm
        normed = tuple(range(2, num_down))
        self.exchange_layers = self.check_layers(exchange_layers, normed,
                                                 'exchange_layers')
        self.penalised_layers = self.check_layers(penalised_layers, normed,
                                                  'penalised_layers')
        self.dropout_layers = self.check_layers(
            dropout_layers, tuple(range(1, num_down)), 'dropout_layers')
        if norm_cfg is None:
            norm_cfg = dict(type='ExchangeIN', threshold=1e-2,
                            exchange_scope='any', sparsity='own')
        self.norm_cfg = dict(norm_cfg)

        layers = range(1, num_down + 1)
        self.encoder = nn.ModuleList(
            self.encoder_layer(k, self._encoder_norm_cfg(k)) for k in layers)
        self.decoder = nn.ModuleList(
            self.decoder_layer(
                k, None if k == num_down else self._decoder_norm_cfg())
            for k in layers)
        self.dropouts = nn.ModuleList(
            nn.Dropout(0.5) if k in self.dropout_layers else nn.Identity()
            for k in layers)
        self.ensemble = StreamEnsemble(self.num_streams,
                                       detach=ensemble_detach)

    def _encoder_norm_cfg(self, k: int) -> Optional[Dict]:
        if not 2 <= k < self.num_down:
            return None  # bare conv1 and innermost conv, as pix2pix
        if self.num_streams == 1:
            return dict(_PLAIN_IN)
        cfg = dict(self.norm_cfg)
        cfg['num_streams'] = self.num_streams
        cfg['exchange'] = k in self.exchange_layers
        if k not in self.penalised_layers:
            cfg['sparsity'] = 'none'
        return cfg

    def _decoder_norm_cfg(self) -> Dict:
        if self.num_streams == 1 or self.decoder_norm == 'shared':
            return dict(_PLAIN_IN)
        return dict(type='ExchangeIN', num_streams=self.num_streams,
                    exchange=False, sparsity='none')

    def forward(self, x: Tensor) -> Tensor:
        """Translate M stream-folded inputs.

        Args:
            x (Tensor): Stream-folded inputs ``(M * N, in_channels, H, W)``,
                stream-major; H and W divisible by ``2 ** num_down``.

        Returns:
            Tensor: ``((M + 1) * N, out_channels, H, W)``: the M stream
            outputs (tanh, stream-major) followed by their ensemble.
        """
        name = type(self).__name__
        check_folded(x, self.num_streams, name)
        size = 2**self.num_down
        if (x.dim() != 4 or x.size(1) != self.in_channels
                or x.size(2) % size or x.size(3) % size):
            raise ValueError(
                f'{name}: expected input (M*N, {self.in_channels}, H, W) with '
                f'H and W divisible by 2**num_down = {size}, got '
                f'{tuple(x.shape)}')
        skips = []
        for conv in self.encoder:
            x = conv(x)
            skips.append(x)
        x = skips.pop()
        for k, (deconv, dropout) in enumerate(zip(self.decoder,
                                                  self.dropouts)):
            if k > 0:
                x = torch.cat([skips.pop(), x], dim=1)
            x = dropout(deconv(x))
        x = torch.tanh(x)
        return torch.cat([x, self.ensemble(x)])
