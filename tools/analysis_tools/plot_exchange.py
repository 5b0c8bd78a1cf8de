# Copyright (c) cen_mm contributors. All rights reserved.
"""Draw what the channel exchange did, from one or more checkpoints.

Writes PNGs (matplotlib) and a JSON summary into ``--out-dir``:

- ``gamma_hist_{layer}.png``: histograms of |γ| per stream for the chosen
  layers (last checkpoint), with the threshold θ marked;
- ``exchange_profile.png``: the exchanged fraction of every exchange site
  per stream, in network order (like Fig. 8/10 of the paper), one line per
  checkpoint;
- ``gamma_trajectories.png``: for the chosen layers, every channel's |γ|
  per stream across the checkpoints (x: training iteration);
- ``exchange_summary.json``: the plotted numbers.

With ``--config`` the model is built and the checkpoints loaded into it, so
the exchange sites, θ and masks are exactly the model's
(``ExchangeNorm.exchange_mask``). Without it every multi-stream norm found
in the state dict is treated as a site with ``--threshold`` and the
``'any'`` scope.

Example::

    python tools/analysis_tools/plot_exchange.py \\
        work_dirs/x/iter_*.pth --config configs/cen/<cfg>.py \\
        --layers layer3.5 layer4.0 --out-dir work_dirs/x/exchange
"""
import argparse
import json
import os.path as osp
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

# Run this checkout's cen_mm, whatever else is installed or on the path.
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

import torch  # noqa: E402

from cen_mm.engine.checkpoint import checkpoint_safe_globals  # noqa: E402

_NORM_KEY = re.compile(r'^(?P<layer>.+)\.streams\.(?P<m>\d+)\.weight$')


def load_checkpoint_state(path: str) -> Dict:
    """Load a checkpoint with ``weights_only`` (mmengine's plain-data
    globals allowed) and return ``{'state_dict': ..., 'iter': ...}``."""
    # Allow mmengine's plain-data globals for this load only, restoring the
    # exact previous allow-list (the `safe_globals` context manager would
    # also remove entries that were there before).
    previous = torch.serialization.get_safe_globals()
    torch.serialization.add_safe_globals(checkpoint_safe_globals())
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(previous)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f'{path}: expected a state dict or a checkpoint '
                         "with a 'state_dict' entry")
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    state = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in state.items()}
    return dict(state_dict=state, iter=meta.get('iter'))


def sites_from_state_dict(state: Dict, threshold: float) -> Dict[str, Dict]:
    """Every multi-stream norm in a state dict: γ ``(M, C)``, and the mask
    ``|γ| < θ`` (the ``'any'`` scope)."""
    gammas: Dict[str, Dict[int, torch.Tensor]] = {}
    for key, value in state.items():
        match = _NORM_KEY.match(key)
        if match and f'{match["layer"]}.streams.{match["m"]}.running_mean' \
                in state:
            gammas.setdefault(match['layer'], {})[int(match['m'])] = value
    sites = {}
    for layer, streams in gammas.items():
        gamma = torch.stack([streams[m] for m in sorted(streams)]).float()
        if len(streams) >= 2:
            sites[layer] = dict(gamma=gamma, threshold=threshold,
                                exchanged=gamma.abs() < threshold)
    return sites


def sites_from_model(model, state: Dict) -> Dict[str, Dict]:
    """The exchange sites of ``model`` after loading ``state``."""
    from cen_mm.cnn import exchange_norms
    model.load_state_dict(state, strict=False)
    return {
        name: dict(gamma=layer.gamma.detach().float().clone(),
                   threshold=layer.threshold,
                   exchanged=layer.exchange_mask().clone())
        for name, layer in exchange_norms(model) if layer.exchange
    }


def build_model(config: str):
    """Build the model of an mmseg / mmagic / mmengine config."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.utils import import_modules_from_strings
    cfg = Config.fromfile(config)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    scope = cfg.get('default_scope', 'mmengine')
    if scope == 'mmseg':
        import cen_mm.seg  # noqa: F401
    elif scope == 'mmagic':
        import cen_mm.gen  # noqa: F401
    init_default_scope(scope)
    return MODELS.build(cfg.model)


def choose_layers(names: Sequence[str], wanted: Optional[Sequence[str]]
                  ) -> List[str]:
    """The layers matching ``wanted`` (exact name or suffix), or the first,
    middle and last site."""
    if not wanted:
        picks = {0, len(names) // 2, len(names) - 1}
        return [names[i] for i in sorted(picks)]
    chosen = []
    for want in wanted:
        hits = [n for n in names if n == want or n.endswith('.' + want)
                or n.startswith(want + '.')]
        if not hits:
            raise ValueError(f'--layers: no exchange site matches {want!r}; '
                             f'sites are {list(names)}')
        chosen.extend(h for h in hits if h not in chosen)
    return chosen


def plot(runs: List[Dict], layers: List[str], out_dir: Path,
         stream_names: Sequence[str]) -> List[Path]:
    """Draw the three figures; returns the PNG paths."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    written = []
    last = runs[-1]
    for layer in layers:
        site = last['sites'][layer]
        fig, ax = plt.subplots(figsize=(6, 4))
        values = site['gamma'].abs()
        top = float(values.max()) or 1.0
        for m, stream in enumerate(stream_names):
            ax.hist(values[m].numpy(), bins=40, range=(0, top), alpha=0.5,
                    label=f'{stream} ({float(site["exchanged"][m].float().mean()):.0%} exchanged)')
        ax.axvline(site['threshold'], color='k', linestyle='--',
                   label=f'θ = {site["threshold"]:g}')
        ax.set(xlabel='|γ|', ylabel='channels',
               title=f'{layer} ({last["label"]})')
        ax.legend()
        path = out_dir / f'gamma_hist_{layer.replace(".", "_")}.png'
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    names = list(last['sites'])
    fig, ax = plt.subplots(figsize=(max(6, len(names) * 0.25), 4))
    for run in runs:
        for m, stream in enumerate(stream_names):
            ratios = [float(run['sites'][n]['exchanged'][m].float().mean())
                      for n in names]
            ax.plot(range(len(names)), ratios, marker='o', markersize=3,
                    label=f'{stream} ({run["label"]})')
    ax.set(xlabel='exchange site (network order)', ylabel='exchanged ratio',
           title='Exchanged channels per layer')
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=90, fontsize=6)
    ax.legend(fontsize=7)
    path = out_dir / 'exchange_profile.png'
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)

    steps = [run['step'] for run in runs]
    fig, axes = plt.subplots(len(layers), len(stream_names), squeeze=False,
                             figsize=(4 * len(stream_names),
                                      3 * len(layers)))
    for row, layer in enumerate(layers):
        for m, stream in enumerate(stream_names):
            ax = axes[row][m]
            track = torch.stack([run['sites'][layer]['gamma'][m].abs()
                                 for run in runs])  # (T, C)
            ax.plot(steps, track.numpy(), linewidth=0.6, alpha=0.7)
            ax.axhline(runs[-1]['sites'][layer]['threshold'], color='k',
                       linestyle='--')
            ax.set(title=f'{layer} / {stream}', xlabel='iteration',
                   ylabel='|γ|')
    path = out_dir / 'gamma_trajectories.png'
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)
    return written


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('checkpoints', nargs='+',
                        help='checkpoint files, in training order')
    parser.add_argument('--config', help='the model config (exact sites, θ '
                        'and exchange masks)')
    parser.add_argument('--layers', nargs='*',
                        help='sites for the histograms and trajectories '
                        '(name or suffix); default: first, middle, last')
    parser.add_argument('--threshold', type=float, default=2e-2,
                        help='θ without --config (default: 2e-2)')
    parser.add_argument('--out-dir', required=True)
    return parser.parse_args(argv)


def main(argv=None) -> Dict:
    """Run the tool; returns the JSON summary."""
    args = parse_args(argv)
    model = build_model(args.config) if args.config else None
    runs = []
    for index, path in enumerate(args.checkpoints):
        ckpt = load_checkpoint_state(path)
        sites = sites_from_model(model, ckpt['state_dict']) if model \
            is not None else sites_from_state_dict(ckpt['state_dict'],
                                                   args.threshold)
        if not sites:
            raise ValueError(f'{path}: no exchange site found')
        step = ckpt['iter'] if ckpt['iter'] is not None else index
        runs.append(dict(sites=sites, step=step,
                         label=f'{Path(path).stem}'))
    names = list(runs[-1]['sites'])
    layers = choose_layers(names, args.layers)
    num_streams = runs[-1]['sites'][names[0]]['gamma'].size(0)
    stream_names = getattr(model, 'stream_names', None) or [
        str(m) for m in range(num_streams)]
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = plot(runs, layers, out_dir, stream_names)
    summary = dict(
        streams=list(stream_names),
        layers=layers,
        figures=[str(p) for p in written],
        checkpoints=[
            dict(label=run['label'], iter=run['step'],
                 exchanged={n: run['sites'][n]['exchanged'].float().mean(
                     dim=1).tolist() for n in run['sites']})
            for run in runs
        ])
    (out_dir / 'exchange_summary.json').write_text(
        json.dumps(summary, indent=1))
    print(f'wrote {len(written)} figures and exchange_summary.json to '
          f'{out_dir}')
    return summary


if __name__ == '__main__':
    main()
