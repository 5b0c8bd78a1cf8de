# Copyright (c) cen_mm contributors. All rights reserved.
"""Multi-stream (CEN) decode heads: any mmseg head on stream-folded features.

:class:`MultiStreamDecodeHead` is a mixin over mmseg's
:class:`BaseDecodeHead`: the head's convolutions are shared by the M streams
(which travel stream-folded, ``(M * N, C, h, w)``), its norms are private per
stream, and a learned ensemble of the stream logits is appended as an extra
block of the batch. :func:`multi_stream_head` turns a stock mmseg head class
(``FCNHead``, ``ASPPHead``, ``UPerHead``, ``SegformerHead``, ...) into such a
head; :class:`CENEncoderDecoder` applies it to every decode and auxiliary
head of a config, so no head class is written by hand.

A generated class has a stable qualified name, ``CEN{Head}`` in this module
(``cen_mm.seg.models.decode_heads.multi_stream_head.CENFCNHead``), resolved
on first use for any head registered in mmseg's ``MODELS``; its instances
pickle as "the multi-stream version of the stock head class", so models
with generated heads pickle, deep-copy and load in a fresh process.
"""
from abc import abstractmethod
from typing import Dict, List, Optional, Sequence, Tuple, Type

import torch
import torch.nn as nn
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.losses import accuracy
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import SampleList
from torch import Tensor

from cen_mm.cnn import StreamEnsemble, check_folded

__all__ = ['MultiStreamDecodeHead', 'multi_stream_head', 'private_norm_cfg']

EXCHANGE_NORMS = ('ExchangeBN', 'ExchangeIN')
LOSS_OUTPUTS = ('all', 'ens')
RESIZE_MODES = ('bilinear', 'bicubic')
# Shared norm types and the per-stream norm that replaces them.
PRIVATE_NORMS = {
    'BN': 'ExchangeBN',
    'BN2d': 'ExchangeBN',
    'SyncBN': 'ExchangeBN',
    'IN': 'ExchangeIN',
    'IN2d': 'ExchangeIN',
}


def private_norm_cfg(norm_cfg: Optional[dict], num_streams: int,
                     owner: str = 'head') -> Optional[dict]:
    """Turn a head's ``norm_cfg`` into one private norm per stream.

    ``BN`` / ``SyncBN`` become :class:`ExchangeBN` and ``IN`` becomes
    :class:`ExchangeIN`, both with ``exchange=False`` and ``sparsity='none'``
    (per-stream statistics and affine parameters, no channel exchange and no
    L1 on γ: CEN's decoders only share convs). An exchanging norm keeps its
    keys; ``num_streams`` is filled in and must match.

    Args:
        norm_cfg (dict, optional): The head's norm config.
        num_streams (int): Number of streams M.
        owner (str): Name used in error messages.

    Returns:
        dict, optional: The per-stream norm config (None stays None).
    """
    if norm_cfg is None:
        return None
    cfg = dict(norm_cfg)
    norm_type = cfg.get('type')
    if norm_type in PRIVATE_NORMS:
        cfg['type'] = PRIVATE_NORMS[norm_type]
    elif norm_type not in EXCHANGE_NORMS:
        raise ValueError(
            f'{owner}: norm_cfg type {norm_type!r} cannot be made private per '
            f'stream (supported: {sorted(PRIVATE_NORMS)} and '
            f'{EXCHANGE_NORMS}); set private_norms=False to share it between '
            'the streams')
    streams = cfg.setdefault('num_streams', num_streams)
    if streams != num_streams:
        raise ValueError(f'{owner}: norm_cfg num_streams={streams} differs '
                         f'from the head num_streams={num_streams}')
    cfg.setdefault('exchange', False)
    cfg.setdefault('sparsity', 'none')
    return cfg


class MultiStreamDecodeHead(BaseDecodeHead):
    """Mixin base of the decode heads of multi-stream (CEN) segmentors.

    The head sees the backbone's stream-folded features ``(M * N, C, h, w)``
    (stream-major), decodes every stream with the *same* convolutions and
    private norms, and appends the learned ensemble
    (:class:`cen_mm.cnn.StreamEnsemble`, paper Eq. 5) of the stream logits as
    one more block of the batch. As in the official code the ensemble acts
    on the raw logits, before any upsampling, and by default on detached
    logits, so the ensemble loss trains the ensemble weights α only.

    .. code:: text

        forward(): forward_streams() -> (M*N, K, h, w)
                   ensemble()        -> (N, K, h, w)
                   concat            -> ((M+1)*N, K, h, w)

    The M + 1 outputs stay blocks of the batch end to end: mmseg's
    ``predict_by_feat`` (resize), ``encode_decode``, whole and slide
    inference carry them unchanged, and :class:`CENEncoderDecoder` splits
    them once, in ``postprocess_result``. Only :meth:`loss_by_feat` looks at
    the blocks, to compute a loss per output.

    Subclasses implement :meth:`forward_streams`; :func:`multi_stream_head`
    builds the subclass of any stock mmseg head.

    Args:
        num_streams (int): Number of streams M. Default: 2.
        stream_names (Sequence[str]): One name per stream, used as loss key
            prefixes. :class:`CENEncoderDecoder` fills in its own.
            Default: ``('rgb', 'depth')``.
        ensemble (dict): Keyword arguments of
            :class:`cen_mm.cnn.StreamEnsemble` besides ``num_streams``.
            Default: ``dict(detach=True)`` (official).
        private_norms (bool): Make ``norm_cfg`` one norm per stream with
            :func:`private_norm_cfg`. False keeps ``norm_cfg`` as given, so a
            plain BN then mixes the statistics of the streams.
            Default: True.
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
                 private_norms: bool = True,
                 loss_outputs: str = 'all',
                 resize_mode: str = 'bilinear',
                 **kwargs) -> None:
        name = type(self).__name__
        if loss_outputs not in LOSS_OUTPUTS:
            raise ValueError(f'{name}: loss_outputs must be one of '
                             f'{LOSS_OUTPUTS}, got {loss_outputs!r}')
        if loss_outputs == 'ens' and isinstance(ensemble, dict) and \
                ensemble.get('detach', True):
            raise ValueError(
                f"{name}: loss_outputs='ens' (Eq. 5) with a detached "
                'ensemble would train nothing but α; set '
                'ensemble=dict(detach=False)')
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f'{name}: resize_mode must be one of '
                             f'{RESIZE_MODES}, got {resize_mode!r}')
        stream_names = tuple(stream_names)
        if int(num_streams) != num_streams or num_streams < 1:
            raise ValueError(f'{name}: num_streams must be a positive '
                             f'integer, got {num_streams!r}')
        if len(stream_names) != num_streams:
            raise ValueError(
                f'{name}: stream_names {stream_names} must name each of the '
                f'num_streams={num_streams} streams')
        if len(set(stream_names)) != len(stream_names) or \
                self.ens_name in stream_names:
            raise ValueError(
                f'{name}: stream_names {stream_names} must be unique and '
                f'must not contain {self.ens_name!r}')
        if not isinstance(ensemble, dict):
            raise TypeError(f'{name}: ensemble must be a dict of '
                            f'StreamEnsemble arguments, got {ensemble!r}')
        if private_norms and num_streams > 1 and 'norm_cfg' in kwargs:
            kwargs['norm_cfg'] = private_norm_cfg(kwargs['norm_cfg'],
                                                  int(num_streams), name)
        super().__init__(*args, **kwargs)
        self.num_streams = int(num_streams)
        self.stream_names = stream_names
        self.ensemble = StreamEnsemble(self.num_streams, **ensemble)
        self.loss_outputs = loss_outputs
        self.resize_mode = resize_mode

    @property
    def output_names(self) -> Tuple[str, ...]:
        """tuple[str]: Names of the batch blocks of :meth:`forward`'s
        output: the streams, then ``'ens'``."""
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
        """Split a ``((M + 1) * N, ...)`` output into its M + 1 blocks.

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
        """Resize the M + 1 batch blocks to the input size (mmseg's, or
        bicubic with ``resize_mode='bicubic'``).

        Args:
            seg_logits (Tensor): The output of :meth:`forward`.
            batch_img_metas (list[dict]): Meta information of each image.

        Returns:
            Tensor: Logits ``((M + 1) * N, K, H, W)``.
        """
        if self.resize_mode == 'bilinear':
            return super().predict_by_feat(seg_logits, batch_img_metas)
        # As BaseDecodeHead.predict_by_feat, with another interpolation.
        meta = batch_img_metas[0]
        size = meta['img_shape'] if isinstance(
            meta['img_shape'], torch.Size) else meta.get(
                'pad_shape', meta['img_shape'])[:2]
        return resize(
            input=seg_logits,
            size=size,
            mode=self.resize_mode,
            align_corners=self.align_corners)

    def __reduce_ex__(self, protocol: int) -> tuple:
        # A class made by multi_stream_head pickles as "multi_stream_head of
        # its stock head", which any process can rebuild; subclasses and
        # hand-written heads pickle as usual.
        stock_head = type(self).__dict__.get('_stock_head')
        if stock_head is None:
            return super().__reduce_ex__(protocol)
        return _new_multi_stream_head, (stock_head, ), self.__getstate__()


_MULTI_STREAM_HEADS: Dict[type, type] = {}


def multi_stream_head(head_cls: Type[BaseDecodeHead]) -> type:
    """The multi-stream version of an mmseg decode head class.

    Returns ``head_cls`` itself if it already is a
    :class:`MultiStreamDecodeHead`, the registered thin subclass where one
    exists (``PSPHead`` -> ``CENPSPHead``), and otherwise (once per class) a
    subclass ``CEN{head_cls.__name__}(MultiStreamDecodeHead, head_cls)``
    whose :meth:`forward_streams` is the stock ``head_cls.forward``. It takes
    the stock head's arguments plus ``num_streams``, ``stream_names``,
    ``ensemble`` and ``private_norms``. The generated class is importable as
    ``CEN{head_cls.__name__}`` from this module when ``head_cls`` is
    registered in mmseg's ``MODELS``, and its instances pickle in any case.

    This works for heads whose ``forward(inputs)`` returns the logits
    (FCN, PSP, ASPP, DepthwiseSeparableASPP, UPer, Segformer, DA, ...).

    Args:
        head_cls (type): A subclass of mmseg's :class:`BaseDecodeHead`.

    Returns:
        type: A :class:`MultiStreamDecodeHead` subclass.
    """
    if isinstance(head_cls, type) and issubclass(head_cls,
                                                 MultiStreamDecodeHead):
        return head_cls
    if not (isinstance(head_cls, type)
            and issubclass(head_cls, BaseDecodeHead)):
        raise TypeError('multi_stream_head: expected an mmseg decode head '
                        f'class (a BaseDecodeHead subclass), got {head_cls!r}')
    if head_cls not in _MULTI_STREAM_HEADS:
        name = f'CEN{head_cls.__name__}'
        _MULTI_STREAM_HEADS[head_cls] = type(
            name, (MultiStreamDecodeHead, head_cls),
            dict(
                forward_streams=head_cls.forward,
                _stock_head=head_cls,
                __module__=__name__,
                __qualname__=name,
                __doc__=f'Multi-stream ``{head_cls.__name__}`` '
                '(see :func:`multi_stream_head`).'))
    return _MULTI_STREAM_HEADS[head_cls]


def _new_multi_stream_head(head_cls: type) -> MultiStreamDecodeHead:
    """An uninitialised ``multi_stream_head(head_cls)`` (for unpickling)."""
    cls = multi_stream_head(head_cls)
    return cls.__new__(cls)


def __getattr__(name: str) -> type:
    """``CEN{Head}``: the generated class of mmseg's registered ``Head``.

    Generated classes are made on first use; this gives each one a stable
    qualified name in this module (PEP 562), so that the class itself can be
    imported or pickled by name in any process. A name that does not
    resolve to the generated class of that head is an AttributeError.
    """
    head_cls = MODELS.get(name[3:]) if name.startswith('CEN') else None
    if isinstance(head_cls, type) and issubclass(head_cls, BaseDecodeHead):
        cen_cls = multi_stream_head(head_cls)
        if cen_cls.__module__ == __name__ and cen_cls.__qualname__ == name:
            return cen_cls
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def register_multi_stream_head(head_cls: type, cen_cls: type) -> None:
    """Use ``cen_cls`` as :func:`multi_stream_head` of ``head_cls``."""
    _MULTI_STREAM_HEADS[head_cls] = cen_cls
