# Copyright (c) cen_mm contributors. All rights reserved.
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import cen_mm.seg  # noqa: F401
from cen_mm.seg.models import CENSegDataPreProcessor

pytestmark = pytest.mark.usefixtures('mmseg_scope')

OFFICIAL = dict(
    mean=[123.675, 116.28, 103.53, 0., 0., 0.],
    std=[58.395, 57.12, 57.375, 5000., 5000., 5000.])


def _channel_image(values, h=2, w=3):
    """(C, H, W) image whose channel c is the constant values[c]."""
    return torch.tensor(values, dtype=torch.float32).view(-1, 1, 1).expand(
        -1, h, w).clone()


def _channels(batch):
    """Per-channel constants of a preprocessed (1, C, H, W) batch."""
    return batch[0, :, 0, 0].tolist()


def test_official_normalisation_on_known_numbers():
    pre = MODELS.build(
        dict(type='CENSegDataPreProcessor', stream_channels=(3, 3),
             bgr_to_rgb=(True, False), **OFFICIAL))
    # Stacked [B, G, R, d, d, d] as LoadRGBDFromFile produces it.
    b, g, r, depth = 10., 120., 250., 2500.
    img = _channel_image([b, g, r, depth, depth, depth])
    out = pre(dict(inputs=[img]))['inputs']
    assert out.shape == (1, 6, 2, 3)
    expected = [(r - 123.675) / 58.395, (g - 116.28) / 57.12,
                (b - 103.53) / 57.375, 0.5, 0.5, 0.5]
    assert _channels(out) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize('stream_channels,bgr_to_rgb,order', [
    ((3, 3), (True, False), [2, 1, 0, 3, 4, 5]),
    ((3, 3), (False, True), [0, 1, 2, 5, 4, 3]),
    ((3, 3), True, [2, 1, 0, 5, 4, 3]),
    ((3, 3), False, [0, 1, 2, 3, 4, 5]),
    ((3, 1), (True, False), [2, 1, 0, 3]),
    ((1, 3), True, [0, 3, 2, 1]),
    ((3, 3, 3), (False, True, True), [0, 1, 2, 5, 4, 3, 8, 7, 6]),
])
def test_per_modality_flip_and_normalise(stream_channels, bgr_to_rgb, order):
    total = sum(stream_channels)
    mean = [float(c) for c in range(total)]
    std = [float(c + 1) for c in range(total)]
    pre = CENSegDataPreProcessor(
        stream_channels=stream_channels, bgr_to_rgb=bgr_to_rgb, mean=mean,
        std=std)
    values = [100. * (c + 1) for c in range(total)]
    out = pre(dict(inputs=[_channel_image(values)]))['inputs']
    expected = [(values[order[i]] - mean[i]) / std[i] for i in range(total)]
    assert _channels(out) == pytest.approx(expected)


def test_training_pads_inputs_and_labels():
    pre = CENSegDataPreProcessor(
        stream_channels=(3, 3), size=(4, 5), pad_val=0, seg_pad_val=255,
        **OFFICIAL)
    sample = SegDataSample()
    sample.gt_sem_seg = PixelData(data=torch.ones(1, 2, 3, dtype=torch.long))
    img = _channel_image([0., 0., 0., 5000., 5000., 5000.])
    data = pre(dict(inputs=[img], data_samples=[sample]), training=True)
    inputs, label = data['inputs'], data['data_samples'][0].gt_sem_seg.data
    assert inputs.shape == (1, 6, 4, 5) and label.shape == (1, 4, 5)
    assert torch.all(inputs[0, 3:, :2, :3] == 1.)
    assert torch.all(inputs[0, :, 2:] == 0.)
    assert torch.all(label[0, 2:] == 255) and torch.all(label[0, :2, :3] == 1)


def test_uint8_input_is_cast():
    pre = CENSegDataPreProcessor(stream_channels=(3, 1),
                                 bgr_to_rgb=(False, False))
    out = pre(dict(inputs=[torch.full((4, 2, 2), 7, dtype=torch.uint8)]))
    assert out['inputs'].dtype == torch.float32
    assert torch.all(out['inputs'] == 7.)


@pytest.mark.parametrize('kwargs,match', [
    (dict(mean=[0.] * 3, std=[1.] * 3), 'mean has 3 values but the '
     r'modalities \(3, 3\) have 6 channels'),
    (dict(mean=[0.] * 6, std=[1.] * 4), 'std has 4 values'),
    (dict(mean=[0.] * 6), 'give both mean and std'),
    (dict(bgr_to_rgb=(True, )), 'one flag per modality'),
    (dict(stream_channels=(3, 1), bgr_to_rgb=(True, True)),
     'bgr_to_rgb is set for a modality with 1 channels'),
    (dict(stream_channels=3), 'stream_channels must list'),
    (dict(rgb_to_bgr=True), 'rgb_to_bgr is not supported'),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CENSegDataPreProcessor(**kwargs)


def test_bad_input_channels():
    pre = CENSegDataPreProcessor(stream_channels=(3, 3), **OFFICIAL)
    with pytest.raises(ValueError, match=r'input 0 has shape \(3, 2, 3\), '
                       r'expected \(6, H, W\)'):
        pre(dict(inputs=[torch.zeros(3, 2, 3)]))
