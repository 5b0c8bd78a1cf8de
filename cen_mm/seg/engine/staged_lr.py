# Copyright (c) cen_mm contributors. All rights reserved.
import bisect
import logging
from typing import Dict, List, Sequence

from mmengine.logging import print_log
from mmengine.optim.scheduler.param_scheduler import (INF, OptimizerType,
                                                      _ParamScheduler)
from mmengine.registry import PARAM_SCHEDULERS

__all__ = ['StagedLR']


@PARAM_SCHEDULERS.register_module()
class StagedLR(_ParamScheduler):
    """Piecewise-constant learning rates given per stage and per group.

    The official CEN segmentation schedule: training runs in stages, each with
    a constant learning rate that is set independently for the encoder and
    the decoder (e.g. encoder ``[5e-4, 2.5e-4, 1e-4]`` and decoder
    ``[3e-3, 1.5e-3, 7e-4]`` over 3 stages of 100 epochs), and the official
    code creates fresh optimizers at every stage, which resets the momentum
    buffers (``reset_state=True``).

    Param groups choose their list of learning rates through a tag stored
    in the group under ``group_key``. mmengine's optimizer constructor copies
    every entry of a ``paramwise_cfg.custom_keys`` dict into the matching
    param groups, so a config tags the encoder with::

        paramwise_cfg=dict(custom_keys={
            'backbone': dict(lr_mult=1 / 6, lr_group='encoder')})

    Groups without the tag use ``lrs['default']``.

    Args:
        optimizer (OptimWrapper or Optimizer): Wrapped optimizer.
        milestones (Sequence[int]): Steps (epochs if ``by_epoch``) at which
            the stages 1, 2, ... begin, increasing.
        lrs (dict[str, Sequence[float]]): For every group tag (and
            ``'default'``), one learning rate per stage, i.e.
            ``len(milestones) + 1`` values.
        group_key (str): Param-group key holding the tag.
            Default: ``'lr_group'``.
        reset_state (bool): Clear the optimizer state (e.g. SGD momentum
            buffers) when a new stage begins, as the official code does by
            re-creating its optimizers. Default: True.
        begin (int): Step at which the scheduler starts. Default: 0.
        end (int): Step at which it stops. Default: INF.
        last_step (int): Index of the last step, for resuming without a
            state dict. Default: -1.
        by_epoch (bool): Whether the steps are epochs. Default: True.
        verbose (bool): Print every update. Default: False.
    """

    def __init__(self,
                 optimizer: OptimizerType,
                 milestones: Sequence[int],
                 lrs: Dict[str, Sequence[float]],
                 group_key: str = 'lr_group',
                 reset_state: bool = True,
                 begin: int = 0,
                 end: int = INF,
                 last_step: int = -1,
                 by_epoch: bool = True,
                 verbose: bool = False) -> None:
        milestones = [int(m) for m in milestones]
        if any(b <= a for a, b in zip(milestones, milestones[1:])) or \
                any(m <= 0 for m in milestones):
            raise ValueError('StagedLR: milestones must be positive and '
                             f'strictly increasing, got {milestones}')
        lrs = {tag: [float(v) for v in values] for tag, values in lrs.items()}
        for tag, values in lrs.items():
            if len(values) != len(milestones) + 1:
                raise ValueError(
                    f'StagedLR: lrs[{tag!r}] has {len(values)} values, but '
                    f'{len(milestones)} milestones make '
                    f'{len(milestones) + 1} stages')
        tags = [group.get(group_key, 'default')
                for group in optimizer.param_groups]
        missing = sorted(set(tags) - set(lrs))
        if missing:
            raise KeyError(
                f'StagedLR: param groups are tagged {missing} (key '
                f'{group_key!r}; untagged groups use "default"), but lrs '
                f'only lists {sorted(lrs)}')
        for group, tag in zip(optimizer.param_groups, tags):
            configured = group.get('initial_lr', group['lr'])
            if abs(configured - lrs[tag][0]) > 1e-12 * max(1., configured):
                print_log(
                    f'StagedLR: the optimizer\'s learning rate {configured:g} '
                    f'(param group {tag!r}, optim_wrapper.optimizer.lr times '
                    f'any lr_mult) is replaced by lrs[{tag!r}][0] = '
                    f'{lrs[tag][0]:g}; the stage learning rates come from '
                    'StagedLR.lrs only.',
                    logger='current',
                    level=logging.WARNING)
                break
        self.milestones = milestones
        self.lrs = lrs
        self.group_key = group_key
        self.group_tags = tags
        self.reset_state = reset_state
        super().__init__(
            optimizer,
            param_name='lr',
            begin=begin,
            end=end,
            last_step=last_step,
            by_epoch=by_epoch,
            verbose=verbose)

    @classmethod
    def build_iter_from_epoch(cls,
                              *args,
                              milestones: Sequence[int],
                              begin: int = 0,
                              end: int = INF,
                              by_epoch: bool = True,
                              epoch_length: int = None,
                              **kwargs) -> 'StagedLR':
        """Build an iteration-based instance from epoch-based arguments."""
        if not by_epoch:
            raise ValueError('StagedLR: only by_epoch=True arguments can be '
                             'converted to iterations')
        if not epoch_length or epoch_length <= 0:
            raise ValueError('StagedLR: epoch_length must be a positive '
                             f'integer, got {epoch_length!r}')
        milestones = [m * epoch_length for m in milestones]
        begin = int(begin * epoch_length)
        if end != INF:
            end = int(end * epoch_length)
        return cls(
            *args,
            milestones=milestones,
            begin=begin,
            end=end,
            by_epoch=False,
            **kwargs)

    def stage(self, step: int) -> int:
        """int: Index of the stage that step ``step`` (counted from
        ``begin``) falls into."""
        return bisect.bisect_right(self.milestones, step)

    def _get_value(self) -> List[float]:
        stage = self.stage(self.last_step)
        if self.reset_state and self.last_step in self.milestones:
            self._reset_optimizer_state(stage)
        return [self.lrs[tag][stage] for tag in self.group_tags]

    def _reset_optimizer_state(self, stage: int) -> None:
        optimizer = getattr(self.optimizer, 'optimizer', self.optimizer)
        optimizer.state.clear()
        print_log(
            f'StagedLR: stage {stage} begins at step {self.last_step}; '
            'optimizer state (momentum buffers) reset.',
            logger='current')
