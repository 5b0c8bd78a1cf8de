# Copyright (c) cen_mm contributors. All rights reserved.
"""Every shipped segmentation config builds, and one train and one test
step of each run on CPU at a tiny input size (same depth and widths, 32 px
inputs instead of 500 px crops). The cost is dominated by the parameter
count (R152 + full RefineNet: 134 M), not by the input size."""
import ast
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS, init_default_scope
from mmengine.structures import PixelData
from mmengine.utils import import_modules_from_strings
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import cen_mm.seg.engine  # noqa: F401  (StagedLR; see the first test)

REPO = Path(__file__).parents[2]
CONFIGS = sorted((REPO / 'configs' / 'cen').glob('*.py'))
SIZE = 32
# Short aliases: checked to resolve to the same config as their target.
ALIASES = {'refinenet_r152_nyudv2.py':
           'cen-refinenet_r152_1xb6-450e_nyudv2-rgbd-500x500.py'}

# Official totals (official-cen.md 1.11): encoder 42.606 M + decoder 75.596 M
# (incl. alpha) for ResNet-101.
EXPECTED_PARAMS_M = {
    'cen-refinenet_r101_1xb6-300e_nyudv2-rgbd-500x500.py': 118.202,
    'cen-refinenet_r152_1xb6-450e_nyudv2-rgbd-500x500.py': 133.891,
}


@pytest.fixture(scope='module', autouse=True)
def quiet_logger():
    # The optimizer constructor logs every parameter's options at INFO.
    MMLogger.get_instance('test_seg_configs', log_level='WARNING')


def load(path):
    cfg = Config.fromfile(str(path))
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    return cfg


def tiny_model_cfg(cfg):
    """Same architecture, no pretrained download, 64 px training crops."""
    model = copy.deepcopy(cfg.model)
    model.backbone.init_cfg = None
    if 'size' in model.data_preprocessor:
        model.data_preprocessor.size = (SIZE, SIZE)
    return model


def fake_batch(n, num_classes, channels=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(n):
        img = torch.rand(channels, SIZE, SIZE, generator=g) * 255
        img[3:] *= 40  # raw depth units (metres x 5000)
        label = torch.randint(0, num_classes, (1, SIZE, SIZE), generator=g)
        sample = SegDataSample(
            metainfo=dict(
                img_shape=(SIZE, SIZE),
                ori_shape=(SIZE, SIZE),
                pad_shape=(SIZE, SIZE)))
        sample.gt_sem_seg = PixelData(data=label)
        inputs.append(img)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def test_custom_imports_register_everything():
    """``custom_imports=['cen_mm.seg']`` alone must register the staged
    LR scheduler (cen_mm/seg/__init__.py imports cen_mm.seg.engine)."""
    tree = ast.parse((REPO / 'cen_mm' / 'seg' / '__init__.py').read_text())
    imported = {
        alias.name
        for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        and node.level == 1 and not node.module for alias in node.names
    }
    assert 'engine' in imported
    assert PARAM_SCHEDULERS.get('StagedLR') is not None


def test_configs_found():
    names = {p.name for p in CONFIGS}
    for name in ('cen-refinenet_r101_1xb6-300e_nyudv2-rgbd-500x500.py',
                 'cen-refinenet_r152_1xb6-450e_nyudv2-rgbd-500x500.py',
                 'cen-pspnet_r152-d8_1xb6-450e_nyudv2-rgbd-500x500.py',
                 'cen-refinenet_r101_1xb6-60e_sunrgbd-rgbd-500x500.py',
                 'refinenet_r152_nyudv2.py',
                 'cen-refinenet_r50_synthetic-rgbd.py'):
        assert name in names


@pytest.mark.parametrize('alias', sorted(ALIASES))
def test_alias_matches_target(alias):
    cfg = load(REPO / 'configs' / 'cen' / alias)
    target = load(REPO / 'configs' / 'cen' / ALIASES[alias])
    assert cfg.to_dict() == target.to_dict()


@pytest.mark.parametrize(
    'path', [p for p in CONFIGS if p.name not in ALIASES],
    ids=lambda p: p.name)
def test_config_builds_trains_and_tests(path):
    cfg = load(path)
    model = MODELS.build(tiny_model_cfg(cfg))
    if path.name in EXPECTED_PARAMS_M:
        total = sum(p.numel() for p in model.parameters())
        assert round(total / 1e6, 3) == EXPECTED_PARAMS_M[path.name]
    head = model.decode_head
    k = head.num_classes
    names = tuple(model.stream_names)

    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    schedulers = [
        PARAM_SCHEDULERS.build(
            dict(s), default_args=dict(optimizer=optim_wrapper))
        for s in cfg.param_scheduler
    ]
    assert schedulers
    if any(s['type'] == 'StagedLR' for s in cfg.param_scheduler):
        # The CEN recipe: encoder and decoder (alpha included) LRs.
        lrs = {
            'encoder' if g.get('lr_group') == 'encoder' else 'decoder':
            g['lr']
            for g in optim_wrapper.param_groups
        }
        assert lrs['encoder'] <= lrs['decoder']
        alpha = head.ensemble.alpha
        group = next(g for g in optim_wrapper.param_groups
                     if any(p is alpha for p in g['params']))
        assert 'lr_group' not in group

    model.train()
    log_vars = model.train_step(fake_batch(2, k), optim_wrapper)
    for name in names + ('ens', ):
        value = log_vars[f'decode.{name}.loss_ce']
        assert torch.isfinite(value)
    assert torch.isfinite(log_vars['loss'])

    model.eval()
    with torch.no_grad():
        outputs = model.test_step(fake_batch(1, k, seed=1))
    out = outputs[0]
    assert out.pred_sem_seg.data.shape == (1, SIZE, SIZE)
    for name in names:
        assert out.get(f'pred_sem_seg_{name}').data.shape == (1, SIZE, SIZE)
