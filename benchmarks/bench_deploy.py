# Copyright (c) cen_mm contributors. All rights reserved.
"""Inference time of a deployed CEN-ResNet vs plain mmseg ResNet on the same
2N images.

Models, all in eval mode, side by side in one process, interleaved:

- ``cen``: :class:`CENResNet` (2 streams) as trained: ExchangeBN layers with
  ``--exchanged`` of the penalised γ below θ;
- ``deployed``: the same network after :func:`cen_mm.deploy.deploy_model`
  (exchanging norms frozen into per-stream affine maps + a fixed mix);
- ``plain``: mmseg's ``ResNet`` on the 2N images as one batch, BN in eval
  mode;
- ``plain_folded``: the plain ResNet with its BNs folded into the convs
  (what a deployment toolchain does to a plain network).

Usage::

    python benchmarks/bench_deploy.py [--depth 101] [--n 2] [--size 128]
        [--reps 7] [--exchanged 0.3] [--threads 1] [--device cpu]
"""
import argparse
import copy
import statistics
import time

import torch
from mmseg.models.backbones import ResNet

import cen_mm.seg  # noqa: F401
from cen_mm.cnn import exchange_norms, fold_channels
from cen_mm.deploy import deploy_model, fold_conv_bn
from cen_mm.seg.models.backbones import CENResNet
from paired_ratios import paired_ratios  # benchmarks/, the script's dir


def randomise(model, fraction, seed=0):
    """Trained-like running statistics and γ; ``fraction`` of every
    stream's penalised γ below θ."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                c = module.num_features
                module.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                module.running_mean.copy_(torch.randn(c, generator=gen) * .1)
                module.running_var.copy_(torch.rand(c, generator=gen) + .5)
        for _, layer in exchange_norms(model):
            for m, norm in enumerate(layer.streams):
                own = layer.sparsity_mask[m].nonzero().flatten()
                norm.weight[own[:round(fraction * len(own))]] = \
                    layer.threshold / 2


class StackedCEN(torch.nn.Module):
    """CENResNet on the channel-stacked RGB-D input."""

    def __init__(self, depth):
        super().__init__()
        self.net = CENResNet(depth=depth, num_streams=2)

    def forward(self, x):
        return self.net(fold_channels(x, (3, 3)))


class PlainResNet(torch.nn.Module):
    """mmseg ResNet on the 2N images as one batch."""

    def __init__(self, depth):
        super().__init__()
        self.net = ResNet(depth=depth)

    def forward(self, x):
        return self.net(torch.cat(x.split(3, dim=1)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--depth', type=int, default=101)
    parser.add_argument('--n', type=int, default=2, help='images per stream')
    parser.add_argument('--size', type=int, default=128)
    parser.add_argument('--reps', type=int, default=7)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--exchanged', type=float, default=0.3)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    x = torch.randn(args.n, 6, args.size, args.size)
    cen = StackedCEN(args.depth)
    randomise(cen, args.exchanged)
    cen.eval()
    plain = PlainResNet(args.depth)
    randomise(plain, 0)
    plain.eval()
    models = dict(cen=cen, deployed=deploy_model(cen, (x, )), plain=plain,
                  plain_folded=fold_conv_bn(
                      copy.deepcopy(plain), (x, )))
    for model in models.values():
        model.to(device)
    x = x.to(device)

    times = {name: [] for name in models}
    cpu_times = {name: [] for name in models}
    with torch.no_grad():
        for rep in range(args.warmup + args.reps):
            names = list(models)
            names = names[rep % len(names):] + names[:rep % len(names)]
            for name in names:
                sync()
                start, cpu_start = time.perf_counter(), time.process_time()
                models[name](x)
                sync()
                if rep >= args.warmup:
                    times[name].append(time.perf_counter() - start)
                    cpu_times[name].append(time.process_time() - cpu_start)
    print(f'torch {torch.__version__}, device {device}, threads '
          f'{torch.get_num_threads()}, ResNet-{args.depth} inference, '
          f'N={args.n} per stream (2N={2 * args.n} images), {args.size}px, '
          f'exchanged {args.exchanged:.0%}, reps={args.reps}')
    med = {n: statistics.median(t) for n, t in times.items()}
    cpu = {n: statistics.median(t) for n, t in cpu_times.items()}
    for name in models:
        print(f'{name:>13}: wall median {med[name] * 1e3:8.1f} ms, CPU '
              f'median {cpu[name] * 1e3:8.1f} ms')
    for label, value in (('wall', med), ('CPU', cpu)):
        print(f'{label} time ratio deployed/plain = '
              f'{value["deployed"] / value["plain"]:.3f}, deployed/'
              f'plain_folded = {value["deployed"] / value["plain_folded"]:.3f}'
              f', cen/plain = {value["cen"] / value["plain"]:.3f}')
    clock = ('CPU', cpu_times) if device.type == 'cpu' else ('wall', times)
    print(f'paired {clock[0]} time ratio, median [quartiles] of the '
          'per-repetition ratios: ' +
          paired_ratios(clock[1], 'plain', ['deployed', 'cen']) + ', ' +
          paired_ratios(clock[1], 'plain_folded', ['deployed']))


if __name__ == '__main__':
    main()
