# Copyright (c) cen_mm contributors. All rights reserved.
"""Generator train-step time of the multitask and cycle CEN structures vs
their Indiv baselines, on the same images, as ratios from one process.

One train step is forward + L1 loss on every output + backward + Adam. The
structures are CENMultiUnetGenerator configs (U-Net-256 layout by default,
``--num-down`` / ``--base`` / ``--size`` shrink it):

- multitask, one input -> 2 tasks (Table 7):
  ``CEN-dec`` (enc x1, a decoder per task, decoder exchange; the decoders'
  own weights run in a loop), ``CEN-dec folded`` (the same but one decoder
  shared by both tasks, so the whole decoder side is one folded batch: the
  cost of the loop), ``Indiv`` (enc x2, dec x2; two U-Nets, looped);
- cycle, 3 flows of 2 inputs (Table 6): ``CEN-cycle dec x1`` (everything
  folded), ``CEN-cycle dec x3`` (a decoder per flow, looped),
  ``CEN-random`` (one flow per step), ``Indiv`` (independent CENs, enc x3,
  dec x3, looped per flow).

A fraction ``--exchanged`` of every exchanging IN's channels per stream is
set below θ so that the exchange moves channels. Repetitions are
interleaved and the medians compared.

Usage: python benchmarks/bench_cen_multi.py [--size 128] [--num-down 7]
       [--base 64] [--n 1] [--reps 5] [--exchanged 0.1]
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from cen_mm.cnn import exchange_norms
from cen_mm.gen.models import CENMultiUnetGenerator

MULTITASK = {
    'CEN-dec': dict(units=[(1, 2)], decoder_weights='stream',
                    encoder_exchange=False, decoder_exchange=True,
                    combine='softmax', ensemble=False),
    'CEN-dec folded': dict(units=[(1, 2)], decoder_weights='shared',
                           encoder_exchange=False, decoder_exchange=True,
                           combine='softmax', ensemble=False),
    'Indiv (enc x2, dec x2)': dict(units=[(1, 1), (1, 1)],
                                   encoder_weights='unit',
                                   decoder_weights='unit', ensemble=False),
}
CYCLE = {
    'CEN-cycle dec x1': dict(units=[(2, 2)] * 3),
    'CEN-cycle dec x3': dict(units=[(2, 2)] * 3, decoder_weights='unit'),
    'CEN-random (1 flow/step)': dict(units=[(2, 2)] * 3,
                                     decoder_weights='unit'),
    'Indiv (independent CENs)': dict(units=[(2, 2)] * 3,
                                     encoder_weights='unit',
                                     decoder_weights='unit'),
}


def build(kwargs, args):
    gen = CENMultiUnetGenerator(num_down=args.num_down,
                                base_channels=args.base, **kwargs)
    gen.init_weights()
    with torch.no_grad():
        for _, layer in exchange_norms(gen):
            if not layer.exchange:
                continue
            for stream, norm in enumerate(layer.streams):
                own = layer.parts[stream].nonzero().flatten()
                picked = own[:int(args.exchanged * layer.num_features)]
                norm.weight[picked] = layer.threshold / 2
    return gen.train()


def make_step(gen, x, y, units=None):
    optim = torch.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step():
        optim.zero_grad(set_to_none=True)
        out = gen(x, units=units)
        loss = F.l1_loss(out['streams'], y.expand_as(out['streams']))
        if 'ensembles' in out:
            loss = loss + F.l1_loss(out['ensembles'],
                                    y.expand_as(out['ensembles']))
        loss.backward()
        optim.step()

    return step


def bench(group, steps, args):
    times = {name: [] for name in steps}
    for rep in range(args.warmup + args.reps):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            if rep >= args.warmup:
                times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    base = [name for name in steps if name.startswith('Indiv')][0]
    print(f'[{group}]')
    for name in steps:
        print(f'{name:>26}: {med[name] * 1e3:9.1f} ms/step  '
              f'ratio to Indiv {med[name] / med[base]:.3f}')


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--size', type=int, default=128)
    parser.add_argument('--num-down', type=int, default=7)
    parser.add_argument('--base', type=int, default=64)
    parser.add_argument('--n', type=int, default=1, help='images per input')
    parser.add_argument('--reps', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--exchanged', type=float, default=0.1)
    args = parser.parse_args()
    torch.manual_seed(0)
    n, s = args.n, args.size
    print(f'threads={torch.get_num_threads()} torch={torch.__version__} '
          f'size={s} num_down={args.num_down} base={args.base} N={n} '
          f'reps={args.reps} exchanged={args.exchanged:.0%} '
          '(medians, interleaved)')
    # multitask: one input image, two targets
    x = torch.rand(n, 3, s, s) * 2 - 1
    y = torch.rand(n, 3, s, s) * 2 - 1
    steps = {}
    for name, kwargs in MULTITASK.items():
        gen = build(kwargs, args)
        inputs = x if kwargs['units'] == [(1, 2)] else x.repeat(2, 1, 1, 1)
        steps[name] = make_step(gen, inputs, y)
    bench('multitask, 2 tasks', steps, args)
    # cycle: 3 flows x 2 input streams
    x = torch.rand(6 * n, 3, s, s) * 2 - 1
    steps = {}
    for name, kwargs in CYCLE.items():
        gen = build(kwargs, args)
        if name.startswith('CEN-random'):
            flows = iter(range(10**6))
            step_one = {u: make_step(gen, x[2 * u * n:2 * (u + 1) * n], y,
                                     units=[u]) for u in range(3)}
            steps[name] = lambda: step_one[next(flows) % 3]()
        else:
            steps[name] = make_step(gen, x, y)
    bench('cycle, 3 flows', steps, args)


if __name__ == '__main__':
    main()
