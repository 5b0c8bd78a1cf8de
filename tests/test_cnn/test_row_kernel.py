# Copyright (c) cen_mm contributors. All rights reserved.
"""The CPU row kernels of exchanging norms (frozen, batch and instance
statistics):
equal to an independent computation and to ``reference_forward`` (outputs,
gradients, running statistics), taken exactly where they apply, and a build
that falls back with a warning, caches and never leaves a broken or locked
library."""
import copy
import os
import warnings

import pytest
import torch

from cen_mm.cnn import ExchangeBN, ExchangeIN
from cen_mm.cnn import row_kernel as rk
from cen_mm.cnn.exchange_norm import _source_streams

THETA = 2e-2
KERNEL = 'StreamRows'  # in the name of the kernels' C++ autograd node


@pytest.fixture
def kernel():
    if rk.row_kernel() is None:
        pytest.skip('needs a C compiler (the row kernel could not be built)')


@pytest.fixture
def fresh_build(monkeypatch, tmp_path):
    """An unloaded kernel state and an empty cache directory."""
    monkeypatch.setattr(rk, '_state', {})
    monkeypatch.setenv('CEN_MM_KERNEL_CACHE', str(tmp_path / 'kernels'))
    return tmp_path / 'kernels'


def frozen_layer(kind='bn', num_streams=2, channels=8, **kwargs):
    """A layer in eval mode (frozen statistics) with channels below θ."""
    cls = ExchangeBN if kind == 'bn' else ExchangeIN
    layer = cls(channels, num_streams=num_streams, threshold=THETA, **kwargs)
    gen = torch.Generator().manual_seed(channels)
    with torch.no_grad():
        for norm in layer.streams:
            norm.weight.copy_(torch.rand(channels, generator=gen) + 0.5)
            norm.bias.copy_(torch.randn(channels, generator=gen))
            norm.running_mean.copy_(torch.randn(channels, generator=gen))
            norm.running_var.copy_(torch.rand(channels, generator=gen) + 0.5)
        layer.streams[0].weight[1] = -THETA / 2  # stream 0 takes stream 1
        layer.streams[-1].weight[6] = THETA / 4  # the last takes another
        for norm in layer.streams:  # below θ everywhere: a swap (M = 2)
            norm.weight[3] = THETA / 3
    return layer.double().eval()


def run(layer, x, grad):
    """Output, grad_fn name and the gradients of x and every parameter."""
    layer.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    out = layer(x)
    name = out.grad_fn.name()
    out.backward(grad)
    return out.detach(), name, [x.grad] + [p.grad for p in layer.parameters()]


def assert_kernel_equals_reference(layer, x, taken=True):
    """Outputs, gradients and (batch statistics) the updated running
    statistics and counters equal ``reference_forward``'s."""
    ref = copy.deepcopy(layer)
    ref.fused = False
    grad = torch.linspace(-1, 1, x.numel(), dtype=x.dtype).view(x.shape)
    out, name, grads = run(layer, x, grad)
    out_ref, _, grads_ref = run(ref, x, grad)
    assert (KERNEL in name) == taken, name
    double = x.dtype == torch.float64
    tol = dict(rtol=0, atol=1e-10 if double else 1e-6)
    torch.testing.assert_close(out, out_ref, **tol)
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b, **tol)
    for key, value in layer.state_dict().items():
        torch.testing.assert_close(value, ref.state_dict()[key], rtol=0,
                                   atol=1e-12 if double else 1e-6)


@pytest.mark.parametrize('kind', ['bn', 'in'])
@pytest.mark.parametrize('statistics', ['frozen', 'input'])
@pytest.mark.parametrize('kwargs', [
    dict(), dict(exchange_scope='own'), dict(exchange_mode='discard'),
    dict(exchange_mode='fixed'), dict(exchange_mode='none'),
    dict(sparsity='all')
])
def test_kernel_equals_reference_path(kernel, kind, statistics, kwargs):
    """Frozen statistics (eval) and input statistics (training: batch
    statistics for BN, instance statistics for IN)."""
    torch.manual_seed(0)
    layer = frozen_layer(kind, **kwargs)
    layer.train(statistics == 'input')
    x = torch.randn(6, 8, 3, 5, dtype=torch.float64)
    assert_kernel_equals_reference(layer, x)
    # channels-last input, one sample per stream, 1 x 1 maps
    assert_kernel_equals_reference(
        layer, x.contiguous(memory_format=torch.channels_last))
    assert_kernel_equals_reference(layer, x[:2])
    if (kind, statistics) != ('in', 'input'):  # needs > 1 value per row
        assert_kernel_equals_reference(layer, x[:, :, :1, :1])
    # eval mode untracked: BN stays frozen while running statistics exist
    # (as nn.BatchNorm2d); both take input statistics without them
    layer.eval()
    for norm in layer.streams:
        norm.track_running_stats = False
    if kind == 'bn':
        assert_kernel_equals_reference(layer, x)
    for norm in layer.streams:
        norm.running_mean = norm.running_var = None
        norm.num_batches_tracked = None
    assert_kernel_equals_reference(layer, x)


def test_batch_statistics_momentum_none_and_counters(kernel):
    layer = frozen_layer().train()
    for norm in layer.streams:
        norm.momentum = None  # cumulative moving average
    x = torch.randn(4, 8, 3, 3, dtype=torch.float64)
    for _ in range(3):
        assert_kernel_equals_reference(layer, x)
    assert int(layer.streams[1].num_batches_tracked) == 3


def test_kernel_equals_direct_computation_and_gradcheck(kernel):
    """An independent check on every case of the backward: a channel every
    stream reads from stream 0 (3 readers), zeroed outputs, an unread
    source, kept rows."""
    m, n, c = 3, 2, 4
    src = torch.tensor([[0, 0, -1, 1],
                        [0, 1, 1, 0],
                        [0, 2, 0, 2]])
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(m * n, c, 2, 3, dtype=torch.float64, generator=gen)
    mean = torch.randn(m, c, dtype=torch.float64, generator=gen)
    var = torch.rand(m, c, dtype=torch.float64, generator=gen) + 0.5
    stats = list(mean), list(var), 1e-3
    weight = [torch.randn(c, dtype=torch.float64, generator=gen)
              for _ in range(m)]
    bias = [torch.randn(c, dtype=torch.float64, generator=gen)
            for _ in range(m)]
    out = rk.frozen_stream_rows(x, src, weight, bias, *stats)
    xs = x.view(m, n, c, -1)
    expected = torch.zeros_like(xs)
    for o in range(m):
        for ch in range(c):
            s = int(src[o, ch])
            if s >= 0:
                expected[o, :, ch] = (xs[s, :, ch] - mean[s, ch]) / (
                    var[s, ch] + 1e-3).sqrt() * weight[s][ch] + bias[s][ch]
    torch.testing.assert_close(out, expected.view_as(x), rtol=0, atol=1e-12)
    inputs = [x.clone().requires_grad_()] + [
        t.clone().requires_grad_() for t in weight + bias]
    assert torch.autograd.gradcheck(
        lambda x, *p: rk.frozen_stream_rows(x, src, p[:m], p[m:], *stats),
        inputs)
    # input statistics: each stream's own mean and biased variance, over
    # its samples (batch) or per sample (instance)
    for per_sample, dims in ((False, (1, 3)), (True, 3)):
        out, stat_mean, stat_var = rk.input_stream_rows(
            x, src, 1e-5, weight, bias, per_sample=per_sample)
        var, mu = torch.var_mean(xs, dim=dims, unbiased=False)
        torch.testing.assert_close(stat_mean, mu, rtol=0, atol=1e-12)
        torch.testing.assert_close(stat_var, var, rtol=0, atol=1e-12)
        if per_sample:
            mu, var = mu[..., None], var[..., None]
        else:
            mu, var = mu[:, None, :, None], var[:, None, :, None]
        xhat = ((xs - mu) * (var + 1e-5).rsqrt()).view_as(x)
        torch.testing.assert_close(
            out, rk.frozen_stream_rows(xhat, src, weight, bias,
                                       list(torch.zeros(m, c).double()),
                                       list(torch.ones(m, c).double()), 0.0),
            rtol=0, atol=1e-12)
        assert torch.autograd.gradcheck(
            lambda x, *p: rk.input_stream_rows(x, src, 1e-5, p[:m], p[m:],
                                               per_sample)[0], inputs)


def test_two_threads_give_the_same_bits(kernel):
    layer = frozen_layer(channels=64).float()
    x = torch.randn(8, 64, 7, 7)
    grad = torch.randn_like(x)
    results = []
    threads = torch.get_num_threads()
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            out, name, grads = run(layer, x, grad)
            assert KERNEL in name
            results.append([out] + grads)
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_torch_kernels_where_the_row_kernel_does_not_apply(kernel):
    x = torch.randn(6, 8, 3, 3, dtype=torch.float64)
    # a mean of several streams (M = 3); one value per channel (torch's
    # errors); switched off
    assert_kernel_equals_reference(frozen_layer(num_streams=3), x,
                                   taken=False)
    with pytest.raises(ValueError, match='more than 1 value per channel'):
        frozen_layer().train()(x[:2, :, :1, :1])
    with pytest.raises(ValueError, match='more than 1 value'):
        frozen_layer('in').train()(x[:, :, :1, :1])
    layer = frozen_layer()
    layer.cpu_kernel = False
    assert_kernel_equals_reference(layer, x, taken=False)


def test_statistics_changes_reach_the_kernel(kernel):
    layer = frozen_layer()
    x = torch.randn(4, 8, 3, 3, dtype=torch.float64)
    assert_kernel_equals_reference(layer, x)
    with torch.no_grad():
        layer.streams[1].running_var.mul_(2)
    assert_kernel_equals_reference(layer, x)
    layer.streams[0].eps = 1e-3
    layer.streams[1].eps = 1e-3
    assert_kernel_equals_reference(layer, x)


def test_unbuildable_kernel_warns_once_and_falls_back(fresh_build,
                                                      monkeypatch):
    monkeypatch.setenv('CXX', '/nonexistent/c++')
    layer = frozen_layer()
    x = torch.randn(4, 8, 3, 3, dtype=torch.float64)
    with pytest.warns(UserWarning, match='row kernel .* unavailable'):
        assert_kernel_equals_reference(layer, x, taken=False)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert_kernel_equals_reference(layer, x, taken=False)


def test_switched_off_by_environment(fresh_build, monkeypatch):
    monkeypatch.setenv('CEN_MM_CPU_KERNEL', '0')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert rk.row_kernel() is None
    assert not fresh_build.exists()


def test_build_is_cached_and_atomic(kernel, tmp_path, monkeypatch):
    """The built library is loaded from the cache, not rebuilt; a failed
    build leaves neither a library nor its build directory (whose lock file
    would stall the next build)."""
    path = rk.row_kernel().__file__
    cache, stamp = os.path.dirname(path), os.stat(path).st_mtime_ns
    assert os.path.basename(path) == \
        f'cen_mm_stream_rows_{rk._build_key()}.so'
    assert rk._build(cache).__file__ == path
    assert os.stat(path).st_mtime_ns == stamp
    broken = tmp_path / 'broken.cpp'
    broken.write_text('this is not C++\n')
    monkeypatch.setattr(rk, '_SOURCES', [str(broken)])
    monkeypatch.setattr(rk, '_DEPENDS', [])
    fresh = tmp_path / 'kernels'
    with pytest.raises(RuntimeError, match='broken.cpp'):
        rk._build(str(fresh))
    assert os.listdir(fresh) == []


@pytest.mark.parametrize('kind,training', [('bn', False), ('bn', True),
                                           ('in', True)])
def test_non_contiguous_output_gradients(kernel, kind, training):
    """``out.sum()`` hands an expanded gradient and a slice a zero-filled
    one: both are made contiguous for the kernel (and kept alive)."""
    layer = frozen_layer(kind).train(training)
    ref = copy.deepcopy(layer)
    ref.fused = False
    x = torch.randn(4, 8, 3, 3, dtype=torch.float64)
    for reduce in (lambda out: out.sum(), lambda out: out[2:, ::2].sum()):
        grads = []
        for module in (layer, ref):
            module.zero_grad(set_to_none=True)
            inp = x.clone().requires_grad_()
            reduce(module(inp)).backward()
            grads.append([inp.grad] + [p.grad for p in module.parameters()])
        for a, b in zip(*grads):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_bad_arguments_are_refused(kernel):
    x = torch.randn(4, 8, 3, 3)
    src = torch.zeros(2, 8, dtype=torch.int64)
    params = [torch.ones(8)] * 2, [torch.zeros(8)] * 2
    stats = [torch.zeros(8)] * 2, [torch.ones(8)] * 2, 1e-5
    with pytest.raises(ValueError, match=r'weight to be \(8,\) Double'):
        rk.frozen_stream_rows(x.double(), src, *params,
                              *([t.double() for t in ts] for ts in stats[:2]),
                              1e-5)
    with pytest.raises(ValueError, match='int64 sources'):
        rk.frozen_stream_rows(x, src.int(), *params, *stats)
    with pytest.raises(ValueError, match=r'sources \(2, 4\)'):
        rk.frozen_stream_rows(x, src[:, :4], *params, *stats)
    with pytest.raises(ValueError, match=r'expected 2 bias'):
        rk.frozen_stream_rows(x, src, params[0], params[1][:1], *stats)
    with pytest.raises(ValueError, match=r'running variance to be \(8,\)'):
        rk.frozen_stream_rows(x, src, *params, stats[0],
                              [torch.ones(4)] * 2, 1e-5)
    with pytest.raises(ValueError, match=r'parts \(2, 8\)'):
        rk.threshold_sources(params[0], 0.1, parts=torch.ones(2, 8))
    torch.testing.assert_close(  # a non-contiguous input is copied
        rk.frozen_stream_rows(x.transpose(2, 3), src, *params, *stats),
        rk.frozen_stream_rows(x.transpose(2, 3).contiguous(), src, *params,
                              *stats))


@pytest.mark.parametrize('num_streams', [2, 3])
@pytest.mark.parametrize('mode', ['threshold', 'discard'])
@pytest.mark.parametrize('scope', ['any', 'own'])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_threshold_sources_equal_the_mixing_rule(kernel, num_streams, mode,
                                                 scope, dtype):
    """The C++ exchange set is the one ``_mixing()`` defines, including γ
    exactly at θ in γ's dtype (kept, as ``γ.abs() < θ`` decides) and just
    below it (replaced); None where an output would mix streams."""
    layer = ExchangeBN(16, num_streams=num_streams, threshold=THETA,
                       exchange_mode=mode, exchange_scope=scope).to(dtype)
    gen = torch.Generator().manual_seed(num_streams)
    theta = torch.tensor(THETA, dtype=dtype)
    with torch.no_grad():
        for m, norm in enumerate(layer.streams):
            norm.weight.copy_((torch.rand(16, generator=gen) - 0.5) * 4 *
                              THETA)
            norm.weight[m] = theta
            norm.weight[8 + m] = -theta.nextafter(torch.zeros_like(theta))
    weight = [n.weight for n in layer.streams]
    expected = _source_streams(layer.parts.shape, layer.parts.device,
                               layer._mixing(dtype))
    actual = rk.threshold_sources(weight, THETA, mode == 'discard',
                                  layer.parts if scope == 'own' else None)
    if expected is None:
        assert actual is None and num_streams == 3 and mode == 'threshold'
    else:
        assert torch.equal(actual, expected)
        assert (actual != torch.arange(num_streams)[:, None]).sum() > 0
    x = torch.randn(2 * num_streams, 16, 3, 3, dtype=dtype)
    assert_kernel_equals_reference(layer.eval(), x, taken=actual is not None)


def test_overridden_exchange_rule_takes_the_mixing_path(kernel):
    """A subclass with its own ``_replaced`` (the exchange-mode seam) gets
    its sources from ``_mixing()``, not from the built-in rule."""

    class EveryOtherChannel(ExchangeBN):

        def _replaced(self, dtype=torch.float32):
            replaced = torch.zeros_like(self.parts)
            replaced[0, ::2] = True
            return replaced

    layer = EveryOtherChannel(8, threshold=THETA).double().eval()
    assert not layer._builtin_rule()
    x = torch.randn(4, 8, 3, 3, dtype=torch.float64)
    assert_kernel_equals_reference(layer, x)
    out = layer(x)
    torch.testing.assert_close(out[:2, ::2], out[2:, ::2], rtol=0, atol=0)
