# Copyright (c) cen_mm contributors. All rights reserved.
"""CENTranslationEvaluator expands targets / flows into the metrics the
multitask and cycle configs listed by hand before (their list
comprehensions, kept here as the reference)."""
import glob
import os.path as osp

import pytest
from mmagic.engine.runner.loop_utils import (is_evaluator,
                                             update_and_check_evaluator)
from mmagic.registry import EVALUATORS
from mmengine.config import Config
from mmengine.registry import DefaultScope

import cen_mm.gen  # noqa: F401
from cen_mm.gen.evaluation import (CENFID, CENKID, CENMAE, CENMSE,
                                   CENTranslationEvaluator)

CONFIG_DIR = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs',
                      'cen_gen')
# The multitask / multimodal-multitask / cycle configs (CENMultiPix2Pix).
MULTI_CONFIGS = [
    p for p in sorted(glob.glob(osp.join(CONFIG_DIR, '*.py')))
    if Config.fromfile(p).model.type == 'CENMultiPix2Pix'
]


def reference_task_metrics(target_domains):
    """The joint-task configs' evaluator before the helper (verbatim)."""
    return [
        dict(
            type=m,
            prefix=t,
            fake_key=f'pred_img_{t}',
            real_key=f'gt_img_{t}',
            channel_order='bgr',
            minmax_stretch=True)
        if t == 'rgb' else dict(
            type=m,
            prefix=t,
            pred_key=f'pred_img_{t}',
            gt_key=f'gt_img_{t}',
            convention='paper')
        for t in target_domains
        for m in (('CENFID', 'CENKID') if t == 'rgb' else ('CENMAE',
                                                            'CENMSE'))
    ]


def reference_cycle_metrics(flows, rgb_features=True):
    """The cycle configs' evaluator before the helper (verbatim)."""
    return [
        dict(
            type=m,
            prefix=prefix,
            fake_key=key,
            real_key=f"gt_img_{f['target']}",
            channel_order='bgr',
            minmax_stretch=True)
        if f['target'] == 'rgb' and rgb_features else dict(
            type=m,
            prefix=prefix,
            pred_key=key,
            gt_key=f"gt_img_{f['target']}",
            convention='paper') for f in flows
        for prefix, key in [(f['target'], f"pred_img_{f['target']}")] +
        [(f"{f['target']}/{s}", f"pred_img_{f['target']}_{s}")
         for s in f['sources']]
        for m in (('CENFID', 'CENKID') if f['target'] == 'rgb'
                  and rgb_features else ('CENMAE', 'CENMSE'))
    ]


@pytest.fixture
def mmagic_scope():
    with DefaultScope.overwrite_default_scope('mmagic'):
        yield


def test_metric_cfgs_exact():
    assert CENTranslationEvaluator.metric_cfgs(['normal', 'rgb']) == [
        dict(type='CENMAE', prefix='normal', pred_key='pred_img_normal',
             gt_key='gt_img_normal', convention='paper'),
        dict(type='CENMSE', prefix='normal', pred_key='pred_img_normal',
             gt_key='gt_img_normal', convention='paper'),
        dict(type='CENFID', prefix='rgb', fake_key='pred_img_rgb',
             real_key='gt_img_rgb', channel_order='bgr',
             minmax_stretch=True),
        dict(type='CENKID', prefix='rgb', fake_key='pred_img_rgb',
             real_key='gt_img_rgb', channel_order='bgr',
             minmax_stretch=True),
    ]
    flows = [dict(sources=['a', 'b'], target='rgb')]
    cfgs = CENTranslationEvaluator.metric_cfgs(
        flows, streams=True, feature_targets=())
    assert [(c['type'], c['prefix'], c['pred_key']) for c in cfgs] == [
        ('CENMAE', 'rgb', 'pred_img_rgb'), ('CENMSE', 'rgb', 'pred_img_rgb'),
        ('CENMAE', 'rgb/a', 'pred_img_rgb_a'),
        ('CENMSE', 'rgb/a', 'pred_img_rgb_a'),
        ('CENMAE', 'rgb/b', 'pred_img_rgb_b'),
        ('CENMSE', 'rgb/b', 'pred_img_rgb_b'),
    ]
    assert {c['gt_key'] for c in cfgs} == {'gt_img_rgb'}
    # Without streams, flows give their targets only.
    assert CENTranslationEvaluator.metric_cfgs(flows) == \
        CENTranslationEvaluator.metric_cfgs(['rgb'])


@pytest.mark.parametrize('targets', [
    ['segment_semantic', 'depth_euclidean'],
    ['edge_texture', 'rgb', 'depth_euclidean'],
    ['normal', 'reshading'],
])
def test_same_metrics_as_the_task_comprehension(targets):
    assert CENTranslationEvaluator.metric_cfgs(targets) == \
        reference_task_metrics(targets)


@pytest.mark.parametrize('rgb_features', [True, False])
def test_same_metrics_as_the_cycle_comprehension(rgb_features):
    modalities = ['rgb', 'reshading', 'edge_texture']
    flows = [dict(sources=[m for m in modalities if m != t], target=t)
             for t in modalities]
    cfgs = CENTranslationEvaluator.metric_cfgs(
        flows, streams=True,
        feature_targets=('rgb', ) if rgb_features else ())
    assert cfgs == reference_cycle_metrics(flows, rgb_features)
    assert len(cfgs) == 18


def _expanded(evaluator_cfg):
    cfg = dict(evaluator_cfg)
    assert cfg.pop('type') == 'CENTranslationEvaluator'
    extra = cfg.pop('metrics')
    return CENTranslationEvaluator.metric_cfgs(**cfg) + list(extra)


@pytest.mark.parametrize('path', MULTI_CONFIGS, ids=osp.basename)
def test_shipped_configs_same_metrics_as_before(path):
    cfg = Config.fromfile(path)
    model = cfg.model
    flows = [dict(f) for f in model.flows]
    demo = 'synthetic' in path
    if model.units == 'per_flow' and len(flows[0]['sources']) > 1:
        expected = reference_cycle_metrics(flows, rgb_features=not demo)
    else:
        expected = reference_task_metrics([f['target'] for f in flows])
        if demo:  # offline: MAE / MSE for every target
            assert 'rgb' not in [f['target'] for f in flows]
    assert _expanded(cfg.val_evaluator.to_dict()) == expected
    assert cfg.test_evaluator == cfg.val_evaluator
    # mmagic's MultiValLoop accepts it as one evaluator.
    assert is_evaluator(cfg.val_evaluator)


def test_builds_metrics(mmagic_scope):
    cfg = dict(
        type='CENTranslationEvaluator',
        targets=['normal', 'rgb'],
        metrics=[dict(type='CENMAE', prefix='extra')])
    cfg = update_and_check_evaluator(cfg)  # what MultiValLoop does
    evaluator = EVALUATORS.build(cfg)
    assert type(evaluator) is CENTranslationEvaluator
    assert [type(m) for m in evaluator.metrics] == [
        CENMAE, CENMSE, CENFID, CENKID, CENMAE
    ]
    assert [m.prefix for m in evaluator.metrics] == [
        'normal', 'normal', 'rgb', 'rgb', 'extra'
    ]
    mae, mse, fid, kid, extra = evaluator.metrics
    assert (mae.pred_key, mae.gt_key, mae.metric) == (
        'pred_img_normal', 'gt_img_normal', 'MAE_paper')
    assert mse.metric == 'MSE_paper'
    for m in (fid, kid):
        assert (m.fake_key, m.real_key, m.channel_order,
                m.minmax_stretch) == ('pred_img_rgb', 'gt_img_rgb', 'bgr',
                                      True)
    assert (extra.pred_key, extra.metric) == ('pred_img', 'MAE')


def test_bad_targets():
    with pytest.raises(TypeError, match='non-empty list'):
        CENTranslationEvaluator.metric_cfgs('rgb')
    with pytest.raises(TypeError, match='non-empty list'):
        CENTranslationEvaluator.metric_cfgs([])
    with pytest.raises(ValueError, match='streams=True needs the flows'):
        CENTranslationEvaluator.metric_cfgs(['rgb'], streams=True)
    with pytest.raises(KeyError, match='"target"'):
        CENTranslationEvaluator.metric_cfgs([dict(sources=['a'])])


def test_fusion_metric_cfgs_exact():
    """target + sources: the fusion model's ensemble and every stream."""
    assert CENTranslationEvaluator.metric_cfgs(
        target='normal', sources=['rgb', 'reshading'],
        convention='plain') == [
            dict(type=m, prefix=prefix, pred_key=key, gt_key='gt_img',
                 convention='plain')
            for prefix, key in [('ens', 'pred_img'), ('rgb', 'pred_img_rgb'),
                                ('reshading', 'pred_img_reshading')]
            for m in ('CENMAE', 'CENMSE')
        ]
    assert CENTranslationEvaluator.metric_cfgs(
        target='rgb', sources=['normal']) == [
            dict(type=m, prefix=prefix, fake_key=key, real_key='gt_img',
                 channel_order='bgr', minmax_stretch=True)
            for prefix, key in [('ens', 'pred_img'),
                                ('normal', 'pred_img_normal')]
            for m in ('CENFID', 'CENKID')
        ]
    # offline: no feature metrics, the paper's MAE / MSE by default
    cfgs = CENTranslationEvaluator.metric_cfgs(
        target='rgb', sources=['normal'], feature_targets=())
    assert [(c['type'], c['prefix'], c['convention']) for c in cfgs] == [
        ('CENMAE', 'ens', 'paper'), ('CENMSE', 'ens', 'paper'),
        ('CENMAE', 'normal', 'paper'), ('CENMSE', 'normal', 'paper')
    ]


def test_fusion_builds_metrics(mmagic_scope):
    cfg = update_and_check_evaluator(
        dict(type='CENTranslationEvaluator', target='depth_euclidean',
             sources=['rgb', 'edge_occlusion'], convention='plain',
             metrics=[]))
    evaluator = EVALUATORS.build(cfg)
    assert [type(m) for m in evaluator.metrics] == [CENMAE, CENMSE] * 3
    assert [(m.prefix, m.pred_key, m.gt_key, m.metric)
            for m in evaluator.metrics] == [
                (prefix, key, 'gt_img', name)
                for prefix, key in [('ens', 'pred_img'),
                                    ('rgb', 'pred_img_rgb'),
                                    ('edge_occlusion',
                                     'pred_img_edge_occlusion')]
                for name in ('MAE', 'MSE')
            ]


def test_fusion_bad_arguments():
    with pytest.raises(ValueError, match='either targets'):
        CENTranslationEvaluator.metric_cfgs(['rgb'], target='rgb',
                                            sources=['normal'])
    with pytest.raises(ValueError, match='either targets'):
        CENTranslationEvaluator.metric_cfgs(streams=True, target='rgb',
                                            sources=['normal'])
    with pytest.raises(TypeError, match='fusion model needs'):
        CENTranslationEvaluator.metric_cfgs(target='rgb')
    with pytest.raises(TypeError, match='fusion model needs'):
        CENTranslationEvaluator.metric_cfgs(target='rgb', sources='normal')
    with pytest.raises(TypeError, match='fusion model needs'):
        CENTranslationEvaluator.metric_cfgs(target=None, sources=['normal'])
    # the shared base without a child's domains
    with pytest.raises(TypeError, match='non-empty list'):
        CENTranslationEvaluator.metric_cfgs()
