# Copyright (c) cen_mm contributors. All rights reserved.
"""The base dataset configs build, and their pipelines run on real data."""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmseg.registry import DATASETS, METRICS

from cen_mm.seg.evaluation import StreamIoUMetric

CONFIGS = Path(__file__).parents[3] / 'configs' / '_base_' / 'datasets'


def load(name):
    return Config.fromfile(str(CONFIGS / f'{name}.py'))


@pytest.mark.parametrize('name,num_classes,train_dir,val_dir',
                         [('nyudv2_rgbd', 40, 'train', 'test'),
                          ('sunrgbd_rgbd', 37, 'train', 'test'),
                          ('synthetic_rgbd', 5, 'train', 'val')])
def test_config_structure(name, num_classes, train_dir, val_dir):
    cfg = load(name)
    assert cfg.num_classes == num_classes
    train = cfg.train_dataloader.dataset
    val = cfg.val_dataloader.dataset
    assert train.data_prefix == dict(
        img_path=f'rgb/{train_dir}',
        depth_path=f'depth/{train_dir}',
        seg_map_path=f'label/{train_dir}')
    assert val.data_prefix['depth_path'] == f'depth/{val_dir}'
    assert cfg.test_dataloader == cfg.val_dataloader
    metric = METRICS.build(cfg.val_evaluator)
    assert isinstance(metric, StreamIoUMetric)
    assert metric.stream_names is None  # read from the model's predictions
    for pipeline in (cfg.train_pipeline, cfg.test_pipeline,
                     cfg.tta_pipeline):
        Compose(copy.deepcopy(pipeline))
    assert cfg.tta_pipeline[0]['type'] == 'LoadRGBDFromFile'
    tta = cfg.tta_pipeline[1]['transforms']
    assert [t['type'] for t in tta[0]] == ['RGBDResize'] * len(
        cfg.img_ratios)
    assert [t['prob'] for t in tta[1]] == [0., 1.]


def test_nyudv2_pipelines_on_real_sample(nyu_samples):
    cfg = load('nyudv2_rgbd')
    kwargs = dict(
        type=cfg.dataset_type,
        data_root=str(nyu_samples),
        data_prefix=dict(
            img_path='rgb', depth_path='depth', seg_map_path='label40'))
    train = DATASETS.build(dict(kwargs, pipeline=cfg.train_pipeline))
    torch.manual_seed(0)
    for _ in range(3):
        out = train[0]
        c, h, w = out['inputs'].shape
        assert c == 6 and h <= 500 and w <= 500 and min(h, w) >= 350
        assert out['inputs'].dtype == torch.float32
        sample = out['data_samples']
        assert sample.gt_sem_seg.data.shape == (1, h, w)
        assert sample.depth_path.endswith('depth/000464.png')

    test = DATASETS.build(dict(kwargs, pipeline=cfg.test_pipeline))
    out = test[0]
    assert out['inputs'].shape == (6, 480, 640)

    tta = DATASETS.build(dict(kwargs, pipeline=cfg.tta_pipeline))
    out = tta[0]
    n = len(cfg.img_ratios) * 2
    assert len(out['inputs']) == len(out['data_samples']) == n
    shapes = [tuple(x.shape[1:]) for x in out['inputs'][::2]]
    assert shapes == [(int(480 * r + 0.5), int(640 * r + 0.5))
                      for r in cfg.img_ratios]
    flips = [s.flip for s in out['data_samples'][:2]]
    assert flips == [False, True]
    # Labels are loaded after resizing: always at the original size.
    for s in out['data_samples']:
        assert s.gt_sem_seg.data.shape == (1, 480, 640)
        assert s.ori_shape == (480, 640)
    # The flipped copy is the mirror image, depth included.
    a, b = out['inputs'][0], out['inputs'][1]
    assert torch.equal(a[3:], b[3:].flip(-1))


def test_synthetic_config_generates_and_loads(tmp_path):
    cfg = load('synthetic_rgbd')
    root = str(tmp_path / 'syn')
    cfg.train_dataloader.dataset.data_root = root
    cfg.train_dataloader.dataset.generate = dict(
        num_train=4, num_val=2, size=96, seed=0)
    ds = DATASETS.build(cfg.train_dataloader.dataset)
    assert len(ds) == 4
    out = ds[0]
    # Scaled by 0.75-1.5 and cropped to at most 96 (the preprocessor pads).
    c, h, w = out['inputs'].shape
    assert c == 6 and 72 <= h <= 96 and 72 <= w <= 96
    assert out['data_samples'].gt_sem_seg.data.shape == (1, h, w)
    assert out['data_samples'].gt_sem_seg.data.max() < 5
    cfg.val_dataloader.dataset.data_root = root
    val = DATASETS.build(cfg.val_dataloader.dataset)
    assert len(val) == 2 and val[1]['inputs'].shape == (6, 96, 96)
