# Copyright (c) cen_mm contributors. All rights reserved.
"""Official-evaluation and paper-objective switches of the multi-stream
heads: bicubic logits resize, Eq. 5 ensemble-only loss."""
import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from cen_mm.seg.models.decode_heads import CENRefineNetHead

K = 3
# The heads build their losses from mmseg's registry.
pytestmark = pytest.mark.usefixtures('mmseg_scope')


def build_head(**kwargs):
    torch.manual_seed(0)
    return CENRefineNetHead(in_channels=(4, 8, 16, 32),
                            channels=8,
                            top_channels=8,
                            num_classes=K,
                            feat_dropout_ratio=0.,
                            dropout_ratio=0.,
                            **kwargs)


def features(n=1, size=8):
    g = torch.Generator().manual_seed(1)
    return [
        torch.randn(2 * n, c, size // 2**i, size // 2**i, generator=g)
        for i, c in enumerate((4, 8, 16, 32))
    ]


def test_bicubic_resize_matches_opencv_inter_cubic():
    head = build_head(resize_mode='bicubic').eval()
    with torch.no_grad():
        logits = head(features())  # (3 blocks, K, 8, 8)
    metas = [dict(img_shape=(30, 37), pad_shape=(30, 37))]
    out = head.predict_by_feat(logits, metas)  # (3 blocks, K, 30, 37)
    assert out.shape == (3, K, 30, 37)
    expected = np.stack([
        np.stack([
            cv2.resize(ch.numpy(), (37, 30), interpolation=cv2.INTER_CUBIC)
            for ch in block
        ]) for block in logits  # rgb, depth, ens
    ])
    np.testing.assert_allclose(out.detach().numpy(),
                               expected,
                               rtol=1e-5,
                               atol=1e-5)
    bilinear = build_head().eval().predict_by_feat(logits, metas)
    assert (bilinear - out).abs().max() > 1e-3


def test_ensemble_only_objective_is_eq5():
    head = build_head(ensemble=dict(detach=False),
                      loss_outputs='ens',
                      loss_decode=dict(type='CrossEntropyLoss',
                                       avg_non_ignore=True))
    feats = features()
    label = torch.randint(0,
                          K, (1, 1, 16, 16),
                          generator=torch.Generator().manual_seed(2))
    sample = SegDataSample(gt_sem_seg=PixelData(data=label[0]))
    sample.set_metainfo(dict(img_shape=(16, 16)))
    logits = head(feats)
    losses = head.loss_by_feat(logits, [sample])
    assert sorted(losses) == ['acc_seg', 'ens.loss_ce']
    streams = head.forward_streams(feats)
    a = head.ensemble.alpha.softmax(0)
    ens = a[0] * streams[:1] + a[1] * streams[1:]
    ens = F.interpolate(ens, (16, 16), mode='bilinear', align_corners=False)
    expected = F.cross_entropy(ens, label[:, 0])
    torch.testing.assert_close(losses['ens.loss_ce'], expected)
    losses['ens.loss_ce'].backward()
    # the single loss trains the shared convs through the ensemble
    assert head.conv_seg.weight.grad.abs().sum() > 0
    assert head.ensemble.alpha.grad.abs().sum() > 0

    official = build_head()
    assert sorted(official.loss_by_feat(official(feats), [sample])) == [
        'acc_seg', 'depth.loss_ce', 'ens.loss_ce', 'rgb.loss_ce'
    ]


def test_switch_errors():
    with pytest.raises(ValueError, match='detach=False'):
        build_head(loss_outputs='ens')
    with pytest.raises(ValueError, match='loss_outputs must be one of'):
        build_head(loss_outputs='streams')
    with pytest.raises(ValueError, match='resize_mode must be one of'):
        build_head(resize_mode='area')
