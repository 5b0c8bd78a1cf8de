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


@pytest.mark.parametrize('name,dataset,num_classes,train_dir,val_dir',
                         [('nyudv2_rgbd', 'NYUDv2RGBDDataset', 40, 'train',
                           'test'),
                          ('sunrgbd_rgbd', 'SUNRGBDDataset', 37, 'train',
                           'test'),
                          ('synthetic_rgbd', 'SyntheticRGBDDataset', 5,
                           'train', 'val')])
def test_config_structure(name, dataset, num_classes, train_dir, val_dir):
    cfg = load(name)
    data = cfg.rgbd_data
    assert data.num_classes == num_classes
    train = cfg.train_dataloader.dataset
    val = cfg.val_dataloader.dataset
    assert train.type == val.type == dataset
    assert train.data_prefix == dict(
        img_path=f'rgb/{train_dir}',
        depth_path=f'depth/{train_dir}',
        seg_map_path=f'label/{train_dir}')
    assert val.data_prefix['depth_path'] == f'depth/{val_dir}'
    assert cfg.test_dataloader == cfg.val_dataloader
    assert cfg.test_evaluator == cfg.val_evaluator
    # The usual keys are the ones in `rgbd_data`.
    for key in ('test_pipeline', 'tta_pipeline', 'train_dataloader',
                'val_dataloader', 'test_dataloader', 'val_evaluator',
                'test_evaluator'):
        assert cfg[key] == data[key], key
    assert train.pipeline == data.train_pipeline
    assert val.pipeline == data.test_pipeline == cfg.test_pipeline
    # The class count comes from the dataset, so pipelines are shared.
    assert DATASETS.get(dataset).METAINFO['classes'].__len__() == num_classes
    metric = METRICS.build(cfg.val_evaluator)
    assert isinstance(metric, StreamIoUMetric)
    assert metric.stream_names is None  # read from the model's predictions
    for pipeline in (data.train_pipeline, data.test_pipeline,
                     data.tta_pipeline):
        Compose(copy.deepcopy(pipeline))
    assert data.tta_pipeline[0]['type'] == 'LoadRGBDFromFile'
    tta = data.tta_pipeline[1]['transforms']
    assert [t['scale_factor'] for t in tta[0]] == data.img_ratios
    assert [t['type'] for t in tta[0]] == ['RGBDResize'] * len(
        data.img_ratios)
    assert [t['prob'] for t in tta[1]] == [0., 1.]


def test_nyudv2_pipelines_on_real_sample(nyu_samples):
    cfg = load('nyudv2_rgbd').rgbd_data
    kwargs = dict(
        type='NYUDv2RGBDDataset',
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


# A full stock mmseg config plus an RGB-D data base, as in the README recipe.
# mmengine merges a config into its bases but never two sibling bases into
# each other, so the data keys are replaced in the config itself.
MIXED = '''
_base_ = ['mmseg::{host}', '{data}']
train_dataloader = dict(_delete_=True, **_base_.rgbd_data.train_dataloader)
val_dataloader = dict(_delete_=True, **_base_.rgbd_data.val_dataloader)
test_dataloader = dict(_delete_=True, **_base_.rgbd_data.test_dataloader)
val_evaluator = dict(_delete_=True, **_base_.rgbd_data.val_evaluator)
test_evaluator = dict(_delete_=True, **_base_.rgbd_data.test_evaluator)
test_pipeline = _base_.rgbd_data.test_pipeline
tta_pipeline = _base_.rgbd_data.tta_pipeline
'''
HOSTS = ('deeplabv3plus/deeplabv3plus_r50-d8_4xb2-40k_cityscapes-512x1024.py',
         'fcn/fcn_r50-d8_4xb4-80k_ade20k-512x512.py')


def _mixed(tmp_path, host, name):
    mixed = tmp_path / f'mixed_{name}.py'
    mixed.write_text(MIXED.format(host=host, data=CONFIGS / f'{name}_data.py'))
    return Config.fromfile(str(mixed))


def _assert_data_replaced(cfg, name):
    usual = load(name)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                'val_evaluator', 'test_evaluator', 'test_pipeline',
                'tta_pipeline'):
        assert cfg[key] == usual[key], key
    # Nothing of the host's data is left (e.g. ADE's reduce_zero_label).
    assert 'reduce_zero_label' not in cfg.train_dataloader.dataset


@pytest.mark.parametrize('host', HOSTS)
def test_data_base_combines_with_a_full_mmseg_config(tmp_path, host):
    # The usual-keys base collides with the host's data keys ...
    clash = tmp_path / 'clash.py'
    clash.write_text(
        f"_base_ = ['mmseg::{host}', '{CONFIGS / 'nyudv2_rgbd.py'}']\n")
    with pytest.raises(KeyError, match='Duplicate key'):
        Config.fromfile(str(clash))
    # ... its `_data` twin does not, and replaces them completely.
    cfg = _mixed(tmp_path, host, 'nyudv2_rgbd')
    _assert_data_replaced(cfg, 'nyudv2_rgbd')
    # The host's model, schedule and runtime are kept.
    host_only = tmp_path / 'host.py'
    host_only.write_text(f"_base_ = ['mmseg::{host}']\n")
    host_cfg = Config.fromfile(str(host_only))
    for key in ('model', 'param_scheduler', 'train_cfg', 'default_hooks',
                'optim_wrapper', 'crop_size'):
        assert cfg[key] == host_cfg[key], key


def test_every_data_base_combines(tmp_path):
    for name in ('sunrgbd_rgbd', 'synthetic_rgbd'):
        _assert_data_replaced(_mixed(tmp_path, HOSTS[0], name), name)


def test_mixed_config_loads_generated_rgbd_data(tmp_path):
    cfg = _mixed(tmp_path, HOSTS[0], 'synthetic_rgbd')
    loader = cfg.val_dataloader
    loader.dataset.data_root = str(tmp_path / 'syn')
    loader.dataset.generate = dict(num_train=1, num_val=2, size=32, seed=0)
    val = DATASETS.build(loader.dataset)
    assert len(val) == 2
    assert val[0]['inputs'].shape == (6, 32, 32)
