# Copyright (c) cen_mm contributors. All rights reserved.
"""Unshared convolutions and shared norms (Table-1 "Convs" / "BNs")."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from cen_mm.cnn import ExchangeBN, StreamParallel, share_norms, unshare_convs


def small_net(exchange=False):
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        ExchangeBN(4, exchange=exchange, sparsity='none'), nn.ReLU(),
        nn.Conv2d(4, 2, 1))


def test_unshared_convs_apply_each_stream_its_weights():
    torch.manual_seed(0)
    net = unshare_convs(small_net(exchange=True), 2).eval()
    assert isinstance(net[0], StreamParallel)
    w0, w1 = (c.weight for c in net[0].streams)
    assert not torch.equal(w0, w1)  # independent initialisation
    x = torch.randn(4, 3, 5, 5)
    out = net(x)
    for m, (xm, om) in enumerate(zip(x.chunk(2), out.chunk(2))):
        conv0, conv1 = net[0].streams[m], net[3].streams[m]
        y = F.conv2d(xm, conv0.weight, conv0.bias, padding=1)
        ys = [None, None]
        ys[m] = y
        bn = net[1].streams[m]
        y = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight,
                         bn.bias, False, 0., bn.eps)
        torch.testing.assert_close(
            om, F.conv2d(F.relu(y), conv1.weight, conv1.bias), rtol=0,
            atol=1e-5)


def test_unshared_convs_load_single_stream_weights():
    plain = small_net()
    net = unshare_convs(small_net(), 2)
    net.load_state_dict(plain.state_dict())
    for conv in net[0].streams:
        torch.testing.assert_close(conv.weight, plain[0].weight)
    twin = unshare_convs(small_net(), 2)
    twin.load_state_dict(net.state_dict())  # per-stream checkpoints too
    torch.testing.assert_close(twin[3].streams[1].bias,
                               net[3].streams[1].bias)


def test_unshared_convs_reject_layers_that_cannot_be_duplicated():
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match=r"layer '1' \(BatchNorm2d\)"):
        unshare_convs(net, 2)
    with pytest.raises(ValueError, match='no Conv2d'):
        unshare_convs(nn.Sequential(ExchangeBN(3)), 2)


def test_shared_norms_normalise_the_folded_batch():
    net = share_norms(small_net()).train()
    assert type(net[1]) is nn.BatchNorm2d
    x = torch.randn(4, 3, 5, 5)
    y = net[0](x)
    expected = F.batch_norm(y, None, None, net[1].weight, net[1].bias, True)
    torch.testing.assert_close(net[1](y), expected)
    with pytest.raises(ValueError, match='need a private norm per stream'):
        share_norms(small_net(exchange=True))
