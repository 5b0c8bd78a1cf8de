# Copyright (c) cen_mm contributors. All rights reserved.
"""The multitask, multimodal-multitask and cycle settings and their baselines
train (one iteration) and test through a real mmengine Runner from their
configs: every setting on the Taskonomy sample views (real, and generated
in the same format) and on generated synthetic scenes, every baseline config on one of the two (CPU budget)."""
import math
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

import cen_mm.gen  # noqa: F401
from cen_mm.datasets import write_synthetic_taskonomy

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / 'configs' / 'cen_gen'
MT = 'pix2pix_unet64-in_1xb4-1kiters_synthetic-rgb2semseg-depth.py'
MMMT = 'pix2pix_unet64-in_1xb4-1kiters_synthetic-rgb-depth2normal-shade.py'
CYCLE = 'pix2pix_unet64-in_1xb4-1kiters_synthetic-rgb-shade-texture.py'
ON_REAL = [
    f'cen-dec-{MT}', f'cen-encdec-{MMMT}', f'cen-cycle-dec1-{CYCLE}',
    f'cen-random-{CYCLE}'
]
ON_SYNTHETIC = [
    f'cen-dec-{MT}', f'hardshare-{MT}', f'indiv-{MT}', f'cen-encdec-{MMMT}',
    f'cen-cycle-dec3-{CYCLE}', f'cen-indep-{CYCLE}'
]
# hm3d has no semantic labels: the multitask pair becomes RGB -> Depth +
# Normal there
REAL_TARGETS = ['depth_zbuffer', 'normal']


def _use_targets(cfg, targets):
    sources = cfg.model.flows[0]['sources']
    cfg.model.flows = [dict(sources=sources, target=t) for t in targets]
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.target_domains = targets
    # the evaluator reads the flows from the model's predictions
    for hook in cfg.custom_hooks:
        if 'stream_names' in hook:
            hook.stream_names = targets


def _run(config, data_root, work_dir, real):
    cfg = Config.fromfile(str(CONFIGS / config))
    cfg.work_dir = str(work_dir)
    cfg.model.generator.update(num_down=5, base_channels=4)
    cfg.model.discriminator.base_channels = 4
    if real and 'semseg' in config:
        _use_targets(cfg, REAL_TARGETS)
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        loader.dataset.update(data_root=str(data_root), ann_file='')
        if split == 'test':
            loader.dataset.indices = 1
    pipeline = cfg.train_dataloader.dataset.pipeline
    pipeline[1].scale = (36, 36)
    pipeline[2].crop_size = (32, 32)
    for split in ('val', 'test'):
        cfg[f'{split}_dataloader'].dataset.pipeline[1].scale = (32, 32)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=1,
                         val_interval=100)
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=100,
                                        save_last=False)
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    runner.train()
    scalars = runner.message_hub.log_scalars
    losses = {k: v.current() for k, v in scalars.items()
              if k.startswith('train/loss')}
    assert losses and all(math.isfinite(v) for v in losses.values())
    runner.test()
    metrics = {
        key[len('test/'):]: value.current()
        for key, value in runner.message_hub.log_scalars.items()
        if key.startswith('test/') and ('MAE' in key or 'MSE' in key)
    }
    model = runner.model
    for flow in model.flows:
        target = flow['target']
        prefixes = [target]
        if model.unit_layout == 'per_flow' and len(flow['sources']) > 1:
            prefixes += [f'{target}/{s}' for s in flow['sources']]
        for prefix in prefixes:
            for name in ('MAE_paper', 'MSE_paper'):
                value = metrics[f'{prefix}/{name}']
                assert 0 < value < 200, (prefix, name, value)
        assert f'train/loss_gan_g/{target}' in scalars or \
            model.flow_sampling == 'random'
    return model, losses


@pytest.mark.parametrize('config', ON_REAL)
def test_settings_on_real_taskonomy_views(config, tmp_path,
                                          taskonomy_samples):
    # hm3d: 5 views, rgb/depth/normal/...
    model, losses = _run(config, taskonomy_samples / 'hm3d', tmp_path,
                         real=True)
    if model.flow_sampling == 'random':
        # keys 'train/loss_pixel/{target}/...': one flow trained
        trained = {k.split('/')[2] for k in losses if k.count('/') >= 2}
        assert len(trained) == 1, trained


@pytest.fixture(scope='module')
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp('data') / 'scenes'
    write_synthetic_taskonomy(str(root), num_train=2, num_val=2, size=32,
                              seed=0)
    return root


@pytest.mark.parametrize('config', ON_SYNTHETIC)
def test_settings_on_synthetic_scenes(config, scenes, tmp_path):
    _run(config, scenes, tmp_path, real=False)
