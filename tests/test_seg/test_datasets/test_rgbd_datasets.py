# Copyright (c) cen_mm contributors. All rights reserved.
import os.path as osp

import cv2
import numpy as np
import pytest
from mmseg.registry import DATASETS

from cen_mm.seg.datasets import (NYUDv2RGBDDataset, SUNRGBDDataset,
                                 SyntheticRGBDDataset)

SAMPLE_PREFIX = dict(
    img_path='rgb', depth_path='depth', seg_map_path='label40')
TEST_PIPELINE = [
    dict(type='LoadRGBDFromFile'),
    dict(type='LoadRGBDAnnotations', num_classes=40),
    dict(type='PackSegInputs')
]


def test_metainfo():
    nyu = NYUDv2RGBDDataset.METAINFO
    sun = SUNRGBDDataset.METAINFO
    assert len(nyu['classes']) == len(nyu['palette']) == 40
    assert nyu['classes'][0] == 'wall' and nyu['classes'][39] == 'otherprop'
    assert len(set(map(tuple, nyu['palette']))) == 40
    assert len(sun['classes']) == len(sun['palette']) == 37
    assert sun['palette'] == nyu['palette'][:37]
    assert sun['classes'][23] == 'fridge' and sun['classes'][36] == 'bag'
    assert SyntheticRGBDDataset.METAINFO['classes'][0] == 'background'
    for name in ('NYUDv2RGBDDataset', 'SUNRGBDDataset',
                 'SyntheticRGBDDataset', 'RGBDSegDataset'):
        assert DATASETS.get(name) is not None


def test_scan_folders_and_pipeline(nyu_samples):
    ds = NYUDv2RGBDDataset(
        data_root=str(nyu_samples),
        data_prefix=SAMPLE_PREFIX,
        pipeline=TEST_PIPELINE,
        test_mode=True)
    assert len(ds) == 1
    info = ds.get_data_info(0)
    assert info['img_path'] == osp.join(nyu_samples, 'rgb', '000464.png')
    assert info['depth_path'] == osp.join(nyu_samples, 'depth', '000464.png')
    assert info['seg_map_path'] == osp.join(nyu_samples, 'label40',
                                            '000464.png')
    out = ds[0]
    assert out['inputs'].shape == (6, 480, 640)
    sample = out['data_samples']
    assert sample.gt_sem_seg.data.shape == (1, 480, 640)
    label = cv2.imread(info['seg_map_path'], cv2.IMREAD_UNCHANGED)
    assert np.array_equal(sample.gt_sem_seg.data[0].numpy(), label)


def test_ann_file_stems_and_official_triplets(nyu_samples, tmp_path):
    stems = tmp_path / 'stems.txt'
    stems.write_text('000464\n\n')
    ds = NYUDv2RGBDDataset(
        data_root=str(nyu_samples),
        ann_file=str(stems),
        data_prefix=SAMPLE_PREFIX)
    by_stem = ds.get_data_info(0)

    # Official CEN format: rgb, mask, depth relative to data_root.
    triplets = tmp_path / 'val.txt'
    triplets.write_text(
        'rgb/000464.png\tlabel40/000464.png\tdepth/000464.png\n')
    ds = NYUDv2RGBDDataset(
        data_root=str(nyu_samples),
        ann_file=str(triplets),
        data_prefix=SAMPLE_PREFIX)
    by_triplet = ds.get_data_info(0)
    for key in ('img_path', 'depth_path', 'seg_map_path'):
        assert osp.normpath(by_stem[key]) == osp.normpath(by_triplet[key])

    mixed = tmp_path / 'mixed.txt'
    mixed.write_text('000464\nrgb/000464.png\tlabel40/000464.png\t'
                     'depth/000464.png\n')
    with pytest.raises(ValueError, match='one stem'):
        NYUDv2RGBDDataset(
            data_root=str(nyu_samples),
            ann_file=str(mixed),
            data_prefix=SAMPLE_PREFIX)
    with pytest.raises(FileNotFoundError, match='ann_file'):
        NYUDv2RGBDDataset(
            data_root=str(nyu_samples),
            ann_file='missing.txt',
            data_prefix=SAMPLE_PREFIX)


def test_missing_depth_is_named(nyu_samples):
    prefix = dict(
        img_path='rgb-label-only/rgb',
        depth_path='depth',
        seg_map_path='rgb-label-only/label40')
    with pytest.raises(FileNotFoundError,
                       match=r'depth map .*depth/000834\.png'):
        NYUDv2RGBDDataset(data_root=str(nyu_samples), data_prefix=prefix)
    # Without the up-front check, the loader names the file.
    ds = NYUDv2RGBDDataset(
        data_root=str(nyu_samples),
        data_prefix=prefix,
        check_files=False,
        pipeline=TEST_PIPELINE)
    with pytest.raises(FileNotFoundError,
                       match=r'depth map .*depth/000834\.png'):
        ds[0]
    with pytest.raises(KeyError, match='depth_path'):
        NYUDv2RGBDDataset(
            data_root=str(nyu_samples),
            data_prefix=dict(img_path='rgb', seg_map_path='label40'))
    with pytest.raises(FileNotFoundError, match='RGB folder'):
        NYUDv2RGBDDataset(
            data_root=str(nyu_samples),
            data_prefix=dict(img_path='nope', depth_path='depth'))


def test_sunrgbd_reduce_zero_label(tmp_path):
    for kind in ('rgb', 'depth', 'label'):
        (tmp_path / kind).mkdir()
    cv2.imwrite(str(tmp_path / 'rgb' / 'a.png'),
                np.zeros((4, 5, 3), np.uint8))
    cv2.imwrite(str(tmp_path / 'depth' / 'a.png'),
                np.full((4, 5), 5000, np.uint16))
    raw = np.array([[0, 1, 37, 2, 0]] * 4, np.uint8)  # raw release: 0 void
    cv2.imwrite(str(tmp_path / 'label' / 'a.png'), raw)
    ds = SUNRGBDDataset(
        data_root=str(tmp_path),
        data_prefix=dict(
            img_path='rgb', depth_path='depth', seg_map_path='label'),
        reduce_zero_label=True,
        pipeline=[
            dict(type='LoadRGBDFromFile'),
            dict(
                type='LoadRGBDAnnotations',
                num_classes=37,
                reduce_zero_label=True),
            dict(type='PackSegInputs')
        ])
    seg = ds[0]['data_samples'].gt_sem_seg.data[0, 0].tolist()
    assert seg == [255, 0, 36, 1, 255]
    # The dataset's class count reaches the label check of shared pipelines.
    assert ds.get_data_info(0)['num_classes'] == 37


def test_synthetic_dataset_generates_on_first_use(tmp_path):
    root = tmp_path / 'synthetic'
    kwargs = dict(
        data_root=str(root),
        data_prefix=dict(
            img_path='rgb/train',
            depth_path='depth/train',
            seg_map_path='label/train'),
        generate=dict(num_train=3, num_val=2, size=32, seed=1),
        pipeline=[
            dict(type='LoadRGBDFromFile'),
            dict(type='LoadRGBDAnnotations', num_classes=5),
            dict(type='PackSegInputs')
        ])
    ds = SyntheticRGBDDataset(**kwargs)
    assert len(ds) == 3
    assert (root / 'val.txt').read_text().split() == ['000000', '000001']
    out = ds[0]
    assert out['inputs'].shape == (6, 32, 32)
    # A second instance reuses the data; ann_file of stems works too.
    ds = SyntheticRGBDDataset(ann_file='val.txt', **{
        **kwargs, 'data_prefix':
        dict(img_path='rgb/val', depth_path='depth/val',
             seg_map_path='label/val')
    })
    assert len(ds) == 2
    with pytest.raises(FileNotFoundError):
        SyntheticRGBDDataset(
            generate=None,
            data_root=str(tmp_path / 'absent'),
            data_prefix=kwargs['data_prefix'])


def test_synthetic_agreement_dataset_generates_and_loads(tmp_path):
    root = str(tmp_path / 'agree')
    ds = DATASETS.build(dict(
        type='SyntheticAgreementRGBDDataset', data_root=root,
        generate=dict(num_train=2, num_val=1, size=32),
        data_prefix=dict(img_path='rgb/val', depth_path='depth/val',
                         seg_map_path='label/val'),
        pipeline=[]))
    assert ds.metainfo['classes'] == ('background', 'matched', 'crossed')
    assert len(ds) == 1
    label = cv2.imread(ds[0]['seg_map_path'], cv2.IMREAD_UNCHANGED)
    assert set(np.unique(label)) <= {0, 1, 2}


def test_synthetic_conjunction_dataset_generates_and_loads(tmp_path):
    root = str(tmp_path / 'conj')
    ds = DATASETS.build(dict(
        type='SyntheticConjunctionRGBDDataset', data_root=root,
        generate=dict(num_train=2, num_val=1, size=32, depth_cue='distance'),
        data_prefix=dict(img_path='rgb/val', depth_path='depth/val',
                         seg_map_path='label/val'),
        pipeline=[]))
    assert ds.metainfo['classes'] == ('background', 'red_near', 'mixed',
                                      'blue_far')
    assert len(ds) == 1
    label = cv2.imread(ds[0]['seg_map_path'], cv2.IMREAD_UNCHANGED)
    depth = cv2.imread(ds[0]['depth_path'], cv2.IMREAD_UNCHANGED)
    assert set(np.unique(label)) <= {0, 1, 2, 3}
    objects = (label > 0) & (depth > 0)
    # flat plates in the near (<= 1.85 m) or far (>= 2.35 m) band
    metres = depth[objects] / 5000.
    assert ((metres < 1.9) | ((metres > 2.3) & (metres < 3.1))).all()
