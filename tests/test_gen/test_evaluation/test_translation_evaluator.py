# Copyright (c) cen_mm contributors. All rights reserved.
"""CENTranslationEvaluator / CENTranslationMetrics: the metrics of every
output, for the domains the model names in its predictions; the same
metrics the multitask and cycle configs listed by hand before (their list
comprehensions, kept here as the reference)."""
import glob
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmagic.engine.runner.loop_utils import (is_evaluator,
                                             update_and_check_evaluator)
from mmagic.registry import EVALUATORS
from mmagic.structures import DataSample
from mmengine.config import Config
from mmengine.registry import DefaultScope

import cen_mm.gen  # noqa: F401
from cen_mm.gen.evaluation import (CENMAE, CENMSE, CENTranslationEvaluator,
                                   CENTranslationMetrics)

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


def task_flows(targets, sources=('x', )):
    return [dict(sources=list(sources), target=t) for t in targets]


def cfgs(domains, **kwargs):
    return CENTranslationMetrics.metric_cfgs(domains, **kwargs)


@pytest.fixture
def mmagic_scope():
    with DefaultScope.overwrite_default_scope('mmagic'):
        yield


def test_metric_cfgs_exact():
    assert cfgs(dict(flows=task_flows(['normal', 'rgb']))) == [
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
    flows = dict(flows=[dict(sources=['a', 'b'], target='rgb')])
    streams = cfgs(flows, streams=True, feature_targets=())
    assert [(c['type'], c['prefix'], c['pred_key']) for c in streams] == [
        ('CENMAE', 'rgb', 'pred_img_rgb'), ('CENMSE', 'rgb', 'pred_img_rgb'),
        ('CENMAE', 'rgb/a', 'pred_img_rgb_a'),
        ('CENMSE', 'rgb/a', 'pred_img_rgb_a'),
        ('CENMAE', 'rgb/b', 'pred_img_rgb_b'),
        ('CENMSE', 'rgb/b', 'pred_img_rgb_b'),
    ]
    assert {c['gt_key'] for c in streams} == {'gt_img_rgb'}
    # Without streams, flows give their targets only.
    assert cfgs(flows) == cfgs(dict(flows=task_flows(['rgb'])))


@pytest.mark.parametrize('targets', [
    ['segment_semantic', 'depth_euclidean'],
    ['edge_texture', 'rgb', 'depth_euclidean'],
    ['normal', 'reshading'],
])
def test_same_metrics_as_the_task_comprehension(targets):
    assert cfgs(dict(flows=task_flows(targets))) == \
        reference_task_metrics(targets)


@pytest.mark.parametrize('rgb_features', [True, False])
def test_same_metrics_as_the_cycle_comprehension(rgb_features):
    modalities = ['rgb', 'reshading', 'edge_texture']
    flows = [dict(sources=[m for m in modalities if m != t], target=t)
             for t in modalities]
    generated = cfgs(
        dict(flows=flows), streams=True,
        feature_targets=('rgb', ) if rgb_features else ())
    assert generated == reference_cycle_metrics(flows, rgb_features)
    assert len(generated) == 18


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
    evaluator = cfg.val_evaluator.to_dict()
    assert evaluator.pop('type') == 'CENTranslationEvaluator'
    extra = evaluator.pop('metrics')
    assert CENTranslationEvaluator.metric_cfgs(model, **evaluator) + \
        extra == expected
    assert cfg.test_evaluator == cfg.val_evaluator
    # mmagic's MultiValLoop accepts it as one evaluator.
    assert is_evaluator(cfg.val_evaluator)


def test_fusion_metric_cfgs_exact():
    """The fusion model: its ensemble and every stream."""
    assert cfgs(
        dict(target_domain='normal', source_domains=['rgb', 'reshading']),
        convention='plain') == [
            dict(type=m, prefix=prefix, pred_key=key, gt_key='gt_img',
                 convention='plain')
            for prefix, key in [('ens', 'pred_img'), ('rgb', 'pred_img_rgb'),
                                ('reshading', 'pred_img_reshading')]
            for m in ('CENMAE', 'CENMSE')
        ]
    fusion = dict(target_domain='rgb', source_domains=['normal'])
    assert cfgs(fusion) == [
        dict(type=m, prefix=prefix, fake_key=key, real_key='gt_img',
             channel_order='bgr', minmax_stretch=True)
        for prefix, key in [('ens', 'pred_img'), ('normal', 'pred_img_normal')]
        for m in ('CENFID', 'CENKID')
    ]
    # offline: no feature metrics, the paper's MAE / MSE by default
    assert [(c['type'], c['prefix'], c['convention'])
            for c in cfgs(fusion, feature_targets=())] == [
        ('CENMAE', 'ens', 'paper'), ('CENMSE', 'ens', 'paper'),
        ('CENMAE', 'normal', 'paper'), ('CENMSE', 'normal', 'paper')
    ]
    with pytest.raises(ValueError, match='streams=True is for multi-flow'):
        cfgs(fusion, streams=True)
    # a model config gives the same domains as its predictions
    assert CENTranslationEvaluator.metric_cfgs(
        dict(type='CENPix2Pix', source_domains=['normal'],
             target_domain='rgb')) == cfgs(fusion)


@pytest.mark.parametrize('key', ['target', 'sources', 'targets', 'flows'])
def test_domains_in_the_config_are_refused(mmagic_scope, key):
    cfg = update_and_check_evaluator(
        dict(type='CENTranslationEvaluator', metrics=[], **{key: ['rgb']}))
    with pytest.raises(TypeError, match=f'remove `{key}` from the evaluator'):
        EVALUATORS.build(cfg)
    with pytest.raises(TypeError, match=f'remove `{key}` from the evaluator'):
        CENTranslationMetrics(**{key: ['rgb']})
    with pytest.raises(TypeError, match='unexpected arguments'):
        CENTranslationMetrics(stream=True)


def test_builds_metrics(mmagic_scope):
    cfg = update_and_check_evaluator(  # what MultiValLoop does
        dict(type='CENTranslationEvaluator', streams=True,
             feature_targets=(), convention='plain',
             metrics=[dict(type='CENMAE', prefix='extra')]))
    evaluator = EVALUATORS.build(cfg)
    assert type(evaluator) is CENTranslationEvaluator
    translation, extra = evaluator.metrics
    assert type(translation) is CENTranslationMetrics
    assert (translation.streams, translation.feature_targets,
            translation.convention) == (True, (), 'plain')
    assert translation.metrics == []  # built from the first predictions
    assert (type(extra), extra.prefix, extra.pred_key) == (CENMAE, 'extra',
                                                           'pred_img')


def prediction(domains, images):
    """A model output: the domains' metainfo and (3, 2, 2) images."""
    sample = DataSample()
    sample.set_metainfo(domains)
    sample.set_tensor_data(
        {k: torch.full((3, 2, 2), float(v)) for k, v in images.items()})
    return sample


def run(evaluator, batches):
    """mmagic's MultiTestLoop, without a model: prepare, process, evaluate."""
    dataloader = SimpleNamespace(
        dataset=[None] * sum(len(b) for b in batches))
    module = SimpleNamespace(data_preprocessor=None)
    evaluator.prepare_metrics(module, dataloader)
    for metrics, sampler in evaluator.prepare_samplers(module, dataloader):
        assert sampler is dataloader
        for batch in batches:
            evaluator.process(batch, None, metrics)
    return evaluator.evaluate()


def test_fusion_metrics_read_the_domains_from_the_predictions(
        mmagic_scope):
    domains = dict(target_domain='normal', source_domains=['rgb', 'shade'])
    # gt 0; ensemble 51 then 102, stream rgb 255, stream shade 0 (of 255)
    batches = [[
        prediction(domains, dict(gt_img=0, pred_img=ens, pred_img_rgb=255,
                                 pred_img_shade=0))
    ] for ens in (51, 102)]
    evaluator = EVALUATORS.build(
        dict(type='CENTranslationEvaluator', convention='plain',
             metrics=[]))
    results = run(evaluator, batches)
    # plain: x100 on [0, 1]; MAE (20 + 40) / 2, MSE (4 + 16) / 2
    expected = {'ens/MAE': 30., 'ens/MSE': 10., 'rgb/MAE': 100.,
                'rgb/MSE': 100., 'shade/MAE': 0., 'shade/MSE': 0.}
    assert list(results) == list(expected)
    for key, value in expected.items():
        assert results[key] == pytest.approx(value, abs=1e-5), key
    translation = evaluator.metrics[0]
    assert [type(m) for m in translation.metrics] == [CENMAE, CENMSE] * 3
    assert [(m.prefix, m.pred_key) for m in translation.metrics[::2]] == [
        ('ens', 'pred_img'), ('rgb', 'pred_img_rgb'),
        ('shade', 'pred_img_shade')
    ]


def test_multi_flow_metrics_read_the_flows_from_the_predictions(
        mmagic_scope):
    flows = [dict(sources=['rgb', 'shade'], target='normal'),
             dict(sources=['normal', 'shade'], target='depth')]
    images = dict(gt_img_normal=0, pred_img_normal=51,
                  pred_img_normal_rgb=0, pred_img_normal_shade=102,
                  gt_img_depth=255, pred_img_depth=204,
                  pred_img_depth_normal=255, pred_img_depth_shade=0)
    evaluator = EVALUATORS.build(
        dict(type='CENTranslationEvaluator', streams=True, metrics=[]))
    results = run(evaluator, [[prediction(dict(flows=flows), images)] * 2])
    # the paper's convention: MAE 2 |d| and "MSE" 2 |d| (the root of the
    # squared error) on [-1, 1], x100, for a constant error d on [0, 1]
    errors = {'normal': 0.2, 'normal/rgb': 0., 'normal/shade': 0.4,
              'depth': 0.2, 'depth/normal': 0., 'depth/shade': 1.}
    expected = {f'{prefix}/{metric}': 200 * d
                for prefix, d in errors.items()
                for metric in ('MAE_paper', 'MSE_paper')}
    assert list(results) == list(expected)
    for key, value in expected.items():
        assert results[key] == pytest.approx(value, abs=1e-5), key


def test_predictions_must_name_their_domains(mmagic_scope):
    metric = CENTranslationMetrics(feature_targets=())
    with pytest.raises(KeyError, match="'target_domain' and "
                       "'source_domains'.*'flows'"):
        metric.process(None, [prediction({}, dict(gt_img=0, pred_img=0))])
    fusion = dict(target_domain='normal', source_domains=['rgb'])
    images = dict(gt_img=0, pred_img=0, pred_img_rgb=0)
    metric.process(None, [prediction(fusion, images)])
    other = dict(target_domain='normal', source_domains=['shade'])
    with pytest.raises(ValueError, match='domains changed'):
        metric.process(None, [prediction(other, images)])
