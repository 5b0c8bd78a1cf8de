# Copyright (c) cen_mm contributors. All rights reserved.
"""ExchangeBN / ExchangeIN against a naive per-stream reference."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import revert_sync_batchnorm
from mmengine.runner.checkpoint import load_state_dict

from cen_mm.cnn import ExchangeBN, ExchangeIN, exchange_norms, stream_parts

THETA = 2e-2


def naive_exchange_norm(x, layer, params, training):
    """Loop over streams and channels with explicit masks (paper Eq. 3-4).

    ``params`` holds leaf copies of every stream's weight and bias so the
    reference has its own autograd graph.
    """
    m_total = layer.num_streams
    normed = []
    for m, chunk in enumerate(x.chunk(m_total)):
        norm = layer.streams[m]
        weight, bias = params[m]
        # in training mode the functional calls update these in place
        stats = (norm.running_mean, norm.running_var)
        if isinstance(layer, ExchangeBN):
            normed.append(
                F.batch_norm(chunk, *stats, weight, bias, training=training,
                             eps=norm.eps))
        else:
            normed.append(
                F.instance_norm(chunk, *stats, weight, bias,
                                use_input_stats=training, eps=norm.eps))
    parts = stream_parts(layer.num_features, m_total)
    outs = []
    for m in range(m_total):
        channels = []
        for c in range(layer.num_features):
            replaced = (layer.exchange
                        and abs(float(params[m][0][c].detach())) < layer.threshold
                        and (layer.exchange_scope == 'any' or parts[m, c]))
            if replaced:
                others = [normed[k][:, c] for k in range(m_total) if k != m]
                channels.append(sum(others) / len(others))
            else:
                channels.append(normed[m][:, c])
        outs.append(torch.stack(channels, dim=1))
    return torch.cat(outs)


def make_layer(kind, num_streams, channels=8, **kwargs):
    layer_cls = ExchangeBN if kind == 'bn' else ExchangeIN
    layer = layer_cls(channels, num_streams=num_streams, threshold=THETA,
                      **kwargs)
    gen = torch.Generator().manual_seed(num_streams)
    with torch.no_grad():
        for m, norm in enumerate(layer.streams):
            norm.weight.copy_(torch.rand(channels, generator=gen) + 0.5)
            norm.bias.copy_(torch.randn(channels, generator=gen))
            norm.running_mean.copy_(torch.randn(channels, generator=gen))
            norm.running_var.copy_(torch.rand(channels, generator=gen) + 0.5)
        # Edge cases: exactly at θ (kept), negative and below θ, a channel
        # below θ in several streams, one below θ in every stream.
        layer.streams[0].weight[0] = THETA
        layer.streams[0].weight[1] = -THETA / 2
        layer.streams[0].weight[2] = 0.0
        layer.streams[1].weight[2] = THETA / 4
        for norm in layer.streams:
            norm.weight[3] = -THETA / 3
        layer.streams[-1].weight[5] = 1e-3
    return layer


@pytest.mark.parametrize('kind', ['bn', 'in'])
@pytest.mark.parametrize('num_streams', [2, 3, 4])
@pytest.mark.parametrize('training', [True, False])
@pytest.mark.parametrize('scope', ['any', 'own'])
def test_matches_naive_reference(kind, num_streams, training, scope):
    layer = make_layer(kind, num_streams, exchange_scope=scope)
    layer.train(training)
    x = torch.randn(num_streams * 3, 8, 5, 4, dtype=torch.float64)
    layer.double()
    params = [(n.weight.detach().clone().requires_grad_(),
               n.bias.detach().clone().requires_grad_())
              for n in layer.streams]
    x_ref = x.clone().requires_grad_()
    x.requires_grad_()
    ref_layer = copy.deepcopy(layer)
    expected = naive_exchange_norm(x_ref, ref_layer, params, training)
    out = layer(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)

    grad = torch.randn_like(out)
    out.backward(grad)
    expected.backward(grad)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=0, atol=1e-6)
    for norm, (weight, bias) in zip(layer.streams, params):
        torch.testing.assert_close(norm.weight.grad, weight.grad, rtol=0,
                                   atol=1e-6)
        torch.testing.assert_close(norm.bias.grad, bias.grad, rtol=0,
                                   atol=1e-6)
    if training:  # per-stream running statistics moved like the reference
        for norm, ref in zip(layer.streams, ref_layer.streams):
            torch.testing.assert_close(norm.running_mean, ref.running_mean)


def test_official_two_stream_rule_and_gradients():
    """M = 2: ``|γ| >= θ`` keeps, both below swaps; replaced channels get no
    gradient and donors get gradient from both streams."""
    layer = make_layer('bn', 2)
    layer.eval()
    x = torch.randn(4, 8, 3, 3)
    y = torch.cat([n(c) for n, c in zip(layer.streams, x.chunk(2))])
    y0, y1 = y.chunk(2)
    out0, out1 = layer(x).chunk(2)
    # channel 0: γ_0 == θ is kept; channel 1: stream 0 takes stream 1's;
    # channel 2 and 3: both below θ -> swapped; channel 5: stream 1 replaced.
    torch.testing.assert_close(out0[:, 0], y0[:, 0], rtol=0, atol=1e-6)
    torch.testing.assert_close(out0[:, 1], y1[:, 1], rtol=0, atol=1e-6)
    torch.testing.assert_close(out1[:, 1], y1[:, 1], rtol=0, atol=1e-6)
    for c in (2, 3):
        torch.testing.assert_close(out0[:, c], y1[:, c], rtol=0, atol=1e-6)
        torch.testing.assert_close(out1[:, c], y0[:, c], rtol=0, atol=1e-6)
    torch.testing.assert_close(out1[:, 5], y0[:, 5], rtol=0, atol=1e-6)
    expected = torch.tensor([[False, True, True, True, False, False, False,
                              False],
                             [False, False, True, True, False, True, False,
                              False]])
    assert torch.equal(layer.exchange_mask(), expected)
    torch.testing.assert_close(layer.exchanged_fraction(),
                               torch.tensor([3 / 8, 3 / 8]))

    # d(sum(out * r))/dβ: a kept channel collects its own stream's r, a
    # donated one also the other stream's, a replaced-only one nothing.
    r = torch.randn(4, 8, 3, 3)
    (layer(x) * r).sum().backward()
    r0, r1 = (t.sum(dim=(0, 2, 3)) for t in r.chunk(2))
    beta0, beta1 = layer.streams[0].bias.grad, layer.streams[1].bias.grad
    torch.testing.assert_close(beta0[1], torch.tensor(0.))  # replaced
    torch.testing.assert_close(beta1[1], r0[1] + r1[1])  # donor to both
    torch.testing.assert_close(beta0[2], r1[2])  # swapped
    torch.testing.assert_close(beta0[0], r0[0])


def test_own_scope_only_exchanges_own_part():
    layer = make_layer('bn', 2, exchange_scope='own')
    # stream 0 owns channels 0-3, stream 1 owns 4-7
    expected = torch.zeros(2, 8, dtype=torch.bool)
    expected[0, [1, 2, 3]] = True
    expected[1, 5] = True
    assert torch.equal(layer.exchange_mask(), expected)


def test_exchange_off_is_private_norm():
    layer = make_layer('bn', 3, exchange=False)
    layer.eval()
    x = torch.randn(6, 8, 2, 2)
    expected = torch.cat([n(c) for n, c in zip(layer.streams, x.chunk(3))])
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-6)
    assert not layer.exchange_mask().any()


@pytest.mark.parametrize('sparsity,owned', [('own', [[1, 1, 1, 0, 0, 0, 0],
                                                     [0, 0, 0, 1, 1, 1, 1]]),
                                            ('all', [[1] * 7, [1] * 7]),
                                            ('none', [[0] * 7, [0] * 7])])
def test_sparsity_mask_and_penalty(sparsity, owned):
    layer = ExchangeBN(7, sparsity=sparsity)
    owned = torch.tensor(owned, dtype=torch.bool)
    assert torch.equal(layer.sparsity_mask, owned)
    with torch.no_grad():
        for norm in layer.streams:
            norm.weight.copy_(torch.linspace(-0.05, 0.05, 7))
    expected = (layer.gamma.abs() * owned).sum()
    torch.testing.assert_close(layer.sparsity_penalty(), expected)
    layer.sparsity_penalty().backward()
    for m, norm in enumerate(layer.streams):
        torch.testing.assert_close(norm.weight.grad,
                                   torch.sign(norm.weight.detach()) *
                                   owned[m])
    below, total = layer.penalised_below_threshold()
    assert total == int(owned.sum())
    assert below == int(((layer.gamma.abs() < 2e-2) & owned).sum())


def test_official_half_split():
    """Stream 0 owns ``[:C // 2]`` and stream 1 ``[C // 2:]`` (odd C too)."""
    for channels in (64, 5):
        parts = stream_parts(channels, 2)
        assert parts[0].nonzero().max() == channels // 2 - 1
        assert parts[1].nonzero().min() == channels // 2
        assert parts.sum(0).eq(1).all()


def test_norm_eval_freezes_statistics():
    layer = ExchangeBN(4)
    layer.train()
    for norm in layer.streams:
        norm.eval()  # what mmseg ResNet(norm_eval=True).train() does
    before = [n.running_mean.clone() for n in layer.streams]
    layer(torch.randn(4, 4, 3, 3) * 5 + 3).sum().backward()
    for norm, mean in zip(layer.streams, before):
        torch.testing.assert_close(norm.running_mean, mean)
        assert norm.num_batches_tracked == 0
        assert norm.weight.grad is not None


def test_per_stream_batch_statistics():
    layer = ExchangeBN(3, exchange=False)
    x = torch.cat([torch.randn(4, 3, 5, 5), torch.randn(4, 3, 5, 5) * 10 + 7])
    out = layer(x)
    for chunk in out.chunk(2):  # each stream normalised on its own
        torch.testing.assert_close(chunk.mean(dim=(0, 2, 3)),
                                   torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(layer.streams[1].running_mean,
                               0.1 * x[4:].mean(dim=(0, 2, 3)))


def test_state_dict_round_trip_and_single_stream_expansion(tmp_path):
    layer = make_layer('bn', 3)
    restored = ExchangeBN(8, num_streams=3)
    restored.load_state_dict(layer.state_dict())
    for a, b in zip(layer.state_dict().values(),
                    restored.state_dict().values()):
        assert torch.equal(a, b)
    assert sorted(layer.state_dict()) == sorted(
        f'streams.{m}.{k}' for m in range(3) for k in
        ('weight', 'bias', 'running_mean', 'running_var',
         'num_batches_tracked'))

    # A single-stream checkpoint (e.g. ImageNet BN) fills every stream,
    # through torch and through mmengine's loader, nested in a model.
    plain = nn.Sequential(nn.Conv2d(3, 8, 1), nn.BatchNorm2d(8))
    with torch.no_grad():
        plain[1].weight.uniform_()
        plain[1].running_var.uniform_(1, 2)
    model = nn.Sequential(nn.Conv2d(3, 8, 1), ExchangeBN(8, num_streams=2))
    torch.save(plain.state_dict(), tmp_path / 'single.pth')
    load_state_dict(model, torch.load(tmp_path / 'single.pth'), strict=True)
    for norm in model[1].streams:
        for key, value in plain[1].state_dict().items():
            assert torch.equal(norm.state_dict()[key], value), key
    model2 = nn.Sequential(nn.Conv2d(3, 8, 1), ExchangeBN(8, num_streams=2))
    model2.load_state_dict(plain.state_dict())
    assert torch.equal(model2[1].streams[1].weight, plain[1].weight)


def test_official_checkpoint_names_are_mapped():
    layer = make_layer('bn', 2)
    official = {
        k.replace('streams.', 'bn_'): v
        for k, v in layer.state_dict().items()
    }
    restored = ExchangeBN(8)
    restored.load_state_dict(official)
    assert torch.equal(restored.gamma, layer.gamma)


def test_sync_bn_conversion_keeps_streams_and_exchange():
    layer = make_layer('bn', 2)
    layer.eval()
    x = torch.randn(4, 8, 3, 3)
    expected = layer(x)
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(layer))
    assert isinstance(synced, ExchangeBN)
    assert all(isinstance(n, nn.SyncBatchNorm) for n in synced.streams)
    synced.eval()
    torch.testing.assert_close(synced(x), expected)
    reverted = revert_sync_batchnorm(synced)
    assert isinstance(reverted, ExchangeBN)
    assert not any(isinstance(n, nn.SyncBatchNorm) for n in reverted.streams)
    torch.testing.assert_close(reverted(x), expected)


def test_build_from_config_in_mmseg_and_mmagic_scopes():
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS as SEG_MODELS
    for scope in ('mmseg', 'mmagic', 'mmengine'):
        with DefaultScope.overwrite_default_scope(scope):
            name, layer = build_norm_layer(
                dict(type='ExchangeBN', num_streams=3, threshold=0.1,
                     requires_grad=True), 16, postfix=2)
            assert name == 'bn2' and isinstance(layer, ExchangeBN)
            assert layer.num_streams == 3 and layer.threshold == 0.1
            name, layer = build_norm_layer(dict(type='ExchangeIN'), 16)
            assert name == 'in' and isinstance(layer, ExchangeIN)
            assert layer.threshold == 1e-2
            assert all(n.affine and n.track_running_stats
                       for n in layer.streams)
    layer = SEG_MODELS.build(dict(type='ExchangeBN', num_features=4))
    assert isinstance(layer, ExchangeBN)
    frozen = build_norm_layer(dict(type='ExchangeBN', requires_grad=False),
                              4)[1]
    assert not any(p.requires_grad for p in frozen.parameters())
    model = nn.Sequential(nn.Conv2d(3, 4, 1), layer)
    assert [n for n, _ in exchange_norms(model)] == ['1']


def test_mmagic_scope_build():
    pytest.importorskip('mmagic')
    from mmagic.registry import MODELS as AGIC_MODELS
    layer = AGIC_MODELS.build(dict(type='ExchangeIN', num_features=4))
    assert isinstance(layer, ExchangeIN)


@pytest.mark.parametrize('kwargs,match', [
    (dict(num_streams=1), 'num_streams must be an integer >= 2'),
    (dict(num_streams=0), 'num_streams must be an integer >= 2'),
    (dict(threshold=-1e-3), 'threshold must be >= 0'),
    (dict(exchange_scope='half'), 'exchange_scope must be one of'),
    (dict(sparsity='some'), 'sparsity must be one of'),
    (dict(affine=False), 'affine=False'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ExchangeBN(4, **kwargs)


def test_bad_inputs():
    layer = ExchangeBN(4, num_streams=3)
    with pytest.raises(ValueError, match='not divisible by 3'):
        layer(torch.randn(4, 4, 2, 2))
    with pytest.raises(ValueError, match='expected 4 channels'):
        layer(torch.randn(6, 5, 2, 2))


def test_activation_checkpointing_and_inplace_relu():
    """The output is a fresh tensor, so in-place ReLU under
    ``torch.utils.checkpoint`` works and matches the plain run."""
    from torch.utils.checkpoint import checkpoint
    layer = make_layer('bn', 2)
    block = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), layer,
                          nn.ReLU(inplace=True))
    x = torch.randn(4, 8, 6, 6, requires_grad=True)
    expected = block(x)
    expected.sum().backward()
    grad = x.grad.clone()
    x.grad = None
    out = checkpoint(block, x, use_reentrant=True)
    out.sum().backward()
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(x.grad, grad)


def _fused_vs_reference(layer, x, mixing=None):
    """Run the fused path and ``reference_forward`` (``fused=False``) on
    copies of ``layer``; compare outputs, all gradients and the updated
    running statistics."""
    layer.zero_grad(set_to_none=True)
    ref = copy.deepcopy(layer)
    ref.fused = False
    if mixing is not None:
        layer._mixing = ref._mixing = mixing
    assert layer._fusable()
    results = []
    for module in (layer, ref):
        inp = x.clone().requires_grad_()
        out = module(inp)
        out.backward(torch.linspace(-1, 1, out.numel(),
                                    dtype=out.dtype).view(out.shape))
        results.append((out, inp.grad, module))
    (out, grad, fused), (out_ref, grad_ref, reference) = results
    torch.testing.assert_close(out, out_ref, rtol=0, atol=1e-6)
    torch.testing.assert_close(grad, grad_ref, rtol=0, atol=1e-6)
    for a, b in zip(fused.streams, reference.streams):
        torch.testing.assert_close(a.weight.grad, b.weight.grad, rtol=0,
                                   atol=1e-6)
        torch.testing.assert_close(a.bias.grad, b.bias.grad, rtol=0,
                                   atol=1e-6)
        for key, value in a.state_dict().items():
            torch.testing.assert_close(value, b.state_dict()[key], rtol=0,
                                       atol=1e-6)


@pytest.mark.parametrize('kind', ['bn', 'in'])
@pytest.mark.parametrize('mode', ['train', 'frozen', 'eval'])
@pytest.mark.parametrize('num_streams', [2, 3])
def test_fused_path_matches_reference_path(kind, mode, num_streams):
    """The fused kernels equal the readable per-stream path, in float64,
    for batch statistics, frozen statistics (``norm_eval``) and eval."""
    layer = make_layer(kind, num_streams).double()
    layer.train(mode != 'eval')
    if mode == 'frozen':
        for norm in layer.streams:
            norm.eval()
    x = torch.randn(num_streams * 2, 8, 3, 5, dtype=torch.float64)
    _fused_vs_reference(layer, x)
    # one sample per stream (N = 1), twice: running statistics update in
    # place without breaking the backward
    _fused_vs_reference(layer, x[::2].clone())
    _fused_vs_reference(layer, x[::2].clone())


@pytest.mark.parametrize('kind', ['bn', 'in'])
def test_fused_path_consumes_any_mixing(kind):
    """The kernels take whatever ``_mixing()`` returns (the exchange-mode
    seam): here channel 4 is discarded by stream 0 (a zero row) and channel
    6 is a 0.25/0.75 blend; the fused path equals the reference."""
    layer = make_layer(kind, 2).double()

    def mixing(dtype):
        cols = torch.tensor([4, 6])
        weights = torch.tensor([[[0., 0.], [0., 1.]],
                                [[0.25, 0.75], [0., 1.]]], dtype=dtype)
        return cols, weights

    x = torch.randn(4, 8, 3, 3, dtype=torch.float64)
    _fused_vs_reference(layer, x, mixing)
    layer._mixing = mixing
    out = layer.eval()(x)
    assert torch.equal(out[:2, 4], torch.zeros_like(out[:2, 4]))


def test_fused_batch_norm_momentum_none_and_counters():
    layer = make_layer('bn', 2).double()
    for norm in layer.streams:
        norm.momentum = None  # cumulative moving average
    x = torch.randn(4, 8, 3, 3, dtype=torch.float64)
    _fused_vs_reference(layer, x)
    assert int(layer.streams[0].num_batches_tracked) == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('kind', ['bn', 'in'])
def test_fused_path_on_cuda_with_amp(kind):
    """CUDA: the fused path equals the reference in float32, and runs under
    autocast (half inputs take torch's kernels)."""
    layer = make_layer(kind, 2).cuda()
    x = torch.randn(4, 8, 6, 6, device='cuda')
    ref = copy.deepcopy(layer)
    ref.fused = False
    torch.testing.assert_close(layer(x), ref(x), rtol=1e-5, atol=1e-5)
    conv = nn.Conv2d(8, 8, 1).cuda()
    with torch.autocast('cuda', dtype=torch.float16):
        out = layer(conv(x))
    out.float().sum().backward()
    assert torch.isfinite(layer.streams[0].weight.grad).all()


@pytest.mark.parametrize('kind', ['bn', 'in'])
def test_cached_state_follows_every_change(kind):
    """The fused path caches the exchange set, its row indices and the
    frozen statistics; every change to what they derive from (γ crossing
    θ, running statistics updated in place or loaded, dtype) is seen."""
    layer = make_layer(kind, 2).double().eval()
    x = torch.randn(4, 8, 3, 3, dtype=torch.float64)
    _fused_vs_reference(layer, x)
    _fused_vs_reference(layer, x)  # now from the caches
    with torch.no_grad():
        layer.streams[0].running_mean.add_(0.5)
        layer.streams[1].weight[6] = THETA / 2  # a new exchanged channel
    _fused_vs_reference(layer, x)
    state = copy.deepcopy(layer.state_dict())
    state['streams.1.running_var'] = torch.full((8, ), 3.0, dtype=torch.float64)
    layer.load_state_dict(state)
    _fused_vs_reference(layer, x)
    layer.float()
    layer(x.float())
    layer.double()  # new tensors (and ids) for every buffer
    _fused_vs_reference(layer, x)
    # a new batch size rebuilds the per-sample statistics
    _fused_vs_reference(layer, x[:2].repeat(3, 1, 1, 1))


@pytest.mark.parametrize('kind', ['bn', 'in'])
@pytest.mark.parametrize('mode', ['train', 'frozen'])
def test_output_is_not_a_view(kind, mode):
    """The fused output is no autograd view, so in-place ops after the norm
    (ReLU(inplace=True), a residual ``+=``) record no ``CopySlices``; the
    gradients through them equal the reference path."""
    layer = make_layer(kind, 2).double()
    if mode == 'frozen':
        for norm in layer.streams:
            norm.eval()
    x = torch.randn(4, 8, 3, 3, dtype=torch.float64)
    assert not layer(x)._is_view()
    ref = copy.deepcopy(layer)
    ref.fused = False
    grads = []
    for module in (layer, ref):
        inp = x.clone().requires_grad_()
        out = module(inp)
        out += inp  # a residual block: norm3, += identity, ReLU
        assert 'CopySlices' not in type(out.grad_fn).__name__
        out.relu_()
        out.backward(torch.linspace(-1, 1, out.numel(),
                                    dtype=out.dtype).view(out.shape))
        grads.append([inp.grad] + [p.grad for p in module.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
