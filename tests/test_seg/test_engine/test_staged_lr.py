# Copyright (c) cen_mm contributors. All rights reserved.
import pytest
import torch
import torch.nn as nn
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS

from cen_mm.seg.engine import StagedLR

ENC = [5e-4, 2.5e-4, 1e-4]
DEC = [3e-3, 1.5e-3, 7e-4]


class Net(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(2, 2)
        self.decode_head = nn.Linear(2, 1)

    def forward(self, x):
        return self.decode_head(self.backbone(x)).sum()


def build(milestones=(3, 6), **kwargs):
    torch.manual_seed(0)
    net = Net()
    wrapper = build_optim_wrapper(
        net,
        dict(
            type='OptimWrapper',
            optimizer=dict(
                type='SGD', lr=3e-3, momentum=0.9, weight_decay=1e-5),
            paramwise_cfg=dict(custom_keys={
                'backbone': dict(lr_mult=1 / 6, lr_group='encoder')
            })))
    sched = PARAM_SCHEDULERS.build(
        dict(
            type='StagedLR',
            milestones=list(milestones),
            lrs=dict(encoder=ENC, default=DEC),
            **kwargs),
        default_args=dict(optimizer=wrapper))
    return net, wrapper, sched


def group_lrs(wrapper):
    enc = {g['lr'] for g in wrapper.param_groups if 'lr_group' in g}
    dec = {g['lr'] for g in wrapper.param_groups if 'lr_group' not in g}
    assert len(enc) == 1 and len(dec) == 1
    return enc.pop(), dec.pop()


def test_exact_staged_lrs_and_momentum_reset():
    net, wrapper, sched = build()
    assert isinstance(sched, StagedLR)
    seen = []
    for epoch in range(9):
        seen.append(group_lrs(wrapper))
        wrapper.update_params(net(torch.ones(1, 2)))
        assert len(wrapper.optimizer.state) == 4  # momentum buffers
        sched.step()
        if epoch in (2, 5):  # stages 1 and 2 begin: fresh optimizer state
            assert len(wrapper.optimizer.state) == 0
    expected = [(ENC[s], DEC[s]) for s in (0, 0, 0, 1, 1, 1, 2, 2, 2)]
    for got, want in zip(seen, expected):
        assert got == pytest.approx(want, rel=0, abs=1e-12)


def test_no_reset_and_iteration_conversion():
    net, wrapper, sched = build(reset_state=False)
    for _ in range(4):
        wrapper.update_params(net(torch.ones(1, 2)))
        sched.step()
    assert len(wrapper.optimizer.state) == 4
    assert group_lrs(wrapper) == pytest.approx((ENC[1], DEC[1]))

    _, wrapper, _ = build()
    iters = StagedLR.build_iter_from_epoch(
        wrapper, milestones=[2, 4], lrs=dict(encoder=ENC, default=DEC),
        epoch_length=10)
    assert iters.milestones == [20, 40] and not iters.by_epoch


def test_bad_arguments():
    with pytest.raises(ValueError, match='increasing'):
        build(milestones=(5, 3))
    _, wrapper, _ = build()
    with pytest.raises(ValueError, match='stages'):
        StagedLR(wrapper, milestones=[3], lrs=dict(encoder=ENC, default=DEC))
    with pytest.raises(KeyError, match='encoder'):
        StagedLR(wrapper, milestones=[3, 6], lrs=dict(default=DEC))
