# Copyright (c) cen_mm contributors. All rights reserved.
"""RGB-D inference through mmseg's own ``init_model`` / ``inference_model``.

An RGB-D pair is one ``(H, W, 4)`` array (B, G, R, raw depth), which mmseg's
``inference_model`` hands to the test pipeline like any in-memory image;
:func:`init_model` (mmseg's ``init_model`` plus the RGB-D test pipeline)
makes that pipeline stack it as the config's ``LoadRGBDFromFile`` stacks
files, via :class:`LoadRGBDFromNDArray`.

Example:
    >>> from mmseg.apis import inference_model
    >>> from cen_mm.seg.apis import init_model, load_rgbd
    >>> model = init_model('configs/cen/refinenet_r152_nyudv2.py',
    ...                    'cen_refinenet_r152_nyudv2.pth', device='cpu')
    >>> result = inference_model(
    ...     model, load_rgbd('rgb/000464.png', 'depth/000464.png'))
    >>> result.pred_sem_seg.data        # ensemble, (1, H, W)
    >>> result.pred_sem_seg_depth.data  # depth stream, (1, H, W)
"""
import copy
from pathlib import Path
from typing import List, Optional, Union

import numpy as np
import torch.nn as nn
from mmengine.config import Config
from mmseg.registry import DATASETS

from cen_mm.engine import safe_checkpoint_loading
from cen_mm.seg.datasets.transforms import LoadRGBDFromFile

__all__ = ['init_model', 'load_rgbd', 'rgbd_inference_pipeline']

RGBD_LOADERS = ('LoadRGBDFromFile', 'LoadRGBDFromNDArray')
ANNOTATION_LOADERS = ('LoadAnnotations', 'LoadRGBDAnnotations')


def rgbd_inference_pipeline(cfg: Config) -> List[dict]:
    """The config's test pipeline for in-memory RGB-D arrays.

    mmseg's ``inference_model`` sets the first step of ``cfg.test_pipeline``
    to ``LoadImageFromNDArray`` (which passes the array on); the RGB-D
    loader's arguments move to a :class:`LoadRGBDFromNDArray` after it, and
    annotation loaders are dropped.

    Args:
        cfg (Config): A cen_mm RGB-D segmentation config.

    Returns:
        list[dict]: The pipeline.
    """
    pipeline = cfg.get('test_pipeline')
    if pipeline is None:
        pipeline = cfg.test_dataloader.dataset.pipeline
    pipeline = [copy.deepcopy(dict(t)) for t in pipeline]
    if pipeline and pipeline[0].get('type') == 'LoadImageFromNDArray':
        return pipeline  # already converted
    if not pipeline or pipeline[0].get('type') not in RGBD_LOADERS:
        raise ValueError(
            'rgbd_inference_pipeline: the test pipeline must start with one '
            f'of {RGBD_LOADERS}, got '
            f'{pipeline[0].get("type") if pipeline else "an empty pipeline"}')
    loader = dict(pipeline[0], type='LoadRGBDFromNDArray')
    rest = [t for t in pipeline[1:] if t.get('type') not in ANNOTATION_LOADERS]
    return [dict(type='LoadImageFromNDArray'), loader] + rest


def init_model(config: Union[str, Path, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None) -> nn.Module:
    """mmseg's ``init_model`` for cen_mm RGB-D configs.

    Differences from ``mmseg.apis.init_model``: ``model.cfg.test_pipeline``
    is :func:`rgbd_inference_pipeline`, so mmseg's ``inference_model``
    takes ``(H, W, 4)`` RGB-D arrays; and when the checkpoint carries no
    dataset meta (or none matching the head's classes, or there is no
    checkpoint), ``model.dataset_meta`` is the config's test dataset's
    ``METAINFO`` instead of a guessed dataset's.

    Args:
        config (str | Path | Config): Config file or object.
        checkpoint (str, optional): Checkpoint to load; None keeps the random
            init (nothing is downloaded). Default: None.
        device (str): Device. Default: ``'cpu'``.
        cfg_options (dict, optional): Options merged into the config.

    Returns:
        nn.Module: The segmentor in eval mode, with ``cfg`` and
        ``dataset_meta``.
    """
    import warnings

    from mmseg.apis import init_model as mmseg_init_model

    if isinstance(config, (str, Path)):
        config = Config.fromfile(str(config))
    elif isinstance(config, Config):
        config = copy.deepcopy(config)
    with warnings.catch_warnings(), safe_checkpoint_loading():
        # mmseg warns when it guesses the classes; we replace its guess.
        warnings.filterwarnings('ignore', message='.*dataset_meta.*')
        warnings.filterwarnings('ignore', message='No suitable dataset.*')
        model = mmseg_init_model(config, checkpoint, device, cfg_options)
    meta = getattr(model, 'dataset_meta', None) or {}
    if checkpoint is None or len(meta.get('classes', ())) != \
            model.decode_head.num_classes:
        model.dataset_meta = _dataset_meta_from_config(model.cfg)
    model.cfg.test_pipeline = rgbd_inference_pipeline(model.cfg)
    return model


def _dataset_meta_from_config(cfg: Config) -> Optional[dict]:
    """``classes`` and ``palette`` of the config's test dataset."""
    dataset = cfg.get('test_dataloader', {}).get('dataset', {})
    dataset_cls = DATASETS.get(dataset.get('type', '')) \
        if isinstance(dataset, dict) else None
    meta = getattr(dataset_cls, 'METAINFO', None)
    if meta is None:
        raise ValueError('init_model: the checkpoint has no dataset_meta and '
                         'the config names no dataset class with METAINFO; '
                         'classes and palette are unknown')
    return dict(classes=meta['classes'], palette=meta['palette'])


def load_rgbd(rgb: Union[str, Path],
              depth: Union[str, Path],
              allow_8bit_depth: bool = False) -> np.ndarray:
    """Read and check an RGB-D pair of files into one ``(H, W, 4)`` array.

    The files are read and checked as :class:`LoadRGBDFromFile` does (an
    8-bit colour image; a single-channel, by default 16-bit, depth map in
    raw units of the same size).

    Args:
        rgb (str | Path): Colour image file.
        depth (str | Path): Depth map file.
        allow_8bit_depth (bool): Accept an 8-bit depth map. Default: False.

    Returns:
        np.ndarray: float32 ``(H, W, 4)``: B, G, R (0..255) and raw depth.
    """
    loader = LoadRGBDFromFile(allow_8bit_depth=allow_8bit_depth)
    img = loader._load_rgb(str(rgb))
    d = loader._load_depth(str(depth))
    if d.shape != img.shape[:2]:
        raise ValueError(f'depth map {depth} has size {d.shape} (H, W) but '
                         f'RGB image {rgb} has size {img.shape[:2]}')
    return np.dstack([img.astype(np.float32), d.astype(np.float32)])
