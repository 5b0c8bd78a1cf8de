# Copyright (c) cen_mm contributors. All rights reserved.
from typing import Dict, List, Optional, Sequence

import torch.nn as nn
from mmengine.structures import PixelData
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import ConfigType, OptSampleList, SampleList
from torch import Tensor

from cen_mm.cnn import attach_stream_fusion, fold_channels
from cen_mm.cnn import share_norms as share_norms_
from cen_mm.cnn import unshare_convs
from cen_mm.engine.sparsity import sparsity_loss

__all__ = ['CENEncoderDecoder']

# Fusion positions of the paper's ResNet baselines (after stage 2 / 3 / 4,
# or after every stage), as mmseg ResNet sub-module names.
RESNET_FUSION_POSITIONS = dict(
    early=('layer2', ), middle=('layer3', ), late=('layer4', ),
    all=('layer1', 'layer2', 'layer3', 'layer4'))


@MODELS.register_module()
class CENEncoderDecoder(EncoderDecoder):
    """Encoder-decoder segmentor for M streams with an ensemble prediction.

    The backbone sees the channel-stacked modalities ``(N, sum(C_m), H, W)``.
    A CEN backbone (e.g. :class:`CENResNet`) folds them into the batch
    itself; for any other mmseg backbone set ``fold_inputs=True`` and the
    segmentor folds them to ``(M * N, C, H, W)`` first, so a stock backbone
    with an exchanging ``norm_cfg`` becomes a CEN. The decode head (and any
    auxiliary head) must be a multi-stream head
    (:class:`MultiStreamDecodeHead`); the decode head's ``predict_by_feat``
    returns channel-stacked ``(N, (M + 1) * K, H, W)`` logits
    ``[ens, stream_0, ..., stream_{M-1}]``.

    Predictions (whole and slide mode) store, per data sample:

    - ``seg_logits`` / ``pred_sem_seg``: the ensemble, so mmseg's
      ``IoUMetric`` and TTA work unchanged;
    - ``seg_logits_{name}`` / ``pred_sem_seg_{name}``: stream ``name``.

    Args:
        backbone (dict): Backbone config.
        decode_head (dict): Multi-stream decode head config.
        num_streams (int): Number of streams M. Default: 2.
        stream_names (Sequence[str]): One name per stream.
            Default: ``('rgb', 'depth')``.
        stream_channels (Sequence[int], optional): Channels of each stacked
            modality; required with ``fold_inputs``. Default: None.
        fold_inputs (bool): Fold the channel-stacked input into the batch
            before the backbone (for generic backbones). Default: False.
        slim_loss_weight (float): If > 0, add
            ``loss_slim = weight * sum(|γ|)`` over the penalised scales of
            every exchanging norm (official parity: 3 * 2e-4 = 6e-4). The
            default 0 leaves the L1 term to ``GammaSparsityHook``.
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
    """

    def __init__(self,
                 backbone: ConfigType,
                 decode_head: ConfigType,
                 num_streams: int = 2,
                 stream_names: Sequence[str] = ('rgb', 'depth'),
                 stream_channels: Optional[Sequence[int]] = None,
                 fold_inputs: bool = False,
                 slim_loss_weight: float = 0.,
                 share_convs: bool = True,
                 share_norms: bool = False,
                 fusion: Optional[dict] = None,
                 **kwargs) -> None:
        name = type(self).__name__
        stream_names = tuple(stream_names)
        if int(num_streams) != num_streams or num_streams < 1:
            raise ValueError(f'{name}: num_streams must be a positive '
                             f'integer, got {num_streams!r}')
        if len(stream_names) != num_streams or \
                len(set(stream_names)) != num_streams:
            raise ValueError(
                f'{name}: stream_names {stream_names} must give a unique '
                f'name to each of the num_streams={num_streams} streams')
        if fold_inputs:
            if stream_channels is None or \
                    len(stream_channels) != num_streams:
                raise ValueError(
                    f'{name}: fold_inputs=True needs stream_channels with '
                    f'one channel count per stream, got {stream_channels!r}')
            stream_channels = tuple(int(c) for c in stream_channels)
        if slim_loss_weight < 0:
            raise ValueError(f'{name}: slim_loss_weight must be >= 0, got '
                             f'{slim_loss_weight!r}')
        super().__init__(backbone=backbone, decode_head=decode_head, **kwargs)
        heads = [('decode_head', self.decode_head)]
        if self.with_auxiliary_head:
            aux = self.auxiliary_head
            aux = aux if isinstance(aux, nn.ModuleList) else [aux]
            heads += [('auxiliary_head', head) for head in aux]
        for key, head in heads:
            # Every head sees stream-folded features (M * N samples).
            for attr, value in (('num_streams', int(num_streams)),
                                ('stream_names', stream_names)):
                head_value = getattr(head, attr, None)
                if head_value is None:
                    raise TypeError(
                        f'{name}: {key} {type(head).__name__} is not a '
                        f'multi-stream head (it has no {attr!r}); it would '
                        f'see {num_streams} stream-folded copies of the batch')
                if attr == 'stream_names':
                    head_value = tuple(head_value)
                if head_value != value:
                    raise ValueError(
                        f'{name}: {attr}={value!r} does not match the '
                        f'{key}\'s {attr}={head_value!r}')
        self.num_streams = int(num_streams)
        self.stream_names = stream_names
        self.stream_channels = stream_channels
        self.fold_inputs = fold_inputs
        self.slim_loss_weight = float(slim_loss_weight)
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

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        """Extract stream-folded features from channel-stacked inputs."""
        if self.fold_inputs:
            expected = sum(self.stream_channels)
            if inputs.dim() != 4 or inputs.size(1) != expected:
                raise ValueError(
                    f'{type(self).__name__}: expected inputs (N, {expected}, '
                    f'H, W) with the modalities {self.stream_channels} '
                    'stacked along channels (stream_channels), got shape '
                    f'{tuple(inputs.shape)}')
            inputs = fold_channels(inputs, self.stream_channels)
        return super().extract_feat(inputs)

    def loss(self, inputs: Tensor, data_samples: SampleList) -> Dict:
        """Calculate the losses; adds ``loss_slim`` if enabled."""
        losses = super().loss(inputs, data_samples)
        if self.slim_loss_weight > 0:
            losses['loss_slim'] = self.slim_loss_weight * sparsity_loss(self)
        if self.fusion_blocks is not None:
            aux = [block.aux_loss() for block in self.fusion_blocks.values()]
            aux = [loss for loss in aux if loss is not None]
            if aux:
                losses['loss_fusion'] = sum(aux)
        return losses

    def slide_inference(self, inputs: Tensor,
                        batch_img_metas: List[dict]) -> Tensor:
        """Sliding-window inference of the channel-stacked
        ``[ens, stream_0, ...]`` logits ``(N, (M + 1) * K, H, W)``."""
        # mmseg sizes its window accumulator by ``out_channels``; the head
        # returns (M + 1) * out_channels stacked channels.
        out_channels = self.out_channels
        self.out_channels = out_channels * (self.num_streams + 1)
        try:
            return super().slide_inference(inputs, batch_img_metas)
        finally:
            self.out_channels = out_channels

    def postprocess_result(self,
                           seg_logits: Tensor,
                           data_samples: OptSampleList = None) -> SampleList:
        """Split the stacked logits into the ensemble and each stream.

        Args:
            seg_logits (Tensor): ``(N, (M + 1) * K, H, W)`` logits
                ``[ens, stream_0, ..., stream_{M-1}]``.
            data_samples (list[:obj:`SegDataSample`], optional): The seg
                data samples with meta information.

        Returns:
            list[:obj:`SegDataSample`]: Samples with ``seg_logits`` and
            ``pred_sem_seg`` of the ensemble, and ``seg_logits_{name}`` and
            ``pred_sem_seg_{name}`` of every stream.
        """
        k = self.out_channels
        if seg_logits.dim() != 4 or \
                seg_logits.size(1) != (self.num_streams + 1) * k:
            raise ValueError(
                f'{type(self).__name__}: the decode head must predict '
                f'(N, (M + 1) * K, H, W) = (N, {(self.num_streams + 1) * k}, '
                'H, W) logits [ens, stream_0, ...] stacked on channels, got '
                f'{tuple(seg_logits.shape)}')
        ens, *streams = seg_logits.split(k, dim=1)
        metas = None if data_samples is None else \
            [sample.metainfo for sample in data_samples]
        data_samples = super().postprocess_result(ens, data_samples)
        for name, logits in zip(self.stream_names, streams):
            samples = None if metas is None else \
                [SegDataSample(metainfo=meta) for meta in metas]
            samples = super().postprocess_result(logits, samples)
            for sample, stream_sample in zip(data_samples, samples):
                sample.set_data({
                    f'seg_logits_{name}':
                    PixelData(data=stream_sample.seg_logits.data),
                    f'pred_sem_seg_{name}':
                    PixelData(data=stream_sample.pred_sem_seg.data)
                })
        return data_samples
