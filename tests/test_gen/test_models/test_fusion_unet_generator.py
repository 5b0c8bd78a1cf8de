# Copyright (c) cen_mm contributors. All rights reserved.
"""Translation fusion baselines (Table 4): positions, a direct reference,
one train and one test step of CENPix2Pix, clear errors."""
import numpy as np
import pytest
import torch
from mmagic.datasets.transforms import PackInputs
from mmagic.engine import MultiOptimWrapperConstructor
from mmagic.registry import MODELS
from mmengine import MessageHub
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from cen_mm.cnn import AverageFusion, ConcatFusion, SSMAFusion
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


@pytest.mark.parametrize('fusion', ['ConcatFusion', 'AverageFusion',
                                    'SSMAFusion'])
def test_pix2pix_with_fusion_trains_and_tests_one_step(fusion):
    torch.manual_seed(0)
    cfg = dict(
        type='CENPix2Pix',
        source_domains=['shade', 'texture'],
        target_domain='rgb',
        data_preprocessor=dict(type='DataPreprocessor', data_keys=None),
        generator=dict(type='FusionUnetGenerator', num_down=5,
                       base_channels=8, norm_cfg=NO_EXCHANGE,
                       fusion=dict(type=fusion, positions='all')),
        discriminator=dict(
            type='PatchDiscriminator', in_channels=6, base_channels=8,
            num_conv=2,
            norm_cfg=dict(type='IN', affine=True, track_running_stats=True)),
        loss_config=dict(pixel_loss_weight=100.))
    model = MODELS.build(cfg)
    gen = model.generators['rgb']
    block_type = dict(ConcatFusion=ConcatFusion, AverageFusion=AverageFusion,
                      SSMAFusion=SSMAFusion)[fusion]
    assert all(isinstance(b, block_type) for b in gen.fusion_blocks.values())
    adam = dict(type='Adam', lr=2e-4, betas=(0.5, 0.999))
    wrapper = MultiOptimWrapperConstructor(
        dict(generators=dict(optimizer=adam),
             discriminators=dict(optimizer=adam)))(model)
    rng = np.random.default_rng(0)
    keys = ['img_shade', 'img_texture', 'img_rgb']
    batch = pseudo_collate([
        PackInputs(keys=keys)(
            {k: rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
             for k in keys}) for _ in range(2)])
    before = {k: v.clone() for k, v in gen.fusion_blocks.state_dict().items()}
    log = model.train_step(batch, wrapper)
    assert np.isfinite(float(log['loss_pixel_ens']))
    if before:
        after = gen.fusion_blocks.state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before
                   if before[k].dtype.is_floating_point)
    samples = model.test_step(batch)
    assert samples[0].pred_img_shade.shape == (3, 32, 32)


@pytest.mark.parametrize('kwargs,match', [
    (dict(fusion='ConcatFusion', positions='stage9'),
     "positions 'stage9' must be one of"),
    (dict(fusion='ConcatFusion', positions=[9]), r'layers \[9\] do not exist'),
    (dict(fusion='ConcatFusion', positions=None), 'needs positions'),
    (dict(fusion='AlignFusion', positions='early'), 'does not collect'),
    (dict(fusion='SSMAFusion', positions='early', num_streams=3),
     r'fuses exactly \(2,\) streams'),
])
def test_bad_fusion_configs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generator(kwargs.pop('fusion'), kwargs.pop('positions'), **kwargs)
