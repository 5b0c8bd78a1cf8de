# Copyright (c) cen_mm contributors. All rights reserved.
import pytest
import torch

from cen_mm.cnn import StreamEnsemble, fold_channels, unfold_streams


def test_fold_channels_is_stream_major():
    rgb = torch.randn(2, 3, 4, 5)
    depth = torch.randn(2, 3, 4, 5)
    folded = fold_channels(torch.cat([rgb, depth], dim=1), (3, 3))
    assert torch.equal(folded, torch.cat([rgb, depth], dim=0))
    streams = unfold_streams(folded, 2)
    assert torch.equal(streams[1], depth)


def test_fold_channels_widens_to_lcm():
    rgb = torch.randn(2, 3, 4, 4)
    depth = torch.randn(2, 1, 4, 4)
    folded = fold_channels(torch.cat([rgb, depth], dim=1), (3, 1))
    assert folded.shape == (4, 3, 4, 4)
    assert torch.equal(folded[2:], depth.expand(-1, 3, -1, -1))


def test_fold_channels_bad_input():
    with pytest.raises(ValueError, match='expected 6 stacked input channels'):
        fold_channels(torch.randn(2, 4, 3, 3), (3, 3))
    with pytest.raises(ValueError, match='not divisible by 3'):
        unfold_streams(torch.randn(4, 2), 3)


def test_stream_ensemble_detached_softmax():
    ens = StreamEnsemble(3)
    with torch.no_grad():
        ens.alpha.copy_(torch.tensor([0.5, -1.0, 2.0]))
    x = torch.randn(3 * 2, 4, 5, requires_grad=True)
    out = ens(x)
    w = torch.softmax(torch.tensor([0.5, -1.0, 2.0]), 0)
    expected = sum(w[m] * x[2 * m:2 * m + 2] for m in range(3))
    torch.testing.assert_close(out, expected.detach())
    out.sum().backward()
    assert x.grad is None  # only α learns from the ensemble loss
    assert ens.alpha.grad is not None
    # without detaching, the streams receive gradient too
    ens = StreamEnsemble(2, detach=False)
    x = torch.randn(4, 3, requires_grad=True)
    ens(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.full((4, 3), 0.5))
