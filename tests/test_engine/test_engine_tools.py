# Copyright (c) cen_mm contributors. All rights reserved.
"""Smoke tests of tools/train.py, tools/test.py and the dist_*.sh scripts
(CPU, gloo) on a toy config."""
import importlib.util
import os
import os.path as osp
import pickle
import runpy
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from cen_mm.engine import safe_checkpoint_loading
from cen_mm.engine.launch import (enable_amp, replace_sync_bn,
                                  setup_cpu_distributed)

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

CONFIG = '''
custom_imports = dict(imports=['cen_engine_toy'], allow_failed_imports=False)
default_scope = 'mmengine'
model = dict(type='CENToyExchangeNet', norm='{norm}')
_loader = dict(
    dataset=dict(type='CENToyDataset', length=8),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    batch_size={batch_size},
    num_workers=0)
train_dataloader = _loader
test_dataloader = _loader
train_cfg = dict(type='IterBasedTrainLoop', max_iters={max_iters})
test_cfg = dict(type='TestLoop')
test_evaluator = dict(type='CENToyMetric')
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
    logger=dict(type='LoggerHook', interval=1))
custom_hooks = [
    dict(type='GammaSparsityHook', lam=0.05, interval=1),
    dict(type='CENToyRecordHook'),
    dict(type='CENToyKillHook', at_iter={kill_at}),
]
tta_model = dict(type='CENToyTTAModel')
tta_pipeline = [dict(type='CENToyFlipTTA')]
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
'''


def write_config(tmp_path, name='toy_cfg.py', norm='ExchangeBN',
                 batch_size=2, max_iters=6, kill_at=-1) -> str:
    path = tmp_path / name
    path.write_text(
        CONFIG.format(norm=norm, batch_size=batch_size, max_iters=max_iters,
                      kill_at=kill_at))
    return str(path)


def run(args, **env_extra) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [str(HERE), str(REPO), env.get('PYTHONPATH', '')])
    env['PYTHON'] = sys.executable
    env['OMP_NUM_THREADS'] = '1'
    env.update(env_extra)
    return subprocess.run(
        args, cwd=str(REPO), env=env, capture_output=True, text=True,
        timeout=300)


def free_port() -> str:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return str(s.getsockname()[1])


def run_tool(tool: str, *args: str) -> None:
    """Run tools/<tool>.py in this process (as ``__main__``), under a unique
    experiment name (runs in the same second would share logger/hub)."""
    argv = sys.argv
    sys.argv = [
        tool, *args, '--cfg-options',
        f'experiment_name={tool}_{uuid.uuid4().hex[:12]}'
    ]
    try:
        runpy.run_path(str(REPO / 'tools' / f'{tool}.py'), run_name='__main__')
    finally:
        sys.argv = argv


def read_logs(work_dir) -> str:
    return '\n'.join(p.read_text() for p in Path(work_dir).glob('*/*.log'))


def test_train_kill_resume_and_test(tmp_path):
    cfg = write_config(tmp_path, kill_at=5)
    work_dir = str(tmp_path / 'work')

    # A real process killed (os._exit, no cleanup) after iteration 5.
    killed = run(
        [sys.executable, 'tools/train.py', cfg, '--work-dir', work_dir])
    assert killed.returncode == 3, killed.stderr[-3000:]
    assert Path(work_dir, 'last_checkpoint').read_text().endswith(
        'iter_4.pth')
    assert not osp.exists(osp.join(work_dir, 'iter_6.pth'))
    first_logs = set(Path(work_dir).glob('*/*.log'))

    run_tool('train', cfg, '--work-dir', work_dir, '--resume',
             '--cfg-options', 'custom_hooks.2.at_iter=-1')
    (log_file, ) = set(Path(work_dir).glob('*/*.log')) - first_logs
    log = log_file.read_text()
    assert 'resumed' in log.lower()
    assert 'Iter(train) [5/6]' in log and 'Iter(train) [1/6]' not in log
    assert 'gamma_below_thr' in log
    with safe_checkpoint_loading():
        final = torch.load(osp.join(work_dir, 'iter_6.pth'))
    assert final['meta']['iter'] == 6

    out = str(tmp_path / 'preds.pkl')
    run_tool('test', cfg, osp.join(work_dir, 'iter_6.pth'), '--work-dir',
             work_dir, '--out', out)
    assert 'toy/mse' in read_logs(work_dir)
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 8 and preds[0]['pred'].shape == (3, )

    from cen_engine_toy import CENToyTTAModel
    CENToyTTAModel.merged = 0
    run_tool('test', cfg, osp.join(work_dir, 'iter_6.pth'), '--work-dir',
             work_dir, '--tta')
    assert CENToyTTAModel.merged == 8


@pytest.mark.skipif(
    torch.cuda.is_available(),
    reason='tests the CPU/gloo path; with CUDA the stock launcher is used')
def test_ddp_gloo_matches_single_process(tmp_path):
    """tools/dist_train.sh: 2 CPU processes x batch 2 == 1 process x batch 4
    (instance norm, so the per-rank split leaves the normalisation alone)."""
    ddp_cfg = write_config(tmp_path, 'ddp.py', norm='ExchangeIN',
                           batch_size=2, max_iters=2)
    single_cfg = write_config(tmp_path, 'single.py', norm='ExchangeIN',
                              batch_size=4, max_iters=2)
    ddp_dir, single_dir = tmp_path / 'ddp', tmp_path / 'single'
    ddp = run(['bash', 'tools/dist_train.sh', ddp_cfg, '2', '--work-dir',
               str(ddp_dir)], PORT=free_port())
    assert ddp.returncode == 0, (ddp.stdout + ddp.stderr)[-4000:]
    run_tool('train', single_cfg, '--work-dir', str(single_dir))

    ranks = [torch.load(str(ddp_dir / f'record_rank{r}.pth'))
             for r in range(2)]
    ref = torch.load(str(single_dir / 'record_rank0.pth'))
    assert ranks[0]['world_size'] == 2 and ref['world_size'] == 1
    for name, gamma in ranks[0]['gammas'].items():
        assert torch.equal(gamma, ranks[1]['gammas'][name]), name
        torch.testing.assert_close(
            gamma, ref['gammas'][name], atol=1e-6, rtol=0)
        assert not torch.equal(gamma, torch.ones_like(gamma))  # it trained
    mean_loss = (ranks[0]['losses'] + ranks[1]['losses']) / 2
    torch.testing.assert_close(mean_loss, ref['losses'], atol=1e-5, rtol=0)


@pytest.mark.skipif(
    torch.cuda.is_available(),
    reason='tests the CPU/gloo path; with CUDA the stock launcher is used')
def test_dist_test_gloo(tmp_path):
    cfg = write_config(tmp_path, max_iters=2)
    work_dir = tmp_path / 'work'
    run_tool('train', cfg, '--work-dir', str(work_dir))
    tested = run(['bash', 'tools/dist_test.sh', cfg,
                  str(work_dir / 'iter_2.pth'), '2', '--work-dir',
                  str(work_dir), '--out', str(tmp_path / 'preds.pkl')],
                 PORT=free_port())
    assert tested.returncode == 0, (tested.stdout + tested.stderr)[-4000:]
    log = tested.stdout + tested.stderr
    assert 'toy/mse' in log and 'Distributed training: True' in log
    with open(tmp_path / 'preds.pkl', 'rb') as f:
        assert len(pickle.load(f)) == 8  # both ranks' samples gathered


def test_cpu_config_rewrites():
    cfg = Config(
        dict(
            model=dict(
                backbone=dict(norm_cfg=dict(type='SyncBN')),
                heads=[dict(norm_cfg=dict(type='SyncBN'))]),
            sync_bn='torch',
            model_wrapper_cfg=dict(
                type='MMSeparateDistributedDataParallel',
                broadcast_buffers=False)))
    if not torch.cuda.is_available():
        assert replace_sync_bn(cfg) == 2
        assert cfg.model.backbone.norm_cfg.type == 'BN'
        assert cfg.model.heads[0].norm_cfg.type == 'BN'
        assert cfg.sync_bn is None
    setup_cpu_distributed(cfg, 'none')  # no launcher: untouched
    assert 'device_ids' not in cfg.model_wrapper_cfg


def test_tta_and_out_config_rewrites():
    spec = importlib.util.spec_from_file_location(
        'cen_mm_tools_test', str(REPO / 'tools' / 'test.py'))
    test_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(test_tool)
    cfg = Config(
        dict(
            model=dict(type='M'),
            tta_model=dict(type='SegTTAModel'),
            tta_pipeline=[dict(type='TestTimeAug')],
            test_dataloader=dict(dataset=dict(pipeline=[])),
            test_evaluator=dict(type='IoUMetric')))
    test_tool.setup_tta(cfg)
    assert cfg.model.type == 'SegTTAModel'
    assert cfg.model.module.type == 'M'
    assert cfg.test_dataloader.dataset.pipeline[0].type == 'TestTimeAug'
    test_tool.setup_out(cfg, 'some/dir')
    assert cfg.test_evaluator.output_dir == 'some/dir'
    assert cfg.test_evaluator.keep_results
    with pytest.raises(KeyError, match='tta_pipeline'):
        test_tool.setup_tta(Config(dict(tta_model=dict(type='X'))))


def test_amp_config_rewrites():
    single = Config(dict(optim_wrapper=dict(
        type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))))
    enable_amp(single, check_device=False)
    assert single.optim_wrapper.type == 'AmpOptimWrapper'
    assert single.optim_wrapper.loss_scale == 'dynamic'
    multi = Config(dict(optim_wrapper=dict(
        constructor='MultiOptimWrapperConstructor',
        generators=dict(optimizer=dict(type='Adam', lr=2e-4)),
        discriminators=dict(optimizer=dict(type='Adam', lr=2e-4)))))
    enable_amp(multi, check_device=False)
    assert multi.optim_wrapper.generators.type == 'AmpOptimWrapper'
    assert multi.optim_wrapper.discriminators.type == 'AmpOptimWrapper'
    with pytest.raises(ValueError, match='OptimWrapper'):
        enable_amp(Config(dict(optim_wrapper=dict(type='Custom'))),
                   check_device=False)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match='CUDA'):
            enable_amp(single)


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU launcher path')
def test_cpu_pytorch_launcher_with_separate_ddp(monkeypatch):
    """--launcher pytorch on CPU: gloo group before the Runner, device_ids
    None with mmagic's wrapper type kept; the wrapper then builds on CPU and
    the hook finds the γ through it."""
    import torch.distributed as dist
    from cen_engine_toy import CENToyGAN, fake_runner
    from mmengine.optim import OptimWrapper, OptimWrapperDict
    from mmengine.registry import MODEL_WRAPPERS

    from cen_mm.engine import GammaSparsityHook
    for key, value in dict(MASTER_ADDR='127.0.0.1', MASTER_PORT=free_port(),
                           RANK='0', WORLD_SIZE='1',
                           LOCAL_RANK='0').items():
        monkeypatch.setenv(key, value)
    cfg = Config(dict(model_wrapper_cfg=dict(
        type='MMSeparateDistributedDataParallel', broadcast_buffers=False)))
    setup_cpu_distributed(cfg, 'pytorch')
    try:
        assert dist.is_initialized() and dist.get_backend() == 'gloo'
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'
        assert cfg.model_wrapper_cfg.type == \
            'MMSeparateDistributedDataParallel'
        assert cfg.model_wrapper_cfg.device_ids is None
        model = CENToyGAN()
        wrapped = MODEL_WRAPPERS.build(
            cfg.model_wrapper_cfg, default_args=dict(module=model))
        wrappers = OptimWrapperDict(
            generators=OptimWrapper(
                torch.optim.SGD(model.generator.parameters(), lr=0.1)),
            discriminators=OptimWrapper(
                torch.optim.SGD(model.discriminator.parameters(), lr=0.1)))
        hook = GammaSparsityHook(lam=1e-2)
        hook.before_train(fake_runner(wrapped, wrappers))
        assert len(hook.layers) == 4
        assert len(hook._handles) == 2
        hook.after_train(None)
    finally:
        dist.destroy_process_group()
