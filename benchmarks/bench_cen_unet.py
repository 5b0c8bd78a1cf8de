# Copyright (c) cen_mm contributors. All rights reserved.
"""Generator train-step time: CENUnetGenerator (M streams) vs mmagic's
UnetGenerator on the same M*N images.

One train step is forward + L1 loss + backward + Adam step. Both generators
are U-Net-256 (8 downs, base 64, affine IN with running statistics,
dropout); the CEN one shares every conv across the M streams, runs
per-stream exchanging INs and its softmax ensemble (L1 on each stream and on
the ensemble); the mmagic one sees the same M*N images as a plain batch
(L1 on its outputs). Repetitions are interleaved in one process and the
script prints the median times and their ratio.

A fraction ``--exchanged`` of every stream's encoder IN channels is set
below θ, so the exchange actually moves channels (the author's official
run ends with 26.8 % of all encoder IN channels below θ, CEN issue #9).

Usage: python benchmarks/bench_cen_unet.py [--size 256] [--n 1]
       [--streams 2] [--reps 10] [--exchanged 0.1] [--device cpu]
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from mmagic.models.editors.pix2pix import UnetGenerator
from mmengine.registry import init_default_scope

from cen_mm.cnn import exchange_norms
from cen_mm.gen.models import CENUnetGenerator


def make_step(gen, x, y, num_outputs):
    """Return a closure doing one fwd + L1 + bwd + Adam step."""
    optim = torch.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))
    target = y.repeat(num_outputs, 1, 1, 1)

    def step():
        optim.zero_grad(set_to_none=True)
        loss = F.l1_loss(gen(x), target)
        loss.backward()
        optim.step()

    return step


def timed(fn, sync):
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--n', type=int, default=1, help='images per stream')
    parser.add_argument('--streams', type=int, default=2)
    parser.add_argument('--reps', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--exchanged', type=float, default=0.1,
        help='fraction of each stream\'s encoder IN channels set below θ '
        '(exchanged), taken from the stream\'s own part')
    args = parser.parse_args()
    init_default_scope('mmagic')  # mmagic's U-Net builds 'Deconv' by name
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    torch.manual_seed(0)
    m, n, s = args.streams, args.n, args.size
    cen = CENUnetGenerator(num_streams=m).to(device)
    cen.init_weights()
    with torch.no_grad():
        for _, layer in exchange_norms(cen):
            if not layer.exchange:
                continue
            for stream, norm in enumerate(layer.streams):
                own = layer.parts[stream].nonzero().flatten()
                picked = own[:int(args.exchanged * layer.num_features)]
                norm.weight[picked] = layer.threshold / 2
    ref = UnetGenerator(
        3, 3, num_down=8, base_channels=64, use_dropout=True,
        norm_cfg=dict(type='IN', affine=True,
                      track_running_stats=True)).to(device)
    ref.init_weights()
    cen.train()
    ref.train()
    x = torch.rand(m * n, 3, s, s, device=device) * 2 - 1
    y = torch.rand(n, 3, s, s, device=device) * 2 - 1
    steps = {
        'CENUnetGenerator': make_step(cen, x, y, m + 1),
        'UnetGenerator': make_step(ref, x, y.repeat(m, 1, 1, 1), 1),
    }
    times = {name: [] for name in steps}
    for rep in range(args.warmup + args.reps):
        for name, step in steps.items():
            t = timed(step, sync)
            if rep >= args.warmup:
                times[name].append(t)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    params = {
        'CENUnetGenerator': sum(p.numel() for p in cen.parameters()),
        'UnetGenerator': sum(p.numel() for p in ref.parameters()),
    }
    print(f'device={device} threads={torch.get_num_threads()} '
          f'torch={torch.__version__} M={m} N={n} size={s} '
          f'reps={args.reps} exchanged={args.exchanged:.0%} '
          '(medians, interleaved)')
    for name in steps:
        print(f'{name:>18}: {med[name] * 1e3:9.1f} ms/step  '
              f'params {params[name] / 1e6:.3f} M')
    print(f'ratio CEN / mmagic: '
          f'{med["CENUnetGenerator"] / med["UnetGenerator"]:.3f}')


if __name__ == '__main__':
    main()
