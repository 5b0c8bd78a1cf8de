# Copyright (c) cen_mm contributors. All rights reserved.
"""CENMultiPix2Pix: CEN-random updates only the sampled flow, the
discriminator structure, and clear errors for bad flows and data."""
import random
from pathlib import Path

import pytest
import torch
from mmagic.engine.runner.loop_utils import update_and_check_evaluator
from mmagic.registry import DATASETS, EVALUATORS, MODELS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper

from cen_mm.datasets import write_synthetic_taskonomy

CONFIGS = Path(__file__).resolve().parents[3] / 'configs' / 'cen_gen'
CYCLE = 'pix2pix_unet64-in_1xb4-1kiters_synthetic-rgb-shade-texture.py'
MULTITASK = 'pix2pix_unet64-in_1xb4-1kiters_synthetic-rgb2semseg-depth.py'


def _tiny(cfg):
    cfg.model.generator.update(num_down=5, base_channels=4)
    cfg.model.discriminator.base_channels = 4
    return cfg


pytestmark = pytest.mark.usefixtures('mmagic_scope')


def _optim(model, cfg):
    return build_optim_wrapper(model, cfg.optim_wrapper)


def _batch(cfg, root, num=2):
    dataset_cfg = cfg.train_dataloader.dataset.copy()
    dataset_cfg.update(data_root=str(root))
    dataset_cfg.pipeline[1].scale = (36, 36)
    dataset_cfg.pipeline[2].crop_size = (32, 32)
    dataset = DATASETS.build(dataset_cfg)
    return pseudo_collate([dataset[i] for i in range(num)])


@pytest.fixture(scope='module')
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp('data') / 'scenes'
    write_synthetic_taskonomy(str(root), num_train=2, num_val=2, size=32,
                              seed=0)
    return root


def test_cen_random_step_updates_only_the_sampled_flow(scenes):
    cfg = _tiny(Config.fromfile(str(CONFIGS / f'cen-random-{CYCLE}')))
    model = MODELS.build(cfg.model)
    model.init_weights()
    optim = _optim(model, cfg)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    sampled = 1
    model.sample_flows = lambda: [sampled]
    log = model.train_step(_batch(cfg, scenes), optim)
    target = model.targets[sampled]
    assert f'loss_pixel/{target}/ens' in log
    assert {k.split('/')[1] for k in log if '/' in k} == {target}
    changed = {
        n
        for n, p in model.named_parameters() if not torch.equal(p, before[n])
    }
    # private INs: generators.encoder_norms.{layer}.{unit}, decoder_norms
    norms = [n for n in before if '_norms.' in n]
    assert norms
    for name in norms:
        unit = int(name.split('.')[3])
        assert (name in changed) == (unit == sampled), name
    for name in before:
        if name.startswith(('generators.decoders.', 'generators.ensembles.',
                            'discriminators.')):
            owner = (int(name.split('.')[2]) if name.startswith('generators')
                     else model.targets.index(name.split('.')[1]))
            if name.endswith(('weight', 'bias', 'alpha')) and 'norm' not in \
                    name:
                assert (name in changed) == (owner == sampled), name
    # the shared encoder convs learn from every flow
    assert 'generators.encoders.0.1.conv.weight' in changed


def test_flow_sampling_draws_each_flow():
    cfg = _tiny(Config.fromfile(str(CONFIGS / f'cen-random-{CYCLE}')))
    model = MODELS.build(cfg.model)
    random.seed(0)
    draws = [model.sample_flows() for _ in range(60)]
    assert all(len(d) == 1 for d in draws)
    assert {d[0] for d in draws} == {0, 1, 2}
    cfg.model.flow_sampling = 'all'
    assert MODELS.build(cfg.model).sample_flows() == [0, 1, 2]


def test_discriminator_per_output_conditioned_on_its_sources():
    cfg = Config.fromfile(str(CONFIGS / (
        'cen-encdec-pix2pix_unet256-in_1xb1-300kiters_taskonomy-'
        'rgb-depth2normal-shade.py')))
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert sorted(model.discriminators) == ['normal', 'reshading']
    for disc in model.discriminators.values():
        first = next(m for m in disc.modules()
                     if isinstance(m, torch.nn.Conv2d))
        assert first.in_channels == 9  # rgb + depth + output
    total = sum(p.numel() for p in model.discriminators.parameters())
    # 2.770 M (the official 6-channel D) + 3 x 64 x 4 x 4 more weights each
    assert total == 2 * (2769601 + 3 * 64 * 16)
    cfg = Config.fromfile(str(CONFIGS / (
        'cen-cycle-dec1-pix2pix_unet256-in_1xb1-300kiters_taskonomy-'
        'rgb-shade-texture.py')))
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    # one D per flow on (source_m, output_m): 3 x 2.770 M = 8.3 M (Table 6)
    total = sum(p.numel() for p in model.discriminators.parameters())
    assert total == 3 * 2769601


@pytest.mark.parametrize('change, error, match', [
    (dict(flows=[dict(sources=['rgb', 'normal'], target='rgb')]),
     ValueError, 'target "rgb" among its sources'),
    (dict(flows=[dict(sources=['rgb'], target='normal'),
                 dict(sources=['depth_zbuffer'], target='normal')]),
     ValueError, 'same target'),
    (dict(flows=[dict(sources=['rgb'], target='normal'),
                 dict(sources=['depth_zbuffer'], target='reshading')]),
     ValueError, 'same sources for every flow'),
    (dict(generator=dict(units=[(1, 3)])), ValueError,
     'disagrees with the 2 flows'),
    (dict(flow_sampling='random'), ValueError, 'per_flow'),
    (dict(units='cycle'), ValueError, 'units must be one of'),
    (dict(loss_config=dict(gan_weight=1.)), ValueError, 'gan_weight'),
])
def test_bad_model_configs(change, error, match):
    cfg = _tiny(Config.fromfile(str(CONFIGS / f'cen-dec-{MULTITASK}')))
    model_cfg = cfg.model.to_dict()
    for key, value in change.items():
        if isinstance(value, dict):
            model_cfg[key].update(value)
        else:
            model_cfg[key] = value
    with pytest.raises(error, match=match):
        MODELS.build(model_cfg)


def test_batch_without_a_model_domain_names_it(scenes):
    cfg = _tiny(Config.fromfile(str(CONFIGS / f'cen-dec-{MULTITASK}')))
    batch = _batch(cfg, scenes)
    cfg.model.flows = [
        dict(sources=['rgb'], target='normal'),
        dict(sources=['rgb'], target='depth_zbuffer')
    ]
    model = MODELS.build(cfg.model)
    optim = _optim(model, cfg)
    with pytest.raises(KeyError, match='need "img_normal".*same domains'):
        model.train_step(batch, optim)


def test_predictions_name_the_flows_for_the_evaluator(scenes):
    """The cycle demo's evaluator (no domains in its config) evaluates every
    flow and stream the model names in its predictions, with the values of
    a direct computation (the paper's MAE / MSE, x100 on [-1, 1])."""
    cfg = _tiny(Config.fromfile(str(CONFIGS / f'cen-cycle-dec1-{CYCLE}')))
    model = MODELS.build(cfg.model)
    model.init_weights()
    samples = model.val_step(_batch(cfg, scenes))
    flows = [dict(sources=list(f['sources']), target=f['target'])
             for f in cfg.model.flows]
    assert [s.flows for s in samples] == [flows] * 2
    evaluator = EVALUATORS.build(
        update_and_check_evaluator(cfg.val_evaluator.to_dict()))
    metric = evaluator.metrics[0]
    metric.process(None, [s.to_dict() for s in samples])
    results = metric.evaluate(len(samples))
    expected = {}
    for flow in flows:
        t = flow['target']
        for prefix, key in [(t, f'pred_img_{t}')] + [
                (f'{t}/{s}', f'pred_img_{t}_{s}') for s in flow['sources']]:
            diffs = [(s.get(key).double() - s.get(f'gt_img_{t}').double()) /
                     255. for s in samples]
            expected[f'{prefix}/MAE_paper'] = 100 * sum(
                2 * d.abs().mean() for d in diffs).item() / len(diffs)
            expected[f'{prefix}/MSE_paper'] = 100 * sum(
                2 * d.pow(2).mean().sqrt() for d in diffs).item() / len(diffs)
    assert list(results) == list(expected)
    assert len(results) == 3 * 3 * 2  # 3 flows, each output + 2 streams
    for key, value in expected.items():
        assert results[key] == pytest.approx(value, rel=1e-6), key
