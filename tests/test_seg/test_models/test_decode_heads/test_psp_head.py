# Copyright (c) cen_mm contributors. All rights reserved.
import pytest
import torch
from mmseg.models.decode_heads import PSPHead

from cen_mm.cnn import ExchangeBN, exchange_norms
from cen_mm.seg.models.decode_heads import CENPSPHead

CFG = dict(
    in_channels=8, channels=4, num_classes=3, pool_scales=(1, 2, 3),
    dropout_ratio=0.)


def build(**kwargs):
    torch.manual_seed(0)
    return CENPSPHead(**{**CFG, **kwargs})


def stream_head(head, m):
    """A stock single-stream PSPHead holding stream m's norms and the
    shared convs of ``head``."""
    ref = PSPHead(**CFG, norm_cfg=dict(type='BN'))
    sd = {}
    for key, value in head.state_dict().items():
        if key.startswith('ensemble.'):
            continue
        if '.streams.' in key:
            prefix, rest = key.split('.streams.', 1)
            index, name = rest.split('.', 1)
            if int(index) != m:
                continue
            key = f'{prefix}.{name}'
        sd[key] = value
    ref.load_state_dict(sd, strict=True)
    return ref


def test_norms_are_private_exchange_free_and_unpenalised():
    head = build()
    norms = exchange_norms(head)
    # 3 pyramid branches + bottleneck.
    assert len(norms) == 4
    for _, norm in norms:
        assert isinstance(norm, ExchangeBN)
        assert norm.num_streams == 2 and not norm.exchange
        assert norm.sparsity == 'none'
        assert not norm.exchange_mask().any()
        assert float(norm.sparsity_penalty()) == 0
    convs = [m for m in head.modules() if isinstance(m, torch.nn.Conv2d)]
    # Shared convs: one weight per layer (3 branches + bottleneck + seg).
    assert len(convs) == 5


@pytest.mark.parametrize('mode', ['train', 'eval'])
def test_each_stream_equals_a_stock_psp_head(mode):
    head = build()
    with torch.no_grad():  # make the stream norms differ
        for _, norm in exchange_norms(head):
            s = norm.streams[1]
            s.weight.uniform_(0.5, 2)
            s.bias.uniform_(-1, 1)
            s.running_mean.uniform_(-1, 1)
            s.running_var.uniform_(0.5, 2)
    getattr(head, mode)()
    n = 2
    x = torch.randn(2 * n, 8, 6, 6)
    x[n:] = x[n:] * 3 + 1  # the depth stream has other statistics
    refs = [getattr(stream_head(head, m), mode)() for m in range(2)]
    with torch.no_grad():
        out = head((x, ))
        assert out.shape == (3 * n, 3, 6, 6)
        for m in range(2):
            torch.testing.assert_close(
                out[m * n:(m + 1) * n], refs[m]((x[m * n:(m + 1) * n], )),
                rtol=1e-4, atol=1e-5)
        w = head.ensemble.weights
        torch.testing.assert_close(out[2 * n:],
                                   w[0] * out[:n] + w[1] * out[n:2 * n])


def test_loss_keys_and_three_streams():
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    head = build(num_streams=3, stream_names=('rgb', 'depth', 'hha'))
    assert all(n.num_streams == 3 for _, n in exchange_norms(head))
    samples = []
    for _ in range(2):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.randint(0, 3, (1, 12, 12)))
        samples.append(s)
    losses = head.loss((torch.randn(6, 8, 6, 6), ), samples, None)
    assert set(losses) == {
        'rgb.loss_ce', 'depth.loss_ce', 'hha.loss_ce', 'ens.loss_ce',
        'acc_seg'
    }


def test_other_norms_and_bad_arguments():
    # A stock BN becomes a private BN per stream...
    head = build(norm_cfg=dict(type='BN'))
    assert all(not layer.exchange for _, layer in exchange_norms(head))
    assert exchange_norms(head)
    # ... unless shared on purpose.
    head = build(norm_cfg=dict(type='BN'), private_norms=False)
    assert not exchange_norms(head)
    assert head((torch.randn(4, 8, 6, 6), )).shape == (6, 3, 6, 6)
    with pytest.raises(ValueError, match='num_streams'):
        build(norm_cfg=dict(type='ExchangeBN', num_streams=3))
