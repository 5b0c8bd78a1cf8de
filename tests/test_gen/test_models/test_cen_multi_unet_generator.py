# Copyright (c) cen_mm contributors. All rights reserved.
"""The CEN U-Net family: parameter totals of Tables 6-9, equality with the
fusion generator, and decoder-side exchange against an independent
functional reference."""
import pytest
import torch
import torch.nn.functional as F

from cen_mm.cnn import ExchangeIN
from cen_mm.gen.models import CENMultiUnetGenerator, CENUnetGenerator

THETA = 1e-2

# (paper total in M, generator arguments) for U-Net-256
TABLE_STRUCTURES = {
    'T7/T9 CEN-dec, CEN-enc(&dec): enc x1, dec x2': (89.3, dict(
        units=[(1, 2)], decoder_weights='stream', encoder_exchange=False,
        decoder_exchange=True, combine='softmax', ensemble=False)),
    'T9 CEN-enc&dec, 2 inputs': (89.3, dict(
        units=[(2, 2)], decoder_weights='stream', decoder_exchange=True,
        combine='softmax', ensemble=False)),
    'T7 Indiv enc x2, dec x2': (108.7, dict(
        units=[(1, 1), (1, 1)], encoder_weights='unit',
        decoder_weights='unit', combine='identity', ensemble=False)),
    'T9 Indiv enc x2, dec x2': (108.7, dict(
        units=[(2, 2)], encoder_weights='stream', decoder_weights='stream',
        encoder_exchange=False, combine='softmax', ensemble=False)),
    'T8 CEN-dec enc x1, dec x3': (124.3, dict(
        units=[(1, 3)], decoder_weights='stream', decoder_exchange=True,
        combine='softmax', ensemble=False)),
    'T6 CEN-cycle/CEN-random dec x3': (124.2, dict(
        units=[(2, 2)] * 3, decoder_weights='unit')),
    'T6 CEN-cycle dec x1': (54.5, dict(units=[(2, 2)] * 3)),
    'T6 independent CEN enc x3, dec x3': (163.3, dict(
        units=[(2, 2)] * 3, encoder_weights='unit', decoder_weights='unit')),
}


@pytest.mark.parametrize('name', sorted(TABLE_STRUCTURES))
def test_parameter_totals_match_the_tables(name):
    paper, kwargs = TABLE_STRUCTURES[name]
    with torch.device('meta'):
        gen = CENMultiUnetGenerator(**kwargs)
    total = sum(p.numel() for p in gen.parameters()) / 1e6
    assert abs(total - paper) < 0.2, (name, total, paper)


def test_exact_totals():
    # conv/deconv of one encoder 19,535,808 and one decoder 34,873,795;
    # IN affine 4,864 per encoder stream and 4,992 per decoder stream
    with torch.device('meta'):
        dec = CENMultiUnetGenerator(**TABLE_STRUCTURES[
            'T7/T9 CEN-dec, CEN-enc(&dec): enc x1, dec x2'][1])
        cyc = CENMultiUnetGenerator(units=[(2, 2)] * 3)
    assert sum(p.numel() for p in dec.parameters()) == (
        19535808 + 2 * 34873795 + 4864 + 2 * 4992 + 2)
    assert sum(p.numel() for p in cyc.parameters()) == (
        19535808 + 34873795 + 6 * (4864 + 4992) + 3 * 2)


def _copy_fusion_weights(ref, gen):
    """Map CENUnetGenerator's parameters onto the family's one-unit case."""
    state = {}
    for k, layer in enumerate(ref.encoder):
        for key, value in layer.conv.state_dict().items():
            state[f'encoders.0.{k}.conv.{key}'] = value
        if layer.with_norm:
            for key, value in layer.norm.state_dict().items():
                state[f'encoder_norms.{k}.0.{key}'] = value
    for k, layer in enumerate(ref.decoder):
        for key, value in layer.conv.state_dict().items():
            state[f'decoders.0.{k}.conv.{key}'] = value
        if layer.with_norm:
            for key, value in layer.norm.state_dict().items():
                state[f'decoder_norms.{k}.0.{key}'] = value
    state['ensembles.0.alpha'] = ref.ensemble.alpha.detach().clone()
    gen.load_state_dict(state, strict=True)


def test_one_unit_is_the_fusion_generator():
    torch.manual_seed(0)
    ref = CENUnetGenerator(num_streams=2, num_down=5, base_channels=4,
                           dropout_layers=()).double()
    gen = CENMultiUnetGenerator(units=[(2, 2)], num_down=5, base_channels=4,
                                dropout_layers=()).double()
    ref.init_weights()
    with torch.no_grad():
        for _, norm in ref.named_modules():
            if isinstance(norm, ExchangeIN):
                norm.streams[0].weight.uniform_(-0.05, 1)
                norm.streams[1].weight.uniform_(-0.05, 1)
        ref.ensemble.alpha.copy_(torch.tensor([0.3, -0.2]))
    _copy_fusion_weights(ref, gen)
    x = torch.randn(2 * 3, 3, 32, 32, dtype=torch.double)
    out = gen(x)
    expected = ref(x)
    torch.testing.assert_close(out['streams'], expected[:6], rtol=0,
                               atol=1e-12)
    torch.testing.assert_close(out['ensembles'], expected[6:], rtol=0,
                               atol=1e-12)


# --------------------------------------------------------------------------
# Independent reference of multitask CEN-dec (one input, two task decoders,
# exchange between the decoders' INs), written with torch.nn.functional.


def _ref_in(x, gamma, beta):
    return F.instance_norm(x, weight=gamma, bias=beta, eps=1e-5)


def _ref_cen_dec(p, x, num_down, exchange):
    """p: dict of leaf tensors keyed by the generator's parameter names."""
    skips = []
    h = x
    for k in range(num_down):
        if k > 0:
            h = F.leaky_relu(h, 0.2)
        h = F.conv2d(h, p[f'encoders.0.{k}.conv.weight'],
                     p[f'encoders.0.{k}.conv.bias'], stride=2, padding=1)
        if 0 < k < num_down - 1:
            h = _ref_in(h, p[f'encoder_norms.{k}.0.weight'],
                        p[f'encoder_norms.{k}.0.bias'])
        skips.append(h)
    # softmax over one encoder stream: each decoder gets the features
    weights = [p['combination.alpha.0'][d].softmax(0)[0] for d in range(2)]
    outs = [None, None]
    hs = [weights[d] * skips[-1] for d in range(2)]
    for k in range(num_down):
        ys = []
        for d in range(2):
            h = hs[d]
            if k > 0:
                h = torch.cat([weights[d] * skips[num_down - 1 - k], h], 1)
            h = F.conv_transpose2d(
                F.relu(h), p[f'decoders.{d}.{k}.conv.weight'],
                p[f'decoders.{d}.{k}.conv.bias'], stride=2, padding=1)
            ys.append(h)
        if k < num_down - 1:
            gammas = [p[f'decoder_norms.{k}.0.streams.{d}.weight']
                      for d in range(2)]
            ys = [_ref_in(ys[d], gammas[d],
                          p[f'decoder_norms.{k}.0.streams.{d}.bias'])
                  for d in range(2)]
            if exchange:
                # Eq. 4, M = 2: a channel whose |γ| < θ takes the other's
                low = [(g.abs() < THETA).view(1, -1, 1, 1) for g in gammas]
                ys = [torch.where(low[0], ys[1], ys[0]),
                      torch.where(low[1], ys[0], ys[1])]
        hs = ys
    for d in range(2):
        outs[d] = torch.tanh(hs[d])
    return torch.cat(outs)


def _cen_dec(exchange):
    return CENMultiUnetGenerator(
        units=[(1, 2)], decoder_weights='stream', encoder_exchange=False,
        decoder_exchange=exchange, combine='softmax', ensemble=False,
        num_down=5, base_channels=4, dropout_layers=()).double()


def _with_low_gammas(gen):
    torch.manual_seed(1)
    gen.init_weights()
    with torch.no_grad():
        for norms in gen.decoder_norms:
            for stream in norms[0].streams:
                stream.weight.uniform_(0.5, 1.5)
                stream.bias.normal_(0, 0.1)
            # some channels below θ in one stream, one in both (a swap)
            norms[0].streams[0].weight[0] = 3e-3
            norms[0].streams[1].weight[1] = -4e-3
            norms[0].streams[0].weight[2] = 0.
            norms[0].streams[1].weight[2] = 1e-3
    return gen


def _compare_with_reference(gen, exchange):
    x = torch.randn(2, 3, 32, 32, dtype=torch.double)
    probe = torch.randn(4, 3, 32, 32, dtype=torch.double)
    out = gen(x)['streams']
    (out * probe).sum().backward()
    params = {
        name: p.detach().clone().requires_grad_()
        for name, p in gen.named_parameters()
    }
    expected = _ref_cen_dec(params, x, 5, exchange)
    (expected * probe).sum().backward()
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    for name, p in gen.named_parameters():
        ref_grad = params[name].grad
        if ref_grad is None:
            ref_grad = torch.zeros_like(p)
        grad = p.grad if p.grad is not None else torch.zeros_like(p)
        torch.testing.assert_close(grad, ref_grad, rtol=0, atol=1e-6,
                                   msg=lambda m: f'{name}: {m}')
    return out


def test_decoder_exchange_matches_independent_reference():
    gen = _with_low_gammas(_cen_dec(exchange=True))
    out = _compare_with_reference(gen, exchange=True)
    # a replaced channel gets no gradient into its own γ / β (only the
    # donor's), as in the official exchange
    norm = gen.decoder_norms[0][0]
    assert norm.exchange_mask()[:, :3].tolist() == [[True, False, True],
                                                    [False, True, True]]
    assert norm.streams[0].weight.grad[0] == 0
    assert norm.streams[1].weight.grad[1] == 0
    # and it is not the hard-sharing result
    hard = _cen_dec(exchange=False)
    hard.load_state_dict(gen.state_dict())
    x = torch.randn(2, 3, 32, 32, dtype=torch.double)
    assert not torch.allclose(gen(x)['streams'], hard(x)['streams'])
    assert out.shape == (4, 3, 32, 32)


def test_exchange_off_is_hard_parameter_sharing():
    hard = _with_low_gammas(_cen_dec(exchange=False))
    _compare_with_reference(hard, exchange=False)
    # CEN-dec with no γ below θ is hard sharing
    cen = _cen_dec(exchange=True)
    cen.load_state_dict(hard.state_dict())
    with torch.no_grad():
        for norms in cen.decoder_norms:
            for stream in norms[0].streams:
                stream.weight.clamp_(min=0.5)
        for norms in hard.decoder_norms:
            for stream in norms[0].streams:
                stream.weight.clamp_(min=0.5)
    x = torch.randn(2, 3, 32, 32, dtype=torch.double)
    torch.testing.assert_close(cen(x)['streams'], hard(x)['streams'],
                               rtol=0, atol=0)
    # the only switch between the two: decoder INs exchange and are
    # L1-penalised in CEN-dec only
    assert all(n[0].exchange and n[0].sparsity == 'own'
               for n in cen.decoder_norms)
    assert not any(n[0].exchange or n[0].sparsity != 'none'
                   for n in hard.decoder_norms)


def test_softmax_combination_mixes_encoder_streams_per_decoder():
    gen = CENMultiUnetGenerator(
        units=[(2, 2)], decoder_weights='stream', combine='softmax',
        ensemble=False, num_down=5, base_channels=4).double()
    with torch.no_grad():
        gen.combination.alpha[0].copy_(torch.tensor([[0., 1.], [2., -1.]]))
    feats = torch.randn(2 * 3, 4, 8, 8, dtype=torch.double)
    mixed = gen.combination(feats, [0])
    a = torch.tensor([[0., 1.], [2., -1.]], dtype=torch.double).softmax(1)
    e0, e1 = feats[:3], feats[3:]
    torch.testing.assert_close(mixed[:3], a[0, 0] * e0 + a[0, 1] * e1)
    torch.testing.assert_close(mixed[3:], a[1, 0] * e0 + a[1, 1] * e1)


def test_active_units_run_only_their_streams():
    torch.manual_seed(0)
    gen = CENMultiUnetGenerator(units=[(2, 2)] * 3, decoder_weights='unit',
                                num_down=5, base_channels=4,
                                dropout_layers=()).double()
    gen.init_weights()
    x = torch.randn(6 * 2, 3, 32, 32, dtype=torch.double)
    full = gen(x)
    one = gen(x[4:8], units=[1])
    torch.testing.assert_close(one['streams'], full['streams'][4:8])
    torch.testing.assert_close(one['ensembles'], full['ensembles'][2:4])
    (one['streams'].sum() + one['ensembles'].sum()).backward()
    grads = {n for n, p in gen.named_parameters() if p.grad is not None}
    assert any(n.startswith('decoders.1.') for n in grads)
    assert not any(n.startswith(('decoders.0.', 'decoders.2.'))
                   for n in grads)
    norms = {n for n in grads if 'norms' in n}
    assert norms and all(n.split('.')[2] == '1' for n in norms), norms
    assert 'ensembles.1.alpha' in grads
    assert not {'ensembles.0.alpha', 'ensembles.2.alpha'} & grads


@pytest.mark.parametrize('kwargs, match', [
    (dict(units=[(2, 3)], combine='identity'), 'as many decoder'),
    (dict(units=[]), 'non-empty'),
    (dict(encoder_weights='tied'), 'encoder_weights'),
    (dict(combine='mean'), 'combine'),
    (dict(decoder_exchange_layers=[8]), 'decoder_exchange_layers'),
])
def test_bad_structures(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CENMultiUnetGenerator(num_down=5, **kwargs)


def test_bad_input_shape():
    gen = CENMultiUnetGenerator(units=[(2, 2)], num_down=5, base_channels=4)
    with pytest.raises(ValueError, match='stream-folded'):
        gen(torch.randn(3, 3, 32, 32))
