# Copyright (c) cen_mm contributors. All rights reserved.
import pytest
import torch
from mmseg.models.backbones import ResNet, ResNetV1c
from mmseg.registry import MODELS

import cen_mm.seg  # noqa: F401
from cen_mm.cnn import ExchangeBN, exchange_norms
from cen_mm.seg.models.backbones import (CENBottleneck, CENResNet,
                                         CENResNetV1c)

# Narrow ResNets keep every test at CPU-seconds; the topology is unchanged.
TINY = dict(stem_channels=8, base_channels=4)


def _randomise_norms(model, seed=0):
    """Give every BN distinct random γ/β/statistics (per stream if any)."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            c = module.num_features
            module.weight.data = torch.rand(c, generator=gen) + 0.5
            module.bias.data = torch.randn(c, generator=gen) * 0.1
            module.running_mean = torch.randn(c, generator=gen) * 0.1
            module.running_var = torch.rand(c, generator=gen) + 0.5


def test_registered_and_builds_from_cfg():
    model = MODELS.build(
        dict(type='CENResNet', depth=50, **TINY))
    assert isinstance(model, CENResNet)
    assert isinstance(model.layer1[0], CENBottleneck)
    assert model.num_streams == 2
    assert isinstance(MODELS.build(dict(type='CENResNetV1c', depth=50,
                                        **TINY)), CENResNetV1c)


@pytest.mark.parametrize('m', [2, 3])
def test_output_shapes(m):
    """Stream-folded in, stream-folded out (the segmentor folds)."""
    model = CENResNet(depth=50, num_streams=m, **TINY)
    n = 2
    assert model.conv1.in_channels == 3
    outs = model(torch.randn(m * n, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(m * n, 16, 8, 8),
                                              (m * n, 32, 4, 4),
                                              (m * n, 64, 2, 2),
                                              (m * n, 128, 1, 1)]
    assert all(layer.num_streams == m for _, layer in exchange_norms(model))


def test_deep_stem_v1c_matches_mmseg_names():
    cen = CENResNetV1c(depth=50, **TINY).eval()
    plain = ResNetV1c(depth=50, **TINY)
    outs = cen(torch.randn(2, 3, 32, 32))
    assert outs[0].shape == (2, 16, 8, 8)
    # Every plain key maps onto a CEN key (streams.{m}. inserted for norms).
    cen_keys = set(cen.state_dict())
    for key in plain.state_dict():
        prefix, _, leaf = key.rpartition('.')
        assert key in cen_keys or f'{prefix}.streams.0.{leaf}' in cen_keys, key


def test_equals_plain_resnet_per_stream():
    """Exchange off + identical stream norms == mmseg ResNet per modality.

    float64 and 64 px: the CPU row kernels and torch's batch norm round
    differently, and batch statistics over near-tied values amplify that. At
    32 px layer4 has 2 x 1 x 1 values per channel and the gap reached 5e-6
    in float64 for one seed; at 64 px (2 x 2 x 2 values) it stays below
    6e-12 over 40 seeds. Seeded, so the test order cannot change the draw.
    """
    torch.manual_seed(0)
    plain = ResNet(depth=50, **TINY)
    _randomise_norms(plain)
    plain.double()
    cen = CENResNet(depth=50, exchange_sites=(), **TINY).double()
    # A single-stream state dict fills every stream (pretrained expansion).
    missing, unexpected = cen.load_state_dict(plain.state_dict(), strict=False)
    assert not missing and not unexpected
    rgb, depth = (torch.randn(2, 3, 64, 64, dtype=torch.float64)
                  for _ in range(2))
    x = torch.cat([rgb, depth])  # stream-folded
    for mode in (False, True):  # eval (running stats), train (batch stats)
        cen.train(mode)
        plain.train(mode)
        outs = cen(x)
        for out, ref_rgb, ref_depth in zip(outs, plain(rgb), plain(depth)):
            out_rgb, out_depth = out.chunk(2)
            torch.testing.assert_close(out_rgb, ref_rgb, atol=1e-8, rtol=0)
            torch.testing.assert_close(out_depth, ref_depth, atol=1e-8,
                                       rtol=0)


@pytest.mark.parametrize('depth,sites', [(50, 16), (101, 33), (152, 50)])
def test_exchange_site_count(depth, sites):
    # Built on the meta device: counted by construction, never run.
    with torch.device('meta'):
        model = CENResNet(depth=depth)
    norms = exchange_norms(model)
    exchanging = [name for name, layer in norms if layer.exchange]
    assert len(exchanging) == sites
    assert all(name.endswith('.bn2') for name in exchanging)
    # Only exchanging norms carry the L1 penalty (official: bn2 only).
    penalised = [name for name, layer in norms if layer.sparsity != 'none']
    assert penalised == exchanging
    layer = dict(norms)[exchanging[0]]
    assert (layer.threshold, layer.exchange_scope, layer.sparsity) == \
        (2e-2, 'any', 'own')


@pytest.mark.parametrize('sites', [('norm2', ), ('norm1', 'norm3')])
def test_exchange_happens_only_at_sites(sites):
    """Push one γ per norm below θ; only the configured sites then differ
    from a plain per-stream normalisation."""
    model = CENResNet(depth=50, exchange_sites=sites, **TINY).eval()
    _randomise_norms(model)
    for _, layer in exchange_norms(model):
        layer.streams[0].weight.data[0] = 1e-3  # below θ = 2e-2
    changed = []

    def hook(name):

        def fn(module, inputs, output):
            x = inputs[0]
            ref = torch.cat([
                norm(chunk) for norm, chunk in zip(
                    module.streams, x.chunk(module.num_streams))
            ])
            # an exchanged channel differs by O(1), kernels by rounding
            if not torch.allclose(output, ref, rtol=1e-5, atol=1e-5):
                changed.append(name)

        return fn

    for name, layer in exchange_norms(model):
        layer.register_forward_hook(hook(name))
    model(torch.randn(4, 3, 32, 32))
    suffixes = tuple('.bn' + site[-1] for site in sites)
    expected = [name for name, _ in exchange_norms(model)
                if name.startswith('layer') and name.endswith(suffixes)]
    assert len(expected) == 16 * len(sites)
    assert changed == expected


def test_norm_eval_freezes_statistics():
    model = CENResNet(depth=50, norm_eval=True, **TINY)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(bn.training for bn in bns)
    before = {k: v.clone() for k, v in model.state_dict().items()
              if 'running' in k or 'num_batches' in k}
    out = model(torch.randn(4, 3, 32, 32))
    out[-1].sum().backward()
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # γ/β still learn.
    assert model.layer1[0].bn2.streams[1].weight.grad is not None


def test_zero_init_residual_reaches_every_stream():
    model = CENResNet(depth=50, **TINY)
    model.init_weights()
    for block in model.layer1:
        for norm in block.bn3.streams:
            assert torch.count_nonzero(norm.weight) == 0


def test_pretrained_single_stream_checkpoint(tmp_path):
    plain = ResNet(depth=50, **TINY)
    plain.eval()  # mmseg's ResNet.train returns None
    _randomise_norms(plain, seed=1)
    ckpt = tmp_path / 'resnet50_single_stream.pth'
    torch.save(plain.state_dict(), ckpt)
    cen = CENResNet(
        depth=50,
        init_cfg=dict(type='Pretrained', checkpoint=str(ckpt)),
        **TINY)
    cen.init_weights()
    cen.eval()
    single = plain.state_dict()
    n_norms = 0
    for name, layer in exchange_norms(cen):
        assert isinstance(layer, ExchangeBN)
        for stream in layer.streams:
            for key, value in stream.state_dict().items():
                assert torch.equal(value, single[f'{name}.{key}']), name
        n_norms += 1
    assert n_norms == 1 + 16 * 3 + 4  # stem, 3 per block, 4 downsample
    assert torch.equal(cen.layer3[2].conv2.weight,
                       single['layer3.2.conv2.weight'])
    # Identical modalities through identical streams: every stream equals
    # the single-stream network (the exchange swaps equal values).
    rgb = torch.randn(1, 3, 32, 32)
    for out, ref in zip(cen(torch.cat([rgb, rgb])), plain(rgb)):
        for stream_out in out.chunk(2):
            torch.testing.assert_close(stream_out, ref, atol=1e-5, rtol=0)


def test_official_encoder_parameter_count():
    with torch.device('meta'):
        model = CENResNet(depth=101)
    count = sum(p.numel() for p in model.parameters())
    # Official ResNet-101 encoder group (2 streams): 42.606 M.
    assert round(count / 1e6, 3) == 42.606


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(in_channels=(3, 3)), ValueError,
     'declared once, as CENEncoderDecoder.stream_channels'),
    (dict(num_streams=1), ValueError, 'num_streams must be an integer >= 2'),
    (dict(depth=18), KeyError, 'depth must be one of 50, 101, 152'),
    (dict(norm_cfg=dict(type='BN')), ValueError, 'norm_cfg.type'),
    (dict(norm_cfg=dict(type='ExchangeBN', num_streams=3)), ValueError,
     'num_streams=3'),
    (dict(exchange_sites=('bn2', )), ValueError, 'exchange_sites'),
])
def test_bad_config(kwargs, error, match):
    cfg = dict(depth=50, **TINY)
    cfg.update(kwargs)
    with pytest.raises(error, match=match):
        CENResNet(**cfg)
