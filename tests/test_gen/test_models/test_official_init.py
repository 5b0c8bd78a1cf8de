# Copyright (c) cen_mm contributors. All rights reserved.
"""Initial IN γ and conv biases: cen_mm defaults vs the official (PyTorch
1.0) values, for the generator and the discriminator."""
import math

import pytest
import torch
import torch.nn as nn

import cen_mm.gen  # noqa: F401
from cen_mm.gen.models import CENPatchDiscriminator, CENUnetGenerator


def convs(model):
    return [
        m for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
    ]


def norms(model):
    return [
        m for m in model.modules()
        if isinstance(m, nn.InstanceNorm2d) and m.affine
    ]


def build_d(**kwargs):
    d = CENPatchDiscriminator(in_channels=6,
                              base_channels=16,
                              num_conv=3,
                              norm_cfg=dict(type='IN',
                                            affine=True,
                                            track_running_stats=True),
                              init_cfg=dict(type='normal', gain=0.02),
                              **kwargs)
    d.init_weights()
    return d


def build_g(**kwargs):
    g = CENUnetGenerator(num_streams=2, num_down=5, base_channels=16, **kwargs)
    g.init_weights()
    return g


@pytest.mark.parametrize('build', [build_g, build_d])
def test_defaults_zero_biases_and_unit_gamma(build):
    torch.manual_seed(0)
    model = build()
    assert all(
        torch.equal(c.bias, torch.zeros_like(c.bias)) for c in convs(model))
    assert all(
        torch.equal(n.weight, torch.ones_like(n.weight)) for n in norms(model))


@pytest.mark.parametrize('build', [build_g, build_d])
def test_official_uniform_gamma_and_pytorch_biases(build):
    torch.manual_seed(0)
    model = build(norm_init='uniform', bias_init='pytorch')
    gammas = torch.cat([n.weight.detach() for n in norms(model)])
    assert gammas.min() >= 0 and gammas.max() < 1
    assert abs(gammas.mean().item() - 0.5) < 0.05  # U(0, 1), ~500+ draws
    assert all(
        torch.equal(n.bias, torch.zeros_like(n.bias)) for n in norms(model))
    for conv in convs(model):
        # PyTorch's own bound: fan_in from the weight's dims 1.. (so for a
        # ConvTranspose2d its output channels x k x k)
        fan_in = conv.weight[0].numel()
        bound = 1 / math.sqrt(fan_in)
        b = conv.bias.detach()
        assert b.abs().max() <= bound
        if b.numel() >= 8:
            assert b.abs().max() > 0.5 * bound
    # weights still ~ N(0, 0.02)
    w = torch.cat([c.weight.detach().flatten() for c in convs(model)])
    assert abs(w.std().item() - 0.02) < 0.002


def test_bad_init_names():
    with pytest.raises(ValueError, match='bias_init must be one of'):
        CENUnetGenerator(num_streams=2, num_down=5, bias_init='kaiming')
    with pytest.raises(ValueError, match='norm_init must be one of'):
        build_d(norm_init='normal')


def test_eq5_pixel_loss_on_the_ensemble_only():
    from mmagic.registry import MODELS
    from mmengine import MessageHub
    from mmengine.registry import DefaultScope
    MessageHub.get_current_instance().update_info('iter', 0)
    cfg = dict(type='CENPix2Pix',
               source_domains=['shade', 'texture'],
               target_domain='rgb',
               data_preprocessor=dict(type='DataPreprocessor', data_keys=None),
               generator=dict(type='CENUnetGenerator',
                              num_down=5,
                              base_channels=8,
                              ensemble_detach=False),
               discriminator=dict(type='CENPatchDiscriminator',
                                  in_channels=6,
                                  base_channels=8,
                                  num_conv=2,
                                  norm_cfg=dict(type='IN', affine=True),
                                  init_cfg=dict(type='normal', gain=0.02)),
               pixel_loss_outputs='ens')
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmagic'):
        model = MODELS.build(cfg)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1
    real = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    fake = model.generators['rgb'](x)
    outputs = dict(real_sources=x, fake_rgb=fake, real_rgb=real)
    loss, log = model._get_gen_loss(outputs)
    assert sorted(log) == ['loss', 'loss_gan_g', 'loss_pixel_ens']
    expected = 100 * (fake[4:] - real).abs().mean()
    assert float(log['loss_pixel_ens']) == pytest.approx(expected.item(), 1e-5)
    # the streams learn through the ensemble
    (100 * (fake[4:] - real).abs().mean()).backward()
    assert model.generators['rgb'].encoder[0].conv.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='ensemble_detach=False'), \
            DefaultScope.overwrite_default_scope('mmagic'):
        MODELS.build({
            **cfg, 'generator':
            dict(type='CENUnetGenerator', num_down=5, base_channels=8)
        })
