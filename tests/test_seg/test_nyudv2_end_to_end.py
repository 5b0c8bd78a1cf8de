# Copyright (c) cen_mm contributors. All rights reserved.
"""The NYUDv2 sample (real, and generated in the same format) through the shipped config's full train, val and
TTA test pipelines (load, augment, pack, preprocess, forward, loss, predict,
per-stream metrics) with a real mmengine Runner."""
import os.path as osp
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import cen_mm.seg  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / 'configs/cen/cen-refinenet_r101_1xb6-300e_nyudv2-rgbd-500x500.py'


def small_nyudv2_config(work_dir: str, samples: Path) -> Config:
    """The shipped NYUDv2 config on the sample folder, with a narrow network
    (same layout: CEN ResNet-101 + full RefineNet, 1/8 of the widths) and a
    one-iteration schedule, so it runs on a CPU in seconds."""
    cfg = Config.fromfile(str(CONFIG))
    cfg.work_dir = work_dir
    cfg.model.backbone.update(
        stem_channels=8, base_channels=8, init_cfg=None)
    cfg.model.decode_head.update(
        in_channels=(32, 64, 128, 256), channels=16, top_channels=32)
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.update(batch_size=1, num_workers=0, persistent_workers=False)
        loader.dataset.update(
            data_root=str(samples),
            data_prefix=dict(
                img_path='rgb', depth_path='depth', seg_map_path='label40'))
    for step in cfg.train_dataloader.dataset.pipeline:
        if step.type == 'RandomCrop':
            step.crop_size = (160, 160)
        elif step.type == 'RGBDCenterPad':
            step.size = (160, 160)
    cfg.model.data_preprocessor.size = (160, 160)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2,
                         val_interval=2)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(
        type='SafeCheckpointHook', by_epoch=False, interval=2)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.log_processor = dict(by_epoch=False)
    # a few scales keep the TTA test quick; the flip pair stays
    cfg.tta_pipeline[1].transforms[0] = [
        dict(type='RGBDResize', scale_factor=r, keep_ratio=True)
        for r in (0.5, 0.75)
    ]
    return cfg


def test_nyudv2_sample_train_val_tta(tmp_path, nyu_samples):
    cfg = small_nyudv2_config(str(tmp_path / 'train'), nyu_samples)
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.val_loop.run()
    for key in ('mIoU', 'aAcc', 'mAcc', 'rgb/mIoU', 'rgb/aAcc',
                'depth/mIoU', 'depth/mAcc'):
        assert key in metrics, key
        assert 0 <= metrics[key] <= 100
    scalars = runner.message_hub.log_scalars
    for key in ('train/decode.rgb.loss_ce', 'train/decode.depth.loss_ce',
                'train/decode.ens.loss_ce'):
        assert torch.isfinite(torch.tensor(scalars[key].current())), key
    ckpt = osp.join(cfg.work_dir, 'iter_2.pth')
    assert osp.isfile(ckpt)

    # tools/test.py --tta: the TTA pipeline, the CEN TTA model, same ckpt
    cfg = small_nyudv2_config(str(tmp_path / 'tta'), nyu_samples)
    cfg.load_from = ckpt
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model
    runner = Runner.from_cfg(cfg)
    tta_metrics = runner.test()
    for key in ('mIoU', 'rgb/mIoU', 'depth/mIoU'):
        assert 0 <= tta_metrics[key] <= 100

    # tools/test.py --show-dir: labelled panels of input, GT, rgb, depth
    # and ensemble for the real sample, through the visualisation hook.
    import importlib.util

    import mmcv
    spec = importlib.util.spec_from_file_location(
        'cen_mm_tools_test_e2e', str(ROOT / 'tools' / 'test.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    cfg = small_nyudv2_config(str(tmp_path / 'show'), nyu_samples)
    cfg.load_from = ckpt
    tool.setup_show_dir(cfg, str(tmp_path / 'show_dir'))
    Runner.from_cfg(cfg).test()
    drawn = sorted((tmp_path / 'show_dir').rglob('*.png'))
    assert [p.name for p in drawn] == ['test_000464.png_0.png']
    img = mmcv.imread(str(drawn[0]))
    assert img.shape[1] == 5 * 640 and img.shape[0] > 22 + 480
