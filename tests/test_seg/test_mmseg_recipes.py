# Copyright (c) cen_mm contributors. All rights reserved.
"""The mmseg-recipe configs (a stock mmseg config + the RGB-D data base + a
few keys) through a real Runner: the stock decode head and auxiliary head
run multi-stream, one training iteration updates the backbone, both heads
and the ensembles, and the test pass reports the ensemble's and each
stream's mIoU of the model's own predictions (recomputed here), on the
NYUDv2 sample and on generated RGB-D scenes."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.runner import Runner

import cen_mm.seg  # noqa: F401
from cen_mm.cnn import exchange_norms

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get('CEN_MM_DATA', ROOT.parent / 'shared' / 'data'))
SAMPLES = DATA / 'nyudv2-samples'
# recipe: (stock mmseg host config, generated head class, decode head
# widths at 1/8 of the R50)
RECIPES = {
    'cen-deeplabv3plus_r50-d8_1xb6-40k_nyudv2-rgbd-500x500.py':
    ('deeplabv3plus/deeplabv3plus_r50-d8_4xb2-40k_cityscapes-512x1024.py',
     'CENDepthwiseSeparableASPPHead',
     dict(in_channels=256, channels=16, c1_in_channels=32, c1_channels=8)),
    'cen-upernet_r50_1xb6-40k_nyudv2-rgbd-500x500.py':
    ('upernet/upernet_r50_4xb2-40k_cityscapes-512x1024.py', 'CENUPerHead',
     dict(in_channels=[32, 64, 128, 256], channels=16)),
    'cen-fcn_r50-d8_1xb6-40k_nyudv2-rgbd-500x500.py':
    ('fcn/fcn_r50-d8_4xb2-40k_cityscapes-512x1024.py', 'CENFCNHead',
     dict(in_channels=256, channels=16)),
}
STREAMS = ('rgb', 'depth')


def small_config(name, work_dir, data, data_root):
    """The recipe at 1/8 width (same topology), 128 px crops, one
    iteration; `data` = 'nyudv2' (the real sample) or 'generated'."""
    cfg = Config.fromfile(str(ROOT / 'configs' / 'cen' / name))
    cfg.work_dir = work_dir
    cfg.model.pretrained = None  # no download
    cfg.model.backbone.update(stem_channels=8, base_channels=8)
    cfg.model.decode_head.update(RECIPES[name][2])
    cfg.model.auxiliary_head.update(in_channels=128, channels=8)
    cfg.model.data_preprocessor.size = (128, 128)
    if data == 'generated':
        num_classes = 5
        dataset = dict(
            type='SyntheticRGBDDataset',
            data_root=data_root,
            generate=dict(num_train=2, num_val=2, size=96, seed=0))
        prefix = dict(train='/train', test='/val', label='label')
    else:
        num_classes = 40
        dataset = dict(data_root=data_root)
        prefix = dict(train='', test='', label='label40')
    for head in (cfg.model.decode_head, cfg.model.auxiliary_head):
        head.num_classes = num_classes
    for split in ('train', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.update(num_workers=0, persistent_workers=False,
                      batch_size=2 if split == 'train' else 1)
        sub = prefix[split]
        loader.dataset.update(
            dataset,
            data_prefix=dict(
                img_path=f'rgb{sub}',
                depth_path=f'depth{sub}',
                seg_map_path=f'{prefix["label"]}{sub}'))
    # Two samples per training batch (ASPP's image pooling normalises
    # 1x1 maps, which needs more than one value per stream).
    cfg.train_dataloader.dataset = dict(
        type='RepeatDataset', times=2, dataset=cfg.train_dataloader.dataset)
    cfg.train_dataloader.dataset.dataset.pipeline[3].crop_size = (128, 128)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=1,
                         val_interval=100)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=100,
                                        save_last=False)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.log_level = 'WARNING'
    return cfg


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_recipe_values(name):
    """The host's model and schedule; cen_mm's data, λ and preprocessor."""
    cfg = Config.fromfile(str(ROOT / 'configs' / 'cen' / name))
    host = get_config(f'mmseg::{RECIPES[name][0]}')
    assert f"'mmseg::{RECIPES[name][0]}'" in (ROOT / 'configs' / 'cen' /
                                              name).read_text()
    # host: SGD 0.01, poly, 40k iterations; model widths unchanged
    for key in ('optim_wrapper', 'param_scheduler', 'train_cfg'):
        assert _unscoped(cfg[key]) == _unscoped(host[key]), key
    for head in ('decode_head', 'auxiliary_head'):
        assert _unscoped(cfg.model[head]) == dict(
            _unscoped(host.model[head]), num_classes=40)
    assert _unscoped(cfg.model.backbone) == dict(
        _unscoped(host.model.backbone), type='CENResNetV1c',
        norm_cfg=dict(type='ExchangeBN', requires_grad=True))
    # cen_mm: NYUDv2 RGB-D data (official batch 6, 500 crops), λ = 6e-4
    train = cfg.train_dataloader
    assert (train.batch_size, train.dataset.type) == (6, 'NYUDv2RGBDDataset')
    assert 'Cityscapes' not in str(cfg.test_dataloader)
    assert cfg.val_evaluator.type == cfg.test_evaluator.type == \
        'StreamIoUMetric'
    pre = cfg.model.data_preprocessor
    assert (pre.type, pre.size, pre.stream_channels) == (
        'CENSegDataPreProcessor', (500, 500), (3, 3))
    assert pre.std == [58.395, 57.12, 57.375, 5000., 5000., 5000.]
    [hook] = cfg.custom_hooks
    assert (hook.type, hook.lam) == ('GammaSparsityHook', 6e-4)
    assert (cfg.tta_model.type, cfg.visualizer.type) == (
        'CENSegTTAModel', 'CENSegLocalVisualizer')


def _unscoped(value):
    """A config value without the ``_scope_`` keys that inheriting from an
    ``mmseg::`` config adds."""
    if isinstance(value, dict):
        return {k: _unscoped(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return type(value)(_unscoped(v) for v in value)
    return value


def reference_miou(runner, key):
    """mIoU (x100) of ``key`` predictions over the test set, computed here:
    per class, intersection / union summed over the images (labels 255
    ignored), averaged over the classes that occur."""
    num_classes = len(runner.test_dataloader.dataset.metainfo['classes'])
    inter = np.zeros(num_classes)
    union = np.zeros(num_classes)
    runner.model.eval()
    with torch.no_grad():
        for batch in runner.test_dataloader:
            for sample in runner.model.test_step(batch):
                pred = sample.get(key).data.squeeze(0).numpy()
                label = sample.gt_sem_seg.data.squeeze(0).numpy()
                valid = label != 255
                pred, label = pred[valid], label[valid]
                for c in range(num_classes):
                    inter[c] += np.sum((pred == c) & (label == c))
                    union[c] += np.sum((pred == c) | (label == c))
    occurring = union > 0
    return 100 * np.mean(inter[occurring] / union[occurring])


@pytest.mark.parametrize('data', ['generated', 'nyudv2'])
@pytest.mark.parametrize('name', sorted(RECIPES))
def test_recipe_trains_and_tests(name, data, tmp_path):
    if data == 'nyudv2':
        if not (SAMPLES / 'depth' / '000464.png').is_file():
            pytest.skip(f'NYUDv2 samples not found under {SAMPLES} '
                        '(set CEN_MM_DATA); the generated case covers it')
        data_root = SAMPLES
    else:
        data_root = tmp_path / 'synthetic'
    cfg = small_config(name, str(tmp_path / 'work'), data, str(data_root))
    torch.manual_seed(0)
    runner = Runner.from_cfg(cfg)
    model = runner.model
    assert type(model.decode_head).__name__ == RECIPES[name][1]
    assert type(model.auxiliary_head).__name__ == 'CENFCNHead'
    assert type(model.backbone).__name__ == 'CENResNetV1c'
    assert model.decode_head.stream_names == STREAMS
    assert model.auxiliary_head.stream_names == STREAMS
    # Exchange (θ = 2e-2, L1 on the own γ half) at the 16 bottleneck 3x3
    # convs; every other norm, heads included, private and not exchanging.
    norms = dict(exchange_norms(model))
    exchanging = {k: n for k, n in norms.items() if n.exchange}
    assert len(exchanging) == 16
    assert all(k.startswith('backbone.') and k.endswith('.bn2')
               and n.threshold == 2e-2 and n.sparsity == 'own'
               for k, n in exchanging.items())
    assert any(k.startswith('auxiliary_head.') for k in norms)

    watched = ('backbone.stem.0.weight', 'decode_head.conv_seg.weight',
               'auxiliary_head.conv_seg.weight', 'decode_head.ensemble.alpha',
               'auxiliary_head.ensemble.alpha')
    params = dict(model.named_parameters())
    before = {k: params[k].detach().clone() for k in watched}
    runner.train()
    scalars = runner.message_hub.log_scalars
    for head in ('decode', 'aux'):
        for output in STREAMS + ('ens', ):
            value = scalars[f'train/{head}.{output}.loss_ce'].current()
            assert np.isfinite(value) and value > 0, (head, output, value)
    for key in watched:  # one SGD step reached every part
        assert not torch.equal(params[key], before[key]), key

    metrics = runner.test()
    assert metrics['mIoU'] == pytest.approx(
        reference_miou(runner, 'pred_sem_seg'), abs=6e-3)
    for stream in STREAMS:
        assert metrics[f'{stream}/mIoU'] == pytest.approx(
            reference_miou(runner, f'pred_sem_seg_{stream}'), abs=6e-3)
