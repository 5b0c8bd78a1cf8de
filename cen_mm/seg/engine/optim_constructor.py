# Copyright (c) cen_mm contributors. All rights reserved.
"""mmengine's default optimizer wrapper constructor, summarising the
per-parameter options in a few log lines instead of one per parameter."""
import logging
from collections import Counter

import torch.nn as nn
from mmengine.logging import MMLogger, print_log
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS

__all__ = ['SummaryOptimWrapperConstructor']


class _DropParamwiseLines(logging.Filter):
    """Drops mmengine's ``paramwise_options -- name:key=value`` records."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith('paramwise_options --')


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SummaryOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """:class:`DefaultOptimWrapperConstructor` with a short log.

    mmengine logs one ``paramwise_options`` line per parameter and option
    (about 900 lines for a CEN ResNet-101 with ``paramwise_cfg``). This
    constructor builds exactly the same optimizer and logs instead one line
    per distinct set of options: how many parameter tensors (and elements)
    got it.

    Example:
        >>> optim_wrapper = dict(
        ...     constructor='SummaryOptimWrapperConstructor',
        ...     optimizer=dict(type='SGD', lr=0.01),
        ...     paramwise_cfg=dict(custom_keys={
        ...         'backbone': dict(lr_mult=0.1)}))
    """

    def __call__(self, model: nn.Module) -> OptimWrapper:
        logger = MMLogger.get_current_instance()
        drop = _DropParamwiseLines()
        logger.addFilter(drop)
        try:
            optim_wrapper = super().__call__(model)
        finally:
            logger.removeFilter(drop)
        if self.paramwise_cfg:
            tensors, elements = Counter(), Counter()
            for group in optim_wrapper.param_groups:
                options = ', '.join(f'{k}={v:g}' if isinstance(
                    v, float) else f'{k}={v}' for k, v in sorted(
                        group.items()) if k != 'params')
                tensors[options] += len(group['params'])
                elements[options] += sum(p.numel() for p in group['params'])
            for options, count in tensors.items():
                print_log(
                    f'param groups: {count} tensors '
                    f'({elements[options] / 1e6:.2f} M values) with '
                    f'{options}', logger='current')
        return optim_wrapper
