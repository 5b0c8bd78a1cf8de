# Copyright (c) cen_mm contributors. All rights reserved.
"""CENRefineNetHead against an independent functional reference written in
the official module layout (official-cen.md section 1.5)."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS

from cen_mm.seg.models.decode_heads import (CENRefineNetHead,
                                            ChainedResidualPool,
                                            ResidualConvUnit)


def conv(x, w, b=None):
    return F.conv2d(x, w, b, padding=1)


def ref_rcu(x, sd, prefix, num_blocks, inplace_quirk):
    """RCU as the official code runs it: with ``inplace_quirk`` the ReLU
    overwrites the tensor that is also kept as the residual."""
    x = x.clone()
    for i in range(1, num_blocks + 1):
        residual = x
        x = torch.relu_(x) if inplace_quirk else F.relu(x)
        x = conv(x, sd[f'{prefix}.{i}_conv.weight'],
                 sd[f'{prefix}.{i}_conv.bias'])
        x = F.relu(x)
        x = conv(x, sd[f'{prefix}.{i}_conv_relu_varout_dimred.weight'])
        x = x + residual
    return x


def ref_crp(x, sd, prefix, num_stages=4):
    top = x
    for i in range(1, num_stages + 1):
        top = F.max_pool2d(top, 5, stride=1, padding=2)
        top = conv(top, sd[f'{prefix}.{i}_outvar_dimred.weight'])
        x = top + x
    return x


def to_official(head):
    """Rename the head's weights to the official checkpoint names (the
    mapping documented in CENRefineNetHead)."""
    sd = {}
    for key, value in head.state_dict().items():
        parts = key.split('.')
        if parts[0] in ('adapts', 'fuses'):
            s, b, j = int(parts[1]), int(parts[3]), int(parts[4])
            base = (f'adapt_stage{s + 1}_b' if parts[0] == 'adapts' else
                    f'mflow_conv_g{s + 1}_b')
            name = f'{b + 1}_conv' if j == 0 else \
                f'{b + 1}_conv_relu_varout_dimred'
            sd[f'{base}.{name}.{parts[5]}'] = value
        elif parts[0] == 'crps':
            s, k = int(parts[1]), int(parts[3])
            sd[f'mflow_conv_g{s + 1}_pool.{k + 1}_outvar_dimred.weight'] = \
                value
        elif parts[0] == 'dimreds':
            sd[f'p_ims1d2_outl{int(parts[1]) + 1}_dimred.weight'] = value
        elif parts[0] == 'adapt_outs':
            s = int(parts[1]) + 1
            sd[f'adapt_stage{s + 1}_b2_joint_varout_dimred.weight'] = value
        elif parts[0] == 'out_convs':
            s = int(parts[1]) + 1
            sd[f'mflow_conv_g{s}_b3_joint_varout_dimred.weight'] = value
        elif parts[0] == 'conv_seg':
            sd[f'clf_conv.{parts[1]}'] = value
        elif parts[0] == 'ensemble':
            sd['alpha'] = value
        else:
            raise KeyError(key)
    return sd


def ref_refinenet(feats, sd, inplace_quirk=True):
    """Eval-mode official RefineNet flow on one stream (no dropout)."""
    l1, l2, l3, l4 = feats

    def up(x, like):
        return F.interpolate(
            x, size=like.shape[2:], mode='bilinear', align_corners=True)

    x4 = conv(l4, sd['p_ims1d2_outl1_dimred.weight'])
    x4 = ref_rcu(x4, sd, 'adapt_stage1_b', 2, inplace_quirk)
    x4 = F.relu(x4)
    x4 = ref_crp(x4, sd, 'mflow_conv_g1_pool')
    x4 = ref_rcu(x4, sd, 'mflow_conv_g1_b', 3, inplace_quirk)
    x4 = up(conv(x4, sd['mflow_conv_g1_b3_joint_varout_dimred.weight']), l3)
    x = x4
    for i, level in ((2, l3), (3, l2), (4, l1)):
        y = conv(level, sd[f'p_ims1d2_outl{i}_dimred.weight'])
        y = ref_rcu(y, sd, f'adapt_stage{i}_b', 2, inplace_quirk)
        y = conv(y, sd[f'adapt_stage{i}_b2_joint_varout_dimred.weight'])
        y = F.relu(y + x)
        y = ref_crp(y, sd, f'mflow_conv_g{i}_pool')
        y = ref_rcu(y, sd, f'mflow_conv_g{i}_b', 3, inplace_quirk)
        if i < 4:
            nxt = l2 if i == 2 else l1
            y = up(
                conv(y, sd[f'mflow_conv_g{i}_b3_joint_varout_dimred.weight']),
                nxt)
        x = y
    return conv(x, sd['clf_conv.weight'], sd['clf_conv.bias'])


IN_CHANNELS = (6, 8, 10, 12)


def small_head(**kwargs):
    torch.manual_seed(0)
    cfg = dict(
        in_channels=IN_CHANNELS, channels=8, top_channels=12, num_classes=5)
    cfg.update(kwargs)
    return CENRefineNetHead(**cfg)


def small_feats(n, size=16):
    g = torch.Generator().manual_seed(1)
    return tuple(
        torch.randn(n, c, size // 2**i, size // 2**i, generator=g)
        for i, c in enumerate(IN_CHANNELS))


@pytest.mark.parametrize('residual,quirk', [('relu', True),
                                            ('identity', False)])
def test_rcu_matches_reference(residual, quirk):
    torch.manual_seed(0)
    rcu = ResidualConvUnit(4, 3, residual=residual)
    sd = {}
    for b, (c1, c2) in enumerate(rcu.blocks):
        sd[f'r.{b + 1}_conv.weight'] = c1.weight
        sd[f'r.{b + 1}_conv.bias'] = c1.bias
        sd[f'r.{b + 1}_conv_relu_varout_dimred.weight'] = c2.weight
        assert c1.bias is not None and c2.bias is None
    x = torch.randn(2, 4, 7, 5)
    with torch.no_grad():
        torch.testing.assert_close(
            rcu(x), ref_rcu(x, sd, 'r', 3, quirk), rtol=1e-5, atol=1e-5)


def test_rcu_variants_differ_and_validate():
    torch.manual_seed(0)
    official = ResidualConvUnit(4, 1, residual='relu')
    textbook = ResidualConvUnit(4, 1, residual='identity')
    textbook.load_state_dict(official.state_dict())
    x = torch.randn(1, 4, 6, 6)
    with torch.no_grad():
        diff = official(x) - textbook(x)
        # The only difference is relu(x) - x = -min(x, 0) on the residual.
        torch.testing.assert_close(diff, F.relu(-x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match='residual'):
        ResidualConvUnit(4, 1, residual='sum')


def test_crp_matches_reference():
    torch.manual_seed(0)
    crp = ChainedResidualPool(3, 4)
    sd = {f'p.{k + 1}_outvar_dimred.weight': c.weight
          for k, c in enumerate(crp.convs)}
    assert all(c.bias is None for c in crp.convs)
    x = torch.randn(2, 3, 9, 7)
    with torch.no_grad():
        torch.testing.assert_close(crp(x), ref_crp(x, sd, 'p'),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('residual', ['relu', 'identity'])
def test_head_matches_official_flow_per_stream(residual):
    head = small_head(rcu_residual=residual).eval()
    sd = to_official(head)
    n = 2
    feats = small_feats(2 * n)
    with torch.no_grad():
        out = head(feats)
        assert out.shape == (3 * n, 5, 16, 16)
        for m in range(2):
            stream = tuple(f[m * n:(m + 1) * n] for f in feats)
            ref = ref_refinenet(stream, sd, inplace_quirk=residual == 'relu')
            torch.testing.assert_close(
                out[m * n:(m + 1) * n], ref, rtol=1e-4, atol=1e-5)
        w = torch.softmax(sd['alpha'], 0)
        torch.testing.assert_close(
            out[2 * n:], w[0] * out[:n] + w[1] * out[n:2 * n])


def test_dropout_sites_in_train_mode():
    head = small_head(feat_dropout_ratio=0.5, dropout_ratio=0.5).train()
    assert isinstance(head.dropout, torch.nn.Dropout)
    feats = small_feats(2)
    a, b = head(feats), head(feats)
    assert not torch.allclose(a, b)
    head = small_head(feat_dropout_ratio=0., dropout_ratio=0.).train()
    torch.testing.assert_close(head(feats), head(feats))


def test_full_size_parameter_count():
    """75.596 M = the official decoder group (incl. α), ResNet-101/152
    channels and 40 classes (official-cen.md 1.11)."""
    with DefaultScope.overwrite_default_scope('mmseg'):
        head = MODELS.build(
            dict(
                type='CENRefineNetHead',
                in_channels=(256, 512, 1024, 2048),
                num_classes=40))
    assert sum(p.numel() for p in head.parameters()) == 75_596_074
    assert head.ensemble.alpha.numel() == 2
    assert head.conv_seg.kernel_size == (3, 3)
    assert head.align_corners is False


def test_bad_arguments():
    with pytest.raises(ValueError, match='4 backbone levels'):
        CENRefineNetHead(in_channels=(8, 16), in_index=(0, 1), num_classes=3)
    with pytest.raises(ValueError, match='multiple_select'):
        small_head(input_transform='resize_concat')
