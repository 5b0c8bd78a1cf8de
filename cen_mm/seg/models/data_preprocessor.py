# Copyright (c) cen_mm contributors. All rights reserved.
from numbers import Number
from typing import Any, Dict, Optional, Sequence, Union

import torch
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS

__all__ = ['CENSegDataPreProcessor']


@MODELS.register_module()
class CENSegDataPreProcessor(SegDataPreProcessor):
    """Segmentation data preprocessor for channel-stacked modalities.

    The pipeline stacks the M modalities along channels (RGB-D:
    ``[B, G, R, d, d, d]``); this preprocessor flips BGR to RGB per modality
    (mmseg's ``SegDataPreProcessor`` silently skips ``bgr_to_rgb`` unless an
    image has exactly 3 channels), then normalises every channel with its own
    mean/std, pads and stacks as mmseg does. The modalities stay stacked;
    the backbone (or segmentor) folds them into the batch.

    The official CEN normalisation, used by the cen_mm base configs, is
    ImageNet mean/std on RGB in RGB order, and ``depth / 5000`` with no
    centring for the raw uint16 depth::

        mean=[123.675, 116.28, 103.53, 0, 0, 0],
        std=[58.395, 57.12, 57.375, 5000, 5000, 5000],
        bgr_to_rgb=(True, False)

    Args:
        stream_channels (Sequence[int]): Channels of each modality in the
            order they are stacked. Default: ``(3, 3)``.
        mean (Sequence[Number], optional): Per-channel mean, one value for
            each of the ``sum(stream_channels)`` channels, in the channel
            order after the RGB flip. Default: None (no normalisation).
        std (Sequence[Number], optional): Per-channel std, same length.
        bgr_to_rgb (bool | Sequence[bool]): Per modality, whether to flip its
            3 channels from BGR to RGB; a single bool applies to every
            3-channel modality. Default: ``(True, False)``.
        **kwargs: Other arguments of ``SegDataPreProcessor`` (``size``,
            ``size_divisor``, ``pad_val``, ``seg_pad_val``, ``test_cfg``...).
            ``rgb_to_bgr`` is not supported.
    """

    def __init__(self,
                 stream_channels: Sequence[int] = (3, 3),
                 mean: Optional[Sequence[Number]] = None,
                 std: Optional[Sequence[Number]] = None,
                 bgr_to_rgb: Union[bool, Sequence[bool]] = (True, False),
                 **kwargs) -> None:
        name = type(self).__name__
        if kwargs.pop('rgb_to_bgr', False):
            raise ValueError(f'{name}: rgb_to_bgr is not supported; give '
                             'bgr_to_rgb per modality instead')
        if isinstance(stream_channels, int) or not stream_channels or \
                not all(isinstance(c, int) and c > 0
                        for c in stream_channels):
            raise ValueError(
                f'{name}: stream_channels must list the positive channel '
                f'count of each modality, got {stream_channels!r}')
        stream_channels = tuple(stream_channels)
        total = sum(stream_channels)
        for key, value in (('mean', mean), ('std', std)):
            if value is not None and len(value) != total:
                raise ValueError(
                    f'{name}: {key} has {len(value)} values but the '
                    f'modalities {stream_channels} have {total} channels; '
                    f'give one {key} per stacked channel')
        if (mean is None) != (std is None):
            raise ValueError(f'{name}: give both mean and std, or neither')
        if isinstance(bgr_to_rgb, bool):
            bgr_to_rgb = tuple(bgr_to_rgb and c == 3 for c in stream_channels)
        bgr_to_rgb = tuple(bool(flag) for flag in bgr_to_rgb)
        if len(bgr_to_rgb) != len(stream_channels):
            raise ValueError(
                f'{name}: bgr_to_rgb {bgr_to_rgb} needs one flag per '
                f'modality of stream_channels {stream_channels}')
        for flag, channels in zip(bgr_to_rgb, stream_channels):
            if flag and channels != 3:
                raise ValueError(
                    f'{name}: bgr_to_rgb is set for a modality with '
                    f'{channels} channels; it needs exactly 3')
        super().__init__(mean=mean, std=std, bgr_to_rgb=False, **kwargs)
        self.stream_channels = stream_channels
        self.stream_bgr_to_rgb = bgr_to_rgb
        order = []
        start = 0
        for flag, channels in zip(bgr_to_rgb, stream_channels):
            index = list(range(start, start + channels))
            order += index[::-1] if flag else index
            start += channels
        self.register_buffer(
            'channel_order', torch.tensor(order), persistent=False)
        self._reorder = any(bgr_to_rgb)

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        """Flip per modality, then normalise, pad and stack like mmseg.

        Args:
            data (dict): Data from the dataloader, with ``inputs`` a list of
                ``(sum(stream_channels), H, W)`` tensors.
            training (bool): Whether in training mode.

        Returns:
            dict: ``inputs`` of shape ``(N, sum(stream_channels), H, W)`` and
            ``data_samples``.
        """
        data = self.cast_data(data)
        inputs = data['inputs']
        total = sum(self.stream_channels)
        for i, img in enumerate(inputs):
            if img.dim() != 3 or img.size(0) != total:
                raise ValueError(
                    f'{type(self).__name__}: input {i} has shape '
                    f'{tuple(img.shape)}, expected ({total}, H, W) with the '
                    f'modalities {self.stream_channels} stacked along '
                    'channels (stream_channels)')
        if self._reorder:
            inputs = [img[self.channel_order] for img in inputs]
        return super().forward({**data, 'inputs': inputs}, training)
