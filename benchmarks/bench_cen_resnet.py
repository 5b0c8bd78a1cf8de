# Copyright (c) cen_mm contributors. All rights reserved.
"""Train-step cost of the CEN ResNet backbone vs plain mmseg ResNet.

The models see the same 2 x N images (N RGB + N depth) per step:

- ``cen{p}``: :class:`CENResNet` (2 streams, stream-folded batch of 2N,
  ExchangeBN everywhere, exchange at every bottleneck bn2) with a fraction
  p of every stream's penalised γ below θ (``--exchanged``, one model per
  fraction), so p of the channels at every exchange site are exchanged;
- ``plain``: mmseg's ``ResNet`` on the 2N images as one batch (one BN);
- ``loop`` (``--loop``): the official "list" style approximated with two
  plain ResNets whose convs are tied and whose BNs are separate, run one
  stream after the other;
- ``cen{p}M4`` (``--streams4``): a 4-stream CEN on 4N images, for the cost
  per stream;
- ``cen{p}-torch`` (``--torch-path``): ``cen{p}`` with the CPU row kernels
  off (``cpu_kernel = False``), i.e. the torch kernels.

A step is forward + backward of ``sum(mean(stage_i))`` + an SGD (momentum)
step. Models are interleaved within each repetition (rotating the order) and
medians are reported, of the wall time and, on CPU, of the process CPU time
(``time.process_time``; on a machine shared with other jobs the wall time
also counts the time the process waits for a core, the CPU time does not,
so with ``--threads 1`` the CPU time is the robust number), and the
median and quartiles of the per-repetition ratios to ``plain``
(``paired_ratios.py``). Memory, per
model, two allocator-level measures (not RSS):

- ``saved``: bytes of the tensors autograd saves for backward (distinct
  storages, via ``torch.autograd.graph.saved_tensors_hooks``): exact and
  independent of the allocator, the dominant part of training memory;
- ``allocator peak``: the peak of the bytes torch's allocator holds during
  one step above the level before it, summed from the profiler's per-op
  allocation and free records (``profile_memory=True``); on CUDA
  ``torch.cuda.max_memory_allocated``.

Usage::

    python benchmarks/bench_cen_resnet.py [--depth 101] [--n 2] [--size 128]
        [--reps 7] [--norm-eval] [--exchanged 0 0.3] [--loop] [--streams4]
        [--torch-path] [--threads 1] [--device cuda --amp] [--per-layer]

``--per-layer`` times, instead of train steps, every distinct norm layer of
the CEN model (its input shape, exchange site or not) against
``nn.BatchNorm2d`` on the same input, and sums each over the model's layers:
what the exchanging norms add to a step, without the step-to-step noise of a
whole network.
"""
import argparse
import copy
import statistics
import time

import torch
from mmseg.models.backbones import ResNet

import cen_mm.seg  # noqa: F401
from cen_mm.cnn import exchange_norms, fold_channels
from cen_mm.seg.models.backbones import CENResNet
from paired_ratios import paired_ratios  # benchmarks/, the script's dir


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

    def __init__(self, depth, norm_eval, num_streams=2):
        super().__init__()
        self.num_streams = num_streams
        self.net = CENResNet(depth=depth, num_streams=num_streams,
                             norm_eval=norm_eval)

    def forward(self, x):
        return self.net(fold_channels(x, (3, ) * self.num_streams))


def set_exchanged(model, fraction):
    """Put ``fraction`` of every stream's penalised γ below θ."""
    with torch.no_grad():
        for _, layer in exchange_norms(model):
            for m, norm in enumerate(layer.streams):
                own = layer.sparsity_mask[m].nonzero().flatten()
                picked = own[:round(fraction * len(own))]
                norm.weight[picked] = layer.threshold / 2


def without_row_kernels(model):
    """A copy of ``model`` whose exchanging norms take the torch kernels."""
    model = copy.deepcopy(model)
    for _, layer in exchange_norms(model):
        layer.cpu_kernel = False
    return model


def make_step(model, amp=False):
    optim = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    scaler = torch.amp.GradScaler(enabled=amp)

    def step(x):
        optim.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, enabled=amp):
            loss = sum(o.float().mean() for o in model(x))
        scaler.scale(loss).backward()
        scaler.step(optim)
        scaler.update()

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


def allocator_peak(step, x):
    """Peak of the bytes held by torch's allocator during one step, above
    the level before it, from the profiler's per-op allocation/free
    records (``profile_memory=True``): allocator-exact, unlike RSS."""
    with torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU],
            profile_memory=True) as prof:
        step(x)
    level = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        level += event.self_cpu_memory_usage
        peak = max(peak, level)
    return peak


def per_layer(args, device) -> None:
    """Per distinct (input shape, exchange site) norm layer of the CEN
    model: fwd + bwd of the layer (row kernels, and torch kernels with
    ``--torch-path``) and of ``nn.BatchNorm2d`` on the same folded input,
    medians of interleaved blocks; then each summed over the model's layers,
    i.e. what the norms add to one train step."""
    cen = StackedCEN(args.depth, args.norm_eval).to(device).train()
    set_exchanged(cen, args.exchanged[-1])
    layers = {}
    hooks = [
        layer.register_forward_hook(lambda mod, inp, out: layers.setdefault(
            (tuple(inp[0].shape), mod.exchange), []).append(mod))
        for _, layer in exchange_norms(cen)
    ]
    cen(torch.randn(args.n, 6, args.size, args.size, device=device))
    for hook in hooks:
        hook.remove()
    sync = (lambda: torch.cuda.synchronize()) if device.type == 'cuda' \
        else (lambda: None)
    clock = time.process_time if device.type == 'cpu' else time.perf_counter
    print(f'per-layer fwd+bwd, ResNet-{args.depth}, {args.size}px, N={args.n} '
          f'per stream, norm_eval={args.norm_eval}, '
          f'{args.exchanged[-1]:.0%} of the penalised γ below θ '
          '(us per call, medians of 9 interleaved blocks)')
    totals = {}
    for (shape, exchange), mods in sorted(layers.items()):
        plain = torch.nn.BatchNorm2d(shape[1]).to(device)
        plain.train(mods[0].streams[0].training)
        norms = {'cen': mods[0], 'bn': plain}
        if args.torch_path:
            norms['cen-torch'] = copy.deepcopy(mods[0])
            norms['cen-torch'].cpu_kernel = False
        x = torch.randn(shape, device=device, requires_grad=True)
        grad = torch.randn_like(x)
        calls = max(3, min(100, int(2e7 / x.numel())))
        times = {name: [] for name in norms}
        for block in range(10):
            for name, norm in norms.items():
                sync()
                start = clock()
                for _ in range(calls):
                    norm(x).backward(grad)
                sync()
                if block:  # the first block warms up
                    times[name].append((clock() - start) / calls * 1e6)
        med = {name: statistics.median(t) for name, t in times.items()}
        for name, value in med.items():
            totals[name] = totals.get(name, 0) + value * len(mods)
        print(f'{str(shape):>20} {"exchange" if exchange else "":>8} '
              f'x{len(mods):<3} ' + '  '.join(
                  f'{name} {value:7.0f}' for name, value in med.items()) +
              '  ' + '  '.join(f'{name}/bn {med[name] / med["bn"]:.2f}'
                               for name in med if name != 'bn'))
    print('summed over the model\'s layers (ms per step): ' + ', '.join(
        f'{name} {value / 1e3:.1f}' for name, value in totals.items()))


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
    parser.add_argument(
        '--exchanged', type=float, nargs='+', default=[0.0, 0.3],
        help='fractions of each stream\'s penalised (own) γ set below θ at '
        'every exchange site, one CEN model each (the official run ends '
        'near 0.3)')
    parser.add_argument('--loop', action='store_true',
                        help='also time the per-stream loop')
    parser.add_argument('--streams4', action='store_true',
                        help='also time a 4-stream CEN on 4N images')
    parser.add_argument('--amp', action='store_true',
                        help='CUDA only: autocast float16')
    parser.add_argument('--torch-path', action='store_true',
                        help='also time each CEN model with the CPU row '
                        'kernels off (cen{p}-torch: the torch kernels)')
    parser.add_argument('--per-layer', action='store_true',
                        help='instead of train steps: time every distinct '
                        'norm layer of the CEN model (last --exchanged) '
                        'against nn.BatchNorm2d on its own input shape')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    if args.per_layer:
        return per_layer(args, device)
    sync = (lambda: torch.cuda.synchronize()) if device.type == 'cuda' \
        else (lambda: None)
    models = {'plain': PlainResNet(args.depth, args.norm_eval)}
    if args.loop:
        models['loop'] = LoopResNet(args.depth, args.norm_eval)
    for fraction in args.exchanged:
        cen = StackedCEN(args.depth, args.norm_eval)
        set_exchanged(cen, fraction)
        models[f'cen{fraction:.0%}'] = cen
        if args.torch_path:
            models[f'cen{fraction:.0%}-torch'] = without_row_kernels(cen)
    if args.streams4:
        cen = StackedCEN(args.depth, args.norm_eval, num_streams=4)
        set_exchanged(cen, args.exchanged[-1])
        models[f'cen{args.exchanged[-1]:.0%}M4'] = cen
    for model in models.values():
        model.to(device).train()
    x = torch.randn(args.n, 6, args.size, args.size, device=device)
    inputs = {name: torch.cat([x, x.flip(1)], dim=1) if name.endswith('M4')
              else x for name in models}
    steps = {name: make_step(model, args.amp) for name, model in models.items()}

    for _ in range(args.warmup):
        for name, step in steps.items():
            step(inputs[name])
    times = {name: [] for name in steps}
    cpu_times = {name: [] for name in steps}
    for rep in range(args.reps):
        # Rotate the order so no model always runs first.
        names = list(steps)
        names = names[rep % len(names):] + names[:rep % len(names)]
        for name in names:
            sync()
            start, cpu_start = time.perf_counter(), time.process_time()
            steps[name](inputs[name])
            sync()
            times[name].append(time.perf_counter() - start)
            cpu_times[name].append(time.process_time() - cpu_start)

    print(f'torch {torch.__version__}, device {device}, threads '
          f'{torch.get_num_threads()}, ResNet-{args.depth}, N={args.n} per '
          f'stream (2N={2 * args.n} images; M4: 4N), {args.size}px, '
          f'norm_eval={args.norm_eval}, amp={args.amp}, reps={args.reps}, '
          'cen{p}: p of the penalised γ below θ')
    med = {name: statistics.median(t) for name, t in times.items()}
    cpu = {name: statistics.median(t) for name, t in cpu_times.items()}
    for name, t in times.items():
        saved = saved_bytes(models[name], inputs[name]) / 2**20
        line = (f'{name:>12}: wall median {med[name] * 1e3:8.1f} ms '
                f'(min {min(t) * 1e3:.1f}, max {max(t) * 1e3:.1f}), '
                f'CPU median {cpu[name] * 1e3:8.1f} ms '
                f'(min {min(cpu_times[name]) * 1e3:.1f}); '
                f'saved-for-backward {saved:7.1f} MiB')
        if device.type == 'cpu':
            peak = allocator_peak(steps[name], inputs[name]) / 2**20
            line += f'; allocator peak {peak:7.1f} MiB'
        else:
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
            steps[name](inputs[name])
            sync()
            peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
            line += f'; CUDA peak delta {peak:7.1f} MiB'
        print(line, flush=True)
    clocks = (('wall', med), ('CPU', cpu)) if device.type == 'cpu' else \
        (('wall', med), )
    for label, value in clocks:
        ratios = [f'{name}/plain = {value[name] / value["plain"]:.3f}'
                  for name in value if name != 'plain']
        m4 = [n for n in value if n.endswith('M4')]
        if m4:
            ratios.append(f'{m4[0]}/{m4[0][:-2]} = '
                          f'{value[m4[0]] / value[m4[0][:-2]]:.3f}')
        print(f'{label} time ratio ' + ', '.join(ratios))
    clock = ('CPU', cpu_times) if device.type == 'cpu' else ('wall', times)
    print(f'paired {clock[0]} time ratio, median [quartiles] of the '
          'per-repetition ratios: ' + paired_ratios(clock[1], 'plain'))


if __name__ == '__main__':
    main()
