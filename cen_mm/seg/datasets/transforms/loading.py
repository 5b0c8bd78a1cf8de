# Copyright (c) cen_mm contributors. All rights reserved.
"""Loading of stacked RGB-D inputs and checked label maps."""
from typing import Optional, Sequence

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS

from .hha import NYU_INTRINSICS, depth_to_hha

__all__ = [
    'LoadRGBDFromFile', 'LoadRGBDFromNDArray', 'LoadRGBDAnnotations',
    'check_rgb_array', 'check_depth_array', 'check_channel_order'
]

CHANNEL_ORDERS = ('bgr', 'rgb')


def _read_bytes(path: str, kind: str, backend_args: Optional[dict]) -> bytes:
    try:
        return fileio.get(path, backend_args=backend_args)
    except FileNotFoundError as e:
        raise FileNotFoundError(f'{kind} {path} does not exist') from e


def _decode(content: bytes, path: str, kind: str, backend: str) -> np.ndarray:
    try:
        img = mmcv.imfrombytes(content, flag='unchanged', backend=backend)
    except (OSError, ValueError, SyntaxError) as e:
        # pillow raises these for truncated/corrupt files, without the name
        raise ValueError(f'{kind} {path} could not be decoded as an image '
                         f'({type(e).__name__}: {e})') from e
    if img is None:
        raise ValueError(f'{kind} {path} could not be decoded as an image')
    return img


def check_rgb_array(img: np.ndarray, name: str = 'RGB image') -> np.ndarray:
    """Check a colour image: an ``(H, W, 3)`` uint8 array (B, G, R order as
    decoded by mmcv/cv2).

    Args:
        img (np.ndarray): The image.
        name (str): What ``img`` is (a file name, say) for error messages.

    Returns:
        np.ndarray: ``img``.

    Raises:
        ValueError: Not ``(H, W, 3)``, or not uint8 (float images in 0..1
            and 16-bit images would be misread as 0..255 colours).
    """
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(
            f'{name} must have 3 colour channels (H, W, 3), got shape '
            f'{img.shape} (grayscale and RGBA images are refused)')
    if img.dtype != np.uint8:
        raise ValueError(f'{name} must be 8-bit (uint8, 0..255), got dtype '
                         f'{img.dtype}')
    return img


def check_depth_array(depth: np.ndarray,
                      name: str = 'depth map',
                      allow_8bit: bool = False) -> np.ndarray:
    """Check a depth map: a single-channel ``(H, W)`` (or ``(H, W, 1)``)
    integer or float array in raw sensor units, every value finite.

    Args:
        depth (np.ndarray): The depth map.
        name (str): What ``depth`` is, for error messages.
        allow_8bit (bool): Accept uint8 (usually a visualisation, not
            metric depth). Default: False.

    Returns:
        np.ndarray: The depth map as ``(H, W)``.

    Raises:
        ValueError: Not single-channel; a bool, object, string or (unless
            allowed) uint8 dtype; NaN or infinite values.
    """
    depth = np.asarray(depth)
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[..., 0]
    if depth.ndim != 2:
        raise ValueError(
            f'{name} must be single-channel, got shape {depth.shape} (a '
            'colourised or HHA image?)')
    if depth.dtype.kind not in 'uif':
        raise ValueError(
            f'{name} has unsupported dtype {depth.dtype}; depth must be '
            'integers (e.g. uint16, metres x 5000) or floats')
    if depth.dtype == np.uint8 and not allow_8bit:
        raise ValueError(
            f'{name} is 8-bit but 16-bit depth (e.g. metres x 5000 as '
            'uint16) is expected; pass allow_8bit_depth=True if this is '
            'intended')
    if depth.dtype.kind == 'f':
        bad = ~np.isfinite(depth)
        if bad.any():
            # NaN depth makes every loss and prediction NaN (class 0).
            raise ValueError(
                f'{name} has {int(bad.sum())} non-finite values (NaN or '
                f'inf) of {depth.size}; finite depth is expected (mark '
                'missing depth as 0)')
    return depth


def check_channel_order(channel_order: str,
                        name: str = 'channel_order') -> str:
    """Return ``channel_order`` if it is ``'bgr'`` or ``'rgb'``.

    Args:
        channel_order (str): The order of the colour channels.
        name (str): The argument, for error messages.

    Returns:
        str: ``channel_order``.
    """
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f'{name} must be one of {CHANNEL_ORDERS}, got '
                         f'{channel_order!r}')
    return channel_order


@TRANSFORMS.register_module()
class LoadRGBDFromFile(BaseTransform):
    """Load an RGB image and its depth map and stack them along channels.

    The output ``img`` is float32 (H, W, 6): the colour image as decoded by
    mmcv (B, G, R order, values 0..255) followed by the depth map times
    ``depth_scale`` repeated on 3 channels, as the official CEN code feeds
    depth to a 3-channel stem. With ``hha=True`` the depth channels are
    instead the HHA encoding (disparity, height, angle; 0..255, see
    :func:`depth_to_hha`), computed from ``depth * metres_per_unit``.

    Keeping depth in raw units by default matches the official
    normalisation ``depth / 5000`` when the data preprocessor uses
    ``mean=0, std=5000`` on the depth channels.

    Required Keys:

    - img_path
    - depth_path
    - intrinsics (optional, ``(fx, fy, cx, cy)`` overriding the argument)

    Added Keys:

    - img (np.float32, (H, W, 3 + depth_channels))
    - img_shape
    - ori_shape

    Args:
        depth_scale (float): Factor applied to raw depth values. Defaults to
            1.0 (raw units, e.g. metres x 5000 for NYUDv2).
        depth_channels (int): 3 (replicated, official) or 1. Defaults to 3.
        hha (bool): Encode depth as HHA (always 3 channels). Defaults to
            False.
        metres_per_unit (float): Metres per raw depth unit, for HHA.
            Defaults to 1 / 5000 (NYUDv2, SUN RGB-D after conversion).
        intrinsics (Sequence[float]): ``(fx, fy, cx, cy)`` for HHA. Defaults
            to NYUDv2's colour camera.
        allow_8bit_depth (bool): Accept 8-bit depth images. They are refused
            by default because an 8-bit PNG is almost always a visualisation
            or an HHA image, not metric depth. Defaults to False.
        imdecode_backend (str): mmcv decoding backend. Defaults to 'cv2'.
        backend_args (dict, optional): File backend arguments.
    """

    def __init__(self,
                 depth_scale: float = 1.0,
                 depth_channels: int = 3,
                 hha: bool = False,
                 metres_per_unit: float = 1 / 5000,
                 intrinsics: Sequence[float] = NYU_INTRINSICS,
                 allow_8bit_depth: bool = False,
                 imdecode_backend: str = 'cv2',
                 backend_args: Optional[dict] = None) -> None:
        if depth_channels not in (1, 3):
            raise ValueError(
                f'depth_channels must be 1 or 3, got {depth_channels}')
        if hha and depth_channels != 3:
            raise ValueError('HHA has 3 channels; use depth_channels=3')
        self.depth_scale = depth_scale
        self.depth_channels = depth_channels
        self.hha = hha
        self.metres_per_unit = metres_per_unit
        self.intrinsics = tuple(intrinsics)
        self.allow_8bit_depth = allow_8bit_depth
        self.imdecode_backend = imdecode_backend
        self.backend_args = backend_args.copy() if backend_args else None

    def _load_rgb(self, path: str) -> np.ndarray:
        content = _read_bytes(path, 'RGB image', self.backend_args)
        img = _decode(content, path, 'RGB image', self.imdecode_backend)
        return check_rgb_array(img, f'RGB image {path}')

    def _load_depth(self, path: str) -> np.ndarray:
        content = _read_bytes(path, 'depth map', self.backend_args)
        depth = _decode(content, path, 'depth map', self.imdecode_backend)
        return check_depth_array(depth, f'depth map {path}',
                                 self.allow_8bit_depth)

    def transform(self, results: dict) -> dict:
        """Load and stack the two modalities.

        Args:
            results (dict): Result dict with ``img_path`` and ``depth_path``.

        Returns:
            dict: The result dict with ``img``, ``img_shape``, ``ori_shape``.
        """
        rgb_path = results['img_path']
        depth_path = results.get('depth_path')
        if depth_path is None:
            raise KeyError(f'no depth_path for RGB image {rgb_path}')
        return self._stack(results, self._load_rgb(rgb_path),
                           self._load_depth(depth_path),
                           f'RGB image {rgb_path}',
                           f'depth map {depth_path}')

    def _stack(self, results: dict, rgb: np.ndarray, depth: np.ndarray,
               rgb_name: str, depth_name: str) -> dict:
        """Stack checked colour and depth arrays into ``results['img']``."""
        if depth.shape != rgb.shape[:2]:
            raise ValueError(
                f'{depth_name} has size {depth.shape} (H, W) but {rgb_name} '
                f'has size {rgb.shape[:2]}')
        depth = depth.astype(np.float32)
        if self.hha:
            # Per-sample intrinsics (e.g. SUN RGB-D's sensors) win.
            intrinsics = results.get('intrinsics', self.intrinsics)
            depth = depth_to_hha(depth * self.metres_per_unit, intrinsics)
        else:
            depth = depth * np.float32(self.depth_scale)
            depth = np.repeat(depth[..., None], self.depth_channels, axis=2)
        img = np.concatenate([rgb.astype(np.float32), depth], axis=2)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(depth_scale={self.depth_scale}, '
                f'depth_channels={self.depth_channels}, hha={self.hha}, '
                f'metres_per_unit={self.metres_per_unit}, '
                f'intrinsics={self.intrinsics}, '
                f'allow_8bit_depth={self.allow_8bit_depth}, '
                f"imdecode_backend='{self.imdecode_backend}', "
                f'backend_args={self.backend_args})')


@TRANSFORMS.register_module()
class LoadRGBDFromNDArray(LoadRGBDFromFile):
    """Stack an RGB-D pair given as arrays, like :class:`LoadRGBDFromFile`.

    The RGB-D counterpart of mmseg's ``LoadImageFromNDArray``, for inference
    on images already in memory (see :func:`cen_mm.seg.apis.init_model`).
    ``results['img']`` is either an ``(H, W, 4)`` RGB-D array (colour in
    0..255, then the raw depth; e.g. ``np.dstack([bgr, depth])``) or an
    ``(H, W, 3)`` uint8 colour image with the depth map in
    ``results['depth']``. The arrays get the checks files get (uint8 colour;
    integer or float, finite depth); an error names the array and what was
    expected. The output is what :class:`LoadRGBDFromFile` makes of the same
    pair with the same arguments.

    Required Keys:

    - img
    - depth (optional)

    Modified Keys:

    - img (np.float32, (H, W, 3 + depth_channels))
    - img_path (None if absent)
    - img_shape
    - ori_shape

    Args:
        channel_order (str): Order of the given colour channels, ``'bgr'``
            (as decoded by mmcv/cv2) or ``'rgb'`` (as from PIL); flipped to
            B, G, R like decoded files. Default: ``'bgr'``.
        **kwargs: Arguments of :class:`LoadRGBDFromFile` (``depth_scale``,
            ``depth_channels``, ``hha``, ``allow_8bit_depth`` ...).
    """

    def __init__(self, channel_order: str = 'bgr', **kwargs) -> None:
        super().__init__(**kwargs)
        self.channel_order = check_channel_order(
            channel_order, 'LoadRGBDFromNDArray: channel_order')

    def transform(self, results: dict) -> dict:
        """Check and stack the arrays.

        Args:
            results (dict): Result dict with ``img`` (and ``depth``).

        Returns:
            dict: The result dict with ``img``, ``img_shape``, ``ori_shape``.
        """
        img = np.asarray(results['img'])
        if 'depth' in results:
            rgb, depth = img, results.pop('depth')
            rgb_name, depth_name = 'RGB array (results["img"])', \
                'depth array (results["depth"])'
        elif img.ndim == 3 and img.shape[2] == 4:
            rgb, depth = img[..., :3], img[..., 3]
            rgb_name, depth_name = 'RGB-D array colour channels', \
                'RGB-D array depth channel'
            rgb = self._colour_from_rgbd(rgb)
        else:
            raise ValueError(
                'RGB-D array: expected img of shape (H, W, 4) (B, G, R, raw '
                'depth) or (H, W, 3) with results["depth"], got shape '
                f'{img.shape}')
        rgb = check_rgb_array(rgb, rgb_name)
        if self.channel_order == 'rgb':
            rgb = np.ascontiguousarray(rgb[..., ::-1])
        results.setdefault('img_path', None)
        return self._stack(
            results, rgb,
            check_depth_array(depth, depth_name, self.allow_8bit_depth),
            'the colour image', 'the depth map')

    @staticmethod
    def _colour_from_rgbd(rgb: np.ndarray) -> np.ndarray:
        """The colour channels of a one-dtype RGB-D array as uint8."""
        name = 'RGB-D array colour channels'
        if rgb.dtype.kind not in 'uif':
            raise ValueError(
                f'RGB-D array has unsupported dtype {rgb.dtype}; expected '
                'numbers (e.g. float32: B, G, R in 0..255, raw depth)')
        if rgb.dtype == np.uint8:
            return rgb
        # A one-dtype array carries 16-bit depth, so the colour comes as
        # wider integers or floats; only exact 0..255 integers are colour.
        if not np.isfinite(rgb).all() or rgb.min() < 0 or rgb.max() > 255 \
                or not np.array_equal(rgb, np.round(rgb)):
            raise ValueError(
                f'{name} must hold 0..255 integers (B, G, R), got values in '
                f'[{rgb.min()}, {rgb.max()}] (dtype {rgb.dtype}; float '
                'colours in 0..1?)')
        return rgb.astype(np.uint8)

    def __repr__(self) -> str:
        return (super().__repr__()[:-1] +
                f", channel_order='{self.channel_order}')")


@TRANSFORMS.register_module()
class LoadRGBDAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` plus checks of the label map.

    The label file must be a single-channel integer image with values that
    fit in uint8 (mmseg casts labels to uint8, which would silently wrap
    larger ids). After ``reduce_zero_label`` and ``label_map`` are applied as
    in mmseg, every value must lie in ``[0, num_classes)`` or equal
    ``ignore_index`` (``num_classes`` comes from the dataset, e.g.
    :class:`RGBDSegDataset`, unless given here); if an image was loaded
    before, its original size must match. Any violation raises an error
    naming the file.

    Required Keys:

    - seg_map_path
    - reduce_zero_label (optional)
    - label_map (optional)
    - ori_shape (optional, checked when present)
    - num_classes (optional, set by :class:`RGBDSegDataset`)

    Added Keys:

    - gt_seg_map (np.uint8)

    Args:
        num_classes (int, optional): Number of classes. None takes
            ``results['num_classes']`` (the dataset's class count) and skips
            the range check if that is absent too. Defaults to None.
        ignore_index (int): Void label. Defaults to 255.
        **kwargs: Arguments of mmseg ``LoadAnnotations``
            (``reduce_zero_label``, ``backend_args``, ``imdecode_backend``).
    """

    def __init__(self,
                 num_classes: Optional[int] = None,
                 ignore_index: int = 255,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def _load_seg_map(self, results: dict) -> None:
        path = results.get('seg_map_path')
        if path is None:
            raise KeyError(
                f"LoadRGBDAnnotations: sample {results.get('img_path')} has "
                'no seg_map_path: the dataset lists no label map for it '
                "(data_prefix['seg_map_path'] or the ann_file's label "
                'column); a split used for training or evaluation needs '
                'label maps')
        content = _read_bytes(path, 'label map', self.backend_args)
        raw = _decode(content, path, 'label map', self.imdecode_backend)
        raw = raw.squeeze()
        if raw.ndim != 2:
            raise ValueError(
                f'label map {path} must be single-channel class ids, got '
                f'shape {raw.shape}')
        if raw.dtype.kind not in 'ui' or (raw.size and raw.max() > 255):
            raise ValueError(
                f'label map {path} must hold integer ids in 0..255, got '
                f'dtype {raw.dtype} with maximum {raw.max()}')
        ori_shape = results.get('ori_shape')
        if ori_shape is not None and tuple(ori_shape[:2]) != raw.shape:
            raise ValueError(
                f'label map {path} has size {raw.shape} but the image '
                f"{results.get('img_path')} has size {tuple(ori_shape[:2])}")
        seg = raw.astype(np.uint8)

        # Same conventions as mmseg's LoadAnnotations.
        if self.reduce_zero_label is None:
            self.reduce_zero_label = results['reduce_zero_label']
        assert self.reduce_zero_label == results['reduce_zero_label'], (
            'Initialize dataset with `reduce_zero_label` as '
            f'{results["reduce_zero_label"]} but when load annotation the '
            f'`reduce_zero_label` is {self.reduce_zero_label}')
        if self.reduce_zero_label:
            seg[seg == 0] = 255
            seg = seg - 1
            seg[seg == 254] = 255
        if results.get('label_map', None) is not None:
            old = seg.copy()
            for old_id, new_id in results['label_map'].items():
                seg[old == old_id] = new_id

        num_classes = self.num_classes
        if num_classes is None:
            num_classes = results.get('num_classes')
        if num_classes is not None:
            bad = (seg >= num_classes) & (seg != self.ignore_index)
            if bad.any():
                values = np.unique(seg[bad])
                raise ValueError(
                    f'label map {path} has values {values[:10].tolist()} '
                    f'outside [0, {num_classes}) and ignore_index '
                    f'{self.ignore_index} (check reduce_zero_label and the '
                    'label encoding)')
        results['gt_seg_map'] = seg
        results['seg_fields'].append('gt_seg_map')

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index}, '
                f'reduce_zero_label={self.reduce_zero_label}, '
                f"imdecode_backend='{self.imdecode_backend}', "
                f'backend_args={self.backend_args})')
