# Copyright (c) cen_mm contributors. All rights reserved.
"""Augmentations for channel-stacked RGB-D images (H, W, 3 + k)."""
from typing import Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform, RandomResize
from mmcv.transforms.utils import cache_randomness
from mmseg.datasets.transforms import PhotoMetricDistortion, Resize
from mmseg.registry import TRANSFORMS

__all__ = [
    'RGBDResize', 'RGBDRandomResize', 'RGBPhotoMetricDistortion',
    'RGBDCenterPad'
]


def _check_stacked(img: np.ndarray, rgb_channels: int, name: str) -> None:
    if img.ndim != 3 or img.shape[2] <= rgb_channels:
        raise ValueError(
            f'{name} expects a channel-stacked image (H, W, {rgb_channels} + '
            f'k) with k >= 1 extra (depth) channels, got shape {img.shape}')


@TRANSFORMS.register_module()
class RGBDResize(Resize):
    """mmseg ``Resize`` with its own interpolation for the depth channels.

    The first ``rgb_channels`` channels of ``img`` are resized with
    ``interpolation``; the remaining (depth) channels with
    ``depth_interpolation`` to exactly the same size. The official CEN
    pipeline uses bicubic for RGB and nearest for depth (nearest keeps depth
    readings real: no blending across object edges or with holes). Label
    maps in ``seg_fields`` are resized with nearest, as in mmseg.

    Bicubic interpolation overshoots; the official code resizes uint8 RGB,
    which saturates, so the RGB channels are clipped to ``rgb_clip``.

    Required Keys:

    - img (H, W, rgb_channels + k)
    - gt_seg_map (optional)

    Modified Keys:

    - img
    - gt_seg_map
    - img_shape

    Added Keys:

    - scale
    - scale_factor
    - keep_ratio

    Args:
        scale (int | tuple, optional): Target ``(w, h)`` as in mmcv
            ``Resize``.
        scale_factor (float | tuple, optional): Scale factor.
        keep_ratio (bool): Keep the aspect ratio. Defaults to False.
        interpolation (str): RGB interpolation. Defaults to 'bicubic'.
        depth_interpolation (str): Depth interpolation. Defaults to
            'nearest'.
        rgb_channels (int): Number of leading colour channels. Defaults to 3.
        rgb_clip (tuple[float], optional): Range to clip the resized colour
            channels to; None disables. Defaults to (0, 255).
        **kwargs: Other arguments of mmcv ``Resize`` (``backend`` must be
            'cv2' for float images).
    """

    def __init__(self,
                 scale: Optional[Union[int, Tuple[int, int]]] = None,
                 scale_factor: Optional[Union[float, Tuple[float,
                                                           float]]] = None,
                 keep_ratio: bool = False,
                 interpolation: str = 'bicubic',
                 depth_interpolation: str = 'nearest',
                 rgb_channels: int = 3,
                 rgb_clip: Optional[Tuple[float, float]] = (0, 255),
                 **kwargs) -> None:
        super().__init__(
            scale=scale,
            scale_factor=scale_factor,
            keep_ratio=keep_ratio,
            interpolation=interpolation,
            **kwargs)
        self.depth_interpolation = depth_interpolation
        self.rgb_channels = rgb_channels
        self.rgb_clip = rgb_clip

    def _resize_img(self, results: dict) -> None:
        img = results.get('img', None)
        if img is None:
            return
        _check_stacked(img, self.rgb_channels, type(self).__name__)
        # The parent computes size and scale factor from the RGB part.
        results['img'] = np.ascontiguousarray(img[..., :self.rgb_channels])
        super()._resize_img(results)
        rgb = results['img']
        if self.rgb_clip is not None:
            rgb = np.clip(rgb, *self.rgb_clip)
        h, w = rgb.shape[:2]
        rest = mmcv.imresize(
            np.ascontiguousarray(img[..., self.rgb_channels:]), (w, h),
            interpolation=self.depth_interpolation,
            backend=self.backend)
        if rest.ndim == 2:  # cv2 drops a singleton channel axis
            rest = rest[..., None]
        results['img'] = np.concatenate([rgb, rest.astype(rgb.dtype)],
                                        axis=2)

    def __repr__(self) -> str:
        repr_str = super().__repr__()
        return (f'{repr_str}, depth_interpolation='
                f'{self.depth_interpolation}, rgb_channels='
                f'{self.rgb_channels}, rgb_clip={self.rgb_clip})')


@TRANSFORMS.register_module()
class RGBDRandomResize(RandomResize):
    """Random rescale of an RGB-D image, official CEN ``ResizeAndScale``.

    Without ``scale`` (the default, official behaviour) a factor
    ``s ~ U(ratio_range)`` is drawn relative to the image itself; if the
    shorter side times ``s`` falls below ``min_short_side``, ``s`` becomes
    ``min_short_side / shorter_side``. The image is resized to
    ``(round(w * s), round(h * s))``. With ``scale`` set, mmcv's
    ``RandomResize`` semantics apply (a random scale around ``scale``).
    Resizing is done by ``resize_type`` (default :class:`RGBDResize`: bicubic
    RGB, nearest depth, nearest labels).

    Required Keys:

    - img
    - gt_seg_map (optional)

    Modified Keys:

    - img
    - gt_seg_map
    - img_shape

    Added Keys:

    - scale
    - scale_factor
    - keep_ratio

    Args:
        scale (tuple, optional): mmcv ``RandomResize`` scale(s); None for
            image-relative scaling. Defaults to None.
        ratio_range (tuple[float]): Range of the scale factor. Defaults to
            (0.5, 2.0).
        min_short_side (int, optional): Lower bound of the resized shorter
            side (image-relative mode only). Defaults to 350 (official).
        resize_type (str): Resize transform to build. Defaults to
            'RGBDResize'.
        **resize_kwargs: Arguments of the resize transform
            (``interpolation``, ``depth_interpolation``, ``keep_ratio``...).
    """

    def __init__(self,
                 scale: Optional[Union[Tuple[int, int],
                                       Sequence[Tuple[int, int]]]] = None,
                 ratio_range: Tuple[float, float] = (0.5, 2.0),
                 min_short_side: Optional[int] = 350,
                 resize_type: str = 'RGBDResize',
                 **resize_kwargs) -> None:
        # mmcv's RandomResize builds from mmcv's registry, which only sees
        # mmseg's transforms under the mmseg default scope; name the scope.
        if '.' not in resize_type and resize_type in TRANSFORMS:
            resize_type = f'{TRANSFORMS.scope}.{resize_type}'
        super().__init__(
            scale=scale,
            ratio_range=ratio_range,
            resize_type=resize_type,
            **resize_kwargs)
        self.min_short_side = min_short_side

    @cache_randomness
    def _random_image_scale(self, h: int, w: int) -> Tuple[int, int]:
        ratio = np.random.uniform(*self.ratio_range)
        if self.min_short_side is not None and min(
                h, w) * ratio < self.min_short_side:
            ratio = self.min_short_side / min(h, w)
        return int(w * ratio + 0.5), int(h * ratio + 0.5)

    def transform(self, results: dict) -> dict:
        """Resize ``results`` by a random factor.

        Args:
            results (dict): Result dict with ``img``.

        Returns:
            dict: Resized results.
        """
        if self.scale is not None:
            return super().transform(results)
        h, w = results['img'].shape[:2]
        results['scale'] = self._random_image_scale(h, w)
        self.resize.scale = results['scale']
        return self.resize(results)

    def __repr__(self) -> str:
        return (f'{super().__repr__()[:-1]}, '
                f'min_short_side={self.min_short_side})')


@TRANSFORMS.register_module()
class RGBPhotoMetricDistortion(PhotoMetricDistortion):
    """mmseg ``PhotoMetricDistortion`` on the colour channels only.

    mmseg's transform assumes a 3-channel image (it fails on 6 channels and
    silently drops a 4th). Here the first ``rgb_channels`` channels are
    rounded and clipped to uint8, distorted by the parent, and put back in
    the input dtype; the depth channels are left untouched.

    Required Keys:

    - img (H, W, rgb_channels + k)

    Modified Keys:

    - img (colour channels only)

    Args:
        rgb_channels (int): Number of leading colour channels. Defaults to 3.
        **kwargs: Arguments of mmseg ``PhotoMetricDistortion``.
    """

    def __init__(self, rgb_channels: int = 3, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rgb_channels = rgb_channels

    def transform(self, results: dict) -> dict:
        """Distort the colour channels.

        Args:
            results (dict): Result dict with a channel-stacked ``img``.

        Returns:
            dict: Result dict with distorted colour channels.
        """
        img = results['img']
        _check_stacked(img, self.rgb_channels, type(self).__name__)
        rgb = np.clip(np.round(img[..., :self.rgb_channels]), 0,
                      255).astype(np.uint8)
        rgb = super().transform(dict(img=rgb))['img']
        results['img'] = np.concatenate(
            [rgb.astype(img.dtype), img[..., self.rgb_channels:]], axis=2)
        return results

    def __repr__(self) -> str:
        return (f'{super().__repr__()[:-1]}, '
                f'rgb_channels={self.rgb_channels})')


@TRANSFORMS.register_module()
class RGBDCenterPad(BaseTransform):
    """Pad to at least ``size``, centred, as the official CEN ``Pad``.

    The official training pipeline pads *before* its random crop: a side
    shorter than the crop gets ``ceil((size - side) / 2)`` pixels on both
    sides (so the result can be one pixel larger than ``size``), each image
    channel with its own constant and the label with 255. Its constants are
    the ImageNet mean in RGB order, cast to the array dtype (uint8 RGB and
    integer depth): 123 / 116 / 103, used for the RGB channels and also for
    the 3 replicated depth channels. For cen_mm's ``[B, G, R, d, d, d]``
    image that is ``pad_val=(103, 116, 123, 123, 116, 103)`` (the default).
    cen_mm's default pipeline instead crops first and lets the data
    preprocessor pad bottom-right.

    Required Keys:

    - img (H, W, C)
    - gt_seg_map (optional), other ``seg_fields``

    Modified Keys:

    - img, ``seg_fields``
    - img_shape

    Added Keys:

    - pad_shape
    - padding (top, bottom, left, right)

    Args:
        size (tuple[int, int]): Minimum ``(h, w)``. Defaults to (500, 500).
        pad_val (Sequence[float]): One constant per image channel.
            Defaults to the official values (see above).
        seg_pad_val (int): Label padding. Defaults to 255.
    """

    def __init__(self,
                 size: Tuple[int, int] = (500, 500),
                 pad_val: Sequence[float] = (103, 116, 123, 123, 116, 103),
                 seg_pad_val: int = 255) -> None:
        super().__init__()
        self.size = tuple(size)
        self.pad_val = tuple(float(v) for v in pad_val)
        self.seg_pad_val = seg_pad_val

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.ndim != 3 or img.shape[2] != len(self.pad_val):
            raise ValueError(
                f'RGBDCenterPad: pad_val has {len(self.pad_val)} values but '
                f'the image {results.get("img_path", "")} has shape '
                f'{img.shape}')
        h, w = img.shape[:2]
        dy = -(-max(self.size[0] - h, 0) // 2)
        dx = -(-max(self.size[1] - w, 0) // 2)
        padding = ((dy, dy), (dx, dx))
        if dy or dx:
            img = np.stack([
                np.pad(img[..., c], padding, constant_values=v)
                for c, v in enumerate(self.pad_val)
            ], axis=-1)
            for key in results.get('seg_fields', []):
                results[key] = np.pad(
                    results[key], padding, constant_values=self.seg_pad_val)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['pad_shape'] = img.shape[:2]
        results['padding'] = (dy, dy, dx, dx)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(size={self.size}, '
                f'pad_val={self.pad_val}, seg_pad_val={self.seg_pad_val})')
