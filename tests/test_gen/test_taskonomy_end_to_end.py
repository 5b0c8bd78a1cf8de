# Copyright (c) cen_mm contributors. All rights reserved.
"""Taskonomy views (real, and generated in the same format) (Shade + Texture -> RGB) through the demo config's
train and test pipelines and CENPix2Pix's train, val and test steps, with a
real mmengine Runner."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import cen_mm.gen  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ('configs/cen_gen/'
                 'cen-pix2pix_unet128-in_1xb4-2kiters_synthetic-'
                 'shade-texture2rgb.py')


def test_real_views_train_val_test(tmp_path, taskonomy_samples):
    samples = taskonomy_samples / 'taskonomy'
    cfg = Config.fromfile(str(CONFIG))
    cfg.work_dir = str(tmp_path)
    cfg.model.generator.base_channels = 8
    cfg.model.discriminator.base_channels = 8
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.update(batch_size=2, num_workers=0, persistent_workers=False)
        loader.dataset.update(data_root=str(samples), ann_file='')
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2,
                         val_interval=2)
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=2)
    runner = Runner.from_cfg(cfg)
    assert len(runner.train_dataloader.dataset) == 2  # both real views
    runner.train()
    scalars = runner.message_hub.log_scalars
    for key in ('loss_pixel_reshading', 'loss_pixel_edge_texture',
                'loss_pixel_ens', 'loss_gan_g', 'loss_gan_d_real'):
        value = scalars[f'train/{key}'].current()
        assert torch.isfinite(torch.tensor(value)), key
    runner.test()  # mmagic's test loop logs its metrics as `test/...`
    metrics = {
        key[len('test/'):]: value.current()
        for key, value in runner.message_hub.log_scalars.items()
        if key.startswith('test/')
    }
    for prefix in ('ens', 'reshading', 'edge_texture'):
        for name in ('MAE', 'MSE'):
            value = metrics[f'{prefix}/{name}']
            assert 0 < value < 100, (prefix, name, value)
