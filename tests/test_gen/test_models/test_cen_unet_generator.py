# Copyright (c) cen_mm contributors. All rights reserved.
"""CENUnetGenerator: shapes, exchange placement, options, M = 1 parity with
mmagic's UnetGenerator."""
import pytest
import torch
import torch.nn as nn
from mmagic.models.editors.pix2pix import UnetGenerator
from mmagic.registry import MODELS

from cen_mm.cnn import ExchangeIN, exchange_norms
from cen_mm.gen.models import CENUnetGenerator

# Small U-Net: 5 downs of a 32x32 image, base 8 channels.
SMALL = dict(num_down=5, base_channels=8)


# mmagic's UnetGenerator builds its deconvs by the name 'Deconv': the tests
# that build it ask for the `mmagic_scope` fixture (tests/conftest.py).


def build(num_streams=2, **kwargs):
    cfg = dict(SMALL, num_streams=num_streams)
    cfg.update(kwargs)
    gen = CENUnetGenerator(**cfg)
    gen.init_weights()
    return gen


def conv_param_count(model):
    return sum(p.numel() for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
               for p in m.parameters(recurse=False))


@pytest.mark.parametrize('num_streams', [1, 2, 3, 4])
def test_shapes_and_ensemble(num_streams, mmagic_scope):
    torch.manual_seed(0)
    gen = MODELS.build(dict(type='CENUnetGenerator', num_streams=num_streams,
                            **SMALL))
    gen.init_weights()
    with torch.no_grad():
        gen.ensemble.alpha.copy_(torch.arange(num_streams, dtype=torch.float))
    n = 2
    x = torch.randn(num_streams * n, 3, 32, 32)
    out = gen(x)
    assert out.shape == ((num_streams + 1) * n, 3, 32, 32)
    assert out.abs().max() <= 1
    streams = out[:num_streams * n].view(num_streams, n, 3, 32, 32)
    weights = torch.arange(num_streams, dtype=torch.float).softmax(0)
    expected = (weights.view(-1, 1, 1, 1, 1) * streams).sum(0)
    torch.testing.assert_close(out[num_streams * n:], expected)


def test_layer_layout_and_exchange_flags():
    gen = build(num_streams=3, num_down=8, base_channels=4,
                exchange_layers=(3, 5), penalised_layers=(2, 3))
    # conv1 and the innermost conv have no norm (as official / pix2pix)
    assert not gen.encoder[0].with_norm and not gen.encoder[7].with_norm
    assert not gen.encoder[0].with_activation
    for k in range(2, 8):
        norm = gen.encoder[k - 1].norm
        assert isinstance(norm, ExchangeIN) and norm.num_streams == 3
        assert norm.exchange == (k in (3, 5))
        assert norm.sparsity == ('own' if k in (2, 3) else 'none')
        assert norm.threshold == 1e-2 and norm.exchange_scope == 'any'
    # decoder norms: per stream, never exchanging, never penalised
    decoder_norms = [d.norm for d in gen.decoder[:-1]]
    assert all(isinstance(n, ExchangeIN) and not n.exchange
               and n.sparsity == 'none' for n in decoder_norms)
    assert not gen.decoder[-1].with_norm
    # official default: exchange and L1 at every encoder IN (conv2..conv7)
    default = build(num_down=8, base_channels=4)
    assert default.exchange_layers == (2, 3, 4, 5, 6, 7)
    assert default.penalised_layers == (2, 3, 4, 5, 6, 7)
    names = [name for name, _ in exchange_norms(default)]
    assert names[:6] == [f'encoder.{k}.in' for k in range(1, 7)]


def test_exchange_happens_only_at_configured_layers():
    torch.manual_seed(0)
    gen = build(num_streams=2, exchange_layers=(3, ))
    theta = gen.encoder[1].norm.threshold
    with torch.no_grad():
        for k in (2, 3):  # small γ at the same channels in layers 2 and 3
            gen.encoder[k - 1].norm.streams[0].weight[:3] = theta / 2
    captured = {}
    for k in (2, 3):
        gen.encoder[k - 1].register_forward_hook(
            lambda mod, inp, out, k=k: captured.__setitem__(k, out))
    gen(torch.randn(2 * 2, 3, 32, 32))
    for k, exchanged in ((2, False), (3, True)):
        norm = gen.encoder[k - 1].norm
        assert bool(norm.exchange_mask().any()) == exchanged
        s0, s1 = captured[k].chunk(2)
        same = torch.equal(s0[:, :3], s1[:, :3])
        assert same == exchanged
        if exchanged:
            assert norm.exchange_mask()[0, :3].all()
            assert not torch.equal(s0[:, 3:], s1[:, 3:])


def test_invalid_layers_and_options():
    with pytest.raises(ValueError, match='exchange_layers'):
        build(exchange_layers=(1, ))  # conv1 has no norm
    with pytest.raises(ValueError, match='penalised_layers'):
        build(penalised_layers=(5, ))  # innermost of num_down=5
    with pytest.raises(ValueError, match='decoder_norm'):
        build(decoder_norm='none')
    with pytest.raises(ValueError, match='num_streams'):
        build(num_streams=0)
    gen = build()
    with pytest.raises(ValueError, match='divisible by 2'):
        gen(torch.randn(3, 3, 32, 32))  # 3 is not M*N for M=2
    with pytest.raises(ValueError, match='2\\*\\*num_down'):
        gen(torch.randn(2, 3, 24, 24))


def test_decoder_norm_stream_vs_shared():
    stream = build(num_streams=3, decoder_norm='stream')
    shared = build(num_streams=3, decoder_norm='shared')
    for d in shared.decoder[:-1]:
        assert type(d.norm) is nn.InstanceNorm2d
        assert d.norm.affine and d.norm.track_running_stats
    decoder_channels = sum(d.norm.num_features for d in shared.decoder[:-1])
    n_stream = sum(p.numel() for p in stream.parameters())
    n_shared = sum(p.numel() for p in shared.parameters())
    # per-stream decoder norms hold (M - 1) extra (γ, β) sets
    assert n_stream - n_shared == 2 * 2 * decoder_channels
    # shared decoder norms: stream outputs differ only via the encoder INs
    x = torch.randn(3, 3, 32, 32)
    assert shared(x).shape == stream(x).shape == (4, 3, 32, 32)


def test_dropout_layers_and_modes():
    gen = build(dropout_layers=(1, 2))
    kinds = [type(d) for d in gen.dropouts]
    assert kinds == [nn.Dropout, nn.Dropout] + [nn.Identity] * 3
    x = torch.randn(2, 3, 32, 32)
    gen.train()
    assert not torch.equal(gen(x), gen(x))  # dropout + instance statistics
    gen.eval()
    torch.testing.assert_close(gen(x), gen(x), rtol=0, atol=0)


def test_init_and_ensemble_detached():
    torch.manual_seed(0)
    gen = build(num_down=6, base_channels=16, norm_init='uniform')
    weights = torch.cat([gen.encoder[3].conv.weight.flatten(),
                         gen.decoder[2].conv.weight.flatten()])
    assert abs(weights.std().item() - 0.02) < 2e-3
    gammas = torch.cat([s.weight for s in gen.encoder[2].norm.streams])
    assert 0 <= gammas.min() and gammas.max() <= 1 and gammas.std() > 0.2
    # the ensemble loss trains α only
    out = gen(torch.randn(2, 3, 64, 64))
    out[2:].sum().backward()
    assert gen.ensemble.alpha.grad is not None
    assert gen.ensemble.alpha.grad.abs().sum() > 0
    assert all(p.grad is None or not p.grad.any()
               for n, p in gen.named_parameters()
               if not n.startswith('ensemble'))


def copy_by_order(src, dst):
    """Copy parameters and buffers of ``src`` into ``dst`` in order."""
    src_tensors = list(src.parameters()) + list(src.buffers())
    dst_tensors = list(dst.parameters()) + list(dst.buffers())
    assert len(src_tensors) == len(dst_tensors)
    with torch.no_grad():
        for s, d in zip(src_tensors, dst_tensors):
            assert s.shape == d.shape
            d.copy_(s)


@pytest.mark.parametrize('num_down', [5, 7])
def test_single_stream_equals_mmagic_unet(num_down, mmagic_scope):
    """M = 1 is mmagic's pix2pix U-Net with affine IN + running stats: same
    parameter shapes in the same order and the same outputs (train mode
    with dropout under the same seed, and eval mode)."""
    torch.manual_seed(0)
    ref = UnetGenerator(
        3, 3, num_down=num_down, base_channels=8, use_dropout=True,
        norm_cfg=dict(type='IN', affine=True, track_running_stats=True))
    ref.init_weights()
    # mmagic drops out in its num_down - 5 middle blocks: deconv2 ...
    ours = build(num_streams=1, num_down=num_down,
                 dropout_layers=tuple(range(2, num_down - 3)))
    ours_params = [p for n, p in ours.named_parameters()
                   if not n.startswith('ensemble')]
    assert [p.shape for p in ours_params] == [
        p.shape for p in ref.parameters()]
    with torch.no_grad():
        for s, d in zip(ref.parameters(), ours_params):
            d.copy_(s)
        for s, d in zip(ref.buffers(), ours.buffers()):
            d.copy_(s)
    size = 2**num_down
    x = torch.randn(2, 3, size, size)
    for train in (True, False):
        ref.train(train)
        ours.train(train)
        torch.manual_seed(1)
        expected = ref(x)
        torch.manual_seed(1)
        out = ours(x)
        torch.testing.assert_close(out[:2], expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(out[2:], out[:2])  # ensemble of one


def test_unet256_parameter_count(mmagic_scope):
    """U-Net-256, M = 2, vs the official generator: conv/deconv 54.410 M
    and 54.432 M in total, of which 2,316 IN parameters belong to INs the
    official forward never uses (conv1, conv8, deconv8)."""
    gen = CENUnetGenerator(num_streams=2)
    ref = UnetGenerator(3, 3, num_down=8, base_channels=64,
                        norm_cfg=dict(type='IN', affine=True))
    convs = conv_param_count(gen)
    assert convs == conv_param_count(ref)
    assert round(convs / 1e6, 3) == 54.410
    norms = sum(p.numel() for m in gen.modules() if isinstance(m, ExchangeIN)
                for p in m.parameters())
    assert norms == 22028 - 2316
    total = sum(p.numel() for p in gen.parameters())
    assert total == convs + norms + 2  # + α
    assert round((total + 2316) / 1e6, 3) == 54.432
