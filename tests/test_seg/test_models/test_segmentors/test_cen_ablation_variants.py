# Copyright (c) cen_mm contributors. All rights reserved.
"""Table-1 ablation switches and Table-2 fusion baselines on the CEN
segmentor: each builds from config, trains one step and tests one step."""
import copy

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import cen_mm.seg  # noqa: F401
from cen_mm.cnn import (AlignFusion, ConcatFusion, ExchangeNorm,
                        StreamParallel, exchange_norms)

K = 3


@pytest.fixture(scope='module', autouse=True)
def mmseg_scope():
    """Configs run under mmseg's scope (default_scope='mmseg'); set for this
    module's tests only."""
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def tiny_cfg(**kwargs):
    cfg = dict(
        type='CENEncoderDecoder',
        data_preprocessor=dict(
            type='CENSegDataPreProcessor',
            stream_channels=(3, 3),
            mean=[123.675, 116.28, 103.53, 0., 0., 0.],
            std=[58.395, 57.12, 57.375, 5000., 5000., 5000.],
            size_divisor=32),
        backbone=dict(
            type='CENResNet', depth=50,
            stem_channels=8, base_channels=4,
            exchange_cfg=dict(threshold=2e-2, sparsity='own')),
        decode_head=dict(
            type='CENRefineNetHead', in_channels=(16, 32, 64, 128),
            channels=8, top_channels=8, num_classes=K),
        test_cfg=ConfigDict(mode='whole'))
    for key, value in kwargs.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


def batch(n=2, size=32):
    gen = torch.Generator().manual_seed(0)
    samples = []
    for i in range(n):
        sample = SegDataSample(metainfo=dict(
            img_shape=(size, size), ori_shape=(size, size),
            pad_shape=(size, size), padding_size=[0, 0, 0, 0]))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, K, (1, size, size), generator=gen))
        samples.append(sample)
    inputs = [torch.rand(6, size, size, generator=gen) * 255
              for _ in range(n)]
    return dict(inputs=inputs, data_samples=samples)


def train_and_test_one_step(model):
    model.train()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-2))
    before = copy.deepcopy(model.state_dict())
    log = model.train_step(batch(), wrapper)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in log.values())
    changed = [k for k, v in model.state_dict().items()
               if v.dtype.is_floating_point and not torch.equal(v, before[k])]
    assert changed
    model.eval()
    out = model.test_step(batch(1))
    assert out[0].pred_sem_seg.data.shape == (1, 32, 32)
    assert out[0].pred_sem_seg_depth.data.shape == (1, 32, 32)
    return log


# Table 1 rows: (convs shared, BNs private, L1, exchange)
TABLE1 = {
    'unshared-no-l1': dict(share_convs=False,
                           backbone=dict(exchange_cfg=dict(
                               exchange_mode='none', sparsity='none'))),
    'shared-bn': dict(share_norms=True,
                      backbone=dict(exchange_cfg=dict(
                          exchange_mode='none', sparsity='none'))),
    'fixed-30': dict(backbone=dict(exchange_cfg=dict(
        exchange_mode='fixed', exchange_portion=0.3, sparsity='none'))),
    'random': dict(backbone=dict(exchange_cfg=dict(
        exchange_mode='random', sparsity='none'))),
    'discard': dict(backbone=dict(exchange_cfg=dict(
        exchange_mode='discard', sparsity='own'))),
    'unshared-cen': dict(share_convs=False),
    'all-channel-l1': dict(backbone=dict(exchange_cfg=dict(
        sparsity='all'))),
    'cen': dict(),
}


@pytest.mark.parametrize('variant', sorted(TABLE1))
def test_table1_variant_trains_and_tests(variant):
    torch.manual_seed(0)
    model = MODELS.build(tiny_cfg(**TABLE1[variant]))
    norms = [layer for _, layer in exchange_norms(model)]
    convs = [m for m in model.backbone.modules()
             if isinstance(m, StreamParallel)]
    if variant == 'shared-bn':
        assert not norms
    else:
        assert len(norms) > 16
    assert bool(convs) == variant.startswith('unshared')
    if variant.startswith('unshared'):
        assert not [n for n, m in model.backbone.named_modules()
                    if type(m) is torch.nn.Conv2d
                    and '.streams.' not in n]
    train_and_test_one_step(model)


def test_parameter_totals_r101_match_the_paper():
    """Table 2, "same with our setting": uni-modal 118.1 M, CEN 118.2 M,
    Concat (early) 118.8 M with 0.6 M used for fusion (ours: 118.7 / 0.5 M,
    a 1x1 conv 1024 -> 512 with bias), Self-att. (middle) 139.4 / 21.2 M,
    Align (late) 160.1 / 41.9 M, Align (all-stage) 173.9 / 55.7 M."""

    def count(**kwargs):
        cfg = tiny_cfg(**kwargs)
        cfg['backbone'].update(depth=101, stem_channels=64,
                               base_channels=64)
        cfg['decode_head'] = dict(type='CENRefineNetHead', num_classes=40)
        model = MODELS.build(cfg)
        total = sum(p.numel() for p in model.parameters())
        fusion = 0 if model.fusion_blocks is None else sum(
            p.numel() for p in model.fusion_blocks.parameters())
        return round(total / 1e6, 1), round(fusion / 1e6, 1)

    no_exchange = dict(backbone=dict(exchange_cfg=dict(
        exchange_mode='none', sparsity='none')))
    assert count() == (118.2, 0.0)  # CEN
    assert count(share_norms=True, **no_exchange) == (118.1, 0.0)  # uni
    assert count(fusion=dict(type='ConcatFusion', positions='early'),
                 **no_exchange) == (118.7, 0.5)
    # Self-att. (middle): 139.4 M with 21.2 M for fusion, as the paper.
    assert count(fusion=dict(type='SSMAFusion', positions='middle'),
                 **no_exchange) == (139.4, 21.2)
    # Align: common/specific branches, 10 C² per position, as the paper.
    assert count(fusion=dict(type='AlignFusion', positions='late'),
                 **no_exchange) == (160.1, 41.9)
    assert count(fusion=dict(type='AlignFusion', positions='all'),
                 **no_exchange) == (173.9, 55.7)


@pytest.mark.parametrize('fusion,position', [
    ('ConcatFusion', 'early'), ('AlignFusion', 'middle'),
    ('SSMAFusion', 'late'), ('AverageFusion', 'all')])
def test_fusion_baseline_trains_and_tests(fusion, position):
    torch.manual_seed(0)
    no_exchange = dict(exchange_mode='none', sparsity='none')
    model = MODELS.build(tiny_cfg(
        backbone=dict(exchange_cfg=no_exchange),
        fusion=dict(type=fusion, positions=position)))
    names = {'early': ['layer2'], 'middle': ['layer3'], 'late': ['layer4'],
             'all': ['layer1', 'layer2', 'layer3', 'layer4']}[position]
    assert sorted(model.fusion_blocks) == names
    log = train_and_test_one_step(model)
    assert ('loss_fusion' in log) == (fusion == 'AlignFusion')
    if fusion == 'AlignFusion':
        assert log['loss_fusion'] > 0


def test_fusion_changes_later_stages_only():
    """Concat after stage 2: stage 1/2 outputs as without fusion, stage 3
    sees the fused features."""
    torch.manual_seed(0)
    no_exchange = dict(exchange_mode='none', sparsity='none')
    model = MODELS.build(tiny_cfg(
        backbone=dict(exchange_cfg=no_exchange),
        fusion=dict(type='ConcatFusion', positions='early'))).eval()
    block = model.fusion_blocks['layer2']
    assert isinstance(block, ConcatFusion) and block.channels == 32
    x = torch.rand(2, 6, 32, 32)
    feats = model.extract_feat(x)
    handles = list(model.backbone.layer2._forward_hooks)
    assert len(handles) == 1
    hook = model.backbone.layer2._forward_hooks.pop(handles[0])
    plain = model.extract_feat(x)
    torch.testing.assert_close(feats[0], plain[0])
    assert not torch.allclose(feats[1], plain[1])
    torch.testing.assert_close(feats[1], block(plain[1]))
    model.backbone.layer2._forward_hooks[handles[0]] = hook


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(fusion=dict(type='ConcatFusion', positions='stage5')), ValueError,
     "fusion positions 'stage5' must be one of"),
    (dict(fusion=dict(type='ConcatFusion', positions=['layer9'])),
     ValueError, "'layer9' is not a sub-module"),
    (dict(fusion=dict(type='ConcatFusion')), ValueError, 'needs positions'),
    (dict(share_norms=True), ValueError, 'need a private norm per stream'),
])
def test_bad_variant_configs(kwargs, error, match):
    with pytest.raises(error, match=match):
        MODELS.build(tiny_cfg(**kwargs))


def test_ssma_needs_two_streams_and_generic_backbone_unshare_errors():
    cfg = tiny_cfg(
        num_streams=3, stream_names=('a', 'b', 'c'),
        backbone=dict(exchange_cfg=dict(exchange_mode='none',
                                        sparsity='none')),
        decode_head=dict(num_streams=3, stream_names=('a', 'b', 'c')),
        fusion=dict(type='SSMAFusion', positions='late'))
    cfg['data_preprocessor'] = None
    with pytest.raises(ValueError, match=r'fuses exactly \(2,\) streams'):
        MODELS.build(cfg)
    # A generic backbone with a layer that cannot be split per stream.
    cfg = tiny_cfg(share_convs=False, stream_channels=(3, 3),
                   backbone=dict(type='mmseg.MobileNetV2', widen_factor=0.25,
                                 norm_cfg=dict(type='BN')))
    cfg['backbone'] = dict(type='MobileNetV2', widen_factor=0.25,
                           norm_cfg=dict(type='BN'))
    with pytest.raises(ValueError, match='cannot be duplicated per stream'):
        MODELS.build(cfg)


def test_exchange_modes_reach_every_exchange_site():
    model = MODELS.build(tiny_cfg(backbone=dict(exchange_cfg=dict(
        exchange_mode='fixed', exchange_portion=0.25, sparsity='none'))))
    sites = [layer for _, layer in exchange_norms(model) if layer.exchange]
    assert len(sites) == 16  # bn2 of the 16 ResNet-50 bottlenecks
    for layer in sites:
        assert isinstance(layer, ExchangeNorm)
        assert layer.exchange_mask().sum(1).tolist() == \
            [round(0.25 * layer.num_features)] * 2
    assert isinstance(AlignFusion(4), AlignFusion)
