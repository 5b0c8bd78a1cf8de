# Copyright (c) cen_mm contributors. All rights reserved.
"""Train-step cost of the CEN ResNet backbone vs plain mmseg ResNet.

Three models see the same 2 x N images (N RGB + N depth) per step:

- ``cen``: :class:`CENResNet` (2 streams, stream-folded batch of 2N,
  ExchangeBN everywhere, exchange at every bottleneck bn2);
- ``plain``: mmseg's ``ResNet`` on the 2N images as one batch (one BN);
- ``loop``: the official "list" style approximated with two plain ResNets
  whose convs are tied (shared) and whose BNs are separate, run one stream
  after the other.

A step is forward + backward of ``sum(mean(stage_i))`` + an SGD (momentum)
step. Models are interleaved within each repetition (rotating the order) and
medians are reported, of the wall time and, on CPU, of the process CPU time
(``time.process_time``; on a machine shared with other jobs the wall time
also counts the time the process waits for a core, the CPU time does not,
so with ``--threads 1`` the CPU time is the robust number). Memory, per
model, is measured in two honest ways:

- ``saved``: bytes of the tensors autograd saves for backward (distinct
  storages, via ``torch.autograd.graph.saved_tensors_hooks``): exact and
  independent of the allocator, the dominant part of training memory;
- ``rss``: the peak resident set size during one step minus the RSS before
  it (Linux: ``/proc/self/clear_refs`` resets VmHWM; freed heap memory is
  returned with ``malloc_trim`` first). It includes allocator effects and
  is noisier.

Usage::

    python benchmarks/bench_cen_resnet.py [--depth 101] [--n 2] [--size 128]
        [--reps 7] [--norm-eval] [--device cpu]
"""
import argparse
import ctypes
import gc
import statistics
import time

import torch
from mmseg.models.backbones import ResNet

import cen_mm.seg  # noqa: F401
from cen_mm.cnn import fold_channels
from cen_mm.seg.models.backbones import CENResNet


def tie_convs(src: torch.nn.Module, dst: torch.nn.Module) -> None:
    """Make ``dst`` use ``src``'s conv weights (shared convs)."""
    src_convs = dict(
        (n, m) for n, m in src.named_modules()
        if isinstance(m, torch.nn.Conv2d))
    for name, module in dst.named_modules():
        if isinstance(module, torch.nn.Conv2d):
            module.weight = src_convs[name].weight


class LoopResNet(torch.nn.Module):
    """Two streams run one after the other: shared convs, separate BNs."""

    def __init__(self, depth: int, norm_eval: bool) -> None:
        super().__init__()
        self.streams = torch.nn.ModuleList(
            ResNet(depth=depth, norm_eval=norm_eval) for _ in range(2))
        tie_convs(self.streams[0], self.streams[1])

    def forward(self, x):
        outs = [net(x[:, 3 * m:3 * m + 3]) for m, net in
                enumerate(self.streams)]
        return [torch.cat(level) for level in zip(*outs)]


class PlainResNet(torch.nn.Module):
    """mmseg ResNet on the 2N images as one batch."""

    def __init__(self, depth: int, norm_eval: bool) -> None:
        super().__init__()
        self.net = ResNet(depth=depth, norm_eval=norm_eval)

    def forward(self, x):
        return self.net(torch.cat(x.split(3, dim=1)))


class StackedCEN(torch.nn.Module):
    """CENResNet on stacked inputs, folded as CENEncoderDecoder folds."""

    def __init__(self, depth, norm_eval):
        super().__init__()
        self.net = CENResNet(depth=depth, norm_eval=norm_eval)

    def forward(self, x):
        return self.net(fold_channels(x, (3, 3)))


def build_models(depth, norm_eval, device):
    models = dict(
        cen=StackedCEN(depth, norm_eval),
        plain=PlainResNet(depth, norm_eval),
        loop=LoopResNet(depth, norm_eval))
    for model in models.values():
        model.to(device).train()
    return models


def make_step(model):
    optim = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def step(x):
        optim.zero_grad(set_to_none=True)
        loss = sum(o.mean() for o in model(x))
        loss.backward()
        optim.step()

    return step


def saved_bytes(model, x):
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:  # activations only
            storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = sum(o.mean() for o in model(x))
    del loss
    return sum(storages.values())


def rss_peak_delta(step, x):
    """Peak RSS during one step minus RSS before it, in bytes."""
    gc.collect()
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except OSError:
        pass

    def read(key):
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
        raise RuntimeError(f'{key} missing from /proc/self/status')

    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    before = read('VmRSS')
    step(x)
    return read('VmHWM') - before


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--depth', type=int, default=101)
    parser.add_argument('--n', type=int, default=2, help='images per stream')
    parser.add_argument('--size', type=int, default=128)
    parser.add_argument('--reps', type=int, default=7)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--norm-eval', action='store_true',
                        help='frozen BN statistics (official training)')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize()) if device.type == 'cuda' \
        else (lambda: None)
    models = build_models(args.depth, args.norm_eval, device)
    steps = {name: make_step(model) for name, model in models.items()}
    x = torch.randn(args.n, 6, args.size, args.size, device=device)

    for _ in range(args.warmup):
        for step in steps.values():
            step(x)
    times = {name: [] for name in steps}
    cpu_times = {name: [] for name in steps}
    for rep in range(args.reps):
        # Rotate the order so no model always runs first.
        names = list(steps)
        names = names[rep % len(names):] + names[:rep % len(names)]
        for name in names:
            sync()
            start, cpu_start = time.perf_counter(), time.process_time()
            steps[name](x)
            sync()
            times[name].append(time.perf_counter() - start)
            cpu_times[name].append(time.process_time() - cpu_start)

    print(f'torch {torch.__version__}, device {device}, threads '
          f'{torch.get_num_threads()}, ResNet-{args.depth}, N={args.n} per '
          f'stream (2N={2 * args.n} images), {args.size}px, '
          f'norm_eval={args.norm_eval}, reps={args.reps}')
    med = {name: statistics.median(t) for name, t in times.items()}
    cpu = {name: statistics.median(t) for name, t in cpu_times.items()}
    for name, t in times.items():
        saved = saved_bytes(models[name], x) / 2**20
        line = (f'{name:>5}: wall median {med[name] * 1e3:8.1f} ms '
                f'(min {min(t) * 1e3:.1f}, max {max(t) * 1e3:.1f}), '
                f'CPU median {cpu[name] * 1e3:8.1f} ms '
                f'(min {min(cpu_times[name]) * 1e3:.1f}); '
                f'saved-for-backward {saved:7.1f} MiB')
        if device.type == 'cpu':
            rss = rss_peak_delta(steps[name], x) / 2**20
            line += f'; RSS peak delta {rss:7.1f} MiB'
        else:
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            steps[name](x)
            sync()
            peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
            line += f'; CUDA peak delta {peak:7.1f} MiB'
        print(line)
    for label, value in (('wall', med), ('CPU', cpu)):
        print(f'{label} time ratio cen/plain = '
              f'{value["cen"] / value["plain"]:.3f}, cen/loop = '
              f'{value["cen"] / value["loop"]:.3f}, loop/plain = '
              f'{value["loop"] / value["plain"]:.3f}')


if __name__ == '__main__':
    main()
