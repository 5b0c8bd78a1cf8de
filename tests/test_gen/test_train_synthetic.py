# Copyright (c) cen_mm contributors. All rights reserved.
"""Short CPU training of CENPix2Pix on the synthetic scenes through the
mmengine Runner and the demo config.

As a test: a fast smoke run (64x64, a tiny U-Net) that checks the pixel
losses go down and that validation reports the ensemble and every stream.

As a script, the longer run whose numbers are recorded in
docs/translation.md (ensemble L1 vs each stream's)::

    python tests/test_gen/test_train_synthetic.py --iters 1500
"""
import argparse
import os.path as osp
import tempfile
import time

import numpy as np
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from cen_mm.cnn import exchange_norms
from cen_mm.datasets import write_synthetic_taskonomy

CONFIG = osp.join(
    osp.dirname(__file__), '..', '..', 'configs', 'cen_gen',
    'cen-pix2pix_unet128-in_1xb4-2kiters_synthetic-shade-texture2rgb.py')
SOURCES = ('reshading', 'edge_texture')


def make_cfg(work_dir, data_root, iters, size, num_down, base_channels,
             batch_size, val_interval, log_interval):
    cfg = Config.fromfile(CONFIG)
    cfg.work_dir = work_dir
    cfg.model.generator.update(
        num_down=num_down, base_channels=base_channels)
    cfg.model.discriminator.base_channels = base_channels
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader_cfg = cfg[loader]
        loader_cfg.update(batch_size=batch_size, num_workers=0,
                          persistent_workers=False)
        loader_cfg.dataset.data_root = data_root
    train_pipeline = cfg.train_dataloader.dataset.pipeline
    train_pipeline[1].scale = (size + size // 8, ) * 2
    train_pipeline[2].crop_size = (size, size)
    cfg.val_dataloader.dataset.pipeline[1].scale = (size, size)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg.update(max_iters=iters, val_interval=val_interval)
    cfg.default_hooks.logger.interval = log_interval
    cfg.default_hooks.checkpoint.update(interval=iters, save_last=False)
    cfg.default_hooks.pop('visualization', None)
    cfg.custom_hooks[0].interval = log_interval
    cfg.randomness = dict(seed=0)
    cfg.env_cfg.mp_cfg = dict(mp_start_method='fork', opencv_num_threads=0)
    cfg.log_level = 'WARNING'
    return cfg


def train(work_dir, iters, size=64, num_down=6, base_channels=16,
          batch_size=4, num_train=16, num_val=8, val_interval=None,
          log_interval=10):
    """Render scenes, train, validate; return (pixel-loss history, metrics,
    seconds, trained model)."""
    data_root = osp.join(work_dir, 'scenes')
    write_synthetic_taskonomy(data_root, num_train=num_train,
                              num_val=num_val, size=size, seed=0,
                              domains=('rgb', ) + SOURCES)
    cfg = make_cfg(work_dir, data_root, iters, size, num_down, base_channels,
                   batch_size, val_interval or iters, log_interval)
    runner = Runner.from_cfg(cfg)
    losses, metrics = [], {}

    class LossRecorder(Hook):

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            if outputs and 'loss_pixel_ens' in outputs:
                losses.append({
                    k: v.item() if hasattr(v, 'item') else float(v)
                    for k, v in outputs.items() if k.startswith('loss_pixel')
                })

        def after_val_epoch(self, runner, metrics=None):
            last_metrics.update(metrics or {})

    last_metrics = metrics
    runner.register_hook(LossRecorder(), priority='LOWEST')
    start = time.perf_counter()
    runner.train()  # validates after the last iteration
    return losses, metrics, time.perf_counter() - start, runner.model


def test_short_training_on_synthetic_scenes(tmp_path):
    losses, metrics, _, _ = train(str(tmp_path), iters=40, size=32,
                                  num_down=5)
    assert len(losses) == 40
    for key in ('loss_pixel_reshading', 'loss_pixel_edge_texture',
                'loss_pixel_ens'):
        first = np.mean([entry[key] for entry in losses[:8]])
        last = np.mean([entry[key] for entry in losses[-8:]])
        assert last < 0.8 * first, (key, first, last)
    for prefix in ('ens', ) + SOURCES:
        assert f'{prefix}/MAE' in metrics and f'{prefix}/MSE' in metrics
        assert 0 < metrics[f'{prefix}/MAE'] < 100


def test_show_dir_writes_streams_ensemble_and_target(tmp_path):
    """tools/test.py --show-dir on a translation config: per sample, each
    stream's output, the ensemble and the target side by side (mmagic's
    BasicVisualizationHook + ConcatImageVisualizer)."""
    import importlib.util

    import mmcv
    spec = importlib.util.spec_from_file_location(
        'cen_mm_tools_test_gen', osp.join(
            osp.dirname(__file__), '..', '..', 'tools', 'test.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    data_root = str(tmp_path / 'scenes')
    write_synthetic_taskonomy(data_root, num_train=2, num_val=2, size=32,
                              seed=0, domains=('rgb', ) + SOURCES)
    cfg = make_cfg(str(tmp_path / 'work'), data_root, 1, 32, 5, 8, 2, 1, 1)
    show_dir = tmp_path / 'show'
    tool.setup_show_dir(cfg, str(show_dir))
    assert cfg.visualizer.img_keys == [
        'pred_img_reshading', 'pred_img_edge_texture', 'pred_img', 'gt_img'
    ]
    runner = Runner.from_cfg(cfg)
    runner.test()
    drawn = sorted(show_dir.rglob('*.png'))
    assert len(drawn) == 2
    for path in drawn:
        img = mmcv.imread(str(path), channel_order='rgb')
        assert img.shape == (32, 4 * 32, 3)
        stem = path.name.split('_rgb')[0].rsplit('_', 1)[0]
        target = mmcv.imread(
            str(next((tmp_path / 'scenes').rglob(f'{stem}*rgb.png'))),
            channel_order='rgb')
        # The last panel is the target image (de-normalised, rounded).
        assert abs(img[:, 96:].astype(int) - target.astype(int)).max() <= 1


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--iters', type=int, default=1500)
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--num-down', type=int, default=6)
    parser.add_argument('--base-channels', type=int, default=16)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--num-train', type=int, default=40)
    parser.add_argument('--num-val', type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work_dir:
        losses, metrics, seconds, model = train(
            work_dir, args.iters, args.size, args.num_down,
            args.base_channels, args.batch_size, args.num_train,
            args.num_val, log_interval=50)
    print(f'{args.iters} iterations in {seconds:.0f} s '
          f'({args.size}px, num_down={args.num_down}, '
          f'base_channels={args.base_channels}, batch {args.batch_size}, '
          f'{args.num_train} train / {args.num_val} val views)')
    for key in losses[0]:
        first = np.mean([e[key] for e in losses[:50]])
        last = np.mean([e[key] for e in losses[-50:]])
        print(f'{key}: first 50 iters {first:.2f} -> last 50 {last:.2f}')
    for key, value in sorted(metrics.items()):
        print(f'{key}: {value:.3f}')
    gen = model.generators['rgb']
    print('ensemble weights softmax(alpha):',
          [round(w, 3) for w in gen.ensemble.weights.tolist()])
    for name, layer in exchange_norms(gen):
        if not layer.exchange:
            continue
        below, total = layer.penalised_below_threshold()
        print(f'{name}: exchanged per stream '
              f'{[round(f, 3) for f in layer.exchanged_fraction().tolist()]}'
              f', penalised |γ| < θ: {below}/{total}')


if __name__ == '__main__':
    main()
