# Copyright (c) cen_mm contributors. All rights reserved.
"""The translation configs load, agree on the domains and build: the
fusion configs (CENPix2Pix, Tables 4-5) and the multitask / multimodal-
multitask / cycle configs (CENMultiPix2Pix, Tables 6-9)."""
import glob
import os.path as osp

import pytest
from mmagic.registry import METRICS, MODELS, TRANSFORMS
from mmengine.config import Config, ConfigDict
from mmengine.registry import HOOKS, init_default_scope

import cen_mm.engine  # noqa: F401  (GammaSparsityHook)
import cen_mm.gen  # noqa: F401
from cen_mm.gen.evaluation import CENTranslationEvaluator

CONFIG_DIR = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs',
                      'cen_gen')
ALL_CONFIGS = sorted(glob.glob(osp.join(CONFIG_DIR, '*.py')))
CONFIGS = [p for p in ALL_CONFIGS
           if Config.fromfile(p).model.type == 'CENPix2Pix']
MULTI_CONFIGS = [p for p in ALL_CONFIGS if p not in CONFIGS]

# Paper Table 4 and Table 5 cases: (sources, target)
EXPECTED = {
    (('reshading', 'edge_texture'), 'rgb'),
    (('depth_euclidean', 'normal'), 'rgb'),
    (('rgb', 'reshading'), 'normal'),
    (('rgb', 'normal'), 'reshading'),
    (('rgb', 'edge_occlusion'), 'depth_euclidean'),
    (('depth_euclidean', ), 'rgb'),
    (('normal', ), 'rgb'),
    (('edge_texture', ), 'rgb'),
    (('reshading', ), 'rgb'),
    (('depth_euclidean', 'normal', 'edge_texture'), 'rgb'),
    (('depth_euclidean', 'normal', 'edge_texture', 'reshading'), 'rgb'),
}


def load(path):
    return Config.fromfile(path)


def test_paper_cases_are_covered():
    cases = set()
    for path in CONFIGS:
        cfg = load(path)
        if 'taskonomy' in osp.basename(path):
            cases.add((tuple(cfg.model.source_domains),
                       cfg.model.target_domain))
    assert cases == EXPECTED


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_consistency(path):
    cfg = load(path)
    assert cfg.default_scope == 'mmagic'
    assert cfg.model.type == 'CENPix2Pix'
    sources = list(cfg.model.source_domains)
    target = cfg.model.target_domain
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        assert list(dataset.source_domains) == sources
        assert dataset.target_domain == target
        for transform in dataset.pipeline:
            assert transform.type in TRANSFORMS
    evaluator = cfg.val_evaluator.to_dict()
    metrics = evaluator.pop('metrics')
    if evaluator.pop('type', None) == 'CENTranslationEvaluator':
        # the domains come from the model (its predictions), never the config
        assert not {'target', 'sources', 'targets'} & set(evaluator)
        metrics = CENTranslationEvaluator.metric_cfgs(
            cfg.model, **evaluator) + metrics
    keys = {m.get('pred_key', m.get('fake_key')) for m in metrics}
    assert keys == {'pred_img'} | {f'pred_img_{s}' for s in sources}
    for metric in metrics:
        assert metric['type'] in METRICS
    optim = cfg.optim_wrapper
    assert optim.constructor == 'MultiOptimWrapperConstructor'
    for part in ('generators', 'discriminators'):
        assert optim[part].optimizer == dict(
            type='Adam', lr=2e-4, betas=(0.5, 0.999))
    hooks = [h.type for h in cfg.custom_hooks]
    if len(sources) > 1:
        assert hooks == ['GammaSparsityHook']
        assert cfg.custom_hooks[0].lam == 1e-3
        assert 'GammaSparsityHook' in HOOKS
    else:  # no exchanging norm to penalise
        assert hooks == []


@pytest.mark.parametrize('name', [
    'cen-pix2pix_unet256-in_1xb1-300kiters_taskonomy-depth-normal-'
    'texture2rgb.py', 'pix2pix_unet256-in_1xb1-300kiters_taskonomy-'
    'shade2rgb.py'
])
def test_config_builds(name):
    init_default_scope('mmagic')
    cfg = load(osp.join(CONFIG_DIR, name))
    cfg.model.generator.update(num_down=5, base_channels=4)
    cfg.model.discriminator.base_channels = 4
    model = MODELS.build(cfg.model)
    gen = model.generators[cfg.model.target_domain]
    assert gen.num_streams == len(cfg.model.source_domains)
    # the streams are named once, on the model (hooks read them there)
    assert model.stream_names == list(cfg.model.source_domains)
    assert gen.exchange_layers == gen.penalised_layers == (2, 3, 4)


# Row families of Tables 6-9: task -> variants (CEN and baselines)
TABLE_ROWS = {
    'rgb2semseg-depth': {'cen-dec', 'hardshare', 'indiv'},
    'texture2rgb-depth': {'cen-dec', 'hardshare', 'indiv'},
    'rgb2semseg-depth-normal': {'cen-dec', 'indiv'},
    'rgb-depth2normal-shade': {'cen-encdec', 'cen-enc', 'cen-dec', 'indiv'},
    'rgb-shade-texture': {'cen-cycle-dec1', 'cen-cycle-dec3', 'cen-random',
                          'cen-indep'},
}


def test_table_rows_have_configs():
    found = {}
    for path in MULTI_CONFIGS:
        name = osp.basename(path)[:-3]
        if 'taskonomy' not in name:
            continue
        variant, rest = name.split('-pix2pix_unet256-in_1xb1-300kiters_')
        found.setdefault(rest[len('taskonomy-'):], set()).add(variant)
    assert found == TABLE_ROWS


def _dataset_flows(dataset):
    if dataset.get('flows'):
        return [(tuple(f['sources']), f['target']) for f in dataset.flows]
    return [(tuple(dataset.source_domains), t)
            for t in dataset.target_domains]


@pytest.mark.parametrize('path', MULTI_CONFIGS, ids=osp.basename)
def test_multi_flow_config_consistency(path):
    cfg = load(path)
    assert cfg.default_scope == 'mmagic'
    assert cfg.model.type == 'CENMultiPix2Pix'
    flows = [(tuple(f['sources']), f['target']) for f in cfg.model.flows]
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert _dataset_flows(cfg[loader].dataset) == flows
    expected = set()
    for sources, target in flows:
        expected.add((f'pred_img_{target}', target))
        if cfg.model.units == 'per_flow' and len(sources) > 1:
            expected |= {(f'pred_img_{target}_{s}', f'{target}/{s}')
                         for s in sources}
    seen = set()
    evaluator = cfg.val_evaluator.to_dict()
    assert evaluator.pop('type') == 'CENTranslationEvaluator'
    assert evaluator.pop('metrics') == []
    for metric in map(ConfigDict,
                      CENTranslationEvaluator.metric_cfgs(
                          cfg.model, **evaluator)):
        key = metric.get('pred_key', metric.get('fake_key'))
        seen.add((key, metric.prefix))
        target = metric.get('gt_key', metric.get('real_key'))[len('gt_img_'):]
        # the CPU demos report MAE / MSE for RGB too (FID / KID need the
        # Inception weights)
        if target == 'rgb' and 'taskonomy' in path:
            assert metric.type in ('CENFID', 'CENKID')
            assert metric.minmax_stretch  # official, as the fusion configs
        else:
            assert metric.type in ('CENMAE', 'CENMSE')
            assert metric.convention == 'paper'
        assert key.startswith(f'pred_img_{target}')
    assert seen == expected
    # no exchanging norm (units of one stream each) -> no L1 hook
    single = cfg.model.units == 'per_flow' and all(
        len(sources) == 1 for sources, _ in flows)
    hooks = [h.type for h in cfg.custom_hooks]
    assert hooks == ([] if single else ['GammaSparsityHook'])
