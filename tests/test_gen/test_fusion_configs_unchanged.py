# Copyright (c) cen_mm contributors. All rights reserved.
"""The Taskonomy fusion configs (CENPix2Pix, Tables 4 and 5) share one base
(configs/_base_/gen_cen_pix2pix_unet256_taskonomy_300k.py) and
CENTranslationEvaluator. Each resolves to the config it was before, written
out here (the former per-config body, verbatim, with its domains), except
for the intended differences: the evaluator generates the metrics for the
domains the model writes into its predictions, the L1 hook reads the stream
names from the model, non-RGB targets reset ``save_best`` / ``rule`` to
their defaults, and the domains are named once (no top-level
``source_domains`` / ``target_domain`` variables)."""
import inspect
from pathlib import Path

import pytest
from mmengine.config import Config

from cen_mm.gen.evaluation import (CENFID, CENKID, CENMAE, CENMSE,
                                   CENTranslationEvaluator)

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / 'configs' / 'cen_gen'
BASE = ROOT / 'configs' / '_base_'
PREFIX = 'pix2pix_unet256-in_1xb1-300kiters_taskonomy-'
# config name -> (source domains, target domain), as shipped before
CASES = {
    'cen-' + PREFIX + 'depth-normal-texture-shade2rgb.py':
    (['depth_euclidean', 'normal', 'edge_texture', 'reshading'], 'rgb'),
    'cen-' + PREFIX + 'depth-normal-texture2rgb.py':
    (['depth_euclidean', 'normal', 'edge_texture'], 'rgb'),
    'cen-' + PREFIX + 'depth-normal2rgb.py':
    (['depth_euclidean', 'normal'], 'rgb'),
    'cen-' + PREFIX + 'shade-texture2rgb.py':
    (['reshading', 'edge_texture'], 'rgb'),
    'cen-' + PREFIX + 'rgb-edge2depth.py':
    (['rgb', 'edge_occlusion'], 'depth_euclidean'),
    'cen-' + PREFIX + 'rgb-normal2shade.py': (['rgb', 'normal'], 'reshading'),
    'cen-' + PREFIX + 'rgb-shade2normal.py': (['rgb', 'reshading'], 'normal'),
    PREFIX + 'depth2rgb.py': (['depth_euclidean'], 'rgb'),
    PREFIX + 'normal2rgb.py': (['normal'], 'rgb'),
    PREFIX + 'shade2rgb.py': (['reshading'], 'rgb'),
    PREFIX + 'texture2rgb.py': (['edge_texture'], 'rgb'),
}

# The former body of every one of these configs (verbatim but for the
# absolute base paths); HOOKS / CHECKPOINT / EVALUATOR vary as they did.
OLD_BODY = '''
_base_ = [
    '{base}/gen_cen_runtime.py',
    '{base}/gen_cen_pix2pix_unet256.py',
    '{base}/datasets/taskonomy_256x256.py',
]

source_domains = {sources!r}
target_domain = {target!r}

model = dict(source_domains=source_domains, target_domain=target_domain)
{hooks}

train_dataloader = dict(
    dataset=dict(source_domains=source_domains, target_domain=target_domain))
val_dataloader = dict(
    dataset=dict(source_domains=source_domains, target_domain=target_domain))
test_dataloader = val_dataloader

train_cfg = dict(max_iters=300000, val_interval=5000)
{checkpoint}
{evaluator}
test_evaluator = val_evaluator
'''
OLD_HOOKS = '''custom_hooks = [
    dict(
        type='GammaSparsityHook',
        lam=1e-3,
        interval=100,
        stream_names=source_domains)
]'''
OLD_SINGLE_HOOKS = 'custom_hooks = []'
OLD_RGB_CHECKPOINT = '''default_hooks = dict(
    checkpoint=dict(interval=100000, save_best='ens/FID', rule='less'))'''
OLD_CHECKPOINT = 'default_hooks = dict(checkpoint=dict(interval=100000))'
OLD_RGB_EVALUATOR = '''val_evaluator = dict(metrics=[
    dict(
        type=metric,
        prefix=prefix,
        fake_key=key,
        channel_order='bgr',
        minmax_stretch=True)  # official per-image min-max stretch
    for prefix, key in [('ens', 'pred_img')] +
    [(d, f'pred_img_{d}') for d in source_domains]
    for metric in ('CENFID', 'CENKID')
])'''
OLD_EVALUATOR = '''val_evaluator = dict(metrics=[
    dict(type=metric, prefix=prefix, pred_key=key)
    for prefix, key in [('ens', 'pred_img')] +
    [(d, f'pred_img_{d}') for d in source_domains]
    for metric in ('CENMAE', 'CENMSE')
])'''

METRIC_CLASSES = {
    'CENFID': CENFID,
    'CENKID': CENKID,
    'CENMAE': CENMAE,
    'CENMSE': CENMSE
}


def old_config(tmp_path, sources, target):
    rgb = target == 'rgb'
    text = OLD_BODY.format(
        base=BASE,
        sources=sources,
        target=target,
        hooks=OLD_HOOKS if len(sources) > 1 else OLD_SINGLE_HOOKS,
        checkpoint=OLD_RGB_CHECKPOINT if rgb else OLD_CHECKPOINT,
        evaluator=OLD_RGB_EVALUATOR if rgb else OLD_EVALUATOR)
    path = tmp_path / 'old.py'
    path.write_text(text)
    return Config.fromfile(str(path)).to_dict()


def with_defaults(metric):
    """A metric config with every argument its class would default."""
    defaults = {}
    # base classes first, so a subclass's default wins (CENFID passes
    # real_key and friends on to its base through **kwargs)
    for cls in reversed(METRIC_CLASSES[metric['type']].__mro__):
        if '__init__' in vars(cls):
            defaults.update(
                (name, p.default) for name, p in inspect.signature(
                    vars(cls)['__init__']).parameters.items()
                if p.default is not inspect.Parameter.empty)
    return {**defaults, **metric}


def expanded(evaluator, model):
    cfg = dict(evaluator)
    assert cfg.pop('type') == 'CENTranslationEvaluator'
    extra = cfg.pop('metrics')
    return CENTranslationEvaluator.metric_cfgs(model, **cfg) + list(extra)


def test_cases_are_the_fusion_configs():
    shipped = {
        p.name
        for p in CONFIGS.glob('*pix2pix_unet256-in_1xb1-300kiters_*.py')
        if Config.fromfile(str(p)).model.type == 'CENPix2Pix'
    }
    assert shipped == set(CASES)


@pytest.mark.parametrize('name', sorted(CASES))
def test_resolves_as_before(name, tmp_path):
    sources, target = CASES[name]
    new = Config.fromfile(str(CONFIGS / name)).to_dict()
    old = old_config(tmp_path, sources, target)
    assert (new['model']['source_domains'],
            new['model']['target_domain']) == (sources, target)

    # Metrics: the same metric objects (explicit keys = the defaults the
    # old configs relied on: gt_img, convention='plain').
    old_metrics = old.pop('val_evaluator')['metrics']
    assert old.pop('test_evaluator')['metrics'] == old_metrics
    new_evaluator = new.pop('val_evaluator')
    assert new.pop('test_evaluator') == new_evaluator
    # the domains: the model's, which it writes into its predictions
    assert new_evaluator == dict(
        type='CENTranslationEvaluator', convention='plain', metrics=[])
    new_metrics = expanded(new_evaluator, new['model'])
    assert len(new_metrics) == 2 * (len(sources) + 1)
    assert [with_defaults(m) for m in new_metrics] == \
        [with_defaults(m) for m in old_metrics]
    assert {m.get('real_key', m.get('gt_key')) for m in new_metrics} == \
        {'gt_img'}

    # The L1 hook: the same, its stream names now read from the model
    # (CENPix2Pix.stream_names = source_domains).
    old_hooks, new_hooks = old.pop('custom_hooks'), new.pop('custom_hooks')
    if len(sources) > 1:
        assert old_hooks[0].pop('stream_names') == sources
    assert new_hooks == old_hooks

    # Non-RGB targets: save_best / rule reset to CheckpointHook's defaults.
    checkpoint = new['default_hooks']['checkpoint']
    if target != 'rgb':
        assert (checkpoint.pop('save_best'), checkpoint.pop('rule')) == (None,
                                                                          None)
    else:
        assert (checkpoint['save_best'], checkpoint['rule']) == ('ens/FID',
                                                                 'less')

    # The domains are named once (`__domains`, which mmengine drops), not as
    # the top-level variables `source_domains` / `target_domain`.
    assert (old.pop('source_domains'), old.pop('target_domain')) == (sources,
                                                                     target)

    # Everything else: identical.
    assert new == old
