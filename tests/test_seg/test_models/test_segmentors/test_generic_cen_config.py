# Copyright (c) cen_mm contributors. All rights reserved.
"""The generic conversion: a stock mmseg config (MobileNetV2 + PSPNet) made
CEN by a few keys, built and run on CPU."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData
from mmseg.models.backbones import MobileNetV2
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import cen_mm.seg  # noqa: F401
from cen_mm.cnn import exchange_norms
from cen_mm.seg.models import CENEncoderDecoder

CONFIG = Path(__file__).parents[4] / 'configs' / 'cen' / \
    'cen-generic_mobilenet-v2-d8_pspnet_nyudv2-rgbd.py'


@pytest.fixture(scope='module', autouse=True)
def mmseg_scope():
    """Configs run under mmseg's scope (default_scope='mmseg'); set for this
    module's tests only."""
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def _build():
    cfg = Config.fromfile(CONFIG)
    model_cfg = cfg.model
    model_cfg.pretrained = None  # no download in tests
    model_cfg.data_preprocessor.size = (64, 64)
    model_cfg.backbone.widen_factor = 0.25
    model_cfg.decode_head.update(in_channels=80, channels=16)
    model_cfg.auxiliary_head.update(in_channels=24, channels=16)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model


def _samples(n, size):
    samples = []
    for _ in range(n):
        sample = SegDataSample(metainfo=dict(
            ori_shape=size, img_shape=size, pad_shape=size,
            padding_size=[0, 0, 0, 0]))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, 40, (1, ) + size))
        samples.append(sample)
    return samples


def test_generic_config_builds_cen():
    cfg = Config.fromfile(CONFIG)
    # A full config: NYUDv2 RGB-D data, cen_mm runtime and schedule.
    assert cfg.default_scope == 'mmseg'
    assert cfg.train_dataloader.dataset.type == 'NYUDv2RGBDDataset'
    assert cfg.model.backbone.type == 'MobileNetV2'
    assert 'ResNetV1c' not in cfg.pretty_text
    model = _build()
    assert isinstance(model, CENEncoderDecoder)
    assert isinstance(model.backbone, MobileNetV2)
    # mmseg's own PSPHead and FCN auxiliary head, made multi-stream.
    assert type(model.decode_head).__name__ == 'CENPSPHead'
    assert type(model.auxiliary_head).__name__ == 'CENFCNHead'
    assert model.auxiliary_head.stream_names == ('rgb', 'depth')
    norms = dict(exchange_norms(model))
    backbone = [k for k in norms if k.startswith('backbone.')]
    head = [k for k in norms if k.startswith(('decode_head.',
                                               'auxiliary_head.'))]
    assert backbone and head
    assert any(k.startswith('auxiliary_head.') for k in head)
    assert all(norms[k].exchange and norms[k].sparsity == 'own'
               for k in backbone)
    assert not any(norms[k].exchange or norms[k].sparsity != 'none'
                   for k in head)


def test_generic_config_loss_and_predict():
    model = _build()
    model.train()
    data = model.data_preprocessor(
        dict(inputs=[torch.rand(6, 64, 64) * 255 for _ in range(2)],
             data_samples=_samples(2, (64, 64))), True)
    assert data['inputs'].shape == (2, 6, 64, 64)
    losses = model(**data, mode='loss')
    assert {'decode.rgb.loss_ce', 'decode.depth.loss_ce',
            'decode.ens.loss_ce', 'aux.rgb.loss_ce', 'aux.depth.loss_ce',
            'aux.ens.loss_ce'} <= set(losses)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    conv = model.backbone.conv1.conv.weight
    assert conv.grad is not None and conv.grad.abs().sum() > 0

    model.eval()
    data = model.data_preprocessor(
        dict(inputs=[torch.rand(6, 48, 64) * 255],
             data_samples=_samples(1, (48, 64))), False)
    with torch.no_grad():
        sample = model(**data, mode='predict')[0]
    for key in ('pred_sem_seg', 'pred_sem_seg_rgb', 'pred_sem_seg_depth'):
        assert sample.get(key).data.shape == (1, 48, 64)
