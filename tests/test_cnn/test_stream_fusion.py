# Copyright (c) cen_mm contributors. All rights reserved.
"""Fusion baselines (concat / average / SSMA / align) against direct
computations on small tensors."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from cen_mm.cnn import (AlignFusion, AverageFusion, ConcatFusion, SSMAFusion,
                        attach_stream_fusion, multi_kernel_mmd)


def folded(num_streams=2, n=3, c=4, h=5, w=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(num_streams * n, c, h, w, generator=gen,
                       dtype=torch.float64)


@pytest.mark.parametrize('num_streams', [2, 3])
def test_concat_fusion_matches_direct_conv(num_streams):
    block = ConcatFusion(4, num_streams).double()
    x = folded(num_streams)
    xs = x.chunk(num_streams)
    w, b = block.conv.weight[:, :, 0, 0], block.conv.bias
    for m, out in enumerate(block(x).chunk(num_streams)):
        order = [xs[(m + k) % num_streams] for k in range(num_streams)]
        z = torch.cat(order, dim=1)  # own stream first
        expected = torch.einsum('oc,nchw->nohw', w, z) + b[None, :, None,
                                                           None]
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    assert sum(p.numel() for p in block.parameters()) == \
        num_streams * 4 * 4 + 4


def test_average_fusion():
    x = folded(3)
    out = AverageFusion(4, 3)(x)
    mean = sum(x.chunk(3)) / 3
    for chunk in out.chunk(3):
        torch.testing.assert_close(chunk, mean, rtol=0, atol=1e-12)
    assert not list(AverageFusion(4, 3).parameters())


def test_ssma_fusion_matches_direct_computation():
    torch.manual_seed(0)
    block = SSMAFusion(8, reduction=4).double().eval()
    with torch.no_grad():
        for norm in block.norm.streams:
            norm.running_mean.normal_()
            norm.running_var.uniform_(0.5, 1.5)
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.normal_()
    x = folded(2, c=8)
    xs = x.chunk(2)
    g1, _, g2, _ = block.gate
    for m, out in enumerate(block(x).chunk(2)):
        z = torch.cat([xs[m], xs[1 - m]], dim=1)
        gate = torch.sigmoid(
            F.conv2d(F.relu(F.conv2d(z, g1.weight, g1.bias, padding=1)),
                     g2.weight, g2.bias, padding=1))
        y = F.conv2d(gate * z, block.out_conv.weight, padding=1)
        norm = block.norm.streams[m]  # private BN per stream
        expected = F.batch_norm(y, norm.running_mean, norm.running_var,
                                norm.weight, norm.bias, False, 0., norm.eps)
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-10)
    assert g1.out_channels == 8 // 4
    # η = 16 on C = 64: gate 128 -> 4 -> 128 (3x3), out 128 -> 64 (3x3).
    params = sum(p.numel() for p in SSMAFusion(64).parameters())
    assert params == (128 * 4 * 9 + 4) + (4 * 128 * 9 + 128) + \
        128 * 64 * 9 + 2 * 2 * 64


def naive_mmd(x, y, num_kernels=11, mul=2.0):
    z = torch.cat([x, y])
    n = len(z)
    d = [[float(((z[i] - z[j])**2).sum()) for j in range(n)]
         for i in range(n)]
    scale = sum(map(sum, d)) / (n * n - n)
    k = [[sum(math.exp(-d[i][j] / (scale * mul**(q - num_kernels // 2)))
              for q in range(num_kernels)) for j in range(n)]
         for i in range(n)]
    p = len(x)

    def mean(rows, cols):
        return sum(k[i][j] for i in rows for j in cols) / (len(rows) *
                                                           len(cols))

    xs, ys = range(p), range(p, n)
    return mean(xs, xs) + mean(ys, ys) - 2 * mean(xs, ys)


def test_multi_kernel_mmd_reference_zero_and_positive():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(4, 3, generator=gen, dtype=torch.float64) + 1
    torch.testing.assert_close(
        multi_kernel_mmd(x, y), torch.tensor(naive_mmd(x, y),
                                             dtype=torch.float64),
        rtol=0, atol=1e-10)
    assert multi_kernel_mmd(x, x.clone()).abs() < 1e-12
    assert multi_kernel_mmd(x, y) > 1e-3
    with pytest.raises(ValueError, match='expected samples'):
        multi_kernel_mmd(x, y[:, :2])


def test_align_fusion_mmd_only_identity_and_loss():
    block = AlignFusion(4, branches=False, loss_weight=0.5, pool_size=2)
    x = folded(2).float()
    out = block(x)
    assert out is x
    pooled = F.adaptive_avg_pool2d(x, 2)
    a, b = (s.flatten(2).transpose(1, 2).flatten(0, 1)
            for s in pooled.chunk(2))
    torch.testing.assert_close(block.aux_loss(),
                               0.5 * multi_kernel_mmd(a, b))
    assert block.aux_loss() is None  # consumed
    same = torch.cat([x[:3], x[:3]])
    block(same)
    assert block.aux_loss().abs() < 1e-6
    block.eval()
    block(x)
    assert block.aux_loss() is None
    assert not list(block.parameters())


def conv1x1(x, conv):
    assert conv.bias is None
    return torch.einsum('oc,nchw->nohw', conv.weight[:, :, 0, 0], x)


@pytest.mark.parametrize('num_streams', [2, 3])
def test_align_fusion_branches_match_direct_computation(num_streams):
    torch.manual_seed(0)
    block = AlignFusion(4, num_streams, loss_weight=0.5, pool_size=2)
    block.double()
    x = folded(num_streams)
    xs = x.chunk(num_streams)
    common = [conv1x1(xs[m], block.common[m]) for m in range(num_streams)]
    outs = block(x).chunk(num_streams)
    for m, out in enumerate(outs):
        # own specific features, own common, mean of the others' common
        others = sum(common[k] for k in range(num_streams)
                     if k != m) / (num_streams - 1)
        z = torch.cat([conv1x1(xs[m], block.specific[m]), common[m],
                       others], dim=1)
        expected = conv1x1(z, block.combine[m])
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    # MMD between every pair of streams' pooled common features
    samples = [F.adaptive_avg_pool2d(c, 2).flatten(2).transpose(1, 2)
               .flatten(0, 1).detach() for c in common]
    pairs = [(a, b) for a in range(num_streams)
             for b in range(a + 1, num_streams)]
    expected = 0.5 * sum(torch.tensor(naive_mmd(samples[a], samples[b]),
                                      dtype=torch.float64)
                         for a, b in pairs) / len(pairs)
    torch.testing.assert_close(block.aux_loss(), expected, rtol=0,
                               atol=1e-10)
    # per stream: common C->C, specific C->C, combine 3C->C, no biases
    assert sum(p.numel() for p in block.parameters()) == \
        num_streams * 5 * 4 * 4
    # with two streams 10 C²: 2.6 M for the 512 channels of R101's stage 2,
    # as the paper's align (early)
    assert sum(p.numel() for p in AlignFusion(512).parameters()) == \
        10 * 512**2 == 2_621_440


def test_align_fusion_branches_loss_on_common_features_only():
    """Same inputs and the same common branch give MMD 0 whatever the
    specific branches do; the gradient reaches every branch."""
    torch.manual_seed(0)
    block = AlignFusion(4, pool_size=2).double()
    with torch.no_grad():
        block.common[1].load_state_dict(block.common[0].state_dict())
    x = folded(2)
    block(torch.cat([x[:3], x[:3]]))
    assert block.aux_loss().abs() < 1e-12
    out = block(x)
    loss = block.aux_loss()
    assert loss > 1e-3
    (loss + out.sum()).backward()
    for name, param in block.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_attach_stream_fusion_hooks_named_positions():
    net = nn.Sequential(nn.Conv2d(4, 6, 1), nn.Conv2d(6, 5, 1))
    x = folded(2)
    net.double()
    blocks = attach_stream_fusion(net, dict(type='AverageFusion'), ['0'], 2)
    assert isinstance(blocks['0'], AverageFusion)
    assert blocks['0'].channels == 6
    h = net[0](x)
    h = sum(h.chunk(2)) / 2
    torch.testing.assert_close(net(x), net[1](torch.cat([h, h])))
    blocks = attach_stream_fusion(net, dict(type='ConcatFusion'), ['1'], 2)
    assert blocks['1'].conv.in_channels == 10
    with pytest.raises(ValueError, match="'2' is not a sub-module"):
        attach_stream_fusion(net, dict(type='ConcatFusion'), ['2'], 2)
    with pytest.raises(ValueError, match='fuses exactly'):
        attach_stream_fusion(net, dict(type='SSMAFusion'), ['0'], 3)
