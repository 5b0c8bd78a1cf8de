# Copyright (c) cen_mm contributors. All rights reserved.
"""Forward+backward time of ExchangeBN vs plain BN vs a per-stream loop.

All three run side by side in one process on the same data, interleaved, and
the script prints median times and ratios against ``nn.BatchNorm2d`` on the
same stream-folded ``(M*N, C, H, W)`` tensor. The per-stream loop is the
official style: a list of per-stream tensors, one ``BatchNorm2d`` per stream
and a two-stream exchange that assembles new tensors with boolean masks.

Usage: python benchmarks/bench_exchange_norm.py [--reps 30] [--device cpu]
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn

from cen_mm.cnn import ExchangeBN


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


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--reps', type=int, default=30)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument(
        '--clock', choices=['wall', 'cpu'], default='wall',
        help='cpu = process CPU time, steadier on a shared CPU machine')
    parser.add_argument('--exchanged', type=float, default=0.1,
                        help='fraction of channels below the threshold')
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == 'cpu' else time.perf_counter
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    torch.manual_seed(0)
    shapes = [(4, 64, 64, 64), (4, 256, 32, 32), (4, 512, 16, 16)]
    print(f'device={device} threads={torch.get_num_threads()} '
          f'clock={args.clock} reps={args.reps} exchanged={args.exchanged:.0%} (M=2)')
    print(f'{"shape per stream (N,C,H,W)":>28} {"BN ms":>8} {"ExBN ms":>8} '
          f'{"loop ms":>8} {"ExBN/BN":>8} {"loop/BN":>8} {"ExBN/loop":>9}')
    for n, c, h, w in shapes:
        x = torch.randn(2 * n, c, h, w, device=device, requires_grad=True)
        grad = torch.randn_like(x)
        bn = nn.BatchNorm2d(c).to(device)
        ex = ExchangeBN(c, num_streams=2).to(device)
        loop = PerStreamLoopBN(c).to(device)
        with torch.no_grad():
            k = int(args.exchanged * c)
            for layer in (ex.streams[0], loop.bns[0]):
                layer.weight[:k] = 1e-3  # below θ: exchanged
            for layer in (ex.streams[1], loop.bns[1]):
                layer.weight[c - k:] = 1e-3
        xs = [t.detach().requires_grad_() for t in x.chunk(2)]
        grads = list(grad.chunk(2))

        def run_bn():
            bn(x).backward(grad)

        def run_ex():
            ex(x).backward(grad)

        def run_loop():
            torch.autograd.backward(loop(xs), grads)

        runs = dict(bn=run_bn, ex=run_ex, loop=run_loop)
        for fn in runs.values():  # warm up
            for _ in range(3):
                fn()
        times = {key: [] for key in runs}
        for _ in range(args.reps):
            for key, fn in runs.items():
                times[key].append(timed(fn, sync, clock))
        med = {key: statistics.median(v) * 1e3 for key, v in times.items()}
        print(f'{str((n, c, h, w)):>28} {med["bn"]:8.2f} {med["ex"]:8.2f} '
              f'{med["loop"]:8.2f} {med["ex"] / med["bn"]:8.2f} '
              f'{med["loop"] / med["bn"]:8.2f} '
              f'{med["ex"] / med["loop"]:9.2f}')


if __name__ == '__main__':
    main()
