# Copyright (c) cen_mm contributors. All rights reserved.
"""CEN ResNet: one ResNet whose convs are shared by M stream-folded modalities.

Wang et al., "Channel Exchanging Networks for Multimodal and Multitask Dense
Image Prediction", TPAMI 2023, Sec. 3 and the segmentation appendix.
"""
from typing import Dict, Optional, Sequence

from mmcv.cnn import build_norm_layer
from mmseg.models.backbones.resnet import Bottleneck, ResNet
from mmseg.registry import MODELS

__all__ = ['CENBottleneck', 'CENResNet', 'CENResNetV1c']

EXCHANGE_NORMS = ('ExchangeBN', 'ExchangeIN')
_BOTTLENECK_SITES = ('norm1', 'norm2', 'norm3')


class CENBottleneck(Bottleneck):
    """mmseg ``Bottleneck`` whose norms at ``exchange_sites`` exchange.

    Every norm of the block is built from ``norm_cfg`` (an exchanging norm
    with ``exchange=False``, i.e. a private norm per stream); the norms named
    in ``exchange_sites`` are then rebuilt with ``exchange=True`` and
    ``exchange_cfg``. The default ``('norm2',)`` is the official placement:
    conv2 (3x3) -> norm2 -> exchange -> ReLU.

    Args:
        exchange_sites (Sequence[str]): Norm layers that exchange channels,
            a subset of ``('norm1', 'norm2', 'norm3')``.
            Default: ``('norm2',)``.
        exchange_cfg (dict, optional): Extra keys merged into ``norm_cfg``
            at the exchange sites (``threshold``, ``exchange_scope``,
            ``sparsity``). Default: None.
        **kwargs: Arguments of mmseg's ``Bottleneck``.
    """

    def __init__(self,
                 *args,
                 exchange_sites: Sequence[str] = ('norm2', ),
                 exchange_cfg: Optional[Dict] = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        exchange_cfg = dict(exchange_cfg or {})
        channels = dict(
            norm1=self.planes,
            norm2=self.planes,
            norm3=self.planes * self.expansion)
        for site in exchange_sites:
            if site not in _BOTTLENECK_SITES:
                raise ValueError(
                    f'CENBottleneck: exchange_sites entries must be in '
                    f'{_BOTTLENECK_SITES}, got {site!r}')
            cfg = {**self.norm_cfg, **exchange_cfg, 'exchange': True}
            name, norm = build_norm_layer(
                cfg, channels[site], postfix=int(site[-1]))
            # Replacing in place keeps the module order and the state-dict
            # names (bn1/bn2/bn3) of the stock block.
            self.add_module(name, norm)


@MODELS.register_module()
class CENResNet(ResNet):
    """ResNet backbone of CEN for M streams (mmseg ``ResNet`` subclass).

    The input is stream-folded, ``(M * N, in_channels, H, W)``:
    :class:`CENEncoderDecoder` folds the channel-stacked modalities into the
    batch (widening a modality with fewer channels, e.g. 1-channel depth, to
    ``in_channels``), so every convolution is shared by the streams. Each
    norm is an exchanging norm holding one private norm per stream; it
    exchanges channels only at ``exchange_sites`` of every bottleneck
    (official: the norm after the 3x3 conv, i.e. 16/33/50 sites for depth
    50/101/152). The 4 stage outputs stay stream-folded,
    ``(M * N, C_i, H_i, W_i)``.

    The official backbone is ``style='pytorch'`` with the 7x7 torchvision
    stem (``deep_stem=False``), trained with frozen BN statistics
    (``norm_eval=True``). Single-stream checkpoints, e.g.
    ``init_cfg=dict(type='Pretrained',
    checkpoint='torchvision://resnet101')``, fill every stream's norm with
    the same tensors.

    Args:
        depth (int): Depth of the ResNet, one of 50, 101, 152.
        num_streams (int): Number of streams M >= 2; filled in by
            :class:`CENEncoderDecoder`. Default: 2.
        in_channels (int): Channels of each stream after folding.
            Default: 3.
        norm_cfg (dict): Config of the norm used everywhere; its type must be
            an exchanging norm (``ExchangeBN`` / ``ExchangeIN``).
            ``num_streams`` defaults to M, ``exchange`` to False and
            ``sparsity`` to ``'none'`` (no L1 on non-exchanging norms).
            Default: ``dict(type='ExchangeBN', requires_grad=True)``.
        exchange_sites (Sequence[str]): Bottleneck norms that exchange.
            ``()`` disables exchanging (independent streams with shared
            convs). Default: ``('norm2',)``.
        exchange_cfg (dict): Keys merged into ``norm_cfg`` at the exchange
            sites. Default: ``dict(threshold=2e-2, exchange_scope='any',
            sparsity='own')`` (official).
        **kwargs: Other arguments of mmseg's ``ResNet`` (``style``,
            ``deep_stem``, ``strides``, ``dilations``, ``norm_eval``,
            ``init_cfg`` ...).
    """

    def __init__(self,
                 depth: int,
                 num_streams: int = 2,
                 in_channels: int = 3,
                 norm_cfg: Dict = dict(type='ExchangeBN', requires_grad=True),
                 exchange_sites: Sequence[str] = ('norm2', ),
                 exchange_cfg: Dict = dict(
                     threshold=2e-2, exchange_scope='any', sparsity='own'),
                 **kwargs) -> None:
        if depth not in self.arch_settings or \
                self.arch_settings[depth][0] is not Bottleneck:
            raise KeyError(f'CENResNet: depth must be one of 50, 101, 152 '
                           f'(bottleneck ResNets), got {depth!r}')
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(
                'CENResNet: in_channels must be the channel count of one '
                f'stream-folded stream (e.g. 3), got {in_channels!r}; the '
                'per-modality channels are declared once, as '
                'CENEncoderDecoder.stream_channels')
        if int(num_streams) != num_streams or num_streams < 2:
            raise ValueError('CENResNet: num_streams must be an integer >= 2, '
                             f'got {num_streams!r}')
        unknown = set(exchange_sites) - set(_BOTTLENECK_SITES)
        if unknown:
            raise ValueError(f'CENResNet: exchange_sites must be a subset of '
                             f'{_BOTTLENECK_SITES}, got {tuple(unknown)}')
        # Plain attributes read by ``make_res_layer`` during ResNet.__init__.
        self.num_streams = int(num_streams)
        self.exchange_sites = tuple(exchange_sites)
        self.exchange_cfg = dict(exchange_cfg or {})
        super().__init__(
            depth=depth,
            in_channels=in_channels,
            norm_cfg=self._stream_norm_cfg(norm_cfg, self.num_streams),
            **kwargs)

    @staticmethod
    def _stream_norm_cfg(norm_cfg: Dict, num_streams: int) -> Dict:
        """Check ``norm_cfg`` and fill the per-stream defaults."""
        cfg = dict(norm_cfg)
        if cfg.get('type') not in EXCHANGE_NORMS:
            raise ValueError(
                f'CENResNet: norm_cfg.type must be one of {EXCHANGE_NORMS} '
                f'(one private norm per stream), got {cfg.get("type")!r}. '
                'For synchronised statistics keep ExchangeBN and set '
                "`sync_bn='torch'` in the config.")
        cfg.setdefault('num_streams', num_streams)
        if cfg['num_streams'] != num_streams:
            raise ValueError(
                f'CENResNet: norm_cfg.num_streams={cfg["num_streams"]} does '
                f'not match the backbone num_streams={num_streams}')
        cfg.setdefault('exchange', False)
        cfg.setdefault('sparsity', 'none')
        return cfg

    def make_res_layer(self, **kwargs):
        """Pack the blocks of a stage, swapping in :class:`CENBottleneck`."""
        if kwargs['block'] is Bottleneck:
            kwargs.update(
                block=CENBottleneck,
                exchange_sites=self.exchange_sites,
                exchange_cfg=self.exchange_cfg)
        return super().make_res_layer(**kwargs)

    def train(self, mode: bool = True) -> 'CENResNet':
        """Set train mode (keeping norms frozen with ``norm_eval``).

        Unlike mmseg's ``ResNet.train``, returns ``self`` like
        ``nn.Module.train``, so ``model.eval()`` chains.
        """
        super().train(mode)
        return self


@MODELS.register_module()
class CENResNetV1c(CENResNet):
    """:class:`CENResNet` with mmseg's ResNetV1c deep stem (three 3x3 convs).

    Pair it with ``open-mmlab://resnet50_v1c``-style checkpoints.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(deep_stem=True, avg_down=False, **kwargs)
