# Copyright (c) cen_mm contributors. All rights reserved.
"""Small-scale CEN studies: Table-1 ablations, Table-2 fusion baselines and
Table-4 translation baselines, each trained with the same seed(s) and
schedule, reported as mean ± spread.

Examples::

    # parameter totals of the R101 variants (no training; Table 2 columns)
    python tools/cen_study.py params
    # segmentation: Table-1 rows + Table-2 baselines ({approach}-{position})
    nice -n 10 python tools/cen_study.py seg --seeds 0 1 2 \\
        --out work_dirs/study_seg.json
    # one variant only, shorter schedule
    python tools/cen_study.py seg --variants cen no-exchange \\
        --cfg-options train_cfg.max_epochs=10
    # translation (Table 4), CEN vs concat / align / average / self-att
    # (middle), the U-Net-64 600-iteration study config; also prints the
    # no-input baseline (the training targets' mean image)
    nice -n 10 python tools/cen_study.py gen --seeds 0 1 \\
        --out work_dirs/study_gen.jsonl
    # check that every variant's config builds (no training)
    python tools/cen_study.py seg --dry-run

Each run appends one JSON line ``{study, variant, seed, metrics, params,
fusion_params, seconds}`` to ``--out`` (runs already there are skipped, so an
interrupted study resumes), and the summary table is printed (markdown) at
the end.
"""
import argparse
import copy
import json
import os
import os.path as osp
import statistics
import sys
import time
from typing import Dict, List

# Run this checkout's cen_mm, whatever else is installed or on the path.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402

import cen_mm  # noqa: E402,F401
import cen_mm.engine  # noqa: E402,F401
from cen_mm.engine.launch import build_runner  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SEG_CONFIG = osp.join(
    ROOT, 'configs/cen/cen-refinenet_r50_synthetic-conjunction-rgbd.py')
GEN_CONFIG = osp.join(
    ROOT, 'configs/cen_gen/'
    'cen-pix2pix_unet64-in_1xb4-600iters_synthetic-shade-texture2rgb.py')


def _exchange(unshared: bool = False, **kwargs) -> Dict:
    """Overrides of the backbone's ``exchange_cfg`` (and, with
    ``unshared``, one set of convs per stream)."""
    model = dict(backbone=dict(exchange_cfg=kwargs))
    if unshared:
        model['share_convs'] = False
    return dict(model=model)


def _no_l1(cfg: Dict) -> Dict:
    """No L1 on γ: sparsity off and no GammaSparsityHook."""
    cfg = copy.deepcopy(cfg)
    cfg['custom_hooks'] = []
    return cfg


_NONE = dict(exchange_mode='none', sparsity='none')

# Table 1: name -> (convs, BNs, L1, exchange, config overrides)
SEG_TABLE1 = {
    'unshared': ('unshared', 'private', '-', '-',
                 _no_l1(_exchange(unshared=True, **_NONE))),
    'shared-bn': ('shared', 'shared', '-', '-',
                  _no_l1({**_exchange(**_NONE),
                          'model': dict(share_norms=True,
                                        backbone=dict(exchange_cfg=_NONE))})),
    'private-bn': ('shared', 'private', '-', '-', _no_l1(_exchange(**_NONE))),
    'fixed-30': ('shared', 'private', '-', 'fixed 30%',
                 _no_l1(_exchange(exchange_mode='fixed',
                                  exchange_portion=0.3, sparsity='none'))),
    'random-30': ('shared', 'private', '-', 'random 30%',
                  _no_l1(_exchange(exchange_mode='random',
                                   exchange_portion=0.3, sparsity='none'))),
    'discard': ('shared', 'private', 'half', 'discard',
                _exchange(exchange_mode='discard')),
    'unshared-all-noex': ('unshared', 'private', 'all', '-', _exchange(
        unshared=True, exchange_mode='none', sparsity='all')),
    'unshared-all-cen': ('unshared', 'private', 'all', 'yes', _exchange(
        unshared=True, sparsity='all')),
    'all-noex': ('shared', 'private', 'all', '-',
                 _exchange(exchange_mode='none', sparsity='all')),
    'all-cen': ('shared', 'private', 'all', 'yes', _exchange(sparsity='all')),
    'unshared-half-noex': ('unshared', 'private', 'half', '-', _exchange(
        unshared=True, exchange_mode='none')),
    'unshared-half-cen': ('unshared', 'private', 'half', 'yes',
                          _exchange(unshared=True)),
    'no-exchange': ('shared', 'private', 'half', '-',
                    _exchange(exchange_mode='none')),
    'cen': ('shared', 'private', 'half', 'yes', {}),
}


def _fusion(kind: str, position: str = 'middle') -> Dict:
    return _no_l1({
        'model': dict(backbone=dict(exchange_cfg=_NONE),
                      fusion=dict(type=kind, positions=position))})


# Table 2: '{approach}-{position}', position early / middle / late / all =
# after ResNet stage 2 / 3 / 4 / every stage
SEG_FUSION_KINDS = {'concat': 'ConcatFusion', 'align': 'AlignFusion',
                    'self-att': 'SSMAFusion'}
SEG_TABLE2 = {
    f'{approach}-{position}': _fusion(kind, position)
    for approach, kind in SEG_FUSION_KINDS.items()
    for position in ('early', 'middle', 'late', 'all')
}
# align without its common/specific branches: the MMD loss only
SEG_TABLE2['align-mmd-middle'] = _fusion('AlignFusion')
SEG_TABLE2['align-mmd-middle']['model']['fusion']['branches'] = False

_GEN_NONE = dict(type='ExchangeIN', exchange_mode='none', sparsity='none')


def _gen_fusion(kind: str, position: str = 'middle') -> Dict:
    return dict(
        custom_hooks=[],
        model=dict(generator=dict(
            type='FusionUnetGenerator', norm_cfg=_GEN_NONE,
            fusion=dict(type=kind, positions=position))))


GEN_TABLE4 = {
    'cen': {},
    'concat-middle': _gen_fusion('ConcatFusion'),
    'align-middle': _gen_fusion('AlignFusion'),
    'average-middle': _gen_fusion('AverageFusion'),
    'self-att-middle': _gen_fusion('SSMAFusion'),
}


def count_params(model) -> Dict[str, int]:
    """Total parameters and those of the fusion blocks."""
    fusion = 0
    for mod in model.modules():
        blocks = getattr(mod, 'fusion_blocks', None)
        if blocks is not None:
            fusion += sum(p.numel() for p in blocks.parameters())
    return dict(params=sum(p.numel() for p in model.parameters()),
                fusion_params=fusion)


def params_table() -> str:
    """Parameter totals of the R101 RefineNet variants (Table 2 columns)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import cen_mm.seg  # noqa: F401
    init_default_scope('mmseg')
    base = Config.fromfile(
        osp.join(ROOT, 'configs/_base_/models/cen_resnet101_refinenet.py'))
    paper = {
        'uni-modal (shared convs + shared BN)': (118.1, None),
        'CEN': (118.2, 0.0),
        'concat-early': (118.8, 0.6), 'concat-middle': (120.3, 2.1),
        'concat-late': (126.6, 8.4), 'concat-all': (129.4, 11.2),
        'align-early': (120.8, 2.6), 'align-middle': (128.7, 10.5),
        'align-late': (160.1, 41.9), 'align-all': (173.9, 55.7),
        'self-att-early': (123.6, 5.4), 'self-att-middle': (139.4, 21.2),
        'self-att-late': (203.2, 84.9), 'self-att-all': (231.0, 112.8),
        'align-mmd-middle': (None, None),
        'unshared convs (CEN)': (None, None),
    }
    rows = ['| variant | ours total (M) | ours fusion (M) | paper total (M) '
            '| paper fusion (M) |', '| --- | --- | --- | --- | --- |']
    for name, (p_total, p_fusion) in paper.items():
        model_cfg = copy.deepcopy(base.model)
        model_cfg.backbone.init_cfg = None
        if name.startswith('uni'):
            model_cfg.share_norms = True
            model_cfg.backbone.exchange_cfg = _NONE
        elif name.startswith('unshared'):
            model_cfg.share_convs = False
        elif name != 'CEN':
            model_cfg.merge(copy.deepcopy(SEG_TABLE2[name]['model']))
        counts = count_params(MODELS.build(model_cfg))
        rows.append('| {} | {:.1f} | {:.1f} | {} | {} |'.format(
            name, counts['params'] / 1e6, counts['fusion_params'] / 1e6,
            '-' if p_total is None else p_total,
            '-' if p_fusion is None else p_fusion))
    return '\n'.join(rows)


def variant_config(config: str, overrides: Dict, seed: int, work_dir: str,
                   cfg_options: Dict) -> Config:
    """The base config with a variant's overrides (hooks replaced)."""
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(overrides)
    if 'custom_hooks' in overrides:
        cfg.custom_hooks = overrides['custom_hooks']
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.randomness = dict(seed=seed)
    cfg.work_dir = work_dir
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=-1)
    return cfg


def build_only(cfg: Config) -> Dict:
    """Build the variant's model (no training): a config check."""
    from mmengine.registry import MODELS, init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    return count_params(MODELS.build(cfg.model))


def exchange_summary(model) -> Dict[str, float]:
    """Exchange statistics of a trained model, as GammaSparsityHook logs
    them: ``gamma_below_thr`` (fraction of the penalised γ with |γ| < θ) and
    ``exchanged_{stream}`` (fraction of the channels of all exchanging or
    penalised norms that the stream takes from the others, or zeroes)."""
    from cen_mm.cnn import exchange_norms
    below = penalised = channels = 0
    taken = None
    for _, layer in exchange_norms(model):
        count, total = layer.penalised_below_threshold()
        if not (layer.exchange or total):
            continue
        below, penalised = below + count, penalised + total
        # expected count for 'random' in eval mode
        count = layer.exchanged_fraction() * layer.num_features
        taken = count if taken is None else taken + count
        channels += layer.num_features
    stats = dict(gamma_below_thr=below / penalised if penalised else 0.)
    names = getattr(model, 'stream_names', None)
    if taken is not None:
        for m, count in enumerate(taken.tolist()):
            name = names[m] if isinstance(names, (list, tuple)) else str(m)
            stats[f'exchanged_{name}'] = count / channels
    return stats


class TestMetricsHook(Hook):
    """Keeps the metrics of the last test epoch: mmagic's ``MultiTestLoop``
    hands them only to the ``after_test_epoch`` hooks (its ``run`` returns
    None, unlike mmengine's ``TestLoop``)."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.metrics: Dict[str, float] = {}

    def after_test_epoch(self, runner, metrics=None) -> None:
        self.metrics = dict(metrics or {})


def run_one(config: str, overrides: Dict, seed: int, work_dir: str,
            cfg_options: Dict) -> Dict:
    cfg = variant_config(config, overrides, seed, work_dir, cfg_options)
    runner = build_runner(cfg)
    test_metrics = TestMetricsHook()
    runner.register_hook(test_metrics)
    start = time.time()
    runner.train()
    metrics = runner.test() or test_metrics.metrics
    if not metrics:
        raise RuntimeError(f'{config}: the test loop reported no metrics')
    result = dict(metrics={k: float(v) for k, v in metrics.items()},
                  seconds=round(time.time() - start, 1))
    result.update(count_params(runner.model))
    model = getattr(runner.model, 'module', runner.model)
    result['exchange'] = {k: round(v, 4)
                          for k, v in exchange_summary(model).items()}
    return result


def mean_target_baseline(cfg: Config) -> Dict[str, float]:
    """MAE / MSE of the no-input predictor of a translation config: every
    test image predicted as the per-pixel mean of the training targets (all
    through the test pipeline). ×100 on [0, 1] images, as ``CENMAE`` /
    ``CENMSE`` (plain); a variant that learned anything is below it."""
    import torch
    from mmengine.registry import DATASETS, init_default_scope

    import cen_mm.gen  # noqa: F401
    init_default_scope(cfg.get('default_scope', 'mmagic'))
    key = f'img_{cfg.model.target_domain}'

    def targets(dataset_cfg: Dict) -> torch.Tensor:
        dataset_cfg = copy.deepcopy(dataset_cfg)
        dataset_cfg['pipeline'] = cfg.test_dataloader.dataset.pipeline
        dataset = DATASETS.build(dataset_cfg)
        return torch.stack([dataset[i]['inputs'][key].double() / 255
                            for i in range(len(dataset))])

    error = targets(cfg.test_dataloader.dataset) - targets(
        cfg.train_dataloader.dataset).mean(0)
    return {'MAE': 100 * error.abs().mean((1, 2, 3)).mean().item(),
            'MSE': 100 * error.pow(2).mean((1, 2, 3)).mean().item()}


def summarise(records: List[Dict], keys: List[str]) -> str:
    variants = list(dict.fromkeys(r['variant'] for r in records))
    lines = ['| variant | seeds | ' + ' | '.join(keys) + ' | params (M) | '
             'fusion params (M) | exchange at the end (mean) |',
             '| --- ' * (len(keys) + 5) + '|']
    for variant in variants:
        runs = [r for r in records if r['variant'] == variant]
        cells = []
        for key in keys:
            values = [r['metrics'][key] for r in runs if key in r['metrics']]
            if not values:
                cells.append('-')
            elif len(values) == 1:
                cells.append(f'{values[0]:.2f}')
            else:
                cells.append(f'{statistics.mean(values):.2f} ± '
                             f'{statistics.stdev(values):.2f}')
        exchange = [r.get('exchange', {}) for r in runs]
        ex_keys = sorted({k for e in exchange for k in e})
        ex_cell = ', '.join(
            '{} {:.0f} %'.format(
                k.replace('gamma_below_thr', 'γ<θ').replace(
                    'exchanged_', 'ex. '),
                100 * statistics.mean(e[k] for e in exchange if k in e))
            for k in ex_keys) or '-'
        lines.append(f'| {variant} | {len(runs)} | ' + ' | '.join(cells) +
                     f' | {runs[0]["params"] / 1e6:.2f} | '
                     f'{runs[0]["fusion_params"] / 1e6:.3f} | {ex_cell} |')
    return '\n'.join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('study', choices=['seg', 'gen', 'params'])
    parser.add_argument('--variants', nargs='+', help='subset to run')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0])
    parser.add_argument('--config', help='base config (default: the demo)')
    parser.add_argument('--out', default='work_dirs/cen_study.jsonl')
    parser.add_argument('--work-dir', default='work_dirs/cen_study')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides applied to every run')
    parser.add_argument('--dry-run', action='store_true',
                        help='only build every variant and count parameters')
    args = parser.parse_args()
    if args.study == 'params':
        print(params_table())
        return
    if args.study == 'seg':
        table = {name: row[-1] for name, row in SEG_TABLE1.items()}
        table.update(SEG_TABLE2)
        config = args.config or SEG_CONFIG
        keys = ['rgb/mIoU', 'depth/mIoU', 'mIoU']
    else:
        table, config = GEN_TABLE4, args.config or GEN_CONFIG
        keys = None
    names = args.variants or list(table)
    unknown = sorted(set(names) - set(table))
    if unknown:
        raise SystemExit(f'unknown variants {unknown}; choose from '
                         f'{sorted(table)}')
    if args.dry_run:
        for name in names:
            counts = build_only(variant_config(config, table[name], 0,
                                               args.work_dir,
                                               args.cfg_options))
            print(f'{name}: {counts["params"]} parameters, '
                  f'{counts["fusion_params"]} for fusion')
        return
    records = []
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    if osp.exists(args.out):
        with open(args.out) as f:
            records = [json.loads(line) for line in f if line.strip()]
    done = {(r['study'], r['variant'], r['seed']) for r in records}
    for name in names:
        for seed in args.seeds:
            if (args.study, name, seed) in done:
                continue
            result = run_one(config, table[name], seed,
                             osp.join(args.work_dir, f'{name}_s{seed}'),
                             args.cfg_options)
            record = dict(study=args.study, variant=name, seed=seed,
                          **result)
            records.append(record)
            with open(args.out, 'a') as f:
                f.write(json.dumps(record) + '\n')
    mine = [r for r in records if r['study'] == args.study
            and r['variant'] in names]
    if keys is None:  # per stream, then the ensemble
        keys = sorted({k for r in mine for k in r['metrics']},
                      key=lambda k: (k.startswith('ens/'), k))
    print(summarise(mine, keys))
    if args.study == 'gen':
        trivial = mean_target_baseline(variant_config(
            config, {}, 0, args.work_dir, args.cfg_options))
        print('no input (per-pixel mean of the training targets): '
              'MAE {MAE:.2f}, MSE {MSE:.2f}'.format(**trivial))


if __name__ == '__main__':
    main()
