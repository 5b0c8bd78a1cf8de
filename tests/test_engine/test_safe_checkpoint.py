# Copyright (c) cen_mm contributors. All rights reserved.
import os
import uuid

import mmengine.runner
import mmengine.runner.checkpoint as mme_checkpoint
import mmengine.runner.runner as mme_runner
import numpy as np
import pytest
import torch
from cen_engine_toy import CENToyMetric  # noqa: F401  (registers toys)
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint

import cen_mm.engine.checkpoint as cen_checkpoint
from cen_mm.engine import (atomic_save_checkpoint, checkpoint_safe_globals,
                           install_safe_checkpointing)


class _RecordResume(Hook):
    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        self.iter = runner.iter
        self.state = {
            k: v.detach().clone()
            for k, v in runner.model.state_dict().items()
        }
        self.lr = runner.optim_wrapper.get_lr()['lr'][0]


def toy_runner(work_dir, max_iters, resume=False, hooks=()):
    loader = dict(
        dataset=dict(type='CENToyDataset', length=8),
        sampler=dict(type='DefaultSampler', shuffle=True),
        collate_fn=dict(type='default_collate'),
        batch_size=2,
        num_workers=0)
    return Runner(
        model=dict(type='CENToyExchangeNet'),
        work_dir=str(work_dir),
        experiment_name=f'ckpt-{uuid.uuid4().hex}',
        train_dataloader=loader,
        train_cfg=dict(
            type='IterBasedTrainLoop', max_iters=max_iters, val_interval=2),
        val_dataloader=loader,
        val_cfg=dict(type='ValLoop'),
        val_evaluator=dict(type='CENToyMetric'),
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        param_scheduler=dict(
            type='MultiStepLR', milestones=[3], gamma=0.5, by_epoch=False),
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook',
                interval=2,
                by_epoch=False,
                save_best='toy/mse',
                rule='less'),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[
            dict(type='GammaSparsityHook', lam=1e-2, interval=1), *hooks
        ],
        log_processor=dict(by_epoch=False),
        resume=resume,
        default_scope='mmengine',
        randomness=dict(seed=0))


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A run trained to iter 4 (checkpoints at 2 and 4, plus best)."""
    work_dir = tmp_path_factory.mktemp('ckpt')
    runner = toy_runner(work_dir, max_iters=4)
    runner.train()
    return work_dir, runner


def test_install_is_idempotent_and_patches_every_name():
    install_safe_checkpointing()
    count = len(torch.serialization.get_safe_globals())
    install_safe_checkpointing()
    assert len(torch.serialization.get_safe_globals()) == count
    for module in (mmengine.runner, mme_checkpoint, mme_runner):
        assert module.save_checkpoint is atomic_save_checkpoint
    assert cen_checkpoint._original_save is not atomic_save_checkpoint
    safe = torch.serialization.get_safe_globals()
    for obj in checkpoint_safe_globals():
        assert obj in safe, obj


def test_runner_checkpoint_loads_with_weights_only(trained):
    work_dir, _ = trained
    ckpt = str(work_dir / 'iter_4.pth')
    # The allow-list is needed (mmengine writes these) and sufficient.
    saved = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        names = set(
            torch.serialization.get_unsafe_globals_in_checkpoint(ckpt))
    finally:
        torch.serialization.add_safe_globals(saved)
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in names
    assert any(name.startswith('numpy') for name in names)
    allowed = {f'{o.__module__}.{o.__qualname__}'
               for o in checkpoint_safe_globals()}
    assert names <= allowed, names - allowed
    checkpoint = torch.load(ckpt, weights_only=True)
    assert checkpoint['meta']['iter'] == 4
    best = checkpoint['message_hub']['runtime_info']['best_score']
    assert isinstance(best, np.floating)  # a numpy scalar round-trips
    buffer = checkpoint['message_hub']['log_scalars']['train/loss']
    assert buffer.statistics('current') == buffer.current()
    assert len(buffer.data[0]) == 4 and np.isfinite(buffer.mean())
    assert _load_checkpoint(ckpt)['meta']['iter'] == 4


def test_resume_continues_from_saved_iteration(trained):
    work_dir, first = trained
    assert (work_dir / 'last_checkpoint').read_text().endswith('iter_4.pth')
    saved = torch.load(str(work_dir / 'iter_4.pth'))
    record = _RecordResume()
    runner = toy_runner(work_dir, max_iters=6, resume=True, hooks=[record])
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
    target = work_dir / 'iter_2.pth'
    before = target.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        f.write(before[:len(before) // 2])  # half a checkpoint, then death
        raise KeyboardInterrupt('killed while saving')

    def broken_replace(src, dst):
        raise KeyboardInterrupt('killed before rename')

    if failure == 'write':
        monkeypatch.setattr(cen_checkpoint.torch, 'save', broken_save)
    else:
        monkeypatch.setattr(cen_checkpoint.os, 'replace', broken_replace)
    with pytest.raises(KeyboardInterrupt):
        runner.save_checkpoint(str(work_dir), 'iter_2.pth', by_epoch=False)
    monkeypatch.undo()
    assert target.read_bytes() == before
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
    with pytest.raises(Exception, match='Weights only load failed'):
        _load_checkpoint(path)
    assert not os.path.exists('/tmp/cen_mm_should_not_exist')
