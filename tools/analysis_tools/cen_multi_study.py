# Copyright (c) cen_mm contributors. All rights reserved.
"""Short CPU study of multitask and cycle CEN on the synthetic scenes.

Trains, with the same seed, data and number of iterations, through the
mmengine Runner and the CPU configs of ``configs/cen_gen``:

- multitask RGB -> SemSeg + Depth: CEN-dec, hard sharing (enc x1, no
  exchange), Indiv (enc x2, dec x2);
- cycle RGB / Shade / Texture: CEN-cycle (dec x1), independent CENs,
  CEN-random;

then validates (the paper's MAE / MSE per task, x100 on [-1, 1]) and
prints a markdown table with the per-task errors and the exchange
statistics (fraction of (stream, channel) pairs whose |γ| < θ, i.e.
replaced, over the exchanging INs of each side).

All variants start from γ ~ U(0, 1) (``norm_init='uniform'``, the PyTorch
1.0 default of the official environment), so about 1 % of the channels
exchange from step 0; with γ = 1 no channel reaches θ in a short run and
CEN-dec would equal hard sharing.

Usage::

    nice -n 10 python tools/analysis_tools/cen_multi_study.py \
        --iters 150 --size 32
"""
import argparse
import os.path as osp
import sys
import tempfile
import time

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from mmengine.config import Config  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from cen_mm.cnn import exchange_norms  # noqa: E402
from cen_mm.datasets import write_synthetic_taskonomy  # noqa: E402

CONFIGS = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..',
                   'configs', 'cen_gen')
MT = 'pix2pix_unet64-in_1xb4-1kiters_synthetic-rgb2semseg-depth.py'
CYCLE = 'pix2pix_unet64-in_1xb4-1kiters_synthetic-rgb-shade-texture.py'
STUDIES = {
    'multitask RGB -> SemSeg + Depth': [
        ('CEN-dec', f'cen-dec-{MT}'), ('hard sharing', f'hardshare-{MT}'),
        ('Indiv enc x2', f'indiv-{MT}')
    ],
    'cycle RGB / Shade / Texture': [
        ('CEN-cycle dec x1', f'cen-cycle-dec1-{CYCLE}'),
        ('independent CEN', f'cen-indep-{CYCLE}'),
        ('CEN-random', f'cen-random-{CYCLE}')
    ],
}


def exchange_stats(model):
    """Fraction of replaced (stream, channel) pairs per generator side."""
    stats = {}
    for side in ('encoder', 'decoder'):
        replaced = total = 0
        for name, layer in exchange_norms(model.generators):
            if name.startswith(f'{side}_norms') and layer.exchange:
                mask = layer.exchange_mask()
                replaced += int(mask.sum())
                total += mask.numel()
        stats[side] = replaced / total if total else None
    return stats


def run(config, data_root, work_dir, args):
    cfg = Config.fromfile(osp.join(CONFIGS, config))
    cfg.work_dir = work_dir
    cfg.model.generator.update(num_down=args.num_down,
                               base_channels=args.base,
                               norm_init='uniform')
    cfg.model.discriminator.base_channels = args.base
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.update(num_workers=0, persistent_workers=False)
        loader.dataset.data_root = data_root
    pipeline = cfg.train_dataloader.dataset.pipeline
    pipeline[1].scale = (args.size + args.size // 8, ) * 2
    pipeline[2].crop_size = (args.size, args.size)
    cfg.val_dataloader.dataset.pipeline[1].scale = (args.size, args.size)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg.update(max_iters=args.iters, val_interval=args.iters)
    cfg.default_hooks.logger.interval = args.iters
    cfg.default_hooks.checkpoint.update(interval=10**9, save_last=False)
    cfg.default_hooks.pop('visualization', None)
    cfg.randomness = dict(seed=0)
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()  # validates after the last iteration
    seconds = time.perf_counter() - start
    metrics = {
        k[len('val/'):]: v.current()
        for k, v in runner.message_hub.log_scalars.items()
        if k.startswith('val/') and 'paper' in k
    }
    return metrics, exchange_stats(runner.model), seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--iters', type=int, default=150)
    parser.add_argument('--size', type=int, default=32)
    parser.add_argument('--num-down', type=int, default=5)
    parser.add_argument('--base', type=int, default=16)
    parser.add_argument('--num-train', type=int, default=16)
    parser.add_argument('--num-val', type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = osp.join(tmp, 'scenes')
        write_synthetic_taskonomy(root, num_train=args.num_train,
                                  num_val=args.num_val, size=args.size,
                                  seed=0)
        for study, variants in STUDIES.items():
            rows = []
            for label, config in variants:
                metrics, stats, seconds = run(config, root,
                                              osp.join(tmp, label), args)
                rows.append((label, metrics, stats, seconds))
            keys = sorted({k for _, m, _, _ in rows for k in m
                           if k.count('/') == 1})
            print(f'\n### {study} ({args.iters} iterations, seed 0)\n')
            print('| variant | ' + ' | '.join(keys) +
                  ' | replaced enc / dec | s |')
            print('| --- ' * (len(keys) + 3) + '|')
            for label, metrics, stats, seconds in rows:
                cells = [f'{metrics.get(k, float("nan")):.2f}' for k in keys]
                exch = ' / '.join('-' if v is None else f'{v:.2%}'
                                  for v in stats.values())
                print(f'| {label} | ' + ' | '.join(cells) +
                      f' | {exch} | {seconds:.0f} |')


if __name__ == '__main__':
    main()
