# Copyright (c) cen_mm contributors. All rights reserved.
from abc import abstractmethod
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn as nn
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.losses import accuracy
from mmseg.models.utils import resize
from mmseg.utils import SampleList
from torch import Tensor

from cen_mm.cnn import StreamEnsemble, check_folded

__all__ = ['MultiStreamDecodeHead']

LOSS_OUTPUTS = ('all', 'ens')
RESIZE_MODES = ('bilinear', 'bicubic')


class MultiStreamDecodeHead(BaseDecodeHead):
    """Base class of the decode heads of multi-stream (CEN) segmentors.

    The head sees the backbone's stream-folded features ``(M * N, C, h, w)``
    (stream-major), decodes every stream with the *same* weights, and
    combines the stream logits with a learned ensemble
    (:class:`cen_mm.cnn.StreamEnsemble`, paper Eq. 5). As in the official
    code the ensemble acts on the raw logits, before any upsampling, and by
    default on detached logits, so the ensemble loss trains the ensemble
    weights α only.

    .. code:: text

        forward(): forward_streams() -> (M*N, K, h, w)
                   ensemble()        -> (N, K, h, w)
                   concat            -> ((M+1)*N, K, h, w)

    Subclasses implement :meth:`forward_streams`.

    Outputs:

    - :meth:`forward` returns ``((M + 1) * N, K, h, w)``: the M stream logits
      (stream-major) followed by the ensemble as block M.
    - :meth:`loss_by_feat` returns ``'{name}.{loss_name}'`` for every stream
      name and ``'ens'`` (every output resized to the label as in
      :class:`BaseDecodeHead`), and ``acc_seg`` of the ensemble.
    - :meth:`predict_by_feat` returns channel-stacked logits
      ``(N, (M + 1) * K, H, W)`` = ``[ens, stream_0, ..., stream_{M-1}]``.
      ``num_classes`` and ``out_channels`` stay K; the segmentor splits the
      channels.

    Args:
        num_streams (int): Number of streams M. Default: 2.
        stream_names (Sequence[str]): One name per stream, used as loss key
            prefixes. Default: ``('rgb', 'depth')``.
        ensemble (dict): Keyword arguments of
            :class:`cen_mm.cnn.StreamEnsemble` besides ``num_streams``.
            Default: ``dict(detach=True)`` (official).
        loss_outputs (str): ``'all'`` computes a loss for every stream and
            for the ensemble (official code); ``'ens'`` only for the ensemble,
            the paper's Eq. 5 objective (needs ``ensemble=dict(detach=False)``
            so that the streams are trained through it). Default: 'all'.
        resize_mode (str): Interpolation of the logits to the image size at
            inference, ``'bilinear'`` (mmseg) or ``'bicubic'`` (the official
            test's ``cv2.INTER_CUBIC``). Default: 'bilinear'.
        **kwargs: Arguments of :class:`BaseDecodeHead` (or of the mmseg head
            a subclass also derives from).
    """

    ens_name = 'ens'

    def __init__(self,
                 *args,
                 num_streams: int = 2,
                 stream_names: Sequence[str] = ('rgb', 'depth'),
                 ensemble: dict = dict(detach=True),
                 loss_outputs: str = 'all',
                 resize_mode: str = 'bilinear',
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if loss_outputs not in LOSS_OUTPUTS:
            raise ValueError(f'{type(self).__name__}: loss_outputs must be '
                             f'one of {LOSS_OUTPUTS}, got {loss_outputs!r}')
        if loss_outputs == 'ens' and ensemble.get('detach', True):
            raise ValueError(
                f"{type(self).__name__}: loss_outputs='ens' (Eq. 5) with a "
                'detached ensemble would train nothing but α; set '
                'ensemble=dict(detach=False)')
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f'{type(self).__name__}: resize_mode must be '
                             f'one of {RESIZE_MODES}, got {resize_mode!r}')
        self.loss_outputs = loss_outputs
        self.resize_mode = resize_mode
        stream_names = tuple(stream_names)
        if int(num_streams) != num_streams or num_streams < 1:
            raise ValueError(f'{type(self).__name__}: num_streams must be a '
                             f'positive integer, got {num_streams!r}')
        if len(stream_names) != num_streams:
            raise ValueError(
                f'{type(self).__name__}: stream_names {stream_names} must '
                f'name each of the num_streams={num_streams} streams')
        if len(set(stream_names)) != len(stream_names) or \
                self.ens_name in stream_names:
            raise ValueError(
                f'{type(self).__name__}: stream_names {stream_names} must be '
                f'unique and must not contain {self.ens_name!r}')
        if not isinstance(ensemble, dict):
            raise TypeError(f'{type(self).__name__}: ensemble must be a dict '
                            f'of StreamEnsemble arguments, got {ensemble!r}')
        self.num_streams = int(num_streams)
        self.stream_names = stream_names
        self.ensemble = StreamEnsemble(self.num_streams, **ensemble)

    @property
    def output_names(self) -> Tuple[str, ...]:
        """tuple[str]: Names of the blocks of :meth:`forward`'s output:
        the streams, then ``'ens'``."""
        return self.stream_names + (self.ens_name, )

    @abstractmethod
    def forward_streams(self, inputs: Tuple[Tensor]) -> Tensor:
        """Decode every stream with shared weights.

        Args:
            inputs (tuple[Tensor]): Stream-folded multi-level features, each
                of shape ``(M * N, C_i, h_i, w_i)``.

        Returns:
            Tensor: Stream-folded logits of shape ``(M * N, K, h, w)``.
        """

    def forward(self, inputs: Tuple[Tensor]) -> Tensor:
        """Decode every stream and append the ensemble.

        Args:
            inputs (tuple[Tensor]): Stream-folded multi-level features.

        Returns:
            Tensor: Logits of shape ``((M + 1) * N, K, h, w)``: the M stream
            blocks followed by the ensemble block.
        """
        logits = self.forward_streams(inputs)
        check_folded(logits, self.num_streams,
                     f'{type(self).__name__}.forward_streams output')
        return torch.cat([logits, self.ensemble(logits)])

    def split_outputs(self, seg_logits: Tensor) -> List[Tensor]:
        """Split :meth:`forward`'s output into its M + 1 blocks.

        Args:
            seg_logits (Tensor): Tensor of shape ``((M + 1) * N, ...)``.

        Returns:
            list[Tensor]: M + 1 tensors ``(N, ...)`` in the order of
            :attr:`output_names`.
        """
        check_folded(seg_logits, self.num_streams + 1,
                     f'{type(self).__name__} logits (streams + ensemble)')
        return list(seg_logits.chunk(self.num_streams + 1))

    def loss_by_feat(self, seg_logits: Tensor,
                     batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Compute a loss for every stream and for the ensemble.

        Args:
            seg_logits (Tensor): The output of :meth:`forward`,
                ``((M + 1) * N, K, h, w)``.
            batch_data_samples (list[:obj:`SegDataSample`]): The seg data
                samples, with ``gt_sem_seg``.

        Returns:
            dict[str, Tensor]: ``'{name}.{loss_name}'`` for every output name
            (streams and ``'ens'``) and every loss in ``loss_decode`` (equal
            names are summed), plus ``acc_seg`` of the ensemble.
        """
        seg_label = self._stack_batch_gt(batch_data_samples)
        losses_decode = self.loss_decode if isinstance(
            self.loss_decode, nn.ModuleList) else [self.loss_decode]
        loss = dict()
        for name, logits in zip(self.output_names,
                                self.split_outputs(seg_logits)):
            if self.loss_outputs == 'ens' and name != self.ens_name:
                continue
            logits = resize(
                input=logits,
                size=seg_label.shape[2:],
                mode='bilinear',
                align_corners=self.align_corners)
            seg_weight = None if self.sampler is None else \
                self.sampler.sample(logits, seg_label)
            label = seg_label.squeeze(1)
            for loss_decode in losses_decode:
                key = f'{name}.{loss_decode.loss_name}'
                value = loss_decode(
                    logits,
                    label,
                    weight=seg_weight,
                    ignore_index=self.ignore_index)
                loss[key] = loss[key] + value if key in loss else value
        # `logits`/`label` now hold the ensemble, the last output.
        loss['acc_seg'] = accuracy(
            logits, label, ignore_index=self.ignore_index)
        return loss

    def predict_by_feat(self, seg_logits: Tensor,
                        batch_img_metas: List[dict]) -> Tensor:
        """Resize all outputs to the input shape and stack them on channels.

        Args:
            seg_logits (Tensor): The output of :meth:`forward`.
            batch_img_metas (list[dict]): Meta information of each image.

        Returns:
            Tensor: Logits of shape ``(N, (M + 1) * K, H, W)``, the channel
            blocks being ``[ens, stream_0, ..., stream_{M-1}]``.
        """
        if self.resize_mode == 'bilinear':
            seg_logits = super().predict_by_feat(seg_logits, batch_img_metas)
        else:  # as BaseDecodeHead.predict_by_feat, another interpolation
            meta = batch_img_metas[0]
            size = meta['img_shape'] if isinstance(
                meta['img_shape'], torch.Size) else meta.get(
                    'pad_shape', meta['img_shape'])[:2]
            seg_logits = resize(
                input=seg_logits,
                size=size,
                mode=self.resize_mode,
                align_corners=self.align_corners)
        outputs = self.split_outputs(seg_logits)
        return torch.cat(outputs[-1:] + outputs[:-1], dim=1)
