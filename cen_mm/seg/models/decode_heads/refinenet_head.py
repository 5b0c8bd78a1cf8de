# Copyright (c) cen_mm contributors. All rights reserved.
from typing import Sequence, Tuple

import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from .multi_stream_head import MultiStreamDecodeHead

__all__ = ['ResidualConvUnit', 'ChainedResidualPool', 'CENRefineNetHead']

RCU_RESIDUALS = ('relu', 'identity')


def conv3x3(in_channels: int, out_channels: int, bias: bool = False):
    """3x3 convolution, stride 1, padding 1."""
    return nn.Conv2d(
        in_channels, out_channels, 3, stride=1, padding=1, bias=bias)


class ResidualConvUnit(nn.Module):
    """A chain of RefineNet residual conv units (RCU).

    Each block computes ``F(relu(x)) + residual`` with
    ``F = conv3x3 -> relu -> conv3x3``; the first conv of a block has a bias,
    the second has none.

    Args:
        channels (int): Number of channels.
        num_blocks (int): Number of chained blocks.
        residual (str): ``'relu'`` adds ``relu(x)``, which is what the
            official CEN code computes (its in-place ReLU overwrites the
            residual); ``'identity'`` adds ``x`` as in the RefineNet paper.
            Default: ``'relu'``.
    """

    def __init__(self,
                 channels: int,
                 num_blocks: int,
                 residual: str = 'relu') -> None:
        super().__init__()
        if residual not in RCU_RESIDUALS:
            raise ValueError(f'residual must be one of {RCU_RESIDUALS}, got '
                             f'{residual!r}')
        self.residual = residual
        self.blocks = nn.ModuleList(
            nn.ModuleList([
                conv3x3(channels, channels, bias=True),
                conv3x3(channels, channels)
            ]) for _ in range(num_blocks))

    def forward(self, x: Tensor) -> Tensor:
        for conv1, conv2 in self.blocks:
            r = F.relu(x)
            out = conv2(F.relu(conv1(r)))
            x = out + (r if self.residual == 'relu' else x)
        return x

    def extra_repr(self) -> str:
        return f'residual={self.residual!r}'


class ChainedResidualPool(nn.Module):
    """RefineNet chained residual pooling (CRP).

    ``top = x``; per stage ``top = conv3x3(maxpool5x5(top))`` and
    ``x = x + top`` (stride-1 pooling, convs without bias).

    Args:
        channels (int): Number of channels.
        num_stages (int): Number of pool-conv stages. Default: 4.
    """

    def __init__(self, channels: int, num_stages: int = 4) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(5, stride=1, padding=2)
        self.convs = nn.ModuleList(
            conv3x3(channels, channels) for _ in range(num_stages))

    def forward(self, x: Tensor) -> Tensor:
        top = x
        for conv in self.convs:
            top = conv(self.pool(top))
            x = x + top
        return x


@MODELS.register_module()
class CENRefineNetHead(MultiStreamDecodeHead):
    """Multi-stream RefineNet decoder of CEN, with a learned ensemble.

    The full (not light-weight) RefineNet of `RefineNet
    <https://arxiv.org/abs/1611.06612>`_ as used by the official CEN code:
    4 refinement stages, from the deepest feature (stride 32) to the
    shallowest (stride 4), built from 3x3 convs only, with no normalisation.
    Every conv is shared by the streams, which travel stream-folded. Stage i
    (0 = deepest):

    .. code:: text

        x = dimred(dropout(l))          # dropout on the 2 deepest inputs
        x = adapt(x)                    # RCU, 2 blocks
        x = relu(x)                                    (stage 0)
        x = relu(adapt_out(x) + up(previous stage))    (stages 1-3)
        x = fuse(crp(x))                # CRP, 4 stages; RCU, 3 blocks
        x = out_conv(x), upsampled to the next skip     (stages 0-2)
        logits = conv_seg(dropout(x))   # 3x3 conv with bias  (stage 3)

    Upsampling inside the decoder is bilinear with ``align_corners=True``;
    the logits are at the resolution of the shallowest feature (stride 4).
    Module names map to the official checkpoint keys (``i`` = 1 + stage,
    ``j`` = 4 - stage) as: ``dimreds.s`` = ``p_ims1d2_outl{i}_dimred``,
    ``adapts.s`` = ``adapt_stage{i}_b``, ``adapt_outs.s-1`` =
    ``adapt_stage{i}_b2_joint_varout_dimred``, ``crps.s`` =
    ``mflow_conv_g{i}_pool``, ``fuses.s`` = ``mflow_conv_g{i}_b``,
    ``out_convs.s`` = ``mflow_conv_g{i}_b3_joint_varout_dimred``, and
    ``conv_seg`` = ``clf_conv``.

    Args:
        in_channels (Sequence[int]): Channels of the 4 input levels, from
            the shallowest; e.g. ``(256, 512, 1024, 2048)`` for ResNet-50+.
        channels (int): Width of stages 1-3. Default: 256.
        top_channels (int): Width of stage 0 (deepest). Default: 512.
        in_index (Sequence[int]): Indices of the 4 levels in the backbone
            outputs. Default: ``(0, 1, 2, 3)``.
        rcu_residual (str): RCU residual, ``'relu'`` (official parity,
            ``F(relu(x)) + relu(x)``) or ``'identity'`` (the RefineNet paper,
            ``F(relu(x)) + x``). Default: ``'relu'``.
        feat_dropout_ratio (float): Dropout on the two deepest inputs.
            Default: 0.5.
        dropout_ratio (float): Dropout before the classifier. Default: 0.5.
        num_adapt_blocks (int): RCU blocks after each dimred. Default: 2.
        num_fuse_blocks (int): RCU blocks after each CRP. Default: 3.
        num_crp_stages (int): CRP stages. Default: 4.
        init_cfg (dict, optional): Initialisation config. Default: None,
            i.e. PyTorch's default init, as in the official code.
        **kwargs: Arguments of :class:`MultiStreamDecodeHead` and
            :class:`BaseDecodeHead` (``num_classes``, ``num_streams``,
            ``stream_names``, ``ensemble``, ``loss_decode``, ...).
    """

    def __init__(self,
                 in_channels: Sequence[int] = (256, 512, 1024, 2048),
                 channels: int = 256,
                 top_channels: int = 512,
                 in_index: Sequence[int] = (0, 1, 2, 3),
                 rcu_residual: str = 'relu',
                 feat_dropout_ratio: float = 0.5,
                 dropout_ratio: float = 0.5,
                 num_adapt_blocks: int = 2,
                 num_fuse_blocks: int = 3,
                 num_crp_stages: int = 4,
                 init_cfg=None,
                 **kwargs) -> None:
        if len(in_channels) != 4 or len(in_index) != 4:
            raise ValueError(
                'CENRefineNetHead: in_channels and in_index must list the 4 '
                f'backbone levels, got in_channels={in_channels!r}, '
                f'in_index={in_index!r}')
        kwargs.setdefault('input_transform', 'multiple_select')
        if kwargs['input_transform'] != 'multiple_select':
            raise ValueError('CENRefineNetHead: input_transform must be '
                             "'multiple_select' (4 feature levels)")
        super().__init__(
            in_channels=list(in_channels),
            channels=channels,
            in_index=list(in_index),
            dropout_ratio=dropout_ratio,
            init_cfg=init_cfg,
            **kwargs)
        self.top_channels = top_channels
        self.rcu_residual = rcu_residual
        # Stage s works on level 3 - s (deepest first).
        widths = [top_channels, channels, channels, channels]
        self.dimreds = nn.ModuleList(
            conv3x3(self.in_channels[3 - s], widths[s]) for s in range(4))
        self.adapts = nn.ModuleList(
            ResidualConvUnit(w, num_adapt_blocks, rcu_residual)
            for w in widths)
        self.adapt_outs = nn.ModuleList(
            conv3x3(w, w) for w in widths[1:])
        self.crps = nn.ModuleList(
            ChainedResidualPool(w, num_crp_stages) for w in widths)
        self.fuses = nn.ModuleList(
            ResidualConvUnit(w, num_fuse_blocks, rcu_residual)
            for w in widths)
        self.out_convs = nn.ModuleList(
            conv3x3(widths[s], widths[s + 1]) for s in range(3))
        self.feat_dropout = nn.Dropout(feat_dropout_ratio) \
            if feat_dropout_ratio > 0 else nn.Identity()
        # Official: element-wise dropout and a 3x3 classifier with bias.
        self.dropout = nn.Dropout(dropout_ratio) \
            if dropout_ratio > 0 else None
        self.conv_seg = conv3x3(channels, self.out_channels, bias=True)

    def forward_streams(self, inputs: Tuple[Tensor]) -> Tensor:
        """Decode the stream-folded features of every stream.

        Args:
            inputs (tuple[Tensor]): Stream-folded features of the 4 levels
                (selected by ``in_index``), shallowest first.

        Returns:
            Tensor: Stream-folded logits ``(M * N, K, h, w)`` at the
            resolution of the shallowest level.
        """
        feats = self._transform_inputs(inputs)
        x = None
        for s in range(4):
            level = feats[3 - s]
            if s < 2:
                level = self.feat_dropout(level)
            y = self.adapts[s](self.dimreds[s](level))
            if s == 0:
                y = F.relu(y)
            else:
                y = F.relu(self.adapt_outs[s - 1](y) + x)
            y = self.fuses[s](self.crps[s](y))
            if s < 3:
                x = F.interpolate(
                    self.out_convs[s](y),
                    size=feats[2 - s].shape[2:],
                    mode='bilinear',
                    align_corners=True)
        return self.cls_seg(y)

    def extra_repr(self) -> str:
        return (super().extra_repr() +
                f', rcu_residual={self.rcu_residual!r}')
