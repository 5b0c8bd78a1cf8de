# Copyright (c) cen_mm contributors. All rights reserved.
"""The paper configs use the official evaluation (docs/parity.md)."""
from pathlib import Path

import pytest
from mmengine.config import Config, ConfigDict

from cen_mm.gen.evaluation import CENTranslationEvaluator

REPO = Path(__file__).parents[2]
NYUDV2_PAPER = sorted((REPO / 'configs/cen').glob('cen-refinenet_r*_nyudv2-*'))
# the fusion (CENPix2Pix) configs; the multi-flow ones are checked in
# tests/test_gen/test_models/test_cen_gen_configs.py
FID_CONFIGS = sorted(
    p for p in (REPO / 'configs/cen_gen').glob('*taskonomy*.py')
    if Config.fromfile(str(p)).model.get('target_domain') == 'rgb'
    and Config.fromfile(str(p)).model.type == 'CENPix2Pix')


@pytest.mark.parametrize('path', NYUDV2_PAPER, ids=lambda p: p.name)
def test_nyudv2_paper_configs_evaluate_and_pad_as_official(path):
    cfg = Config.fromfile(str(path))
    assert cfg.model.decode_head.resize_mode == 'bicubic'
    steps = [s.type for s in cfg.train_dataloader.dataset.pipeline]
    assert steps == [
        'LoadRGBDFromFile', 'LoadRGBDAnnotations', 'RGBDRandomResize',
        'RGBDCenterPad', 'RandomFlip', 'RandomCrop', 'PackSegInputs'
    ]
    pad = cfg.train_dataloader.dataset.pipeline[3]
    assert tuple(pad.size) == (500, 500)


def test_fid_configs_found():
    assert len(NYUDV2_PAPER) == 2 and len(FID_CONFIGS) == 8


@pytest.mark.parametrize('path', FID_CONFIGS, ids=lambda p: p.name)
def test_taskonomy_fid_configs_use_official_stretch_and_best_fid(path):
    cfg = Config.fromfile(str(path))
    evaluator = cfg.val_evaluator.to_dict()
    assert evaluator.pop('type') == 'CENTranslationEvaluator'
    extra = evaluator.pop('metrics')
    metrics = [
        ConfigDict(m)
        for m in CENTranslationEvaluator.metric_cfgs(cfg.model, **evaluator) +
        extra
    ]
    assert {m.type for m in metrics} == {'CENFID', 'CENKID'}
    assert all(m.minmax_stretch for m in metrics)
    assert cfg.default_hooks.checkpoint.save_best == 'ens/FID'
    assert cfg.default_hooks.checkpoint.rule == 'less'
    assert any(m.type == 'CENFID' and m.prefix == 'ens' for m in metrics)
