# Copyright (c) cen_mm contributors. All rights reserved.
"""Refuse wrong combinations of CEN pieces before anything trains.

Each check raises an error naming the module or config key and what was
expected, where the wrong combination would otherwise train or predict
silently (or fail deep inside a forward pass). The tools and the inference
API call them; :class:`~cen_mm.engine.hooks.GammaSparsityHook` calls
:func:`check_stream_host` too, so a CEN config run by a host's own tools is
covered.
"""
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch.nn as nn
from mmengine.config import Config
from mmengine.model import BaseModel

from cen_mm.cnn import exchange_norms
from .sparsity import unwrap_model

__all__ = [
    'check_stream_host', 'dataset_classes', 'check_num_classes',
    'check_norm_types'
]


def _root_model(model: nn.Module) -> nn.Module:
    """Unwrap DDP-style wrappers and TTA models (both keep ``.module``)."""
    model = unwrap_model(model)
    while not _declares_streams(model) and isinstance(
            getattr(model, 'module', None), nn.Module):
        model = model.module
    return model


def _declares_streams(model: nn.Module) -> bool:
    # ``stream_names`` is a tuple on the segmentor and a method on the
    # multi-flow translation model; either declares the streams.
    return hasattr(model, 'num_streams') or hasattr(model, 'stream_names')


def check_stream_host(model: nn.Module) -> None:
    """Refuse stream-aware modules in a model that does not fold streams.

    Exchanging norms, CEN backbones, multi-stream heads and generators take
    M streams folded into the batch (``(M * N, C, H, W)``); only a model
    that declares its streams (``num_streams`` / ``stream_names``, e.g.
    ``CENEncoderDecoder``, ``CENPix2Pix``) folds them. Inside another model
    (mmseg's plain ``EncoderDecoder``, say) an exchanging norm would swap
    channels between unrelated images of the batch and a multi-stream head
    would predict M + 1 blocks, all silently.

    Args:
        model (nn.Module): The built model (wrappers are unwrapped).

    Raises:
        TypeError: A stream-aware module with more than one stream sits in a
            model that declares no streams.
    """
    root = _root_model(model)
    if _declares_streams(root):
        return
    norms = {id(layer) for _, layer in exchange_norms(root)}
    # A sub-model (an mmengine BaseModel, e.g. a GAN's generator) that
    # declares streams folds them for what it holds.
    hosts = [f'{name}.' for name, module in root.named_modules()
             if name and isinstance(module, BaseModel)
             and _declares_streams(module)]
    # named_modules order: a CEN backbone is listed before its norms.
    found = [(name, module) for name, module in root.named_modules()
             if name and (id(module) in norms or isinstance(
                 getattr(module, 'num_streams', None), int))
             and module.num_streams > 1
             and not any(f'{name}.'.startswith(h) for h in hosts)]
    if not found:
        return
    listed = ', '.join(f'{name} ({type(module).__name__}, num_streams='
                       f'{module.num_streams})'
                       for name, module in found[:5])
    raise TypeError(
        f'{type(root).__name__} does not fold streams into the batch, but '
        f'{len(found)} of its modules expect M stream-folded inputs: '
        f'{listed}{" ..." if len(found) > 5 else ""}. Use a model that '
        'declares the streams (segmentation: type=\'CENEncoderDecoder\' '
        'with stream_names; translation: CENPix2Pix / CENMultiPix2Pix), or '
        'stock norms (e.g. norm_cfg=dict(type=\'BN\')) in a plain model.')


def dataset_classes(dataset_cfg: Any,
                    scope: Optional[str] = None) -> Optional[Tuple]:
    """The classes a dataset config will have, without building it.

    ``metainfo.classes`` of the config, else the ``METAINFO`` of its class
    (looked up in the registry of ``scope``); dataset wrappers
    (``RepeatDataset``, ``ConcatDataset``) are followed to their first
    dataset.

    Args:
        dataset_cfg: A dataset config (dict).
        scope (str, optional): Registry scope of the type, e.g. ``'mmseg'``.

    Returns:
        tuple | None: The classes, or None if unknown.
    """
    from mmengine.registry import DATASETS
    while isinstance(dataset_cfg, dict):
        metainfo = dataset_cfg.get('metainfo') or {}
        if metainfo.get('classes') is not None:
            return tuple(metainfo['classes'])
        if 'dataset' in dataset_cfg or 'datasets' in dataset_cfg:
            inner = dataset_cfg.get('dataset', None) or dataset_cfg.get(
                'datasets')
            dataset_cfg = inner[0] if isinstance(inner, (list, tuple)) \
                else inner
            continue
        dataset_type = dataset_cfg.get('type')
        if isinstance(dataset_type, str):
            if scope and '.' not in dataset_type:
                dataset_type = f'{scope}.{dataset_type}'
            try:
                dataset_type = DATASETS.get(dataset_type)
            except (KeyError, ImportError):
                return None
        classes = (getattr(dataset_type, 'METAINFO', None)
                   or {}).get('classes')
        return tuple(classes) if classes is not None else None
    return None


def _heads(model_cfg: dict) -> List[Tuple[str, dict]]:
    heads = []
    decode = model_cfg.get('decode_head')
    if isinstance(decode, dict):
        heads.append(('model.decode_head', decode))
    aux = model_cfg.get('auxiliary_head')
    if isinstance(aux, dict):
        heads.append(('model.auxiliary_head', aux))
    elif isinstance(aux, (list, tuple)):
        heads += [(f'model.auxiliary_head[{i}]', head)
                  for i, head in enumerate(aux) if isinstance(head, dict)]
    return [(key, head) for key, head in heads if 'num_classes' in head]


def check_num_classes(cfg: Config) -> None:
    """Refuse heads whose ``num_classes`` differ from the datasets' classes.

    Fewer classes than the dataset fail deep in the loss (a bare
    ``IndexError``); more let the model predict ids the metric does not
    count. Datasets whose classes cannot be known from the config are
    skipped.

    Args:
        cfg (Config): A segmentation config.

    Raises:
        ValueError: A head's ``num_classes`` differs from a dataloader's
            dataset classes; the message names both keys.
    """
    model_cfg = cfg.get('model', None)
    if not isinstance(model_cfg, dict):
        return
    heads = _heads(model_cfg)
    if not heads:
        return
    scope = cfg.get('default_scope', None)
    known: Dict[str, Tuple] = {}
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader', None)
        if isinstance(loader, dict) and isinstance(loader.get('dataset'),
                                                   dict):
            classes = dataset_classes(loader['dataset'], scope)
            if classes is not None:
                known[f'{split}_dataloader.dataset'] = classes
    for head_key, head in heads:
        for dataset_key, classes in known.items():
            if head['num_classes'] != len(classes):
                raise ValueError(
                    f'{head_key}.num_classes={head["num_classes"]} but '
                    f'{dataset_key} ({_type_name(cfg, dataset_key)}) has '
                    f'{len(classes)} classes; set num_classes='
                    f'{len(classes)} (or metainfo.classes of the dataset)')


def _type_name(cfg: Config, dataset_key: str) -> str:
    dataset = cfg.get(dataset_key.split('.')[0]).dataset
    return str(dataset.get('type'))


def _norm_cfgs(cfg: Any, key: str) -> Iterator[Tuple[str, dict]]:
    if isinstance(cfg, dict):
        for name, value in cfg.items():
            child = f'{key}.{name}'
            if name.endswith('norm_cfg') and isinstance(value, dict) and \
                    isinstance(value.get('type'), str):
                yield child, value
            else:
                yield from _norm_cfgs(value, child)
    elif isinstance(cfg, (list, tuple)):
        for i, value in enumerate(cfg):
            yield from _norm_cfgs(value, f'{key}[{i}]')


def check_norm_types(cfg: Config) -> None:
    """Refuse ``*norm_cfg`` types the config's scope does not know.

    mmcv's ``build_norm_layer`` reports an unknown type as ``Cannot find
    None in registry``; this names the config key, the type and the usual
    cause (``ExchangeBN``/``ExchangeIN`` need ``cen_mm`` imported).

    Args:
        cfg (Config): The config (``model`` is checked).

    Raises:
        KeyError: An unknown norm type, with its config key.
    """
    from mmengine.registry import MODELS, DefaultScope
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope',
                                                      None)):
        with MODELS.switch_scope_and_registry(None) as registry:
            for key, norm_cfg in _norm_cfgs(cfg.get('model', None),
                                            'model'):
                if registry.get(norm_cfg['type']) is None:
                    raise KeyError(
                        f'{key}.type={norm_cfg["type"]!r} is not a '
                        f'registered norm layer in the {registry.scope!r} '
                        'scope (a typo? cen_mm\'s ExchangeBN/ExchangeIN need '
                        "custom_imports = dict(imports=['cen_mm.seg']) or "
                        "['cen_mm.gen'] in the config)")
