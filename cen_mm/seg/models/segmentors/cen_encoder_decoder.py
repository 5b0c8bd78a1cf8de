# Copyright (c) cen_mm contributors. All rights reserved.
import inspect
import math
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.config import ConfigDict
from mmengine.logging import print_log
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import ConfigType, OptConfigType, OptSampleList, SampleList
from torch import Tensor

from cen_mm.cnn import (attach_stream_fusion, check_folded, exchange_norms,
                        fold_channels, fusion_loss)
from cen_mm.cnn import share_norms as share_norms_
from cen_mm.cnn import unshare_convs
from cen_mm.engine.sparsity import sparsity_loss
from ..decode_heads.multi_stream_head import multi_stream_head

__all__ = ['CENEncoderDecoder']

EXCHANGE_NORMS = ('ExchangeBN', 'ExchangeIN')
GAMMA_INIT_MODES = ('reinit', 'error', 'warn')
# Fusion positions of the paper's ResNet baselines (after stage 2 / 3 / 4,
# or after every stage), as mmseg ResNet sub-module names.
RESNET_FUSION_POSITIONS = dict(
    early=('layer2', ), middle=('layer3', ), late=('layer4', ),
    all=('layer1', 'layer2', 'layer3', 'layer4'))


def _blocks_to_channels(x: Tensor, blocks: int) -> Tensor:
    """``(B * N, K, ...)`` batch blocks -> ``(N, B * K, ...)``."""
    n = check_folded(x, blocks)
    return x.view(blocks, n, *x.shape[1:]).transpose(0, 1).reshape(
        n, -1, *x.shape[2:])


def _channels_to_blocks(x: Tensor, blocks: int) -> Tensor:
    """``(N, B * K, ...)`` -> ``(B * N, K, ...)`` batch blocks."""
    n = x.size(0)
    return x.view(n, blocks, -1, *x.shape[2:]).transpose(0, 1).reshape(
        blocks * n, -1, *x.shape[2:])


@MODELS.register_module()
class CENEncoderDecoder(EncoderDecoder):
    """Encoder-decoder segmentor for M streams with an ensemble prediction.

    The model is where the streams are declared, once: ``stream_names``
    (and from them M) and ``stream_channels`` are handed to the data
    preprocessor, the backbone and every head, and a conflicting value
    there is an error at build time. The hooks, metrics and visualisers of
    cen_mm read the names from the model or from its predictions.

    Data flow (the stream-folded layout of ``cen_mm.cnn.streams``):

    .. code:: text

        inputs (N, sum(stream_channels), H, W)     channel-stacked modalities
          -> extract_feat: fold_channels            the one folding place
          -> backbone / neck (M*N, C, h, w)         shared convs, per-stream
                                                    (exchanging) norms
          -> decode_head ((M+1)*N, K, h, w)         M stream blocks + ensemble
          -> mmseg predict_by_feat / whole or slide inference (blocks kept)
          -> postprocess_result                     split once

    Any mmseg decode head and auxiliary head works: a stock head class is
    turned into its multi-stream version by :func:`multi_stream_head`
    (shared convs, private norms, learned ensemble), so a stock mmseg
    config becomes a CEN by switching a few keys.

    Predictions store, per data sample, ``seg_logits`` / ``pred_sem_seg``
    (the ensemble, so mmseg's ``IoUMetric``, TTA and visualisers work
    unchanged), ``seg_logits_{name}`` / ``pred_sem_seg_{name}`` for stream
    ``name``, and the metainfo ``stream_names``.

    γ initialisation: exchanging norms whose scales start below the
    threshold θ (e.g. mmseg ResNet's ``zero_init_residual`` zeroes every
    ``bn3``) would exchange those channels from the first step. After
    ``init_weights`` the model checks every exchanging norm
    (``gamma_init``):

    - ``'reinit'`` (default): a stream whose γ are *all* below θ in a layer
      (a constant init, never a trained state) is re-initialised to γ = 1
      with a warning; scattered channels below θ (pretrained weights, as in
      the official code) are reported only;
    - ``'error'``: any γ below θ raises ``ValueError``;
    - ``'warn'``: report only.

    Args:
        backbone (dict): Backbone config. It receives stream-folded inputs;
            an exchanging ``norm_cfg`` gets ``num_streams`` filled in, as
            does a backbone with a ``num_streams`` argument (CENResNet).
        decode_head (dict): Decode head config: any mmseg decode head or a
            :class:`MultiStreamDecodeHead`; it gets ``num_streams`` and
            ``stream_names``.
        stream_names (Sequence[str]): One unique name per stream.
            Default: ``('rgb', 'depth')``.
        num_streams (int, optional): Number of streams; must equal
            ``len(stream_names)`` if given. Default: None.
        stream_channels (Sequence[int], optional): Channels of each stacked
            modality. Default: None, i.e. the data preprocessor's
            ``stream_channels`` if it has them, else ``(3,) * M``.
        slim_loss_weight (float): If > 0, add
            ``loss_slim = weight * sum(|γ|)`` over the penalised scales of
            every exchanging norm (official parity: 3 * 2e-4 = 6e-4). The
            default 0 leaves the L1 term to ``GammaSparsityHook``.
        gamma_init (str): ``'reinit'``, ``'error'`` or ``'warn'``, see
            above. Default: ``'reinit'``.
        share_convs (bool): The backbone's convolutions are shared by the
            streams (CEN). False gives every stream its own copy
            (:func:`cen_mm.cnn.unshare_convs`; Table 1 "unshared convs");
            exchange still works between the copies. Default: True.
        share_norms (bool): Replace every exchanging norm of the model by
            one norm shared by the streams (Table 1 "shared BNs"; needs
            ``exchange_mode='none'`` and ``sparsity='none'``).
            Default: False.
        fusion (dict, optional): A fusion baseline (Table 2): the config of
            a :class:`cen_mm.cnn.StreamFusion` block (``ConcatFusion``,
            ``AlignFusion``, ``SSMAFusion``, ``AverageFusion``) plus
            ``positions``: ``'early'`` / ``'middle'`` / ``'late'`` /
            ``'all'`` (after ResNet stage 2 / 3 / 4 / every stage) or a list
            of backbone sub-module names. A block's ``aux_loss`` (the align
            MMD) is added to the losses as ``loss_fusion``. Default: None.
        auxiliary_head (dict | list[dict], optional): Auxiliary heads, made
            multi-stream like ``decode_head``.
        data_preprocessor (dict, optional): Data preprocessor config; a
            preprocessor with a ``stream_channels`` argument gets the
            model's.
        **kwargs: Other arguments of mmseg's ``EncoderDecoder``.
    """

    def __init__(self,
                 backbone: ConfigType,
                 decode_head: ConfigType,
                 stream_names: Sequence[str] = ('rgb', 'depth'),
                 num_streams: Optional[int] = None,
                 stream_channels: Optional[Sequence[int]] = None,
                 slim_loss_weight: float = 0.,
                 gamma_init: str = 'reinit',
                 share_convs: bool = True,
                 share_norms: bool = False,
                 fusion: Optional[dict] = None,
                 auxiliary_head: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 **kwargs) -> None:
        name = type(self).__name__
        stream_names = tuple(stream_names)
        if not stream_names or len(set(stream_names)) != len(stream_names) \
                or 'ens' in stream_names:
            raise ValueError(
                f'{name}: stream_names {stream_names} must give a unique '
                "name (not 'ens') to each stream")
        if num_streams is not None and num_streams != len(stream_names):
            raise ValueError(
                f'{name}: num_streams={num_streams!r} does not match the '
                f'{len(stream_names)} stream_names {stream_names}')
        if slim_loss_weight < 0:
            raise ValueError(f'{name}: slim_loss_weight must be >= 0, got '
                             f'{slim_loss_weight!r}')
        if gamma_init not in GAMMA_INIT_MODES:
            raise ValueError(f'{name}: gamma_init must be one of '
                             f'{GAMMA_INIT_MODES}, got {gamma_init!r}')
        # Plain attributes, read while mmseg builds the heads below.
        self.stream_names = stream_names
        self.num_streams = len(stream_names)
        data_preprocessor, stream_channels = self._stream_preprocessor(
            data_preprocessor, stream_channels)
        self.stream_channels = stream_channels
        self.slim_loss_weight = float(slim_loss_weight)
        self.gamma_init = gamma_init
        super().__init__(
            backbone=self._stream_backbone(backbone),
            decode_head=decode_head,
            auxiliary_head=auxiliary_head,
            data_preprocessor=data_preprocessor,
            **kwargs)
        for layer_name, layer in exchange_norms(self):
            if layer.num_streams != self.num_streams:
                raise ValueError(
                    f'{name}: {layer_name} ({type(layer).__name__}) has '
                    f'num_streams={layer.num_streams} but the model declares '
                    f'{self.num_streams} streams {stream_names}')
        self._configure_streams(share_convs, share_norms, fusion)

    def _configure_streams(self, share_convs: bool, share_norms: bool,
                           fusion: Optional[dict]) -> None:
        """Apply the Table-1 sharing switches and the fusion baseline."""
        if not share_convs:
            unshare_convs(self.backbone, self.num_streams)
        if share_norms:
            share_norms_(self)
        self.fusion_blocks = None
        if fusion is not None:
            fusion = dict(fusion)
            positions = fusion.pop('positions', None)
            if isinstance(positions, str):
                if positions not in RESNET_FUSION_POSITIONS:
                    raise ValueError(
                        f'{type(self).__name__}: fusion positions '
                        f'{positions!r} must be one of '
                        f'{tuple(RESNET_FUSION_POSITIONS)} or a list of '
                        'backbone sub-module names')
                positions = RESNET_FUSION_POSITIONS[positions]
            if not positions:
                raise ValueError(f'{type(self).__name__}: fusion needs '
                                 'positions (e.g. positions=\'early\')')
            self.fusion_blocks = attach_stream_fusion(
                self.backbone, fusion, positions, self.num_streams)

    # -- declaring the streams once ----------------------------------------
    def _check_key(self, owner: str, cfg: dict, key: str, value) -> None:
        given = cfg.get(key)
        if isinstance(given, (list, tuple)):
            given = tuple(given)
        if given is not None and given != value:
            raise ValueError(
                f'{type(self).__name__}: {owner} {key}={given!r} does not '
                f"match the model's {key}={value!r} (declare the streams "
                'once, on the model)')

    def _stream_preprocessor(self, cfg: OptConfigType,
                             stream_channels: Optional[Sequence[int]]):
        preprocessor_cls = _registered_class(cfg)
        if isinstance(preprocessor_cls, type) and issubclass(
                preprocessor_cls, SegDataPreProcessor) and \
                'stream_channels' not in _arguments(cfg):
            # It would normalise the stacked modalities with 3-channel
            # statistics (a size mismatch) and skip the BGR flip.
            raise TypeError(
                f'{type(self).__name__}: model.data_preprocessor is '
                f'{preprocessor_cls.__name__}, which does not know the '
                'stacked modalities; use type=\'CENSegDataPreProcessor\' '
                'with one mean/std per stacked channel')
        given = None
        if isinstance(cfg, dict) and 'stream_channels' in _arguments(cfg):
            cfg = ConfigDict(cfg)
            given = cfg.get('stream_channels')
        if stream_channels is None:
            stream_channels = given if given is not None else \
                (3, ) * self.num_streams
        stream_channels = tuple(int(c) for c in stream_channels)
        if len(stream_channels) != self.num_streams or \
                min(stream_channels) < 1:
            raise ValueError(
                f'{type(self).__name__}: stream_channels {stream_channels} '
                f'must give a positive channel count for each of the '
                f'{self.num_streams} streams {self.stream_names}')
        if isinstance(cfg, dict) and 'stream_channels' in _arguments(cfg):
            self._check_key('data_preprocessor', cfg, 'stream_channels',
                            stream_channels)
            cfg['stream_channels'] = stream_channels
        return cfg, stream_channels

    def _stream_backbone(self, cfg: ConfigType) -> ConfigType:
        cfg = ConfigDict(cfg)
        width = math.lcm(*self.stream_channels)
        if isinstance(cfg.get('in_channels'), int) and \
                cfg['in_channels'] != width:
            # Each stream enters the backbone on its own (folded into the
            # batch), not the stacked modalities.
            raise ValueError(
                f'{type(self).__name__}: backbone in_channels='
                f'{cfg["in_channels"]}, but the backbone gets each of the '
                f'{self.num_streams} streams folded into the batch with '
                f'{width} channels (stream_channels {self.stream_channels}); '
                f'set backbone.in_channels={width}')
        if 'num_streams' in _arguments(cfg):
            self._check_key('backbone', cfg, 'num_streams', self.num_streams)
            cfg['num_streams'] = self.num_streams
        norm_cfg = cfg.get('norm_cfg')
        if isinstance(norm_cfg, dict) and \
                norm_cfg.get('type') in EXCHANGE_NORMS:
            norm_cfg = ConfigDict(norm_cfg)
            self._check_key('backbone.norm_cfg', norm_cfg, 'num_streams',
                            self.num_streams)
            norm_cfg['num_streams'] = self.num_streams
            cfg['norm_cfg'] = norm_cfg
        return cfg

    def _stream_head(self, cfg: ConfigType, owner: str) -> dict:
        """A head config made multi-stream with the model's streams."""
        cfg = ConfigDict(cfg)
        head_type = cfg.get('type')
        head_cls = MODELS.get(head_type) if isinstance(head_type,
                                                       str) else head_type
        if head_cls is None:
            raise KeyError(f'{type(self).__name__}: {owner} type '
                           f'{head_type!r} is not registered')
        try:
            cfg['type'] = multi_stream_head(head_cls)
        except TypeError as e:
            raise TypeError(f'{type(self).__name__}: {owner}: {e}') from None
        self._check_key(owner, cfg, 'num_streams', self.num_streams)
        self._check_key(owner, cfg, 'stream_names', self.stream_names)
        cfg.update(num_streams=self.num_streams,
                   stream_names=self.stream_names)
        return cfg

    def _init_decode_head(self, decode_head: ConfigType) -> None:
        super()._init_decode_head(self._stream_head(decode_head,
                                                    'decode_head'))

    def _init_auxiliary_head(self, auxiliary_head: ConfigType) -> None:
        if isinstance(auxiliary_head, list):
            auxiliary_head = [
                self._stream_head(cfg, f'auxiliary_head[{i}]')
                for i, cfg in enumerate(auxiliary_head)
            ]
        elif auxiliary_head is not None:
            auxiliary_head = self._stream_head(auxiliary_head,
                                               'auxiliary_head')
        super()._init_auxiliary_head(auxiliary_head)

    # -- initialisation ----------------------------------------------------
    def init_weights(self) -> None:
        """Initialise as mmseg does, then check γ against θ (see
        ``gamma_init``)."""
        super().init_weights()
        self.check_gamma_init()

    @torch.no_grad()
    def check_gamma_init(self) -> List[str]:
        """Find exchanging norms whose γ start below the threshold θ.

        Returns:
            list[str]: One line per affected ``layer[stream]``.
        """
        name = type(self).__name__
        whole, partial = [], []
        for layer_name, layer in exchange_norms(self):
            if not layer.exchange:
                continue
            for m, norm in enumerate(layer.streams):
                below = norm.weight.abs() < layer.threshold
                count = int(below.sum())
                if count == 0:
                    continue
                line = (f'{layer_name}[{self.stream_names[m]}]: {count}/'
                        f'{below.numel()} channels with |γ| < '
                        f'{layer.threshold:g}')
                if count == below.numel():
                    whole.append(line)
                    if self.gamma_init == 'reinit':
                        norm.weight.fill_(1.)
                else:
                    partial.append(line)
        found = whole + partial
        if not found:
            return found
        summary = (f'{name}: {len(found)} exchanging norm streams start with '
                   'γ below the exchange threshold θ, so those channels are '
                   'exchanged from the first step (zero_init_residual or a '
                   'constant init?): ' + '; '.join(found[:5]) +
                   ('; ...' if len(found) > 5 else ''))
        if self.gamma_init == 'error':
            raise ValueError(summary + ". Set gamma_init='reinit' or "
                             'initialise γ >= θ (e.g. '
                             'backbone.zero_init_residual=False)')
        if self.gamma_init == 'reinit' and whole:
            summary += (f'. Re-initialised γ = 1 in the {len(whole)} '
                        'streams entirely below θ')
        print_log(summary, logger='current', level=30)
        return found

    # -- the one folding place ---------------------------------------------
    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        """Fold the channel-stacked modalities into the batch and extract
        stream-folded features.

        Args:
            inputs (Tensor): ``(N, sum(stream_channels), H, W)``.

        Returns:
            list[Tensor]: Stream-folded features ``(M * N, C_i, h_i, w_i)``.
        """
        expected = sum(self.stream_channels)
        if inputs.dim() != 4 or inputs.size(1) != expected:
            raise ValueError(
                f'{type(self).__name__}: expected inputs (N, {expected}, H, '
                f'W) with the modalities {self.stream_channels} stacked '
                f'along channels (stream_channels), got shape '
                f'{tuple(inputs.shape)}')
        return super().extract_feat(
            fold_channels(inputs, self.stream_channels))

    def loss(self, inputs: Tensor, data_samples: SampleList) -> Dict:
        """Calculate the losses; adds ``loss_slim`` if enabled."""
        losses = super().loss(inputs, data_samples)
        if self.slim_loss_weight > 0:
            losses['loss_slim'] = self.slim_loss_weight * sparsity_loss(self)
        aux = None if self.fusion_blocks is None else fusion_loss(
            self.fusion_blocks.values())
        if aux is not None:
            losses['loss_fusion'] = aux
        return losses

    # -- inference: M + 1 batch blocks, split once -------------------------
    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Logits ``((M + 1) * N, K, H, W)``: the stream blocks, then the
        ensemble (on channels, ``(N, (M + 1) * K, H, W)``, inside
        :meth:`slide_inference`)."""
        seg_logits = super().encode_decode(inputs, batch_img_metas)
        if getattr(self, '_blocks_on_channels', False):
            seg_logits = _blocks_to_channels(seg_logits,
                                             self.num_streams + 1)
        return seg_logits

    def slide_inference(self, inputs: Tensor,
                        batch_img_metas: List[dict]) -> Tensor:
        """mmseg's sliding-window inference of the M + 1 outputs.

        mmseg accumulates the windows in an ``(N, out_channels, H, W)``
        buffer; the M + 1 batch blocks ride on its channels and are put
        back as blocks afterwards.
        """
        blocks, out_channels = self.num_streams + 1, self.out_channels
        self.out_channels, self._blocks_on_channels = \
            blocks * out_channels, True
        try:
            seg_logits = super().slide_inference(inputs, batch_img_metas)
        finally:
            self.out_channels, self._blocks_on_channels = out_channels, False
        return _channels_to_blocks(seg_logits, blocks)

    def postprocess_result(self,
                           seg_logits: Tensor,
                           data_samples: OptSampleList = None) -> SampleList:
        """Split the M + 1 batch blocks into the ensemble and each stream.

        mmseg's ``postprocess_result`` (un-padding, un-flipping, resizing to
        ``ori_shape``) runs once over all blocks.

        Args:
            seg_logits (Tensor): ``((M + 1) * N, K, H, W)`` logits, the
                stream blocks then the ensemble block.
            data_samples (list[:obj:`SegDataSample`], optional): The N seg
                data samples with meta information.

        Returns:
            list[:obj:`SegDataSample`]: N samples with ``seg_logits`` and
            ``pred_sem_seg`` of the ensemble, ``seg_logits_{name}`` and
            ``pred_sem_seg_{name}`` of every stream, and the metainfo
            ``stream_names``.
        """
        blocks = self.num_streams + 1
        if seg_logits.dim() != 4 or seg_logits.size(0) % blocks:
            raise ValueError(
                f'{type(self).__name__}: the decode head must predict '
                f'(M + 1) = {blocks} batch blocks ((M + 1) * N, K, H, W), '
                f'the streams {self.stream_names} then the ensemble, got '
                f'{tuple(seg_logits.shape)}')
        n = seg_logits.size(0) // blocks
        if data_samples is not None:
            if len(data_samples) != n:
                raise ValueError(
                    f'{type(self).__name__}: {len(data_samples)} data '
                    f'samples for logits of {n} images')
            data_samples = [
                SegDataSample(metainfo=sample.metainfo)
                for _ in range(self.num_streams) for sample in data_samples
            ] + list(data_samples)
        results = super().postprocess_result(seg_logits, data_samples)
        predictions = results[self.num_streams * n:]
        for m, name in enumerate(self.stream_names):
            for prediction, stream in zip(predictions,
                                          results[m * n:(m + 1) * n]):
                prediction.set_data({
                    f'seg_logits_{name}': stream.seg_logits,
                    f'pred_sem_seg_{name}': stream.pred_sem_seg
                })
        for prediction in predictions:
            prediction.set_metainfo(dict(stream_names=self.stream_names))
        return predictions


def _registered_class(cfg: OptConfigType) -> Optional[type]:
    """The class ``cfg['type']`` names (None when unknown)."""
    cls = cfg.get('type') if isinstance(cfg, dict) else None
    cls = MODELS.get(cls) if isinstance(cls, str) else cls
    return cls if isinstance(cls, type) else None


def _arguments(cfg: dict) -> Sequence[str]:
    """Names of the constructor arguments of ``cfg['type']`` (empty when
    unknown)."""
    cls = _registered_class(cfg)
    if cls is None:
        return ()
    names = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        params = inspect.signature(init).parameters
        names.update(params)
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            break
    return tuple(names)
