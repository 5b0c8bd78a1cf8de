# Copyright (c) cen_mm contributors. All rights reserved.
import copy

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import cen_mm.seg  # noqa: F401
from cen_mm.cnn import exchange_norms
from cen_mm.seg.models import CENEncoderDecoder, CENSegTTAModel
from cen_mm.seg.models.decode_heads import MultiStreamDecodeHead

K = 5  # classes


@pytest.fixture(scope='module', autouse=True)
def mmseg_scope():
    """Configs run under mmseg's scope (default_scope='mmseg'); set for this
    module's tests only."""
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


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
        stream_names=('rgb', 'depth'),
        backbone=dict(
            type='CENResNet',
            depth=50,
            stem_channels=8,
            base_channels=4,
            out_indices=(0, 1, 2, 3)),
        decode_head=dict(
            type=TinyStreamHead,
            in_channels=64,
            in_index=2,
            channels=64,
            dropout_ratio=0.,
            num_classes=K),
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
        # Two overlapping windows: mmseg's window average of each block.
        samples = model.predict(inputs, _samples(1, 32, 48))
        _check_stream_outputs(model, samples, (32, 48))
        metas = [dict(img_shape=(32, 32), ori_shape=(32, 48))]
        left = model.encode_decode(inputs[..., :32], metas)
        right = model.encode_decode(inputs[..., 16:], metas)
        assert left.shape == (3, K, 32, 32)  # (M + 1) * N blocks
        ref = torch.zeros(3, K, 32, 48)
        ref[..., :32] += left
        ref[..., 16:] += right
        ref[..., 16:32] /= 2
        torch.testing.assert_close(
            model.slide_inference(inputs, metas), ref, atol=1e-5,
            rtol=1e-5)
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


def test_streams_declared_once_on_the_model():
    """The model's stream names/count reach the preprocessor, backbone and
    heads; a conflicting value anywhere is a build-time error."""
    cfg = _cfg(stream_names=('rgb', 'hha', 'normal'))
    cfg['data_preprocessor'].update(
        stream_channels=(3, 3, 3), mean=[0.] * 9, std=[1.] * 9,
        bgr_to_rgb=(True, False, False))
    model = MODELS.build(cfg)
    assert model.num_streams == 3
    assert model.data_preprocessor.stream_channels == (3, 3, 3)
    assert model.backbone.num_streams == 3
    assert model.decode_head.stream_names == ('rgb', 'hha', 'normal')
    assert all(layer.num_streams == 3 for _, layer in exchange_norms(model))

    for key, bad, match in (
            ('num_streams', 3, 'num_streams=3 does not match'),
            ('stream_names', ('rgb', ), r'stream_channels \(3, 3\) must'),
            ('stream_names', ('rgb', 'rgb'), 'must give a unique'),
            ('stream_names', ('rgb', 'ens'), 'must give a unique')):
        with pytest.raises(ValueError, match=match):
            MODELS.build(_cfg(**{key: bad}))
    cfg = _cfg()
    cfg['decode_head']['stream_names'] = ('depth', 'rgb')
    with pytest.raises(ValueError, match="decode_head stream_names=.* does "
                       "not match the model's stream_names"):
        MODELS.build(cfg)
    cfg = _cfg()
    cfg['backbone']['num_streams'] = 3
    with pytest.raises(ValueError, match='backbone num_streams=3'):
        MODELS.build(cfg)
    with pytest.raises(ValueError, match=r'data_preprocessor '
                       r'stream_channels=\(3, 3\) does not match'):
        MODELS.build(_cfg(stream_channels=(3, 1)))
    cfg = _cfg(neck=dict(type='Feature2Pyramid', embed_dim=4,
                         norm_cfg=dict(type='ExchangeBN', num_streams=3)))
    with pytest.raises(ValueError, match='neck.* num_streams=3 but the model '
                       'declares 2 streams'):
        MODELS.build(cfg)


def test_bad_head_output_shape(model):
    with pytest.raises(ValueError, match=r'3 batch blocks'):
        model.postprocess_result(torch.zeros(2, K, 8, 8))


def test_fold_inputs_with_generic_backbone():
    """A stock mmseg ResNetV1c with an exchanging norm_cfg becomes a CEN;
    the segmentor folds the stacked (3 + 1)-channel inputs."""
    cfg = _cfg(
        stream_channels=(3, 1),
        backbone=dict(
            type='ResNetV1c',
            depth=18,
            in_channels=3,
            stem_channels=8,
            base_channels=4,
            norm_cfg=dict(type='ExchangeBN')))
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


def test_stock_heads_and_auxiliary_heads_become_multi_stream():
    """Stock mmseg decode and auxiliary heads in a config, made multi-stream
    by the segmentor (shared convs, private norms, ensemble)."""
    norm = dict(type='SyncBN', requires_grad=True)
    cfg = _cfg(
        decode_head=dict(
            type='ASPPHead', in_channels=128, in_index=3, channels=8,
            dilations=(1, 2), num_classes=K, norm_cfg=norm),
        auxiliary_head=[
            dict(type='FCNHead', in_channels=64, in_index=2, channels=8,
                 num_convs=1, num_classes=K, norm_cfg=norm,
                 loss_decode=dict(type='CrossEntropyLoss',
                                  loss_weight=0.4)),
            dict(type='FCNHead', in_channels=32, in_index=1, channels=8,
                 num_convs=1, num_classes=K, norm_cfg=norm)
        ])
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    assert type(model.decode_head).__name__ == 'CENASPPHead'
    assert [type(h).__name__ for h in model.auxiliary_head] == \
        ['CENFCNHead', 'CENFCNHead']
    for head in [model.decode_head, *model.auxiliary_head]:
        assert head.stream_names == ('rgb', 'depth')
        norms = [mod for mod in head.modules()
                 if type(mod).__name__ == 'ExchangeBN']
        assert norms and not any(nm.exchange for nm in norms)
    model.init_weights()
    model.train()
    data = model.data_preprocessor(
        dict(inputs=[torch.rand(6, 32, 32) * 255 for _ in range(2)],
             data_samples=_samples(2, 32, 32)), True)
    losses = model(**data, mode='loss')
    expected = {f'{prefix}.{name}.loss_ce'
                for prefix in ('decode', 'aux_0', 'aux_1')
                for name in ('rgb', 'depth', 'ens')}
    assert expected <= set(losses)
    # Each auxiliary head's losses are its stock losses per output.
    aux = model.auxiliary_head[0]
    feats = model.extract_feat(data['inputs'])
    ref = aux.loss_by_feat(aux(feats), data['data_samples'])
    model.eval()
    samples = model.predict(data['inputs'], data['data_samples'])
    assert samples[0].pred_sem_seg_depth.data.shape == (1, 32, 32)
    assert set(ref) >= {'rgb.loss_ce', 'ens.loss_ce'}


@pytest.mark.parametrize('mode', ['reinit', 'warn', 'error'])
def test_gamma_init_below_threshold(mode, caplog):
    """mmseg's zero_init_residual zeroes every bn3 γ; with exchanging norms
    there, every bn3 channel would be exchanged from the first step."""
    cfg = _cfg(
        gamma_init=mode,
        backbone=dict(
            type='ResNetV1c', depth=50, in_channels=3, stem_channels=8,
            base_channels=4, zero_init_residual=True,
            norm_cfg=dict(type='ExchangeBN', exchange=True)))
    cfg['decode_head'].update(in_channels=64)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    bn3 = [layer for name, layer in exchange_norms(model)
           if name.endswith('.bn3')]
    assert len(bn3) == 16
    if mode == 'error':
        with pytest.raises(ValueError, match=r'32 exchanging norm streams '
                           r'start with γ below .*layer1\.0\.bn3\[rgb\]: '
                           r'16/16 channels'):
            model.init_weights()
        return
    model.init_weights()
    gammas = torch.cat([layer.gamma.flatten() for layer in bn3])
    if mode == 'reinit':
        assert torch.equal(gammas, torch.ones_like(gammas))
    else:
        assert torch.equal(gammas, torch.zeros_like(gammas))
    # Other norms keep their init.
    assert torch.equal(model.backbone.layer1[0].bn2.gamma,
                       torch.ones(2, 4))


def test_gamma_init_partial_is_reported_not_reset():
    """Scattered γ below θ (pretrained weights; the official code starts
    from them) are reported, not re-initialised."""
    model = MODELS.build(_cfg())
    layer = model.backbone.layer1[0].bn2
    with torch.no_grad():
        layer.streams[1].weight[:2] = 1e-3
    found = model.check_gamma_init()
    assert found == ['backbone.layer1.0.bn2[depth]: 2/4 channels with '
                     '|γ| < 0.02']
    assert torch.equal(layer.streams[1].weight[:2], torch.full((2, ), 1e-3))
