# Copyright (c) cen_mm contributors. All rights reserved.
"""Exchange modes of ExchangeBN / ExchangeIN (Table-1 ablations) against
direct references."""
import pytest
import torch

from cen_mm.cnn import ExchangeBN, ExchangeIN, stream_parts

THETA = 2e-2


def make_layer(kind, num_streams=2, channels=10, **kwargs):
    layer_cls = ExchangeBN if kind == 'bn' else ExchangeIN
    layer = layer_cls(channels, num_streams=num_streams, threshold=THETA,
                      **kwargs).double()
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for norm in layer.streams:
            norm.weight.copy_(torch.rand(channels, generator=gen) + 0.5)
            norm.bias.copy_(torch.randn(channels, generator=gen))
        layer.streams[0].weight[[1, 4]] = THETA / 2
        layer.streams[-1].weight[[4, 7]] = -THETA / 3
    return layer


def per_stream_norm(layer, x):
    """Each stream through its own plain norm (no exchange)."""
    return [norm(chunk) for norm, chunk in zip(layer.streams,
                                               x.chunk(layer.num_streams))]


def reference(normed, rate, discard=False):
    """``out_m[:, c] = (1 - r) y_m[:, c] + r * target`` with target the mean
    of the other streams (or 0 with ``discard``), channel by channel."""
    outs = []
    for m, y in enumerate(normed):
        channels = []
        for c in range(y.size(1)):
            others = [normed[k][:, c] for k in range(len(normed)) if k != m]
            target = 0 * y[:, c] if discard else sum(others) / len(others)
            r = float(rate[m, c])
            channels.append((1 - r) * y[:, c] + r * target)
        outs.append(torch.stack(channels, dim=1))
    return torch.cat(outs)


@pytest.mark.parametrize('kind', ['bn', 'in'])
@pytest.mark.parametrize('num_streams', [2, 3])
def test_discard_zeroes_channels_below_threshold(kind, num_streams):
    layer = make_layer(kind, num_streams, exchange_mode='discard')
    layer.train()
    x = torch.randn(num_streams * 2, 10, 3, 3, dtype=torch.float64,
                    requires_grad=True)
    expected_mask = layer.gamma.abs() < THETA
    assert torch.equal(layer.exchange_mask(), expected_mask)
    normed = [y.detach() for y in per_stream_norm(layer, x)]
    out = layer(x)
    torch.testing.assert_close(
        out, reference(normed, expected_mask.double(), discard=True),
        rtol=0, atol=1e-10)
    chunks = out.chunk(num_streams)
    for m, c in expected_mask.nonzero().tolist():
        assert chunks[m][:, c].abs().max() == 0
    # A discarded channel passes no gradient to its own γ / β.
    out.sum().backward()
    for m, c in expected_mask.nonzero().tolist():
        assert layer.streams[m].bias.grad[c] == 0
        assert layer.streams[m].weight.grad[c] == 0
    assert (layer.streams[0].bias.grad[0] != 0)


@pytest.mark.parametrize('kind', ['bn', 'in'])
def test_fixed_portion_same_channels_every_step_and_reload(kind, tmp_path):
    torch.manual_seed(0)
    layer = make_layer(kind, 2, channels=20, exchange_mode='fixed',
                       exchange_portion=0.3)
    mask = layer.fixed_exchange.clone()
    assert mask.sum(dim=1).tolist() == [6, 6]  # 30 % of 20 per stream
    layer.train()
    opt = torch.optim.SGD(layer.parameters(), lr=10.)
    for step in range(3):
        x = torch.randn(4, 20, 3, 3, dtype=torch.float64)
        normed = [y.detach() for y in per_stream_norm(layer, x)]
        out = layer(x)
        torch.testing.assert_close(out, reference(normed, mask.double()),
                                   rtol=0, atol=1e-10)
        assert torch.equal(layer.exchange_mask(), mask)  # not |γ|-driven
        opt.zero_grad()
        (out * torch.randn_like(out)).sum().backward()
        opt.step()
    # Persistent: a fresh layer (new draw) takes the saved channels back.
    torch.save(layer.state_dict(), tmp_path / 'ckpt.pth')
    torch.manual_seed(1)
    other = make_layer(kind, 2, channels=20, exchange_mode='fixed')
    assert not torch.equal(other.fixed_exchange, mask)
    other.load_state_dict(torch.load(tmp_path / 'ckpt.pth'))
    assert torch.equal(other.exchange_mask(), mask)


def test_fixed_portion_respects_own_scope():
    torch.manual_seed(0)
    layer = ExchangeBN(20, exchange_mode='fixed', exchange_portion=0.3,
                       exchange_scope='own')
    mask = layer.exchange_mask()
    assert mask.sum(dim=1).tolist() == [6, 6]
    assert not (mask & ~stream_parts(20, 2)).any()


@pytest.mark.parametrize('kind', ['bn', 'in'])
def test_random_fresh_set_each_training_step(kind):
    torch.manual_seed(0)
    layer = make_layer(kind, 2, channels=20, exchange_mode='random',
                       exchange_portion=0.3)
    layer.train()
    masks = []
    for step in range(4):
        x = torch.randn(4, 20, 3, 3, dtype=torch.float64)
        normed = [y.detach() for y in per_stream_norm(layer, x)]
        out = layer(x)
        mask = layer.exchange_mask()
        # never more than the portion: exactly round(0.3 * 20) per stream
        assert mask.sum(dim=1).tolist() == [6, 6]
        torch.testing.assert_close(out, reference(normed, mask.double()),
                                   rtol=0, atol=1e-10)
        masks.append(mask.clone())
    assert len({tuple(m.flatten().tolist()) for m in masks}) == 4
    # Eval: the expectation, every channel mixed with probability 6 / 20.
    layer.eval()
    x = torch.randn(4, 20, 3, 3, dtype=torch.float64)
    normed = per_stream_norm(layer, x)
    rate = torch.full((2, 20), 0.3, dtype=torch.float64)
    torch.testing.assert_close(layer(x), reference(normed, rate), rtol=0,
                               atol=1e-10)
    torch.testing.assert_close(layer.exchanged_fraction(),
                               torch.tensor([0.3, 0.3]))
    torch.testing.assert_close(layer(x), layer(x))  # deterministic


def test_random_mode_under_activation_checkpointing():
    """Recomputation in backward redraws the same set (RNG restored)."""
    from torch.utils.checkpoint import checkpoint
    torch.manual_seed(0)
    layer = ExchangeBN(8, exchange_mode='random', exchange_portion=0.5)
    x = torch.randn(4, 8, 3, 3, requires_grad=True)
    state = torch.get_rng_state()
    expected = layer(x)
    (expected * expected).sum().backward()
    grad = x.grad.clone()
    x.grad = None
    torch.set_rng_state(state)
    out = checkpoint(layer, x, use_reentrant=True)
    (out * out).sum().backward()
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(x.grad, grad)


@pytest.mark.parametrize('mode', ['none', 'threshold'])
def test_none_and_threshold_modes(mode):
    layer = make_layer('bn', 2, exchange_mode=mode)
    layer.eval()
    x = torch.randn(4, 10, 3, 3, dtype=torch.float64)
    normed = per_stream_norm(layer, x)
    mask = (layer.gamma.abs() < THETA) if mode == 'threshold' else \
        torch.zeros(2, 10, dtype=torch.bool)
    assert torch.equal(layer.exchange_mask(), mask)
    torch.testing.assert_close(layer(x), reference(normed, mask.double()),
                               rtol=0, atol=1e-10)
    assert layer.exchange == (mode == 'threshold')


def test_mixing_rows():
    """The seam consumed by the kernels: (K, M_out, M_in) mixing weights."""
    layer = make_layer('bn', 2, exchange_mode='discard')
    cols, weights = layer._mixing(torch.float64)
    assert cols.tolist() == [1, 4, 7]
    # ch 1: stream 0 discarded; ch 4: both; ch 7: stream 1.
    expected = torch.tensor([[[0., 0.], [0., 1.]], [[0., 0.], [0., 0.]],
                             [[1., 0.], [0., 0.]]], dtype=torch.float64)
    assert torch.equal(weights, expected)
    layer = make_layer('bn', 2)
    cols, weights = layer._mixing(torch.float64)
    expected = torch.tensor([[[0., 1.], [0., 1.]], [[0., 1.], [1., 0.]],
                             [[1., 0.], [1., 0.]]], dtype=torch.float64)
    assert torch.equal(weights, expected)


@pytest.mark.parametrize('kwargs,match', [
    (dict(exchange_mode='shuffle'), 'exchange_mode must be one of'),
    (dict(exchange_portion=1.5), r'exchange_portion must be in \[0, 1\]'),
])
def test_bad_mode_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ExchangeBN(4, **kwargs)


def test_no_fixed_buffer_in_other_modes():
    """Only the fixed mode adds a state-dict entry (old checkpoints load)."""
    assert 'fixed_exchange' not in ExchangeBN(4).state_dict()
    assert 'fixed_exchange' in ExchangeBN(
        4, exchange_mode='fixed').state_dict()
