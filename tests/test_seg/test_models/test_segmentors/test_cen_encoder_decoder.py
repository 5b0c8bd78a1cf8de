# Copyright (c) cen_mm contributors. All rights reserved.
import copy

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import cen_mm.seg  # noqa: F401
from cen_mm.cnn import exchange_norms
from cen_mm.seg.models import CENEncoderDecoder, CENSegTTAModel
from cen_mm.seg.models.decode_heads import MultiStreamDecodeHead

K = 5  # classes

# Configs run under mmseg's scope (default_scope='mmseg').
init_default_scope('mmseg')


class TinyStreamHead(MultiStreamDecodeHead):
    """1x1-conv classifier on one level; a minimal multi-stream head."""

    def forward_streams(self, inputs):
        return self.cls_seg(self._transform_inputs(inputs))


def _cfg(**kwargs):
    cfg = dict(
        type='CENEncoderDecoder',
        data_preprocessor=dict(
            type='CENSegDataPreProcessor',
            stream_channels=(3, 3),
            mean=[123.675, 116.28, 103.53, 0., 0., 0.],
            std=[58.395, 57.12, 57.375, 5000., 5000., 5000.],
            size_divisor=16),
        num_streams=2,
        stream_names=('rgb', 'depth'),
        backbone=dict(
            type='CENResNet',
            depth=50,
            in_channels=(3, 3),
            stem_channels=8,
            base_channels=4,
            out_indices=(0, 1, 2, 3)),
        decode_head=dict(
            type=TinyStreamHead,
            in_channels=64,
            in_index=2,
            channels=64,
            dropout_ratio=0.,
            num_classes=K,
            num_streams=2,
            stream_names=('rgb', 'depth')),
        test_cfg=ConfigDict(mode='whole'))
    cfg.update(kwargs)
    return cfg


def _samples(n, h, w, flip=False):
    samples = []
    for i in range(n):
        sample = SegDataSample(metainfo=dict(
            img_path=f'{i}.png', ori_shape=(h, w), img_shape=(h, w),
            pad_shape=(h, w),
            padding_size=[0, 0, 0, 0], flip=flip,
            flip_direction='horizontal'))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, K, (1, h, w), generator=torch.Generator()
                               .manual_seed(i)))
        samples.append(sample)
    return samples


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    model = MODELS.build(_cfg())
    model.init_weights()
    # Distinct stream weights so stream and ensemble predictions differ.
    model.decode_head.ensemble.alpha.data = torch.tensor([0.3, -0.4])
    for _, layer in exchange_norms(model):
        layer.streams[1].weight.data.mul_(1.5)
    return model.eval()


def _check_stream_outputs(model, samples, shape):
    weights = model.decode_head.ensemble.weights
    for sample in samples:
        ens = sample.seg_logits.data
        streams = [sample.get(f'seg_logits_{n}').data for n in ('rgb',
                                                                 'depth')]
        assert ens.shape == (K, ) + shape
        # The ensemble is linear in the stream logits, and so are window
        # averaging and bilinear resizing.
        torch.testing.assert_close(
            ens, weights[0] * streams[0] + weights[1] * streams[1],
            atol=1e-5, rtol=1e-5)
        assert torch.equal(sample.pred_sem_seg.data,
                           ens.argmax(0, keepdim=True))
        for name, logits in zip(('rgb', 'depth'), streams):
            pred = sample.get(f'pred_sem_seg_{name}').data
            assert pred.shape == (1, ) + shape
            assert torch.equal(pred, logits.argmax(0, keepdim=True))
        assert not torch.allclose(streams[0], streams[1])


def test_loss_keys_and_slim_loss():
    torch.manual_seed(0)
    model = MODELS.build(_cfg(slim_loss_weight=6e-4))
    assert isinstance(model, CENEncoderDecoder)
    model.init_weights()
    model.train()
    data = model.data_preprocessor(
        dict(inputs=[torch.rand(6, 32, 32) * 255 for _ in range(2)],
             data_samples=_samples(2, 32, 32)), True)
    losses = model(**data, mode='loss')
    assert set(losses) == {
        'decode.rgb.loss_ce', 'decode.depth.loss_ce', 'decode.ens.loss_ce',
        'decode.acc_seg', 'loss_slim'
    }
    # Official L1: stream 0's first half and stream 1's second half of the
    # γ of every bottleneck bn2, nothing else.
    expected = 0.
    for name, module in model.backbone.named_modules():
        if name.endswith('.bn2'):
            c = module.num_features
            expected += module.streams[0].weight[:c // 2].abs().sum()
            expected += module.streams[1].weight[c // 2:].abs().sum()
    torch.testing.assert_close(losses['loss_slim'], 6e-4 * expected)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert model.decode_head.ensemble.alpha.grad is not None
    assert model.backbone.layer1[0].bn2.streams[0].weight.grad is not None


def test_no_slim_loss_by_default(model):
    assert model.slim_loss_weight == 0.
    model.train()
    data = model.data_preprocessor(
        dict(inputs=[torch.rand(6, 32, 32)] * 2,
             data_samples=_samples(2, 32, 32)), True)
    losses = model(**data, mode='loss')
    model.eval()
    assert 'loss_slim' not in losses


def test_whole_inference_per_stream(model):
    inputs = torch.rand(2, 6, 40, 48) * 255
    samples = model.predict(inputs, _samples(2, 40, 48))
    _check_stream_outputs(model, samples, (40, 48))
    # Without data samples too.
    _check_stream_outputs(model, model.predict(inputs), (40, 48))
    # Tensor mode: stream blocks then the ensemble block.
    assert model(inputs, mode='tensor').shape == (6, K, 3, 3)


def test_flip_is_undone_for_every_stream(model):
    inputs = torch.rand(1, 6, 32, 32) * 255
    plain = model.predict(inputs, _samples(1, 32, 32))[0]
    flipped = model.predict(inputs, _samples(1, 32, 32, flip=True))[0]
    for key in ('seg_logits', 'seg_logits_rgb', 'seg_logits_depth'):
        torch.testing.assert_close(
            flipped.get(key).data, plain.get(key).data.flip(-1))


def test_slide_inference_per_stream(model):
    inputs = torch.rand(1, 6, 32, 48) * 255
    whole = model.predict(inputs, _samples(1, 32, 48))[0]
    model.test_cfg = ConfigDict(
        mode='slide', crop_size=(32, 48), stride=(16, 16))
    try:
        # One window covering the image equals whole inference.
        single = model.predict(inputs, _samples(1, 32, 48))[0]
        for key in ('seg_logits', 'seg_logits_rgb', 'seg_logits_depth'):
            torch.testing.assert_close(single.get(key).data,
                                       whole.get(key).data)
        model.test_cfg = ConfigDict(
            mode='slide', crop_size=(32, 32), stride=(16, 16))
        # Two overlapping windows.
        samples = model.predict(inputs, _samples(1, 32, 48))
        _check_stream_outputs(model, samples, (32, 48))
        assert model.out_channels == K  # restored after the windows
    finally:
        model.test_cfg = ConfigDict(mode='whole')


def test_tta_merges_every_stream(model):
    tta = CENSegTTAModel(module=model)
    inputs = torch.rand(1, 6, 32, 32) * 255
    with torch.no_grad():  # as in test_step
        augmented = [
            model.predict(inputs, _samples(1, 32, 32)),
            model.predict(inputs.flip(-1), _samples(1, 32, 32, flip=True)),
        ]
    copies = copy.deepcopy(augmented)
    merged = tta.merge_preds([[aug[0] for aug in augmented]])[0]
    for name in ('rgb', 'depth'):
        probs = sum(
            aug[0].get(f'seg_logits_{name}').data.softmax(0)
            for aug in copies) / 2
        assert torch.equal(
            merged.get(f'pred_sem_seg_{name}').data,
            probs.argmax(0, keepdim=True))
    assert merged.pred_sem_seg.data.shape == (1, 32, 32)


def test_bad_configs():
    with pytest.raises(ValueError,
                       match="does not match the decode_head's num_streams"):
        MODELS.build(_cfg(num_streams=3, stream_names=('a', 'b', 'c')))
    with pytest.raises(ValueError, match='stream_names'):
        MODELS.build(_cfg(stream_names=('rgb', )))
    with pytest.raises(ValueError, match='needs stream_channels'):
        MODELS.build(_cfg(fold_inputs=True))
    cfg = _cfg()
    cfg['decode_head'] = dict(
        type='FCNHead', in_channels=64, in_index=2, channels=8,
        num_classes=K)
    with pytest.raises(TypeError, match='decode_head FCNHead is not a '
                       'multi-stream head'):
        MODELS.build(cfg)
    cfg = _cfg(auxiliary_head=dict(
        type='FCNHead', in_channels=64, in_index=2, channels=8,
        num_classes=K))
    with pytest.raises(TypeError, match='auxiliary_head FCNHead is not a '
                       'multi-stream head'):
        MODELS.build(cfg)


def test_bad_head_output_shape(model):
    with pytest.raises(ValueError, match=r'\(N, 15, H, W\)'):
        model.postprocess_result(torch.zeros(1, K, 8, 8))


def test_fold_inputs_with_generic_backbone():
    """A stock mmseg ResNetV1c with an exchanging norm_cfg becomes a CEN
    when the segmentor folds the stacked (3 + 1)-channel inputs."""
    cfg = _cfg(
        fold_inputs=True,
        stream_channels=(3, 1),
        backbone=dict(
            type='ResNetV1c',
            depth=18,
            in_channels=3,
            stem_channels=8,
            base_channels=4,
            norm_cfg=dict(type='ExchangeBN', num_streams=2)))
    cfg['data_preprocessor'].update(
        stream_channels=(3, 1), mean=[0.] * 4, std=[1.] * 4,
        bgr_to_rgb=(True, False))
    cfg['decode_head'].update(in_channels=16, channels=16)
    model = MODELS.build(cfg).eval()
    inputs = torch.rand(2, 4, 32, 32)
    samples = model.predict(inputs, _samples(2, 32, 32))
    assert samples[0].pred_sem_seg_depth.data.shape == (1, 32, 32)
    # The 1-channel depth is repeated to 3 channels before the backbone.
    feats = model.extract_feat(inputs)
    depth3 = inputs[:, 3:].repeat(1, 3, 1, 1)
    ref = model.backbone(torch.cat([inputs[:, :3], depth3]))
    torch.testing.assert_close(feats[-1], ref[-1])
    with pytest.raises(ValueError, match=r'expected inputs \(N, 4, H, W\)'):
        model.extract_feat(torch.rand(2, 6, 32, 32))
