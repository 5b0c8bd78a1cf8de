# Copyright (c) cen_mm contributors. All rights reserved.
"""Forward+backward time of ExchangeBN / ExchangeIN vs the plain norm (and,
for BN, a per-stream loop).

All three run side by side in one process on the same data, interleaved, and
the script prints median times and ratios against ``nn.BatchNorm2d`` on the
same stream-folded ``(M*N, C, H, W)`` tensor. The per-stream loop is the
official style: a list of per-stream tensors, one ``BatchNorm2d`` per stream
and a two-stream exchange that assembles new tensors with boolean masks.

Usage: python benchmarks/bench_exchange_norm.py [--norm bn|in] [--frozen]
       [--exchanged 0 0.1 0.3] [--reps 30] [--threads 1 --clock cpu]
       [--device cuda --amp]
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn

from cen_mm.cnn import ExchangeBN, ExchangeIN


class PerStreamLoopBN(nn.Module):
    """Official-style list-of-tensors BN + exchange (two streams)."""

    def __init__(self, channels, threshold=2e-2):
        super().__init__()
        self.bns = nn.ModuleList(nn.BatchNorm2d(channels) for _ in range(2))
        self.threshold = threshold

    def forward(self, xs):
        ys = [bn(x) for bn, x in zip(self.bns, xs)]
        keep = [bn.weight.abs() >= self.threshold for bn in self.bns]
        out = [torch.zeros_like(y) for y in ys]
        out[0][:, keep[0]] = ys[0][:, keep[0]]
        out[0][:, ~keep[0]] = ys[1][:, ~keep[0]]
        out[1][:, keep[1]] = ys[1][:, keep[1]]
        out[1][:, ~keep[1]] = ys[0][:, ~keep[1]]
        return out


def timed(fn, sync, clock):
    sync()
    start = clock()
    fn()
    sync()
    return clock() - start


def build(kind, c, frozen, exchanged, device):
    """The plain norm, the exchanging norm and (BN only) the loop, with
    ``exchanged`` of every stream's own channels below θ."""
    if kind == 'bn':
        plain, ex, loop = (nn.BatchNorm2d(c), ExchangeBN(c, num_streams=2),
                           PerStreamLoopBN(c))
    else:
        plain = nn.InstanceNorm2d(c, affine=True, track_running_stats=True)
        ex, loop = ExchangeIN(c, num_streams=2), None
    k = int(exchanged * c)
    with torch.no_grad():
        pairs = [(ex.streams[0], ex.streams[1])]
        if loop is not None:
            pairs.append((loop.bns[0], loop.bns[1]))
        for first, second in pairs:
            first.weight[:k] = 1e-3  # below θ: exchanged
            second.weight[c - k:] = 1e-3
    layers = [m for m in (plain, ex, loop) if m is not None]
    for layer in layers:
        layer.to(device).train(not frozen)
    return plain, ex, loop


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--reps', type=int, default=30)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument(
        '--clock', choices=['wall', 'cpu'], default='wall',
        help='cpu = process CPU time, steadier on a shared CPU machine')
    parser.add_argument('--norm', choices=['bn', 'in'], default='bn',
                        help='ExchangeBN vs BatchNorm2d, or ExchangeIN vs '
                        'InstanceNorm2d (affine, running statistics)')
    parser.add_argument('--frozen', action='store_true',
                        help='running statistics (norm_eval / eval mode)')
    parser.add_argument('--exchanged', type=float, nargs='+',
                        default=[0.0, 0.1, 0.3],
                        help='fractions of channels below the threshold')
    parser.add_argument('--amp', action='store_true',
                        help='CUDA only: float16 inputs under autocast')
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == 'cpu' else time.perf_counter
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    torch.manual_seed(0)
    shapes = [(4, 64, 64, 64), (4, 256, 32, 32), (4, 512, 16, 16),
              (2, 1024, 8, 8)]
    plain_name = {'bn': 'BN', 'in': 'IN'}[args.norm]
    print(f'device={device} threads={torch.get_num_threads()} '
          f'clock={args.clock} reps={args.reps} norm={args.norm} '
          f'frozen={args.frozen} amp={args.amp} (M=2, fwd+bwd, medians of '
          'interleaved repetitions)')
    print(f'{"shape per stream (N,C,H,W)":>28} {"exch":>5} '
          f'{plain_name + " ms":>8} {"Ex ms":>8} {"loop ms":>8} '
          f'{"Ex/" + plain_name:>8} {"loop/" + plain_name:>8}')
    for n, c, h, w in shapes:
        dtype = torch.float16 if args.amp else torch.float32
        x = torch.randn(2 * n, c, h, w, device=device, dtype=dtype,
                        requires_grad=True)
        grad = torch.randn_like(x)
        xs = [t.detach().requires_grad_() for t in x.chunk(2)]
        for exchanged in args.exchanged:
            plain, ex, loop = build(args.norm, c, args.frozen, exchanged,
                                    device)

            def run(layer):
                with torch.autocast(device.type, enabled=args.amp):
                    layer(x).backward(grad)

            runs = dict(plain=lambda: run(plain), ex=lambda: run(ex))
            if loop is not None:
                runs['loop'] = lambda: torch.autograd.backward(
                    loop(xs), list(grad.chunk(2)))
            for fn in runs.values():  # warm up
                for _ in range(3):
                    fn()
            times = {key: [] for key in runs}
            for rep in range(args.reps):
                keys = list(runs)[rep % len(runs):] + list(runs)[:rep %
                                                                 len(runs)]
                for key in keys:
                    times[key].append(timed(runs[key], sync, clock))
            med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
            loop_ms = med.get('loop', float('nan'))
            print(f'{str((n, c, h, w)):>28} {exchanged:5.0%} '
                  f'{med["plain"]:8.2f} {med["ex"]:8.2f} {loop_ms:8.2f} '
                  f'{med["ex"] / med["plain"]:8.2f} '
                  f'{loop_ms / med["plain"]:8.2f}', flush=True)


if __name__ == '__main__':
    main()
