# Copyright (c) cen_mm contributors. All rights reserved.
"""The base model configs build the official architectures: parameter
totals equal the official code's (official-cen.md §1.11)."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS

import cen_mm.seg  # noqa: F401
from cen_mm.cnn import exchange_norms
from cen_mm.seg.models import (CENEncoderDecoder, CENResNet,
                               CENSegDataPreProcessor)

MODELS_DIR = Path(__file__).parents[4] / 'configs' / '_base_' / 'models'


@pytest.fixture(scope='module', autouse=True)
def mmseg_scope():
    """Configs run under mmseg's scope (default_scope='mmseg'); set for this
    module's tests only."""
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def _build(name):
    cfg = Config.fromfile(MODELS_DIR / f'{name}.py')
    assert cfg.model.backbone.init_cfg.type == 'Pretrained'
    cfg.model.backbone.init_cfg = None  # no download
    # Meta tensors: counted by construction, never allocated or run.
    with torch.device('meta'):
        return MODELS.build(cfg.model)


@pytest.mark.parametrize('name,total,encoder,sites', [
    ('cen_resnet50_refinenet', 99.157, 23.561, 16),
    ('cen_resnet101_refinenet', 118.202, 42.606, 33),
    ('cen_resnet152_refinenet', 133.891, 58.295, 50),
])
def test_official_refinenet_models(name, total, encoder, sites):
    model = _build(name)
    assert isinstance(model, CENEncoderDecoder)
    assert isinstance(model.backbone, CENResNet)
    assert isinstance(model.data_preprocessor, CENSegDataPreProcessor)
    assert model.backbone.norm_eval and not model.backbone.deep_stem
    count = sum(p.numel() for p in model.parameters())
    enc = sum(p.numel() for p in model.backbone.parameters())
    assert (round(count / 1e6, 3), round(enc / 1e6, 3)) == (total, encoder)
    assert sum(layer.exchange for _, layer in exchange_norms(model)) == sites
    assert model.decode_head.num_classes == 40


def test_pspnet_model():
    model = _build('cen_resnet101-d8_pspnet')
    assert model.backbone.deep_stem and model.backbone.dilations == (1, 1, 2,
                                                                     4)
    assert sum(layer.exchange for _, layer in exchange_norms(model)) == 33
    # Head norms are private per stream and never exchange.
    head = [layer for name, layer in exchange_norms(model)
            if name.startswith('decode_head.')]
    assert head and not any(layer.exchange for layer in head)
