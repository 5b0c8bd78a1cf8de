# Copyright (c) cen_mm contributors. All rights reserved.
"""ExchangeVisualizationHook: per-site scalars land in TensorBoard; the
plot_exchange analysis tool on checkpoints of a tiny training."""
import runpy
import sys
import uuid
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from cen_mm.cnn import exchange_norms
from cen_mm.engine.hooks import (ExchangeVisualizationHook,
                                 exchange_site_statistics)

REPO = Path(__file__).resolve().parents[2]

CONFIG = '''
custom_imports = dict(imports=['cen_engine_toy'], allow_failed_imports=False)
default_scope = 'mmengine'
model = dict(type='CENToyExchangeNet', threshold=1.0)
train_dataloader = dict(
    dataset=dict(type='CENToyDataset', length=8),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'), batch_size=2, num_workers=0)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=6)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.2))
default_hooks = dict(
    checkpoint=dict(type='SafeCheckpointHook', interval=2, by_epoch=False),
    logger=dict(type='LoggerHook', interval=1))
custom_hooks = [
    dict(type='GammaSparsityHook', lam=0.05, interval=1),
    dict(type='ExchangeVisualizationHook', interval=2),
]
visualizer = dict(type='Visualizer',
                  vis_backends=[dict(type='TensorboardVisBackend')])
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
'''


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A 6-iteration toy training with the hook; checkpoints every 2."""
    pytest.importorskip('tensorboard')
    import cen_mm.engine  # noqa: F401  (registers the hooks)
    tmp = tmp_path_factory.mktemp('exchange_vis')
    path = tmp / 'toy_vis_cfg.py'
    path.write_text(CONFIG)
    cfg = Config.fromfile(str(path))
    cfg.work_dir = str(tmp / 'work')
    cfg.experiment_name = f'vis_{uuid.uuid4().hex[:12]}'
    cfg.visualizer.name = cfg.experiment_name
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner, path


def test_scalars_land_in_tensorboard(trained):
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    runner, _ = trained
    files = list(Path(runner.work_dir).glob('*/vis_data/**/events.out.*'))
    assert files, 'no TensorBoard event file written'
    events = EventAccumulator(str(files[0].parent))
    events.Reload()
    layers = exchange_norms(runner.model)
    expected = exchange_site_statistics(layers, ['0', '1'])
    assert sorted(expected) == sorted(
        t for t in events.Tags()['scalars'] if t.startswith('exchange/'))
    assert len(expected) == 2 * 2 * 2  # 2 sites x 2 streams x 2 values
    for tag, value in expected.items():
        series = events.Scalars(tag)
        assert [s.step for s in series] == [2, 4, 6]
        # the last logged value is the trained model's
        assert series[-1].value == pytest.approx(value, abs=1e-6)
    # Something is exchanged at θ = 1 and the values are real fractions.
    assert any(v > 0 for v in expected.values())
    norm = runner.model.norm1
    assert expected['exchange/norm1/exchanged_1'] == pytest.approx(
        float(norm.exchange_mask()[1].float().mean()))


def test_hook_argument_and_model_checks():
    with pytest.raises(ValueError, match='positive integer'):
        ExchangeVisualizationHook(interval=0)
    from types import SimpleNamespace
    hook = ExchangeVisualizationHook()
    with pytest.raises(RuntimeError, match='no exchanging norm'):
        hook.before_train(SimpleNamespace(model=torch.nn.Conv2d(1, 1, 1)))


def test_plot_exchange_tool_on_checkpoints(trained, tmp_path):
    runner, cfg_path = trained
    ckpts = [str(Path(runner.work_dir) / f'iter_{i}.pth') for i in (2, 4, 6)]
    argv = sys.argv
    sys.argv = ['plot_exchange.py', *ckpts, '--config', str(cfg_path),
                '--layers', 'norm2', '--out-dir', str(tmp_path / 'figs')]
    try:
        globals_ = runpy.run_path(
            str(REPO / 'tools' / 'analysis_tools' / 'plot_exchange.py'),
            run_name='plot_exchange')
        summary = globals_['main'](sys.argv[1:])
    finally:
        sys.argv = argv
    names = {Path(f).name for f in summary['figures']}
    assert names == {'gamma_hist_norm2.png', 'exchange_profile.png',
                     'gamma_trajectories.png'}
    for figure in summary['figures']:
        assert Path(figure).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert [c['iter'] for c in summary['checkpoints']] == [2, 4, 6]
    last = summary['checkpoints'][-1]['exchanged']
    for name, layer in exchange_norms(runner.model):
        assert last[name] == pytest.approx(
            layer.exchange_mask().float().mean(dim=1).tolist())
    # Without --config: every multi-stream norm with --threshold.
    sys.argv = ['plot_exchange.py', ckpts[-1], '--threshold', '1.0',
                '--out-dir', str(tmp_path / 'figs2')]
    try:
        summary2 = globals_['main'](sys.argv[1:])
    finally:
        sys.argv = argv
    assert summary2['checkpoints'][0]['exchanged'] == last
