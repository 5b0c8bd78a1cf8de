# Copyright (c) cen_mm contributors. All rights reserved.
"""Shared glue of ``tools/train.py`` and ``tools/test.py``.

Works for mmseg and mmagic configs alike: the Runner comes from mmengine's
root ``RUNNERS`` and respects the config's ``default_scope``. On machines
without CUDA, distributed runs use gloo (mmengine 0.10.7's own
``init_dist`` calls ``torch.cuda.set_device`` and DDP gets
``device_ids=[LOCAL_RANK]``, both of which fail for CPU modules) and SyncBN
is replaced by BN.
"""
import argparse
import importlib
import importlib.util
import logging
import os
import os.path as osp
from typing import Any, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from .checkpoint import check_resumable, find_resume_checkpoint
from .combination_checks import (check_norm_types, check_num_classes,
                                 check_stream_host)

__all__ = [
    'add_common_args', 'load_config', 'setup_cpu_distributed',
    'replace_sync_bn', 'enable_amp', 'enable_safe_checkpointing',
    'enable_non_finite_guard', 'setup_resume', 'build_runner'
]

# Plugin module to import for a config's default scope when the config has
# no ``custom_imports`` of its own.
_SCOPE_PLUGINS = {'mmseg': 'cen_mm.seg', 'mmagic': 'cen_mm.gen'}


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--work-dir --cfg-options --launcher --local-rank``."""
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, e.g. '
        '`train_dataloader.batch_size=2 model.backbone.depth=50`')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args: argparse.Namespace) -> Config:
    """Read the config, merge ``--cfg-options``/``--work-dir``/``--launcher``
    and import the plugin for its scope.

    Args:
        args (argparse.Namespace): Parsed arguments with ``config``,
            ``cfg_options``, ``work_dir``, ``launcher`` and ``local_rank``.

    Returns:
        Config: The config, ready for :func:`build_runner`.
    """
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    cfg = Config.fromfile(args.config)  # runs the config's custom_imports
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    _import_scope_plugin(cfg)
    cfg.launcher = args.launcher
    # Priority: CLI > config > ./work_dirs/<config name>.
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if not torch.cuda.is_available():
        replace_sync_bn(cfg)
    setup_cpu_distributed(cfg, args.launcher)
    return cfg


def _import_scope_plugin(cfg: Config) -> None:
    # Also with custom_imports of its own: a config that imports only the
    # user's modules may still use cen_mm's (importing registers, nothing
    # else).
    plugin = _SCOPE_PLUGINS.get(cfg.get('default_scope', None))
    if plugin is not None and importlib.util.find_spec(plugin) is not None:
        importlib.import_module(plugin)


def replace_sync_bn(cfg: Any) -> int:
    """Replace every ``type='SyncBN'``/``'MMSyncBN'`` by ``'BN'`` in place and
    drop ``cfg.sync_bn`` (SyncBatchNorm only runs on GPU).

    Returns:
        int: Number of replaced norm configs.
    """
    count = 0
    if isinstance(cfg, (dict, Config)):
        if cfg.get('type', None) in ('SyncBN', 'MMSyncBN'):
            cfg['type'] = 'BN'
            count += 1
        if cfg.get('sync_bn', None) is not None:
            cfg['sync_bn'] = None
        for value in cfg.values():
            count += replace_sync_bn(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            count += replace_sync_bn(value)
    return count


def setup_cpu_distributed(cfg: Config, launcher: str) -> None:
    """Make ``launcher='pytorch'`` work on CPU with gloo.

    Initialises the default process group with gloo before the Runner (which
    then reuses it) and sets ``model_wrapper_cfg.device_ids=None``, keeping a
    config's own wrapper type (e.g. mmagic's
    ``MMSeparateDistributedDataParallel``). No-op with CUDA or without a
    launcher.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise NotImplementedError(
            f'launcher={launcher!r} without CUDA is not supported; use '
            "launcher='pytorch' (torchrun, tools/dist_train.sh) on CPU")
    cfg.setdefault('env_cfg', ConfigDict())
    cfg.env_cfg.setdefault('dist_cfg', ConfigDict())
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    wrapper_cfg: Optional[dict] = cfg.get('model_wrapper_cfg', None)
    if wrapper_cfg is None:
        wrapper_cfg = ConfigDict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper_cfg['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper_cfg


def enable_amp(cfg: Config, check_device: bool = True) -> None:
    """Switch the optimizer wrapper(s) to ``AmpOptimWrapper`` (dynamic loss
    scale), for one wrapper or for each wrapper of a multi-optimizer config
    (mmagic's ``generators``/``discriminators``).

    Args:
        cfg (Config): The config, modified in place.
        check_device (bool): Fail early without CUDA. Default: True.
    """
    if check_device and not torch.cuda.is_available():
        raise RuntimeError('--amp needs a CUDA device: mmengine '
                           'AmpOptimWrapper refuses to run on CPU')
    optim_wrapper = cfg.optim_wrapper
    wrappers = [optim_wrapper] if 'type' in optim_wrapper or \
        'optimizer' in optim_wrapper else [
            v for v in optim_wrapper.values()
            if isinstance(v, dict) and 'optimizer' in v]
    if not wrappers:
        raise ValueError('--amp: no optimizer wrapper config found in '
                         f'optim_wrapper={optim_wrapper}')
    for wrapper in wrappers:
        kind = wrapper.get('type', 'OptimWrapper')
        if kind == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in the config.',
                      logger='current')
            continue
        if kind != 'OptimWrapper':
            raise ValueError('--amp is only supported with optim_wrapper '
                             f"type 'OptimWrapper', but got {kind!r}")
        wrapper['type'] = 'AmpOptimWrapper'
        wrapper['loss_scale'] = 'dynamic'


def enable_safe_checkpointing(cfg: Config, strict_load: bool = True) -> None:
    """Make the config's checkpoint hook a ``SafeCheckpointHook``.

    A ``CheckpointHook`` keeps its arguments and becomes a
    ``SafeCheckpointHook`` (atomic writes, old checkpoints removed only
    after the new one is complete, ``weights_only`` loading); a config
    without one gets mmengine's default (``interval=1``) as a
    ``SafeCheckpointHook``. A checkpoint hook of another type, or one
    disabled with ``checkpoint=None``, is left alone.

    Args:
        cfg (Config): The config, modified in place.
        strict_load (bool): Refuse checkpoints that leave model weights
            unfilled (``--partial-load`` turns this off). Default: True.
    """
    hooks = cfg.get('default_hooks', None)
    if hooks is None:
        hooks = cfg.default_hooks = ConfigDict()
    if 'checkpoint' not in hooks:
        hooks.checkpoint = ConfigDict(type='CheckpointHook', interval=1)
    checkpoint = hooks.checkpoint
    if isinstance(checkpoint, dict) and checkpoint.get('type') in (
            'CheckpointHook', 'mmengine.CheckpointHook',
            'SafeCheckpointHook'):
        checkpoint['type'] = 'SafeCheckpointHook'
        checkpoint['strict_load'] = strict_load
    elif isinstance(checkpoint, dict) and \
            checkpoint.get('type') != 'SafeCheckpointHook':
        print_log(
            f'default_hooks.checkpoint is {checkpoint.get("type")!r}, not '
            'CheckpointHook: checkpoints are written by that hook, without '
            "SafeCheckpointHook's atomic writes and deferred removal",
            logger='current', level=logging.WARNING)


def enable_non_finite_guard(cfg: Config) -> None:
    """Add ``NonFiniteGuardHook`` to ``cfg.custom_hooks`` unless present
    (training then stops at the first non-finite loss or γ, before any
    checkpoint of that iteration is written)."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(
            isinstance(h, dict) and h.get('type') == 'NonFiniteGuardHook'
            for h in hooks):
        hooks.append(ConfigDict(type='NonFiniteGuardHook'))
    cfg.custom_hooks = hooks


def setup_resume(cfg: Config, resume: Optional[str]) -> None:
    """Choose and check the checkpoint to resume from.

    ``resume='auto'`` (``--resume`` without a file, or ``resume=True`` in
    the config) takes the work dir's ``last_checkpoint`` if it points at an
    intact file, else the newest intact ``epoch_*``/``iter_*`` checkpoint
    (with a warning), and is an error when there is nothing to resume. The
    checkpoint must hold the optimizer and scheduler state
    (:func:`~cen_mm.engine.checkpoint.check_resumable`).

    Args:
        cfg (Config): The config; ``resume``/``load_from`` are set in place.
        resume (str, optional): ``'auto'``, a checkpoint path, or None
            (then the config's own ``resume``/``load_from`` decide).
    """
    if resume is None and cfg.get('resume', False):
        resume = cfg.get('load_from', None) or 'auto'
    if resume is None:
        return
    checkpoint = find_resume_checkpoint(cfg.work_dir) \
        if resume == 'auto' else resume
    check_resumable(checkpoint, bool(cfg.get('param_scheduler', None)))
    cfg.resume = True
    cfg.load_from = checkpoint


def build_runner(cfg: Config) -> Runner:
    """Build the Runner from mmengine's root ``RUNNERS`` (so the config's
    ``default_scope``, mmseg or mmagic, decides the component registries).

    Wrong combinations are refused first: norm types the scope does not
    know (:func:`check_norm_types`), heads whose ``num_classes``
    differ from the datasets' classes (:func:`check_num_classes`, before
    anything is built) and stream-aware modules in a model that does not
    fold streams (:func:`check_stream_host`, once the model is built).
    """
    check_norm_types(cfg)
    check_num_classes(cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else \
        RUNNERS.build(cfg)
    check_stream_host(runner.model)
    return runner
