# Copyright (c) cen_mm contributors. All rights reserved.
import contextlib
import os.path as osp
from typing import Iterator, List, Set

from mmengine.runner.checkpoint import find_latest_checkpoint

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

from ..checkpoint import (atomic_write, atomic_write_text, check_state_dict,
                          portable_message_hub, remove_stray_temporaries,
                          safe_checkpoint_loading)

__all__ = ['SafeCheckpointHook']


class _DeferredRemoval:
    """A file backend whose ``remove``/``rmtree`` only record the path."""

    def __init__(self, backend, pending: List[str]) -> None:
        self._backend = backend
        self._pending = pending

    def remove(self, path: str) -> None:
        self._pending.append(path)

    def rmtree(self, path: str) -> None:
        self._pending.append(path)

    def __getattr__(self, name: str):
        return getattr(self._backend, name)


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` that never loses the last good
    checkpoint, and loads and writes checkpoints safely.

    Same arguments and file names as ``CheckpointHook``; in addition:

    - every checkpoint (``epoch_*``/``iter_*``, ``best_*``) and
      ``last_checkpoint`` is written to a temporary file in the same
      directory, fsynced and renamed over the target, so a run killed at any
      moment leaves complete files only;
    - old checkpoints (``max_keep_ckpts``, the previous ``best_*``) are
      removed only after the new checkpoint is complete on disk;
    - temporary files left by a killed run are removed in ``before_train``;
    - the message hub is written so that the checkpoint loads with
      ``weights_only`` (no ``getattr`` in the pickle), and from
      ``before_run`` to ``after_run`` mmengine's checkpoint types are
      allow-listed for ``weights_only`` loading
      (:func:`~cen_mm.engine.checkpoint.safe_checkpoint_loading`), which
      covers the Runner's ``load_from`` and ``resume``;
    - a checkpoint loaded by the Runner (``load_from``, ``resume``) must
      fill every weight of the model with the right shape, unless
      ``strict_load=False``;
    - on resume the config's param schedulers (``begin``/``end``,
      milestones, learning rates) are used, and only their progress comes
      from the checkpoint, so a finished run extended with a larger
      ``max_epochs`` follows the extended schedule instead of freezing the
      learning rate at the old ``end``; a different number of schedulers
      is an error.

    Args:
        strict_load (bool): Refuse checkpoints that leave model weights
            unfilled. Default: True.
        **kwargs: Arguments of mmengine's ``CheckpointHook``.

    Use it in a config as the checkpoint hook::

        default_hooks = dict(checkpoint=dict(
            type='SafeCheckpointHook', interval=1, max_keep_ckpts=1))

    ``tools/train.py`` and ``tools/test.py`` turn a config's
    ``CheckpointHook`` into this hook.
    """

    # Scheduler state that is progress, not configuration.
    _PROGRESS = ('last_step', '_global_step', '_last_value')

    def __init__(self, *args, strict_load: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.strict_load = strict_load
        self._loading = contextlib.ExitStack()
        self._depth = 0
        self._obsolete: List[str] = []
        self._written: Set[str] = set()

    def before_run(self, runner) -> None:
        """Allow-list mmengine's checkpoint types for the Runner's own
        loading (``load_or_resume`` follows ``before_run``)."""
        self._loading.close()
        self._loading.enter_context(safe_checkpoint_loading())

    def after_run(self, runner) -> None:
        """Restore the ``weights_only`` allow-list."""
        self._loading.close()

    def before_train(self, runner) -> None:
        """Set up as ``CheckpointHook``, then remove stray temporary files
        and defer the removal of old checkpoints until the new one is
        saved."""
        super().before_train(runner)
        if is_main_process() and self._is_local():
            for dirname in {self.out_dir, runner.work_dir}:
                for path in remove_stray_temporaries(dirname):
                    runner.logger.warning(
                        f'Removed {path}, a partly written file left by '
                        'a run that was killed while saving.')
        if not isinstance(self.file_backend, _DeferredRemoval):
            self.file_backend = _DeferredRemoval(self.file_backend,
                                                 self._obsolete)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Write the message hub so that it loads with ``weights_only``."""
        portable_message_hub(checkpoint)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Check the weights fit the model; on resume keep the config's
        schedule (the Runner restores the states after this hook)."""
        filename = runner._load_from or find_latest_checkpoint(
            runner.work_dir)
        if self.strict_load:
            check_state_dict(runner.model,
                             checkpoint.get('state_dict', checkpoint),
                             filename)
        if runner._resume and 'param_schedulers' in checkpoint and \
                runner.param_schedulers is not None:
            self._keep_config_schedule(runner, checkpoint['param_schedulers'],
                                       filename)

    def _keep_config_schedule(self, runner, saved, filename: str) -> None:
        current = runner.param_schedulers
        pairs = []
        if isinstance(current, dict):
            for name, schedulers in current.items():
                pairs.append((f'param_scheduler.{name}', schedulers,
                              saved.get(name, []) if isinstance(saved, dict)
                              else []))
        else:
            pairs.append(('param_scheduler', current, saved))
        for where, schedulers, states in pairs:
            if len(schedulers) != len(states):
                raise ValueError(
                    f'--resume: the config has {len(schedulers)} {where} '
                    f'entries but checkpoint {filename} has {len(states)}; '
                    'a changed schedule cannot be resumed. Start a new '
                    f'run with load_from={filename}.')
            for index, (scheduler, state) in enumerate(zip(schedulers,
                                                           states)):
                changed = sorted(
                    key for key, value in state.items()
                    if key not in self._PROGRESS and key in vars(scheduler)
                    and _differs(vars(scheduler)[key], value))
                for key in list(state):
                    if key not in self._PROGRESS:
                        del state[key]
                step = state.get('_global_step', -1)
                if 'last_step' in state and step >= scheduler.begin:
                    # A scheduler stops counting last_step at its old `end`;
                    # continue from the global step in the new range.
                    state['last_step'] = min(step, scheduler.end - 1) - \
                        scheduler.begin
                if changed:
                    runner.logger.info(
                        f'{where}[{index}] ({type(scheduler).__name__}): '
                        f'{changed} taken from the config, not from the '
                        'checkpoint; the progress (step) is resumed.')

    def _is_local(self) -> bool:
        backend = getattr(self.file_backend, '_backend', self.file_backend)
        return isinstance(backend, LocalBackend)

    @contextlib.contextmanager
    def _saving(self, runner) -> Iterator[None]:
        """Route ``runner.save_checkpoint`` through :func:`atomic_write`
        while the hook saves, then remove the obsolete checkpoints."""
        self._depth += 1
        if self._depth == 1:
            original = runner.save_checkpoint

            def save(out_dir, filename, *args, **kwargs) -> None:
                target = self.file_backend.join_path(out_dir, filename)
                self._written.add(target)
                if not (self._is_local() and is_main_process()):
                    original(out_dir, filename, *args, **kwargs)
                    return
                atomic_write(
                    target, lambda tmp: original(out_dir, osp.basename(tmp),
                                                 *args, **kwargs))

            runner.save_checkpoint = save
        completed = False
        try:
            yield
            completed = True
        finally:
            self._depth -= 1
            if self._depth == 0:
                del runner.save_checkpoint  # the Runner's method again
                if completed:
                    self._remove_obsolete(runner)
                else:  # the new file is not there: keep the old ones
                    self._obsolete.clear()
                    self._written.clear()

    def _remove_obsolete(self, runner) -> None:
        keep = self._written | {
            self.last_ckpt,
            getattr(self, 'best_ckpt_path', None),
            *getattr(self, 'best_ckpt_path_dict', {}).values()
        }
        pending = [p for p in self._obsolete if p not in keep]
        self._obsolete.clear()
        self._written.clear()
        if not is_main_process():
            return
        backend = self.file_backend._backend
        for path in pending:
            if backend.isfile(path):
                backend.remove(path)
            elif backend.isdir(path):  # deepspeed checkpoints are dirs
                backend.rmtree(path)
            else:
                continue
            runner.logger.info(f'Removed the outdated checkpoint {path}.')

    def _save_checkpoint_with_step(self, runner, step: int,
                                   meta: dict) -> None:
        with self._saving(runner):
            if self.max_keep_ckpts > 0 and not (
                    self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
                if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                    self._obsolete.append(
                        self.file_backend.join_path(
                            self.out_dir,
                            self.filename_tmpl.format(
                                self.keep_ckpt_ids.popleft())))
                self.keep_ckpt_ids.append(step)
                runner.message_hub.update_info('keep_ckpt_ids',
                                               list(self.keep_ckpt_ids))
            filename = self.filename_tmpl.format(step)
            self.last_ckpt = self.file_backend.join_path(
                self.out_dir, filename)
            runner.message_hub.update_info('last_ckpt', self.last_ckpt)
            runner.save_checkpoint(
                self.out_dir,
                filename,
                self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=meta,
                by_epoch=self.by_epoch,
                backend_args=self.backend_args,
                **self.args)
            if is_main_process():
                atomic_write_text(
                    osp.join(runner.work_dir, 'last_checkpoint'),
                    self.last_ckpt)

    def _save_best_checkpoint(self, runner, metrics: dict) -> None:
        with self._saving(runner):
            super()._save_best_checkpoint(runner, metrics)


def _differs(a, b) -> bool:
    try:
        return bool(a != b)
    except Exception:  # e.g. tensors or arrays
        return True
