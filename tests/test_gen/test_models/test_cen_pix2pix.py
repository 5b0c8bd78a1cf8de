# Copyright (c) cen_mm contributors. All rights reserved.
"""CENPix2Pix: losses against per-stream references, train/val steps with
mmagic's optimizer constructor, val outputs, test-time generator mode."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmagic.datasets.transforms import PackInputs
from mmagic.engine import MultiOptimWrapperConstructor
from mmagic.models.editors.pix2pix import Pix2Pix
from mmagic.registry import MODELS
from mmengine import MessageHub
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from cen_mm.cnn import exchange_norms
from cen_mm.gen.models import CENPix2Pix, CENUnetGenerator

SOURCES = ('shade', 'texture')
TARGET = 'rgb'
SIZE = 32


@pytest.fixture(autouse=True)
def mmagic_scope():
    init_default_scope('mmagic')
    MessageHub.get_current_instance().update_info('iter', 0)


def model_cfg(sources=SOURCES, **kwargs):
    cfg = dict(
        type='CENPix2Pix',
        source_domains=list(sources),
        target_domain=TARGET,
        data_preprocessor=dict(type='DataPreprocessor', data_keys=None),
        generator=dict(type='CENUnetGenerator', num_down=5, base_channels=8),
        discriminator=dict(
            type='PatchDiscriminator',
            in_channels=6,
            base_channels=8,
            num_conv=2,
            norm_cfg=dict(type='IN', affine=True, track_running_stats=True)),
        loss_config=dict(pixel_loss_weight=100.))
    cfg.update(kwargs)
    return cfg


def build(sources=SOURCES, **kwargs):
    torch.manual_seed(0)
    return MODELS.build(model_cfg(sources, **kwargs))


def make_batch(sources=SOURCES, n=2, seed=0):
    """Packed and collated uint8 images, as the dataloader delivers them."""
    rng = np.random.default_rng(seed)
    keys = [f'img_{d}' for d in list(sources) + [TARGET]]
    pack = PackInputs(keys=keys)
    return pseudo_collate([
        pack({k: rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
              for k in keys}) for _ in range(n)
    ])


def make_optim_wrapper(model):
    adam = dict(type='Adam', lr=2e-4, betas=(0.5, 0.999))
    constructor = MultiOptimWrapperConstructor(
        dict(generators=dict(optimizer=adam),
             discriminators=dict(optimizer=adam)))
    return constructor(model)


def test_build_and_domain_checks():
    model = build()
    assert isinstance(model, Pix2Pix)
    gen = model.generators[TARGET]
    assert isinstance(gen, CENUnetGenerator) and gen.num_streams == 2
    assert set(model.discriminators) == {TARGET}
    assert model.get_other_domains(TARGET)  # mmagic API still works
    with pytest.raises(ValueError, match='num_streams'):
        build(generator=dict(type='CENUnetGenerator', num_streams=3,
                             num_down=5, base_channels=8))
    with pytest.raises(ValueError, match='exclude the target'):
        build(sources=('shade', TARGET))
    with pytest.raises(ValueError, match='related_domains'):
        build(related_domains=[TARGET, 'shade'])
    # configs inheriting mmagic's base_pix2pix keys still build
    build(default_domain=TARGET, reachable_domains=[TARGET],
          related_domains=[TARGET, *SOURCES])


def forward_outputs(model, batch):
    data = model.data_preprocessor(batch, True)
    inputs = data['inputs']
    sources = model.fold_sources(inputs)
    fake = model.generators[TARGET](sources)
    return {
        'real_sources': sources,
        f'fake_{TARGET}': fake,
        f'real_{TARGET}': inputs[f'img_{TARGET}'],
    }, inputs


def test_losses_match_per_stream_reference():
    model = build(slim_loss_weight=1e-3)
    outputs, inputs = forward_outputs(model, make_batch())
    disc = model.discriminators[TARGET]
    real = inputs[f'img_{TARGET}']
    fake = outputs[f'fake_{TARGET}']
    n = real.size(0)
    bce = F.binary_cross_entropy_with_logits
    d_fake = d_real = g_gan = 0
    for m, source in enumerate(SOURCES):
        x = inputs[f'img_{source}']
        y_m = fake[m * n:(m + 1) * n]
        pred_f = disc(torch.cat([x, y_m], 1))
        pred_r = disc(torch.cat([x, real], 1))
        d_fake = d_fake + bce(pred_f, torch.zeros_like(pred_f))
        d_real = d_real + bce(pred_r, torch.ones_like(pred_r))
        g_gan = g_gan + bce(pred_f, torch.ones_like(pred_f))
    loss_d, log_d = model._get_disc_loss(outputs)
    torch.testing.assert_close(loss_d, 0.5 * (d_fake + d_real))
    assert float(log_d['loss_gan_d_fake']) == pytest.approx(
        d_fake.item(), 1e-5)
    loss_g, log_g = model._get_gen_loss(outputs)
    assert float(log_g['loss_gan_g']) == pytest.approx(g_gan.item(), 1e-5)
    for m, source in enumerate(SOURCES):
        expected = 100 * (fake[m * n:(m + 1) * n] - real).abs().mean()
        assert float(log_g[f'loss_pixel_{source}']) == pytest.approx(
            expected.item(), 1e-5)
    expected_ens = 100 * (fake[2 * n:] - real).abs().mean()
    assert float(log_g['loss_pixel_ens']) == pytest.approx(
        expected_ens.item(), 1e-5)
    gen = model.generators[TARGET]
    slim = sum(layer.sparsity_penalty() for _, layer in exchange_norms(gen))
    assert float(log_g['loss_slim']) == pytest.approx(
        1e-3 * slim.item(), 1e-5)
    total = sum(float(v) for k, v in log_g.items() if k != 'loss')
    assert float(log_g['loss']) == pytest.approx(total, 1e-5)
    assert 'loss_slim' not in build()._get_gen_loss(outputs)[1]


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def changed(before, module):
    return {k for k, v in module.named_parameters()
            if not torch.equal(before[k], v)}


def test_train_step_updates_generator_and_discriminator():
    model = build()
    optim_wrapper = make_optim_wrapper(model)
    assert set(optim_wrapper.keys()) == {'generators', 'discriminators'}
    gen, disc = model.generators[TARGET], model.discriminators[TARGET]
    g0, d0 = snapshot(gen), snapshot(disc)
    log_vars = model.train_step(make_batch(), optim_wrapper)
    assert set(log_vars) == {
        'loss', 'loss_gan_d_fake', 'loss_gan_d_real', 'loss_gan_g',
        'loss_pixel_shade', 'loss_pixel_texture', 'loss_pixel_ens'
    }
    g_changed, d_changed = changed(g0, gen), changed(d0, disc)
    assert len(d_changed) == len(d0)
    assert 'ensemble.alpha' in g_changed
    assert 'encoder.1.in.streams.0.weight' in g_changed
    assert 'decoder.0.conv.weight' in g_changed
    # D stays trainable for the next iteration
    assert all(p.requires_grad for p in disc.parameters())


def test_discriminator_steps_skip_generator_update():
    model = build(discriminator_steps=2)
    optim_wrapper = make_optim_wrapper(model)
    gen, disc = model.generators[TARGET], model.discriminators[TARGET]
    g0, d0 = snapshot(gen), snapshot(disc)
    log_vars = model.train_step(make_batch(), optim_wrapper)  # iter 0
    assert 'loss_gan_g' not in log_vars
    assert not changed(g0, gen) and changed(d0, disc)


def test_val_step_outputs():
    model = build()
    with torch.no_grad():
        model.generators[TARGET].ensemble.alpha.copy_(torch.tensor([0., 1.]))
    batch = make_batch(n=3)
    samples = model.val_step(batch)
    assert len(samples) == 3
    w = torch.tensor([0., 1.]).softmax(0)
    for idx, sample in enumerate(samples):
        # the domains, for CENTranslationMetrics (declared on the model only)
        assert (sample.target_domain, sample.source_domains) == (
            TARGET, list(SOURCES))
        keys = ('pred_img', 'pred_img_shade', 'pred_img_texture',
                f'fake_{TARGET}', 'gt_img')
        for key in keys:
            img = sample.get(key)
            assert img.shape == (3, SIZE, SIZE)
            assert 0 <= img.min() and img.max() <= 255
        torch.testing.assert_close(
            sample.pred_img,
            w[0] * sample.pred_img_shade + w[1] * sample.pred_img_texture)
        torch.testing.assert_close(sample.get(f'fake_{TARGET}'),
                                   sample.pred_img)
        # mmagic metrics read predictions from `output`
        torch.testing.assert_close(sample.output.pred_img_shade,
                                   sample.pred_img_shade)
        # the target, de-normalised back to its uint8 values, in the
        # channel order it was packed in (DataPreprocessor flips nothing;
        # the translation configs' FID metrics rely on this)
        target = batch['inputs'][f'img_{TARGET}'][idx].float()
        torch.testing.assert_close(sample.gt_img, target, rtol=0, atol=1e-3)
    assert len(model.test_step(batch)) == 3


@pytest.mark.parametrize('test_mode_train', [True, False])
def test_test_mode_train_vs_eval(test_mode_train):
    model = build(test_mode_train=test_mode_train)
    gen = model.generators[TARGET]
    batch = make_batch()
    model.eval()
    first = model.val_step(copy.deepcopy(batch))[0].pred_img
    second = model.val_step(copy.deepcopy(batch))[0].pred_img
    # dropout (and instance statistics) only in train mode
    assert torch.equal(first, second) != test_mode_train
    assert not gen.training  # the mode is restored
    model.train()
    model.val_step(copy.deepcopy(batch))
    assert gen.training


def test_single_stream_matches_mmagic_pix2pix_losses():
    """M = 1 gives mmagic Pix2Pix's D loss and GAN/L1 terms."""
    ours = build(sources=('shade', ))
    ref_cfg = model_cfg(('shade', ))
    for key in ('source_domains', 'target_domain'):
        ref_cfg.pop(key)
    ref_cfg.update(type='Pix2Pix', default_domain=TARGET,
                   reachable_domains=[TARGET],
                   related_domains=[TARGET, 'shade'])
    ref_cfg['generator'] = dict(type='UnetGenerator', in_channels=3,
                                out_channels=3, num_down=5, base_channels=8)
    ref = MODELS.build(ref_cfg)
    ref.discriminators.load_state_dict(ours.discriminators.state_dict())
    outputs, inputs = forward_outputs(ours, make_batch(('shade', )))
    n = inputs[f'img_{TARGET}'].size(0)
    ref_outputs = {
        'real_shade': inputs['img_shade'],
        f'fake_{TARGET}': outputs[f'fake_{TARGET}'][:n],
        f'real_{TARGET}': inputs[f'img_{TARGET}'],
    }
    torch.testing.assert_close(
        ours._get_disc_loss(outputs)[0], ref._get_disc_loss(ref_outputs)[0])
    log_ours = ours._get_gen_loss(outputs)[1]
    log_ref = ref._get_gen_loss(ref_outputs)[1]
    assert float(log_ours['loss_gan_g']) == pytest.approx(
        float(log_ref['loss_gan_g']))
    assert float(log_ours['loss_pixel_shade']) == pytest.approx(
        float(log_ref['loss_pixel']))
    # The one-stream ensemble (= the stream) is logged, not counted twice.
    assert 'loss_pixel_ens' not in log_ours
    assert float(log_ours['pixel_ens']) == pytest.approx(
        float(log_ref['loss_pixel']))
    assert float(log_ours['loss']) == pytest.approx(float(log_ref['loss']))
    assert isinstance(ours, CENPix2Pix)
