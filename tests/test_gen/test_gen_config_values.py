# Copyright (c) cen_mm contributors. All rights reserved.
"""The values users rely on in the shipped multimodal translation configs:
which metrics each computes (paper: FID/KID for RGB targets, MAE/MSE
otherwise), λ, θ, crops and resizes, schedule (docs/translation.md)."""
from pathlib import Path

import pytest
from mmengine.config import Config, ConfigDict

from cen_mm.gen.evaluation import CENTranslationEvaluator

CONFIGS = Path(__file__).parents[2] / 'configs' / 'cen_gen'
# The multimodal translation configs (paper Tables 4 and 5, the CPU demo);
# the multitask / cycle families have their own config tests.
NAMES = sorted(
    p.name for p in CONFIGS.glob('*.py')
    if p.name.startswith(('cen-pix2pix_unet', 'pix2pix_unet')))


def metric_cfgs(cfg):
    """The validation metric configs (a CENTranslationEvaluator expanded)."""
    evaluator = cfg.val_evaluator.to_dict()
    metrics = evaluator.pop('metrics')
    if evaluator.pop('type', None) == 'CENTranslationEvaluator':
        metrics = CENTranslationEvaluator.metric_cfgs(cfg.model,
                                                      **evaluator) + metrics
    return [ConfigDict(m) for m in metrics]


def metrics_of(cfg):
    """{(type, prefix, key)} of the validation metrics."""
    return {(m.type, m.prefix, m.get('fake_key', m.get('pred_key')))
            for m in metric_cfgs(cfg)}


def expected_metrics(types, sources):
    streams = [('ens', 'pred_img')] + [(s, f'pred_img_{s}') for s in sources]
    return {(t, prefix, key) for prefix, key in streams for t in types}


@pytest.mark.parametrize('name', NAMES)
def test_translation_config_values(name):
    cfg = Config.fromfile(str(CONFIGS / name))
    model = cfg.model
    sources = list(model.source_domains)
    demo = 'synthetic' in name

    # Metrics: FID/KID (BGR images from mmagic's preprocessor) for RGB
    # targets on Taskonomy, MAE/MSE otherwise and on the offline CPU demo,
    # for the ensemble and every stream; val and test alike.
    if model.target_domain == 'rgb' and not demo:
        assert metrics_of(cfg) == expected_metrics(('CENFID', 'CENKID'),
                                                   sources)
        assert {m.channel_order for m in metric_cfgs(cfg)} == {'bgr'}
    else:
        assert metrics_of(cfg) == expected_metrics(('CENMAE', 'CENMSE'),
                                                   sources)
    assert cfg.test_evaluator == cfg.val_evaluator

    # CEN: θ = 1e-2 at every encoder IN, L1 on γ with λ = 1e-3 by the hook.
    gen = model.generator
    assert gen.norm_cfg.type == 'ExchangeIN'
    assert gen.norm_cfg.threshold == 1e-2
    assert (gen.norm_cfg.exchange_scope, gen.norm_cfg.sparsity) == ('any',
                                                                    'own')
    assert model.slim_loss_weight == 0.
    assert model.loss_config.pixel_loss_weight == 100.
    if len(sources) > 1:
        [hook] = cfg.custom_hooks
        assert (hook.type, hook.lam) == ('GammaSparsityHook', 1e-3)
        # stream names come from the model (CENPix2Pix.stream_names)
        assert list(hook.get('stream_names', sources)) == sources
    else:
        assert cfg.custom_hooks == []

    # Official crops: resize to 286, random 256 crop, flip; test resize 256
    # (the CPU demo: 143 -> 128, U-Net-128; the Table-4 study: 72 -> 64,
    # U-Net-64).
    size = 2**gen.num_down if demo else 256
    resize = round(size * 286 / 256)
    assert f'unet{size}' in name
    train = cfg.train_dataloader.dataset.pipeline
    assert [t.type for t in train] == [
        'LoadTaskonomyDomains', 'Resize', 'FixedCrop', 'Flip', 'PackInputs'
    ]
    assert train[1].scale == (resize, resize) and not train[1].keep_ratio
    assert train[2].crop_size == (size, size)
    assert train[3].flip_ratio == 0.5
    test = cfg.val_dataloader.dataset.pipeline
    assert [t.type for t in test] == [
        'LoadTaskonomyDomains', 'Resize', 'PackInputs'
    ]
    assert test[1].scale == (size, size)
    assert demo or gen.num_down == 8

    # Schedule: Adam 2e-4 (0.5, 0.999) for G and D; 300 epochs x 1000
    # images at batch 1 = 300k iterations, validation every 5 epochs.
    if demo:
        schedule = name.split('_')[2].split('-')[1]
        assert (cfg.train_cfg.max_iters, cfg.train_cfg.val_interval) == {
            '2kiters': (2000, 500), '600iters': (600, 600)}[schedule]
        assert cfg.train_dataloader.batch_size == 4
    else:
        assert (cfg.train_cfg.max_iters,
                cfg.train_cfg.val_interval) == (300000, 5000)
        assert cfg.train_dataloader.batch_size == 1
