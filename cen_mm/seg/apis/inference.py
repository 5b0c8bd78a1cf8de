# Copyright (c) cen_mm contributors. All rights reserved.
"""High-level RGB-D inference: build a CEN segmentor, segment one RGB-D pair.

Example:
    >>> from cen_mm.seg.apis import init_cen_model, inference_rgbd
    >>> model = init_cen_model('configs/cen/refinenet_r152_nyudv2.py',
    ...                        'cen_refinenet_r152_nyudv2.pth')
    >>> result = inference_rgbd(model, 'rgb/000464.png', 'depth/000464.png')
    >>> result.pred_sem_seg.data        # ensemble, (1, H, W)
    >>> result.pred_sem_seg_depth.data  # depth stream, (1, H, W)
"""
import copy
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Union

import mmcv
import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmengine.utils import import_modules_from_strings
from mmseg.registry import DATASETS, MODELS, TRANSFORMS
from mmseg.structures import SegDataSample

from cen_mm.seg.datasets.transforms.hha import depth_to_hha

__all__ = ['init_cen_model', 'inference_rgbd', 'get_palette_for']

RGBDInput = Union[str, Path, np.ndarray]
LOAD_RGBD = 'LoadRGBDFromFile'
ANNOTATION_LOADERS = ('LoadAnnotations', 'LoadRGBDAnnotations')


def init_cen_model(config: Union[str, Path, Config],
                   checkpoint: Optional[str] = None,
                   device: str = 'cpu',
                   cfg_options: Optional[dict] = None) -> nn.Module:
    """Build a CEN segmentor from a config and optionally load weights.

    Pretrained-backbone ``init_cfg`` entries are dropped (nothing is
    downloaded); without ``checkpoint`` the weights stay at random init.
    ``model.dataset_meta`` (classes, palette) comes from the checkpoint's
    meta when present, else from the config's test dataset class.

    Args:
        config (str | Path | Config): Config file or object.
        checkpoint (str, optional): Checkpoint to load. Default: None.
        device (str): Device to put the model on. Default: ``'cpu'``.
        cfg_options (dict, optional): Options merged into the config.

    Returns:
        nn.Module: The segmentor in eval mode, with ``cfg`` and
        ``dataset_meta`` attributes.
    """
    if isinstance(config, (str, Path)):
        config = Config.fromfile(str(config))
    elif not isinstance(config, Config):
        raise TypeError('config must be a filename or a Config, got '
                        f'{type(config).__name__}')
    else:
        config = copy.deepcopy(config)
    if cfg_options:
        config.merge_from_dict(cfg_options)
    if config.get('custom_imports'):
        import_modules_from_strings(**config.custom_imports)
    for key in ('backbone', 'decode_head', 'neck', 'auxiliary_head'):
        part = config.model.get(key)
        if isinstance(part, dict) and 'init_cfg' in part:
            part.init_cfg = None
    config.model.pretrained = None
    config.model.train_cfg = None
    init_default_scope(config.get('default_scope', 'mmseg'))

    model = MODELS.build(config.model)
    dataset_meta = None
    if checkpoint is not None:
        ckpt = load_checkpoint(model, checkpoint, map_location='cpu')
        dataset_meta = ckpt.get('meta', {}).get('dataset_meta')
    if dataset_meta is None:
        dataset_meta = _dataset_meta_from_config(config)
    model.dataset_meta = dataset_meta
    model.cfg = config
    model.to(device)
    model.eval()
    return model


def _dataset_meta_from_config(config: Config) -> Optional[Dict]:
    """The ``METAINFO`` of the config's test dataset class, if any."""
    dataset = config.get('test_dataloader', {}).get('dataset', {})
    dataset_cls = DATASETS.get(dataset.get('type', '')) \
        if isinstance(dataset, dict) else None
    meta = getattr(dataset_cls, 'METAINFO', None)
    if meta is None:
        warnings.warn('init_cen_model: no dataset_meta in the checkpoint and '
                      'no dataset class in the config; classes and palette '
                      'are unknown')
        return None
    return dict(meta)


def get_palette_for(model: nn.Module) -> np.ndarray:
    """The model's dataset palette as a ``(K, 3)`` uint8 RGB array.

    Falls back to a fixed pseudo-random palette when the model has none.
    """
    num_classes = model.decode_head.num_classes
    meta = getattr(model, 'dataset_meta', None) or {}
    palette = meta.get('palette')
    if palette is None or len(palette) < num_classes:
        rng = np.random.RandomState(42)
        palette = rng.randint(0, 256, size=(num_classes, 3))
    return np.asarray(palette, dtype=np.uint8)[:num_classes]


def _test_pipeline_cfg(config: Config) -> List[dict]:
    if config.get('test_pipeline') is not None:
        pipeline = config.test_pipeline
    else:
        pipeline = config.test_dataloader.dataset.pipeline
    pipeline = [
        copy.deepcopy(dict(t)) for t in pipeline
        if t.get('type') not in ANNOTATION_LOADERS
    ]
    if not pipeline:
        raise ValueError('inference_rgbd: the config has an empty test '
                         'pipeline')
    return pipeline


def _read_rgb(rgb: RGBDInput, channel_order: str) -> np.ndarray:
    if isinstance(rgb, (str, Path)):
        img = mmcv.imread(str(rgb), flag='color', channel_order='bgr')
        if img is None:
            raise FileNotFoundError(f'inference_rgbd: cannot read the RGB '
                                    f'image {rgb}')
        return img
    img = np.asarray(rgb)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError('inference_rgbd: the RGB image must be an HxWx3 '
                         f'array, got shape {img.shape}')
    if channel_order not in ('bgr', 'rgb'):
        raise ValueError("channel_order must be 'bgr' or 'rgb', got "
                         f'{channel_order!r}')
    return img[..., ::-1] if channel_order == 'rgb' else img


def _read_depth(depth: RGBDInput) -> np.ndarray:
    if isinstance(depth, (str, Path)):
        d = mmcv.imread(str(depth), flag='unchanged')
        if d is None:
            raise FileNotFoundError(f'inference_rgbd: cannot read the depth '
                                    f'map {depth}')
    else:
        d = np.asarray(depth)
    if d.ndim == 3 and d.shape[2] == 1:
        d = d[..., 0]
    if d.ndim != 2:
        raise ValueError('inference_rgbd: the depth map must be a '
                         f'single-channel HxW map, got shape {d.shape}'
                         + (f' ({depth})' if isinstance(depth,
                                                       (str, Path)) else ''))
    return d


def _stack_rgbd(rgb: np.ndarray, depth: np.ndarray, loader) -> np.ndarray:
    """Stack like ``loader`` (a ``LoadRGBDFromFile``) does for files:
    float32 ``[B, G, R, d, d, d]`` with the depth times ``depth_scale`` (or
    its HHA encoding, or ``[B, G, R, d]`` with ``depth_channels=1``)."""
    if rgb.shape[:2] != depth.shape[:2]:
        raise ValueError(f'inference_rgbd: the RGB image {rgb.shape[:2]} and '
                         f'the depth map {depth.shape[:2]} differ in size')
    d = depth.astype(np.float32)
    if loader.hha:
        d = depth_to_hha(d * loader.metres_per_unit, loader.intrinsics)
    else:
        d = np.repeat((d * np.float32(loader.depth_scale))[..., None],
                      loader.depth_channels, axis=2)
    return np.concatenate([rgb.astype(np.float32), d], axis=2)


def inference_rgbd(model: nn.Module,
                   rgb: RGBDInput,
                   depth: RGBDInput,
                   channel_order: str = 'bgr') -> SegDataSample:
    """Segment one RGB-D pair with a CEN segmentor.

    Both inputs given as paths go through the config's test pipeline
    unchanged (its loading step must be ``LoadRGBDFromFile``). Otherwise
    the loading step is skipped and the stacked ``img`` is built here the
    way the config's ``LoadRGBDFromFile`` builds it (``[B, G, R, d, d, d]``
    float32, the depth times its ``depth_scale``, or HHA), as mmseg's
    ``inference_model`` does for arrays.

    Args:
        model (nn.Module): A segmentor from :func:`init_cen_model` (it needs
            the ``cfg`` attribute).
        rgb (str | Path | np.ndarray): RGB image file, or an HxWx3 uint8
            array in ``channel_order``.
        depth (str | Path | np.ndarray): Depth map file (e.g. uint16 PNG, in
            raw sensor units) or an HxW array in the same units.
        channel_order (str): Channel order of an RGB array, ``'bgr'`` (as
            read by mmcv/cv2, mmseg's convention) or ``'rgb'``.
            Default: ``'bgr'``.

    Returns:
        :obj:`SegDataSample`: ``pred_sem_seg`` / ``seg_logits`` hold the
        ensemble and ``pred_sem_seg_{name}`` / ``seg_logits_{name}`` each
        stream, at the input resolution.
    """
    cfg = getattr(model, 'cfg', None)
    if cfg is None:
        raise AttributeError('inference_rgbd: the model has no `cfg`; build '
                             'it with init_cen_model')
    pipeline = _test_pipeline_cfg(cfg)
    loader = pipeline[0]
    if loader.get('type') != LOAD_RGBD:
        raise ValueError(
            f'inference_rgbd: the test pipeline must start with {LOAD_RGBD}, '
            f'got {loader.get("type")!r}')
    if isinstance(rgb, (str, Path)) and isinstance(depth, (str, Path)):
        results = dict(img_path=str(rgb), depth_path=str(depth))
    else:
        img = _stack_rgbd(
            _read_rgb(rgb, channel_order), _read_depth(depth),
            TRANSFORMS.build(loader))
        results = dict(
            img=img,
            img_path=str(rgb) if isinstance(rgb, (str, Path)) else None,
            img_shape=img.shape[:2],
            ori_shape=img.shape[:2])
        pipeline = pipeline[1:]
    data = Compose(pipeline)(results)
    batch = dict(inputs=[data['inputs']], data_samples=[data['data_samples']])
    with torch.no_grad():
        return model.test_step(batch)[0]
