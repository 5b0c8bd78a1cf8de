# Copyright (c) cen_mm contributors. All rights reserved.
import logging

import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.optim import DefaultOptimWrapperConstructor

from cen_mm.seg.engine import SummaryOptimWrapperConstructor


class Net(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.head = nn.Conv2d(4, 2, 1)


class Records(logging.Handler):

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_same_optimizer_short_log():
    cfg = dict(
        optim_wrapper_cfg=dict(
            type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)),
        paramwise_cfg=dict(custom_keys={
            'backbone': dict(lr_mult=0.5, lr_group='encoder')
        }))
    records = Records()
    MMLogger.get_instance('test_summary_optim',
                          log_level='INFO').addHandler(records)
    net = Net()
    default = DefaultOptimWrapperConstructor(**cfg)(net)
    # mmengine: one line per option of each of the 4 backbone tensors.
    lines = [m for m in records.messages if m.startswith('paramwise_options')]
    assert len(lines) >= 8
    records.messages = []
    summary = SummaryOptimWrapperConstructor(**cfg)(net)
    assert not any(m.startswith('paramwise_options')
                   for m in records.messages)
    messages = [m for m in records.messages if m.startswith('param groups')]
    assert not any(m.startswith('paramwise_options') for m in messages)
    assert len(messages) == 2
    head, backbone = sorted(messages, key=lambda m: 'lr_group' in m)
    assert ' lr=0.1,' in head and 'lr_group' not in head
    assert ' lr=0.05, lr_group=encoder,' in backbone
    # One line per option set, counting its tensors (the 4 backbone ones).
    assert backbone.startswith('param groups: 4 tensors ')
    assert len(default.param_groups) == len(summary.param_groups)
    for a, b in zip(default.param_groups, summary.param_groups):
        assert a.keys() == b.keys()
        assert all(a[k] == b[k] for k in a if k != 'params')
        assert [id(p) for p in a['params']] == [id(p) for p in b['params']]
