# Copyright (c) cen_mm contributors. All rights reserved.
import os

import numpy as np
import pytest
import torch
from cen_engine_toy import toy_runner
from mmengine.fileio import LocalBackend
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint

import cen_mm.engine.checkpoint as cen_checkpoint
from cen_mm.engine import (SafeCheckpointHook, checkpoint_safe_globals,
                           safe_checkpoint_loading)


class _RecordResume(Hook):
    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        self.iter = runner.iter
        self.state = {
            k: v.detach().clone()
            for k, v in runner.model.state_dict().items()
        }
        self.lr = runner.optim_wrapper.get_lr()['lr'][0]


def ckpt_runner(work_dir, max_iters, resume=False, hooks=()):
    """The toy runner with momentum, a step LR and the L1 hook, checkpointing
    every 2 iterations."""
    return toy_runner(
        work_dir,
        max_iters,
        resume,
        shuffle=True,
        optimizer=dict(type='SGD', lr=0.1, momentum=0.9),
        param_scheduler=dict(
            type='MultiStepLR', milestones=[3], gamma=0.5, by_epoch=False),
        custom_hooks=[
            dict(type='GammaSparsityHook', lam=1e-2, interval=1), *hooks
        ])


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A run trained to iter 4 (checkpoints at 2 and 4, plus best)."""
    work_dir = tmp_path_factory.mktemp('ckpt')
    runner = ckpt_runner(work_dir, max_iters=4)
    runner.train()
    return work_dir, runner


def test_safe_loading_is_scoped():
    before = torch.serialization.get_safe_globals()
    with safe_checkpoint_loading():
        safe = torch.serialization.get_safe_globals()
        for obj in checkpoint_safe_globals():
            assert obj in safe, obj
    # torch keeps the allow-list as a set: compare contents, not order
    assert set(torch.serialization.get_safe_globals()) == set(before)


def test_hook_scopes_safe_loading_to_the_run(trained):
    _, runner = trained
    hook = next(h for h in runner.hooks if isinstance(h, SafeCheckpointHook))
    before = torch.serialization.get_safe_globals()
    hook.before_run(runner)
    assert HistoryBuffer in torch.serialization.get_safe_globals()
    hook.after_run(runner)
    # torch keeps the allow-list as a set: compare contents, not order
    assert set(torch.serialization.get_safe_globals()) == set(before)


def test_runner_checkpoint_loads_with_weights_only(trained):
    work_dir, _ = trained
    ckpt = str(work_dir / 'iter_4.pth')
    # The allow-list is needed (mmengine writes these) and sufficient.
    names = set(torch.serialization.get_unsafe_globals_in_checkpoint(ckpt))
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in names
    assert any(name.startswith('numpy') for name in names)
    allowed = {f'{o.__module__}.{o.__qualname__}'
               for o in checkpoint_safe_globals()}
    assert names <= allowed, names - allowed
    with pytest.raises(Exception, match='Weights only load failed'):
        torch.load(ckpt, weights_only=True)  # only where asked for
    with safe_checkpoint_loading():
        checkpoint = torch.load(ckpt, weights_only=True)
    assert checkpoint['meta']['iter'] == 4
    best = checkpoint['message_hub']['runtime_info']['best_score']
    assert isinstance(best, np.floating)  # a numpy scalar round-trips
    buffer = checkpoint['message_hub']['log_scalars']['train/loss']
    assert buffer.statistics('current') == buffer.current()
    assert len(buffer.data[0]) == 4 and np.isfinite(buffer.mean())
    with safe_checkpoint_loading():
        assert _load_checkpoint(ckpt)['meta']['iter'] == 4


def test_resume_continues_from_saved_iteration(trained):
    work_dir, first = trained
    assert (work_dir / 'last_checkpoint').read_text().endswith('iter_4.pth')
    with safe_checkpoint_loading():
        saved = torch.load(str(work_dir / 'iter_4.pth'))
    record = _RecordResume()
    runner = ckpt_runner(work_dir, max_iters=6, resume=True, hooks=[record])
    runner.train()
    assert record.iter == 4
    assert record.lr == pytest.approx(0.05)  # scheduler state restored
    for key, value in saved['state_dict'].items():
        torch.testing.assert_close(record.state[key], value, rtol=0, atol=0)
    assert runner.iter == 6
    assert (work_dir / 'iter_6.pth').is_file()
    scalars = runner.message_hub.log_scalars
    assert 'train/gamma_below_thr' in scalars
    assert 'train/exchanged_0' in scalars and 'train/exchanged_1' in scalars
    log_files = list(work_dir.glob('*/*.log'))
    assert any('gamma_below_thr' in f.read_text() for f in log_files)


@pytest.mark.parametrize('failure', ['write', 'replace'])
def test_killed_save_leaves_previous_checkpoint(trained, monkeypatch,
                                                failure):
    work_dir, runner = trained
    hook = next(h for h in runner.hooks if isinstance(h, SafeCheckpointHook))
    target = work_dir / 'iter_2.pth'
    before = target.read_bytes()
    last = (work_dir / 'last_checkpoint').read_text()

    def broken_put(backend, obj, filepath):
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])  # half a checkpoint, then death
        raise KeyboardInterrupt('killed while saving')

    def broken_replace(src, dst):
        raise KeyboardInterrupt('killed before rename')

    if failure == 'write':
        monkeypatch.setattr(LocalBackend, 'put', broken_put)
    else:
        monkeypatch.setattr(cen_checkpoint.os, 'replace', broken_replace)
    with pytest.raises(KeyboardInterrupt):
        hook._save_checkpoint_with_step(runner, 2, dict(epoch=0, iter=2))
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert (work_dir / 'last_checkpoint').read_text() == last
    with safe_checkpoint_loading():
        assert _load_checkpoint(str(target))['meta']['iter'] == 2
    assert not [p for p in os.listdir(work_dir) if p.endswith('.tmp')]


class _Payload:

    def __reduce__(self):
        return (os.system, ('touch /tmp/cen_mm_should_not_exist',))


class _Plain:
    pass


@pytest.mark.parametrize('obj', [_Plain(), _Payload()])
def test_arbitrary_pickled_object_is_refused(tmp_path, obj):
    path = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={}, meta=dict(x=obj)), path)
    if os.path.exists('/tmp/cen_mm_should_not_exist'):
        os.remove('/tmp/cen_mm_should_not_exist')
    with pytest.raises(Exception, match='Weights only load failed'), \
            safe_checkpoint_loading():
        _load_checkpoint(path)
    assert not os.path.exists('/tmp/cen_mm_should_not_exist')
