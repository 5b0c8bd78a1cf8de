# Copyright (c) cen_mm contributors. All rights reserved.
"""Freezing exchanging norms into StreamAffineMix and folding BN into convs:
outputs equal to the eval-mode original."""
import pytest
import torch
import torch.nn as nn

import cen_mm.deploy.convert as convert
from cen_mm.cnn import ExchangeBN, ExchangeIN
from cen_mm.cnn import row_kernel as rk
from cen_mm.deploy import (StreamAffineMix, convert_exchange_norms,
                           deploy_model, fold_conv_bn)


def _randomise(layer, gen, below=(1, 3)):
    with torch.no_grad():
        for m, norm in enumerate(layer.streams):
            c = norm.num_features
            norm.weight.copy_(torch.rand(c, generator=gen) + 0.5)
            norm.bias.copy_(torch.randn(c, generator=gen))
            norm.running_mean.copy_(torch.randn(c, generator=gen))
            norm.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            # some channels below θ: exchanged
            norm.weight[list(below)[m % len(below)] + m] = 1e-3


@pytest.mark.parametrize('cls', [ExchangeBN, ExchangeIN])
@pytest.mark.parametrize('num_streams', [2, 3])
@pytest.mark.parametrize('exchange', [True, False])
def test_stream_affine_mix_equals_eval_layer(cls, num_streams, exchange):
    gen = torch.Generator().manual_seed(num_streams)
    layer = cls(6, num_streams=num_streams, exchange=exchange)
    _randomise(layer, gen)
    layer.eval()
    frozen = StreamAffineMix.from_exchange_norm(layer)
    assert frozen.mixed == exchange
    x = torch.randn(num_streams * 2, 6, 3, 5, generator=gen)
    torch.testing.assert_close(frozen(x), layer(x), rtol=0, atol=1e-5)


def test_stream_affine_mix_discard_mode_zero_weights():
    """A mixing row of zeros (the 'discard' exchange mode) zeroes the
    channel: the conversion consumes ``_mixing()`` as it is."""
    layer = ExchangeBN(4).eval()
    with torch.no_grad():
        layer.streams[0].weight[2] = 0.

    def discard(dtype):
        cols = torch.tensor([2])
        weights = torch.tensor([[[0., 0.], [0., 1.]]], dtype=dtype)
        return cols, weights

    layer._mixing = discard
    frozen = StreamAffineMix.from_exchange_norm(layer)
    x = torch.randn(4, 4, 2, 2)
    out = frozen(x)
    assert torch.equal(out[:2, 2], torch.zeros(2, 2, 2))
    torch.testing.assert_close(out, layer(x), rtol=0, atol=1e-5)


def test_no_running_stats_is_refused_and_kept():
    layer = ExchangeIN(4, track_running_stats=False)
    with pytest.raises(ValueError, match='track_running_stats=False'):
        StreamAffineMix.from_exchange_norm(layer)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), layer)
    assert convert_exchange_norms(model)[1] is layer


def test_fold_conv_bn_and_deploy_model_check():
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1, bias=False), ExchangeBN(6), nn.ReLU(),
        nn.Conv2d(6, 6, 1), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Conv2d(6, 6, 1), ExchangeBN(6, exchange=False))
    _randomise(model[1], gen)
    with torch.no_grad():
        model[4].running_mean.normal_()
        model[4].running_var.uniform_(0.5, 2)
        model[4].weight.uniform_(0.5, 2)
        # identical streams without exchange: foldable
        for norm in model[7].streams:
            norm.weight.fill_(1.5)
            norm.running_var.fill_(2.)
    x = torch.randn(4, 3, 5, 5, generator=gen)
    deployed = deploy_model(model, (x, ))
    assert model.training and isinstance(model[1], ExchangeBN)  # untouched
    assert isinstance(deployed[1], StreamAffineMix)  # per-stream: kept
    assert isinstance(deployed[4], nn.Identity)  # folded into conv 3
    assert isinstance(deployed[7], nn.Identity)  # identical streams: folded
    model.eval()
    torch.testing.assert_close(deployed(x), model(x), rtol=0, atol=1e-5)

    # A conv whose output also feeds something else is not folded.
    class Branchy(nn.Module):

        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + y

    branchy = Branchy().eval()
    fold_conv_bn(branchy, (x[:, :3], ))
    assert isinstance(branchy.bn, nn.BatchNorm2d)


def test_deploy_model_raises_on_mismatch():

    class Noisy(nn.Module):
        """A different output on every call: the check must fail."""

        def forward(self, x):
            return x + torch.rand_like(x)

    with pytest.raises(RuntimeError, match='differs from the eval-mode'):
        deploy_model(Noisy(), (torch.ones(2, 3, 1, 1), ), fold_bn=False)


@pytest.mark.parametrize('num_streams', [2, 3])
def test_row_affine_path_equals_dense_mix(num_streams):
    """One-source mixes (every M = 2 exchange; here M = 3 with copies and a
    discard) take the native row pass; it equals the dense multiply-adds
    that ONNX export uses, for every batch size, and follows a loaded
    state."""
    gen = torch.Generator().manual_seed(0)
    m, c = num_streams, 5
    weight = torch.eye(m)[:, :, None].repeat(1, 1, c) * (
        torch.rand(m, 1, c, generator=gen) + 0.5)
    weight[0, :, 1] = 0
    weight[0, m - 1, 1] = -2.0  # stream 0 reads stream M-1 at channel 1
    weight[m - 1, :, 3] = 0  # discarded
    bias = torch.randn(m, c, generator=gen)
    fast = StreamAffineMix(weight.double(), bias.double())
    dense = StreamAffineMix(weight.double(), bias.double())
    dense.one_source = False
    assert fast.mixed and fast.one_source
    for n in (1, 2, 1):
        x = torch.randn(m * n, c, 3, 4, generator=gen, dtype=torch.float64)
        torch.testing.assert_close(fast(x), dense(x), rtol=0, atol=1e-12)
    state = {k: v * 2 for k, v in fast.state_dict().items()}
    fast.load_state_dict(state)
    dense.load_state_dict(state)
    torch.testing.assert_close(fast(x), dense(x), rtol=0, atol=1e-12)
    expected = x.view(m, -1, c, 12)[m - 1, :, 1] * -4.0 + state['bias'][0, 1]
    torch.testing.assert_close(fast(x).view(m, -1, c, 12)[0, :, 1], expected)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_row_kernel_path_equals_torch_row_path(dtype, monkeypatch):
    """On the CPU a one-source mix runs as the C row kernel (when built);
    it equals the torch row pass and the dense mix; an input that needs a
    gradient takes the torch pass (the kernel has no backward)."""
    if rk.row_kernel() is None:
        pytest.skip('needs a C++ compiler (the row kernel could not be built)')
    calls = []

    def spy(*args):
        calls.append(args)
        return rk.affine_stream_rows(*args)

    monkeypatch.setattr(convert, 'affine_stream_rows', spy)
    gen = torch.Generator().manual_seed(1)
    m, c = 2, 6
    weight = torch.eye(m)[:, :, None].repeat(1, 1, c) * (
        torch.rand(m, 1, c, generator=gen) + 0.5)
    weight[:, :, 2] = torch.tensor([[0., 1.5], [-0.5, 0.]])  # a swap
    weight[1, :, 4] = 0  # discarded: the bias alone
    mix = StreamAffineMix(weight.to(dtype), torch.randn(m, c, generator=gen)
                          .to(dtype))
    dense = StreamAffineMix(weight.to(dtype), mix.bias.clone())
    dense.one_source = False
    x = torch.randn(m * 3, c, 4, 5, generator=gen).to(dtype)
    tol = dict(rtol=0, atol=1e-12 if dtype == torch.float64 else 1e-6)
    out = mix(x)
    assert len(calls) == 1
    torch.testing.assert_close(out, dense(x), **tol)
    torch.testing.assert_close(
        out, mix._row_affine(x.view(m, 3, c, 20)).view(x.shape), **tol)
    torch.testing.assert_close(out[3:, 4], mix.bias[1, 4].expand(3, 4, 5)
                               .clone(), **tol)
    leaf = x.clone().requires_grad_()
    out_grad = mix(leaf)
    assert len(calls) == 1 and out_grad.grad_fn is not None
    torch.testing.assert_close(out_grad.detach(), out, **tol)
    with pytest.raises(ValueError, match='inference only'):
        rk.affine_stream_rows(leaf, *mix._stream_affine(x))
