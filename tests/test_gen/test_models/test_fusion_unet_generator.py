# Copyright (c) cen_mm contributors. All rights reserved.
"""Translation fusion baselines (Table 4): positions, a direct reference,
one train and one test step of CENPix2Pix, the align MMD as loss_fusion,
clear errors."""
import numpy as np
import pytest
import torch
from mmagic.datasets.transforms import PackInputs
from mmagic.engine import MultiOptimWrapperConstructor
from mmagic.registry import MODELS
from mmengine import MessageHub
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from cen_mm.cnn import (AlignFusion, AverageFusion, ConcatFusion, SSMAFusion,
                        multi_kernel_mmd)
from cen_mm.gen.models import FusionUnetGenerator

NO_EXCHANGE = dict(type='ExchangeIN', exchange_mode='none', sparsity='none')


@pytest.fixture(autouse=True)
def mmagic_scope():
    init_default_scope('mmagic')
    MessageHub.get_current_instance().update_info('iter', 0)


def generator(fusion, positions, **kwargs):
    torch.manual_seed(0)
    return FusionUnetGenerator(
        fusion=dict(type=fusion, positions=positions), num_down=8,
        base_channels=4, norm_cfg=NO_EXCHANGE, **kwargs)


@pytest.mark.parametrize('positions,layers', [
    ('early', (1, )), ('middle', (4, )), ('late', (8, )),
    ('all', tuple(range(1, 9))), ([2, 5], (2, 5))])
def test_positions(positions, layers):
    gen = generator('ConcatFusion', positions)
    assert gen.fusion_layers == layers
    assert sorted(gen.fusion_blocks) == [f'encoder_{k - 1}' for k in layers]
    # channels after conv k: 4, 8, 16, 32, 32, 32, 32, 32
    for k in layers:
        block = gen.fusion_blocks[f'encoder_{k - 1}']
        assert block.channels == 4 * min(2**(k - 1), 8)


def test_fused_features_feed_the_next_layer():
    gen = generator('AverageFusion', 'middle').eval()
    x = torch.randn(4, 3, 256, 256)
    seen = {}
    gen.encoder[4].register_forward_pre_hook(
        lambda module, args: seen.setdefault('conv5_input', args[0]))
    with torch.no_grad():
        gen(x)
        hooks = gen.encoder[3]._forward_hooks
        saved = dict(hooks)
        hooks.clear()
        h = x
        for conv in gen.encoder[:4]:
            h = conv(h)
        hooks.update(saved)
    mean = (h[:2] + h[2:]) / 2  # conv4 outputs of the two streams
    torch.testing.assert_close(seen['conv5_input'], torch.cat([mean, mean]))


def build_pix2pix(fusion, positions='all', **fusion_kwargs):
    torch.manual_seed(0)
    return MODELS.build(dict(
        type='CENPix2Pix',
        source_domains=['shade', 'texture'],
        target_domain='rgb',
        data_preprocessor=dict(type='DataPreprocessor', data_keys=None),
        generator=dict(type='FusionUnetGenerator', num_down=5,
                       base_channels=8, norm_cfg=NO_EXCHANGE,
                       fusion=dict(type=fusion, positions=positions,
                                   **fusion_kwargs)),
        discriminator=dict(
            type='PatchDiscriminator', in_channels=6, base_channels=8,
            num_conv=2,
            norm_cfg=dict(type='IN', affine=True, track_running_stats=True)),
        loss_config=dict(pixel_loss_weight=100.)))


def optim_wrapper(model):
    adam = dict(type='Adam', lr=2e-4, betas=(0.5, 0.999))
    return MultiOptimWrapperConstructor(
        dict(generators=dict(optimizer=adam),
             discriminators=dict(optimizer=adam)))(model)


def make_batch():
    rng = np.random.default_rng(0)
    keys = ['img_shade', 'img_texture', 'img_rgb']
    return pseudo_collate([
        PackInputs(keys=keys)(
            {k: rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
             for k in keys}) for _ in range(2)])


@pytest.mark.parametrize('fusion', ['ConcatFusion', 'AverageFusion',
                                    'SSMAFusion', 'AlignFusion'])
def test_pix2pix_with_fusion_trains_and_tests_one_step(fusion):
    model = build_pix2pix(fusion)
    gen = model.generators['rgb']
    block_type = dict(ConcatFusion=ConcatFusion, AverageFusion=AverageFusion,
                      SSMAFusion=SSMAFusion, AlignFusion=AlignFusion)[fusion]
    assert all(isinstance(b, block_type) for b in gen.fusion_blocks.values())
    batch = make_batch()
    before = {k: v.clone() for k, v in gen.fusion_blocks.state_dict().items()}
    log = model.train_step(batch, optim_wrapper(model))
    assert np.isfinite(float(log['loss_pixel_ens']))
    # only align has a fusion loss (CEN: test_cen_pix2pix's exact log keys)
    assert ('loss_fusion' in log) == (fusion == 'AlignFusion')
    if before:
        after = gen.fusion_blocks.state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before
                   if before[k].dtype.is_floating_point)
    samples = model.test_step(batch)
    assert samples[0].pred_img_shade.shape == (3, 32, 32)


@pytest.mark.parametrize('positions,layers', [
    ('early', (1, )), ('middle', (4, )), ('all', (1, 2, 3, 4, 5))])
def test_align_generator_builds_from_config(positions, layers):
    gen = MODELS.build(dict(
        type='FusionUnetGenerator', num_down=5, base_channels=8,
        norm_cfg=NO_EXCHANGE,
        fusion=dict(type='AlignFusion', positions=positions)))
    assert gen.fusion_layers == layers
    # channels after conv k: 8, 16, 32, 64, 64; 10 C² per block (no bias)
    channels = [8 * min(2**(k - 1), 8) for k in layers]
    assert [b.channels for b in gen.fusion_blocks.values()] == channels
    assert sum(p.numel() for p in gen.fusion_blocks.parameters()) == \
        sum(10 * c**2 for c in channels)
    out = gen(torch.randn(4, 3, 32, 32))  # conv5 output is 1x1
    assert out.shape == (6, 3, 32, 32)
    loss = gen.fusion_loss()
    assert loss.requires_grad and torch.isfinite(loss)
    assert gen.fusion_loss() is None  # consumed


def pooled_samples(x, pool):
    """Per stream, the positions of ``x`` (2N, C, h, w) pooled to at most
    ``pool`` x ``pool``, as rows (N * h * w, C)."""
    size = (min(x.size(2), pool), min(x.size(3), pool))
    x = torch.nn.functional.adaptive_avg_pool2d(x, size)
    return [s.permute(0, 2, 3, 1).reshape(-1, x.size(1))
            for s in x.chunk(2)]


def train_align_step(loss_weight, positions):
    """One train step of an align pix2pix; returns the log, the MMD
    recomputed from each block's input with the weights before the step,
    and every align parameter's gradient of the G update."""
    model = build_pix2pix('AlignFusion', positions, loss_weight=loss_weight)
    blocks = model.generators['rgb'].fusion_blocks
    inputs, grads = {}, {}
    for key, block in blocks.items():
        block.register_forward_pre_hook(
            lambda mod, args, key=key: inputs.setdefault(key, args[0]))
    for name, param in blocks.named_parameters():
        param.register_hook(
            lambda grad, name=name: grads.setdefault(name, grad.clone()))
    common = {key: [conv.weight.detach().clone() for conv in block.common]
              for key, block in blocks.items()}
    log = model.train_step(make_batch(), optim_wrapper(model))
    expected = 0.
    for key, x in inputs.items():
        streams = x.detach().chunk(2)
        aligned = torch.cat([  # the common branch c_m = W_m x_m
            torch.einsum('oc,nchw->nohw', w[:, :, 0, 0], s)
            for w, s in zip(common[key], streams)])
        a, b = pooled_samples(aligned, blocks[key].pool_size)
        expected += loss_weight * multi_kernel_mmd(a, b)
    return log, expected, grads


@pytest.mark.parametrize('positions', ['middle', 'all'])
def test_pix2pix_align_logs_mmd_and_trains_the_block(positions):
    log, expected, grads = train_align_step(1., positions)
    assert float(expected) > 1e-3
    torch.testing.assert_close(log['loss_fusion'].detach(), expected,
                               rtol=1e-5, atol=1e-5)
    # D's loss sees detached outputs, so these grads are the G update's;
    # every branch of every block gets one
    model = build_pix2pix('AlignFusion', positions)
    names = [n for n, _ in
             model.generators['rgb'].fusion_blocks.named_parameters()]
    assert sorted(grads) == sorted(names)
    assert all(g.abs().sum() > 0 for g in grads.values())
    # the MMD term reaches the common branches: with its weight at 0 their
    # grads change (the rest of the step is the same, seed for seed), and
    # in the last block only theirs (earlier blocks feed later MMDs)
    log0, _, grads0 = train_align_step(0., positions)
    assert float(log0['loss_fusion']) == 0
    last = max(grads).split('.')[0]
    for name, grad in grads.items():
        changed = (grad - grads0[name]).abs().max() > 1e-6
        if '.common.' in name:
            assert changed, name
        elif name.startswith(last + '.'):
            assert not changed, name


def test_align_no_loss_at_test_or_when_g_skips():
    model = build_pix2pix('AlignFusion', 'middle')
    gen = model.generators['rgb']
    block, = gen.fusion_blocks.values()
    batch = make_batch()
    # pix2pix tests in train mode, under no_grad: no MMD is computed
    assert model.test_mode_train
    model.test_step(batch)
    assert block._loss is None and gen.fusion_loss() is None
    model.test_mode_train = False
    samples = model.test_step(batch)
    assert samples[0].pred_img.shape == (3, 32, 32)
    assert gen.training and gen.fusion_loss() is None
    gen.eval()
    gen(torch.randn(4, 3, 32, 32))
    assert gen.fusion_loss() is None
    gen.train()
    # a step without G update consumes its MMD: none left for a later step
    model.discriminator_steps = 2
    log = model.train_step(batch, optim_wrapper(model))  # iter 0
    assert 'loss_gan_g' not in log and 'loss_fusion' not in log
    assert block._loss is None


@pytest.mark.parametrize('kwargs,match', [
    (dict(fusion='ConcatFusion', positions='stage9'),
     "positions 'stage9' must be one of"),
    (dict(fusion='ConcatFusion', positions=[9]), r'layers \[9\] do not exist'),
    (dict(fusion='ConcatFusion', positions=None), 'needs positions'),
    (dict(fusion='SSMAFusion', positions='early', num_streams=3),
     r'fuses exactly \(2,\) streams'),
])
def test_bad_fusion_configs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generator(kwargs.pop('fusion'), kwargs.pop('positions'), **kwargs)
