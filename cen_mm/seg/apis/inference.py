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

from cen_mm.engine import check_stream_host, load_model_checkpoint
from cen_mm.seg.datasets.transforms import (LoadRGBDFromFile,
                                            check_channel_order)

__all__ = ['init_model', 'load_rgbd', 'rgbd_inference_pipeline']

RGBD_LOADERS = ('LoadRGBDFromFile', 'LoadRGBDFromNDArray')
ANNOTATION_LOADERS = ('LoadAnnotations', 'LoadRGBDAnnotations')


def rgbd_inference_pipeline(cfg: Config,
                            channel_order: str = 'bgr') -> List[dict]:
    """The config's test pipeline for in-memory RGB-D arrays.

    mmseg's ``inference_model`` sets the first step of ``cfg.test_pipeline``
    to ``LoadImageFromNDArray`` (which passes the array on); the RGB-D
    loader's arguments move to a :class:`LoadRGBDFromNDArray` after it, and
    annotation loaders are dropped.

    Args:
        cfg (Config): A cen_mm RGB-D segmentation config.
        channel_order (str): Order of the colour channels of the arrays the
            pipeline will get, ``'bgr'`` or ``'rgb'``. Default: ``'bgr'``.

    Returns:
        list[dict]: The pipeline.
    """
    check_channel_order(channel_order)
    pipeline = cfg.get('test_pipeline')
    if pipeline is None:
        pipeline = cfg.test_dataloader.dataset.pipeline
    pipeline = [copy.deepcopy(dict(t)) for t in pipeline]
    if pipeline and pipeline[0].get('type') == 'LoadImageFromNDArray':
        for step in pipeline:  # already converted
            if step.get('type') == 'LoadRGBDFromNDArray':
                step['channel_order'] = channel_order
        return pipeline
    if not pipeline or pipeline[0].get('type') not in RGBD_LOADERS:
        raise ValueError(
            'rgbd_inference_pipeline: the test pipeline must start with one '
            f'of {RGBD_LOADERS}, got '
            f'{pipeline[0].get("type") if pipeline else "an empty pipeline"}')
    loader = dict(pipeline[0], type='LoadRGBDFromNDArray',
                  channel_order=channel_order)
    rest = [t for t in pipeline[1:] if t.get('type') not in ANNOTATION_LOADERS]
    return [dict(type='LoadImageFromNDArray'), loader] + rest


def init_model(config: Union[str, Path, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None,
               strict: bool = True,
               channel_order: str = 'bgr') -> nn.Module:
    """mmseg's ``init_model`` for cen_mm RGB-D configs.

    Differences from ``mmseg.apis.init_model``: ``model.cfg.test_pipeline``
    is :func:`rgbd_inference_pipeline`, so mmseg's ``inference_model``
    takes ``(H, W, 4)`` RGB-D arrays; loading is strict (a checkpoint that
    leaves weights of the model unfilled is an error, where mmseg warns and
    goes on with a partly random model); a model whose stream-aware parts
    sit in a host that does not fold the streams is refused
    (:func:`~cen_mm.engine.check_stream_host`); and when the checkpoint
    carries no dataset meta (or none matching the head's classes, or there
    is no checkpoint), ``model.dataset_meta`` is the config's test dataset's
    ``METAINFO`` instead of a guessed dataset's.

    Args:
        config (str | Path | Config): Config file or object.
        checkpoint (str, optional): Checkpoint to load; None keeps the random
            init (nothing is downloaded). Default: None.
        device (str): Device. Default: ``'cpu'``.
        cfg_options (dict, optional): Options merged into the config.
        strict (bool): Refuse a checkpoint that leaves model weights
            unfilled (another architecture, an official CEN checkpoint before
            conversion); False loads the matching part on purpose.
            Default: True.
        channel_order (str): Order of the colour channels of the arrays
            given to ``inference_model``, ``'bgr'`` (as :func:`load_rgbd`
            and cv2 give them) or ``'rgb'``. Default: ``'bgr'``.

    Returns:
        nn.Module: The segmentor in eval mode, with ``cfg`` and
        ``dataset_meta``.
    """
    from mmseg.apis import init_model as mmseg_init_model

    if isinstance(config, (str, Path)):
        config = Config.fromfile(str(config))
    elif isinstance(config, Config):
        config = copy.deepcopy(config)
    check_channel_order(channel_order)
    # mmseg's loader is lenient (a "do not match exactly" warning), so the
    # weights are loaded here, strictly unless asked otherwise.
    model = mmseg_init_model(config, None, device, cfg_options)
    check_stream_host(model)
    meta = None
    if checkpoint is not None:
        meta = load_model_checkpoint(
            model, checkpoint, strict=strict).get('meta', {}).get(
                'dataset_meta')
    if meta is None or len(meta.get('classes', ())) != \
            model.decode_head.num_classes:
        meta = _dataset_meta_from_config(model.cfg)
    model.dataset_meta = meta
    model.cfg.test_pipeline = rgbd_inference_pipeline(model.cfg,
                                                      channel_order)
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
              allow_8bit_depth: bool = False,
              channel_order: str = 'bgr') -> np.ndarray:
    """Read and check an RGB-D pair of files into one ``(H, W, 4)`` array.

    The files are read and checked as :class:`LoadRGBDFromFile` does (an
    8-bit colour image; a single-channel, by default 16-bit, depth map in
    raw units of the same size).

    Args:
        rgb (str | Path): Colour image file.
        depth (str | Path): Depth map file.
        allow_8bit_depth (bool): Accept an 8-bit depth map. Default: False.
        channel_order (str): Order of the returned colour channels,
            ``'bgr'`` or ``'rgb'``; give :func:`init_model` the same.
            Default: ``'bgr'``.

    Returns:
        np.ndarray: float32 ``(H, W, 4)``: the colour (0..255) and raw
        depth.
    """
    check_channel_order(channel_order)
    loader = LoadRGBDFromFile(allow_8bit_depth=allow_8bit_depth)
    img = loader._load_rgb(str(rgb))
    d = loader._load_depth(str(depth))
    if d.shape != img.shape[:2]:
        raise ValueError(f'depth map {depth} has size {d.shape} (H, W) but '
                         f'RGB image {rgb} has size {img.shape[:2]}')
    if channel_order == 'rgb':
        img = img[..., ::-1]
    return np.dstack([img.astype(np.float32), d.astype(np.float32)])
