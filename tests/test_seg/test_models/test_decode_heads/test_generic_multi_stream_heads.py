# Copyright (c) cen_mm contributors. All rights reserved.
"""Any mmseg decode head becomes a multi-stream CEN head: each stream's
block equals the stock head with that stream's norms, the last block is the
learned ensemble."""
import pytest
import torch
from mmseg.registry import MODELS

import cen_mm.seg  # noqa: F401
from cen_mm.cnn import ExchangeBN
from cen_mm.seg.models.decode_heads import (CENPSPHead,
                                            MultiStreamDecodeHead,
                                            multi_stream_head,
                                            private_norm_cfg)

K = 4
BN = dict(type='SyncBN', requires_grad=True)
LEVELS = (4, 6, 8, 10)  # channels of 4 feature levels
HEADS = {
    'FCNHead': dict(in_channels=8, in_index=2, channels=6, num_convs=2),
    'PSPHead': dict(in_channels=10, in_index=3, channels=6,
                    pool_scales=(1, 2)),
    'ASPPHead': dict(in_channels=10, in_index=3, channels=6,
                     dilations=(1, 2)),
    'DepthwiseSeparableASPPHead': dict(
        in_channels=10, in_index=3, channels=6, dilations=(1, 2),
        c1_in_channels=4, c1_channels=4),
    'UPerHead': dict(in_channels=list(LEVELS), in_index=[0, 1, 2, 3],
                     channels=6, pool_scales=(1, 2)),
    'SegformerHead': dict(in_channels=list(LEVELS), in_index=[0, 1, 2, 3],
                          channels=6),
}


pytestmark = pytest.mark.usefixtures('mmseg_scope')


def _features(n, m, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(m * n, c, 16 // 2**i, 16 // 2**i, generator=g)
        for i, c in enumerate(LEVELS)
    ]


def _stream_state(state, m):
    """The state of stream m's single-stream head."""
    out = {}
    for key, value in state.items():
        if key.startswith('ensemble.'):
            continue
        if '.streams.' in key:
            prefix, rest = key.split('.streams.', 1)
            index, rest = rest.split('.', 1)
            if int(index) == m:
                out[f'{prefix}.{rest}'] = value
        else:
            out[key] = value
    return out


@pytest.mark.parametrize('head_type', sorted(HEADS))
def test_stock_head_made_multi_stream(head_type):
    n, m = 2, 3
    torch.manual_seed(0)
    cfg = dict(HEADS[head_type], num_classes=K, norm_cfg=BN,
               dropout_ratio=0.)
    head = multi_stream_head(MODELS.get(head_type))(
        num_streams=m, stream_names=('a', 'b', 'c'), **cfg)
    assert isinstance(head, MultiStreamDecodeHead)
    assert isinstance(head, MODELS.get(head_type))
    norms = [mod for mod in head.modules() if isinstance(mod, ExchangeBN)]
    assert norms and all(
        nm.num_streams == m and not nm.exchange and nm.sparsity == 'none'
        for nm in norms)
    # Distinct per-stream norm parameters and running statistics.
    with torch.no_grad():
        for nm in norms:
            for s, bn in enumerate(nm.streams):
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.normal_()
                bn.running_mean.normal_()
                bn.running_var.uniform_(0.5, 2.)
        head.ensemble.alpha.copy_(torch.tensor([0.2, -0.3, 0.5]))
    head.eval()
    feats = _features(n, m)
    with torch.no_grad():
        out = head(feats)
    h, w = out.shape[2:]
    assert out.shape == ((m + 1) * n, K, h, w)

    stock = MODELS.build(dict(cfg, type=head_type, norm_cfg=dict(type='BN')))
    stock.eval()
    weights = torch.softmax(torch.tensor([0.2, -0.3, 0.5]), 0)
    ens = 0
    for s in range(m):
        stock.load_state_dict(_stream_state(head.state_dict(), s))
        with torch.no_grad():
            ref = stock([f[s * n:(s + 1) * n] for f in feats])
        torch.testing.assert_close(out[s * n:(s + 1) * n], ref, atol=1e-5,
                                   rtol=1e-5)
        ens = ens + weights[s] * ref
    torch.testing.assert_close(out[m * n:], ens, atol=1e-5, rtol=1e-5)


def test_factory_is_cached_and_reuses_registered_heads():
    fcn = MODELS.get('FCNHead')
    assert multi_stream_head(fcn) is multi_stream_head(fcn)
    assert multi_stream_head(fcn).__name__ == 'CENFCNHead'
    assert multi_stream_head(MODELS.get('PSPHead')) is CENPSPHead
    assert multi_stream_head(CENPSPHead) is CENPSPHead
    with pytest.raises(TypeError, match='decode head class'):
        multi_stream_head(torch.nn.Conv2d)


def test_private_norm_cfg():
    assert private_norm_cfg(None, 2) is None
    assert private_norm_cfg(dict(type='SyncBN', requires_grad=True), 2) == \
        dict(type='ExchangeBN', requires_grad=True, num_streams=2,
             exchange=False, sparsity='none')
    assert private_norm_cfg(dict(type='IN'), 3)['type'] == 'ExchangeIN'
    # An exchanging norm keeps its keys.
    assert private_norm_cfg(
        dict(type='ExchangeBN', exchange=True, sparsity='own'), 2) == \
        dict(type='ExchangeBN', exchange=True, sparsity='own', num_streams=2)
    with pytest.raises(ValueError, match="'GN' cannot be made private"):
        private_norm_cfg(dict(type='GN', num_groups=2), 2)
    with pytest.raises(ValueError, match='num_streams=3 differs'):
        private_norm_cfg(dict(type='ExchangeBN', num_streams=3), 2)
    # private_norms=False shares the stock norm between the streams.
    head = multi_stream_head(MODELS.get('FCNHead'))(
        private_norms=False, norm_cfg=dict(type='BN'), **dict(
            HEADS['FCNHead'], num_classes=K))
    assert not any(isinstance(mod, ExchangeBN) for mod in head.modules())
