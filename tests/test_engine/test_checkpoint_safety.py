# Copyright (c) cen_mm contributors. All rights reserved.
"""Issue 12: training never loses the last good checkpoint; --resume edge
cases; one training per work dir; strict loading; non-finite values stop
the run before anything is saved."""
import os
import re
import signal
import sys
import uuid
from pathlib import Path

import pytest
import torch
from cen_engine_toy import toy_runner
from mmengine.fileio import LocalBackend
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from test_engine_tools import read_logs, run, run_tool

from cen_mm.engine import (NonFiniteError, NonFiniteGuardHook,
                           SafeCheckpointHook, find_resume_checkpoint,
                           is_intact_checkpoint, safe_checkpoint_loading,
                           work_dir_lock)

CONFIG = '''
custom_imports = dict(imports=['cen_engine_toy'], allow_failed_imports=False)
default_scope = 'mmengine'
model = dict(type='CENToyExchangeNet', channels={channels})
_loader = dict(
    dataset=dict(type='CENToyDataset', length=8),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    batch_size=2,
    num_workers=0)
train_dataloader = _loader
val_dataloader = _loader
test_dataloader = _loader
train_cfg = dict(type='IterBasedTrainLoop', max_iters={max_iters},
                 val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
val_evaluator = dict(type='CENToyMetric')
test_evaluator = val_evaluator
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.1, momentum=0.9))
param_scheduler = [
    dict(type='MultiStepLR', milestones=[3], gamma=0.5, by_epoch=False)]
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False,
                    max_keep_ckpts=1, save_best='toy/mse', rule='less'),
    logger=dict(type='LoggerHook', interval=1))
custom_hooks = [dict(type='CENToyKillWhileSavingHook', at_iter={kill_at})]
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
'''


def write_config(tmp_path, channels=8, max_iters=6, kill_at=-1) -> str:
    path = tmp_path / f'cfg_{uuid.uuid4().hex[:6]}.py'
    path.write_text(
        CONFIG.format(channels=channels, max_iters=max_iters,
                      kill_at=kill_at))
    return str(path)


def checkpoints(work_dir) -> list:
    return sorted(p.name for p in Path(work_dir).iterdir()
                  if p.name.endswith('.pth') or p.name.endswith('.tmp'))


def test_sigkill_while_writing_keeps_the_last_checkpoint(tmp_path):
    """The shipped demo's max_keep_ckpts=1: a SIGKILL while iter_4.pth is
    being written (half of it on disk) leaves iter_2.pth intact and
    pointed at; --resume cleans the stray file and finishes the run."""
    cfg = write_config(tmp_path, kill_at=4)
    work_dir = tmp_path / 'work'
    killed = run([sys.executable, 'tools/train.py', cfg, '--work-dir',
                  str(work_dir)])
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    names = checkpoints(work_dir)
    assert 'iter_2.pth' in names and 'iter_4.pth' not in names, names
    assert [n for n in names if n.startswith('.iter_4.pth.')], names
    assert (work_dir / 'last_checkpoint').read_text() == str(
        work_dir / 'iter_2.pth')
    assert is_intact_checkpoint(str(work_dir / 'iter_2.pth'))
    best = [n for n in names if n.startswith('best_')]
    assert len(best) == 1 and is_intact_checkpoint(str(work_dir / best[0]))

    run_tool('train', cfg, '--work-dir', str(work_dir), '--resume',
             '--cfg-options', 'custom_hooks.0.at_iter=-1')
    names = checkpoints(work_dir)
    assert not [n for n in names if n.endswith('.tmp')], names
    assert [n for n in names if not n.startswith('best_')] == ['iter_6.pth']
    assert 'partly written file' in read_logs(work_dir)
    with safe_checkpoint_loading():
        assert torch.load(str(work_dir / 'iter_6.pth'))['meta']['iter'] == 6


def test_old_best_removed_only_after_the_new_one_is_complete(
        tmp_path, monkeypatch):
    runner = safety_runner(tmp_path / 'work', max_iters=2)
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, SafeCheckpointHook))
    first = Path(hook.best_ckpt_path)
    assert first.name == 'best_toy_mse_iter_2.pth' and first.is_file()
    runner.train_loop._iter = 4
    hook._save_best_checkpoint(runner, {'toy/mse': -1.0})
    second = Path(hook.best_ckpt_path)
    assert second.name == 'best_toy_mse_iter_4.pth' and second.is_file()
    assert not first.exists()

    real_put = LocalBackend.put

    def put(backend, obj, filepath):
        if '.best_' in str(filepath):
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
            raise KeyboardInterrupt('killed while writing the new best')
        real_put(backend, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', put)
    runner.train_loop._iter = 6
    with pytest.raises(KeyboardInterrupt):
        hook._save_best_checkpoint(runner, {'toy/mse': -2.0})
    monkeypatch.undo()
    assert second.is_file() and is_intact_checkpoint(str(second))
    assert not (tmp_path / 'work' / 'best_toy_mse_iter_6.pth').exists()
    assert not [p for p in os.listdir(tmp_path / 'work')
                if p.endswith('.tmp')]


def test_resume_falls_back_to_newest_intact_checkpoint(tmp_path):
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    good = work_dir / 'iter_2.pth'
    torch.save({'meta': {}}, str(good))
    (work_dir / 'iter_4.pth').write_bytes(good.read_bytes()[:100])
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'iter_4.pth'))
    assert find_resume_checkpoint(str(work_dir)) == str(good)
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'gone.pth'))
    assert find_resume_checkpoint(str(work_dir)) == str(good)
    os.remove(work_dir / 'last_checkpoint')
    assert find_resume_checkpoint(str(work_dir)) == str(good)
    os.remove(good)
    with pytest.raises(FileNotFoundError, match='nothing to resume'):
        find_resume_checkpoint(str(work_dir))


def test_resume_tool_fallback_message_and_nothing_to_resume(tmp_path):
    cfg = write_config(tmp_path, max_iters=4)
    work_dir = tmp_path / 'work'
    with pytest.raises(FileNotFoundError, match='nothing to resume'):
        run_tool('train', cfg, '--work-dir', str(work_dir), '--resume')
    run_tool('train', cfg, '--work-dir', str(work_dir))
    # last_checkpoint -> iter_4.pth, now truncated as by a full disk
    data = (work_dir / 'iter_4.pth').read_bytes()
    (work_dir / 'iter_4.pth').write_bytes(data[:len(data) // 3])
    torch.save({}, str(work_dir / 'iter_2.pth'))  # not resumable either
    (work_dir / 'iter_2.pth').write_bytes(b'garbage')
    with pytest.raises(FileNotFoundError, match='nothing to resume'):
        run_tool('train', cfg, '--work-dir', str(work_dir), '--resume')
    (work_dir / 'iter_4.pth').write_bytes(data)
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'iter_9.pth'))
    run_tool('train', cfg, '--work-dir', str(work_dir), '--resume',
             '--cfg-options', 'train_cfg.max_iters=6')
    log = read_logs(work_dir)
    assert 'resuming from the newest intact checkpoint' in log
    assert str(work_dir / 'iter_4.pth') in log
    assert 'Iter(train) [5/6]' in log


def test_resume_from_best_checkpoint_is_refused(tmp_path):
    cfg = write_config(tmp_path, max_iters=2)
    work_dir = tmp_path / 'work'
    run_tool('train', cfg, '--work-dir', str(work_dir))
    (best, ) = work_dir.glob('best_*.pth')
    with pytest.raises(ValueError, match="no \\['optimizer', "
                       "'param_schedulers'\\] state"):
        run_tool('train', cfg, '--work-dir', str(work_dir), '--resume',
                 str(best))


def test_second_training_in_the_same_work_dir_is_refused(tmp_path):
    cfg = write_config(tmp_path, max_iters=2)
    work_dir = tmp_path / 'work'
    with work_dir_lock(str(work_dir)):
        proc = run([sys.executable, 'tools/train.py', cfg, '--work-dir',
                    str(work_dir)])
        assert proc.returncode != 0
        assert f'work dir {work_dir} is in use by another training (pid ' \
            f'{os.getpid()}' in proc.stderr
        assert not list(work_dir.glob('*.pth'))
    run_tool('train', cfg, '--work-dir', str(work_dir))  # free again
    assert (work_dir / 'iter_2.pth').is_file()


def test_load_from_another_architecture_is_an_error(tmp_path):
    cfg = write_config(tmp_path, max_iters=2)
    other = write_config(tmp_path, channels=4, max_iters=2)
    run_tool('train', cfg, '--work-dir', str(tmp_path / 'a'))
    ckpt = str(tmp_path / 'a' / 'iter_2.pth')
    message = f'checkpoint {ckpt} does not fit CENToyExchangeNet'
    with pytest.raises(RuntimeError, match=message):
        run_tool('test', other, ckpt, '--work-dir', str(tmp_path / 'b'))
    with pytest.raises(RuntimeError, match=message):
        run_tool('train', other, '--work-dir', str(tmp_path / 'c'),
                 '--cfg-options', f'load_from={ckpt}')
    # --resume after a model change: named, instead of a size mismatch
    # inside the SGD step
    with pytest.raises(RuntimeError, match='shape mismatch'):
        run_tool('train', other, '--work-dir', str(tmp_path / 'a'),
                 '--resume', '--cfg-options', 'train_cfg.max_iters=4')
    # asked for explicitly: the matching part is loaded
    run_tool('test', other, ckpt, '--work-dir', str(tmp_path / 'b'),
             '--partial-load')
    assert 'toy/mse' in read_logs(tmp_path / 'b')


@HOOKS.register_module(force=True)
class _RecordLR(Hook):
    lrs: list = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        _RecordLR.lrs.append(runner.optim_wrapper.get_lr()['lr'][0])


def safety_runner(work_dir, max_iters, **kwargs):
    """The toy runner checkpointing every iteration and keeping one."""
    return toy_runner(
        work_dir,
        max_iters,
        checkpoint=dict(interval=1, max_keep_ckpts=1),
        **kwargs)


def test_extending_a_finished_run_follows_the_extended_schedule(tmp_path):
    pytest.importorskip('mmseg')
    import cen_mm.seg.engine  # noqa: F401  (StagedLR)

    def staged(milestones, lrs, end):
        return [dict(type='StagedLR', milestones=milestones,
                     lrs=dict(default=lrs), by_epoch=False, end=end)]

    extended = staged([2, 6], [0.1, 0.05, 0.01], 8)
    _RecordLR.lrs = []
    safety_runner(tmp_path / 'ref', 8, param_scheduler=extended,
                  custom_hooks=[dict(type='_RecordLR')]).train()
    reference = _RecordLR.lrs[4:]
    assert sorted(set(reference)) == [0.01, 0.05]

    work_dir = tmp_path / 'work'
    safety_runner(
        work_dir, 4, param_scheduler=staged([2], [0.1, 0.05], 4)).train()
    _RecordLR.lrs = []
    safety_runner(work_dir, 8, resume=True, param_scheduler=extended,
                  custom_hooks=[dict(type='_RecordLR')]).train()
    # iterations 5..8 as in a run with the extended schedule from the
    # start (the checkpoint's end=4 would freeze the LR at 0.05)
    assert _RecordLR.lrs == reference
    log = read_logs(work_dir)
    assert "['end', 'lrs', 'milestones'] taken from the config" in log
    with pytest.raises(ValueError, match='config has 2 param_scheduler'):
        safety_runner(work_dir, 10, resume=True,
                      param_scheduler=staged([2], [0.1, 0.05], 8) * 2).train()


def test_non_finite_loss_stops_before_anything_is_saved(tmp_path):
    work_dir = tmp_path / 'work'
    runner = safety_runner(
        work_dir,
        30,
        optimizer=dict(type='SGD', lr=1e6),
        custom_hooks=[dict(type='NonFiniteGuardHook')])
    with pytest.raises(NonFiniteError) as info:
        runner.train()
    message = str(info.value)
    step = int(message.split('iteration ')[1].split(' ')[0])
    assert 1 < step < 30
    # Which goes non-finite first (the loss as nan or inf, or a γ) depends
    # on float details; the message must name it.
    assert re.search(r'loss = (nan|-?inf)|γ of \S+ \(\d+ of \d+', message), \
        message
    # iter_{step-1} is the last checkpoint, from before the blow-up, and
    # nothing of iteration `step` was written.
    assert (work_dir / 'last_checkpoint').read_text().endswith(
        f'iter_{step - 1}.pth')
    assert not (work_dir / f'iter_{step}.pth').exists()
    with safe_checkpoint_loading():
        state = torch.load(str(work_dir / f'iter_{step - 1}.pth'))
    assert all(torch.isfinite(v).all() for v in state['state_dict'].values()
               if v.is_floating_point())


def test_non_finite_gamma_is_named():
    from types import SimpleNamespace

    from cen_engine_toy import CENToyExchangeNet
    model = CENToyExchangeNet()
    runner = SimpleNamespace(model=model, iter=11, epoch=0)
    hook = NonFiniteGuardHook()
    hook.after_train_iter(runner, 0, outputs=dict(loss=torch.tensor(1.0)))
    with pytest.raises(NonFiniteError,
                       match=r'iteration 12 .*γ of norm2 \(1 of 16'):
        model.norm2.streams[1].weight.data[3] = float('nan')
        hook.after_train_iter(runner, 0, outputs=dict(loss=1.0))


def test_staged_lr_warns_when_it_replaces_the_configured_lr():
    pytest.importorskip('mmseg')
    from mmengine.logging import MMLogger

    from cen_mm.seg.engine import StagedLR
    param = torch.nn.Parameter(torch.zeros(1))
    logger = MMLogger.get_current_instance()
    messages = []
    handler = type('H', (__import__('logging').Handler, ), dict(
        emit=lambda self, record: messages.append(record.getMessage())))()
    logger.addHandler(handler)
    try:
        StagedLR(torch.optim.SGD([param], lr=0.1), milestones=[2],
                 lrs=dict(default=[0.1, 0.01]))
        assert not [m for m in messages if 'is replaced' in m]
        StagedLR(torch.optim.SGD([param], lr=0.5), milestones=[2],
                 lrs=dict(default=[0.1, 0.01]))
    finally:
        logger.removeHandler(handler)
    assert [m for m in messages
            if "learning rate 0.5 (param group 'default'" in m and
            "replaced by lrs['default'][0] = 0.1" in m]
