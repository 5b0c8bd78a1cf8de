# Copyright (c) cen_mm contributors. All rights reserved.
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.structures import SegDataSample

from cen_mm.seg.models.decode_heads import (CENRefineNetHead,
                                            MultiStreamDecodeHead)


class OneByOneHead(MultiStreamDecodeHead):
    """Smallest multi-stream head: a shared 1x1 conv on the last level."""

    def __init__(self, **kwargs):
        super().__init__(in_channels=4, channels=4, **kwargs)
        self.dropout = None

    def forward_streams(self, inputs):
        return self.cls_seg(self._transform_inputs(inputs))


def make_samples(n, size, num_classes, seed=0):
    g = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(n):
        label = torch.randint(0, num_classes, (1, *size), generator=g)
        label[0, 0, :3] = 255  # some ignored pixels
        sample = SegDataSample(metainfo=dict(img_shape=size, pad_shape=size))
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return samples


def build_head(num_streams=2, names=('rgb', 'depth'), **kwargs):
    torch.manual_seed(0)
    return OneByOneHead(
        num_classes=3, num_streams=num_streams, stream_names=names, **kwargs)


def test_forward_layout_and_ensemble():
    head = build_head(3, ('a', 'b', 'c'))
    with torch.no_grad():
        head.ensemble.alpha.copy_(torch.tensor([0.3, -1.0, 2.0]))
    n = 2
    feats = (torch.randn(3 * n, 4, 5, 6), )
    out = head(feats)
    assert out.shape == (4 * n, 3, 5, 6)
    streams = head.conv_seg(feats[0])
    torch.testing.assert_close(out[:3 * n], streams, rtol=0, atol=1e-6)
    w = torch.softmax(torch.tensor([0.3, -1.0, 2.0]), 0)
    ens = sum(w[m] * streams[m * n:(m + 1) * n] for m in range(3))
    torch.testing.assert_close(out[3 * n:], ens, rtol=0, atol=1e-5)
    assert head.output_names == ('a', 'b', 'c', 'ens')


def test_loss_by_feat_matches_reference():
    # avg_non_ignore: the mean over labelled pixels, as the official NLL.
    head = build_head(
        loss_decode=dict(type='CrossEntropyLoss', avg_non_ignore=True))
    n, k = 2, 3
    logits = torch.randn(3 * n, k, 4, 4)
    samples = make_samples(n, (8, 8), k)
    losses = head.loss_by_feat(logits, samples)
    assert set(losses) == {
        'rgb.loss_ce', 'depth.loss_ce', 'ens.loss_ce', 'acc_seg'
    }
    label = torch.stack([s.gt_sem_seg.data for s in samples]).squeeze(1)
    for i, name in enumerate(('rgb', 'depth', 'ens')):
        up = F.interpolate(
            logits[i * n:(i + 1) * n], size=(8, 8), mode='bilinear',
            align_corners=False)
        ref = F.cross_entropy(up, label, ignore_index=255)
        torch.testing.assert_close(losses[f'{name}.loss_ce'], ref,
                                   rtol=1e-5, atol=1e-5)
    up = F.interpolate(logits[2 * n:], size=(8, 8), mode='bilinear')
    valid = label != 255
    acc = (up.argmax(1)[valid] == label[valid]).float().mean() * 100
    torch.testing.assert_close(losses['acc_seg'].squeeze(), acc,
                               rtol=1e-5, atol=1e-4)


def test_multiple_loss_decode_and_sum_of_equal_names():
    head = build_head(loss_decode=[
        dict(type='CrossEntropyLoss', loss_weight=1.0),
        dict(type='CrossEntropyLoss', loss_weight=0.5),
        dict(type='DiceLoss', loss_name='loss_dice', loss_weight=1.0),
    ])
    logits = torch.randn(6, 3, 4, 4)
    samples = make_samples(2, (4, 4), 3)
    losses = head.loss_by_feat(logits, samples)
    assert set(losses) == {f'{name}.{loss}'
                           for name in ('rgb', 'depth', 'ens')
                           for loss in ('loss_ce', 'loss_dice')} | {'acc_seg'}
    single = build_head().loss_by_feat(logits, samples)
    for name in ('rgb', 'depth', 'ens'):
        torch.testing.assert_close(losses[f'{name}.loss_ce'],
                                   1.5 * single[f'{name}.loss_ce'])


def test_predict_by_feat_is_mmseg_and_keeps_batch_blocks():
    head = build_head()
    n, k = 2, 3
    logits = torch.randn(3 * n, k, 4, 4)
    metas = [dict(img_shape=(8, 12), pad_shape=(8, 12))] * n
    out = head.predict_by_feat(logits, metas)
    # mmseg's own resize (default resize_mode), every block kept.
    torch.testing.assert_close(
        out, BaseDecodeHead.predict_by_feat(head, logits, metas))
    assert out.shape == (3 * n, k, 8, 12)
    torch.testing.assert_close(
        out, F.interpolate(logits, size=(8, 12), mode='bilinear'))


def _grads_after(head, feats, samples, keys):
    head.zero_grad(set_to_none=True)
    losses = head.loss(feats, samples, None)
    sum(losses[k] for k in keys).backward()
    return {name: p.grad for name, p in head.named_parameters()}


@pytest.mark.parametrize('make_head', ['1x1', 'refinenet'])
def test_ensemble_loss_trains_only_alpha(make_head):
    if make_head == '1x1':
        head = build_head()
        feats = (torch.randn(4, 4, 4, 4), )
    else:
        torch.manual_seed(0)
        head = CENRefineNetHead(
            in_channels=(2, 3, 4, 5), channels=4, top_channels=6,
            num_classes=3)
        feats = tuple(
            torch.randn(4, c, 16 // 2**i, 16 // 2**i)
            for i, c in enumerate((2, 3, 4, 5)))
    samples = make_samples(2, (16, 16), 3)
    grads = _grads_after(head, feats, samples, ['ens.loss_ce'])
    assert grads['ensemble.alpha'] is not None
    assert grads['ensemble.alpha'].abs().sum() > 0
    others = [g for name, g in grads.items() if name != 'ensemble.alpha']
    assert others and all(g is None or not g.any() for g in others)

    grads = _grads_after(head, feats, samples,
                         ['rgb.loss_ce', 'depth.loss_ce'])
    assert grads['ensemble.alpha'] is None or \
        not grads['ensemble.alpha'].any()
    assert grads['conv_seg.weight'].abs().sum() > 0


def test_undetached_ensemble_trains_decoder():
    head = build_head(ensemble=dict(detach=False))
    samples = make_samples(2, (4, 4), 3)
    grads = _grads_after(head, (torch.randn(4, 4, 4, 4), ), samples,
                         ['ens.loss_ce'])
    assert grads['conv_seg.weight'].abs().sum() > 0


def test_bad_arguments():
    with pytest.raises(ValueError, match='stream_names'):
        build_head(2, ('rgb', ))
    with pytest.raises(ValueError, match='ens'):
        build_head(2, ('rgb', 'ens'))
    with pytest.raises(ValueError, match='unique'):
        build_head(2, ('rgb', 'rgb'))
    with pytest.raises(TypeError, match='ensemble'):
        build_head(ensemble='softmax')
    head = build_head()
    with pytest.raises(ValueError, match='divisible'):
        head((torch.randn(3, 4, 2, 2), ))
    with pytest.raises(ValueError, match='divisible'):
        head.loss_by_feat(torch.randn(4, 3, 2, 2), make_samples(2, (2, 2), 3))


def test_is_abstract():
    with pytest.raises(TypeError):
        MultiStreamDecodeHead(in_channels=4, channels=4, num_classes=3)
    assert isinstance(build_head().ensemble, nn.Module)
