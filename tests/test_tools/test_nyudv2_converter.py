# Copyright (c) cen_mm contributors. All rights reserved.
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

h5py = pytest.importorskip('h5py')

REPO = Path(__file__).parents[2]


def load_converter():
    spec = importlib.util.spec_from_file_location(
        'nyudv2_converter', REPO / 'tools/dataset_converters/nyudv2.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


N, H, W = 4, 6, 8


def write_labeled_mat(path, rng):
    """A tiny nyu_depth_v2_labeled.mat with the real v7.3 layout.

    MATLAB's 480x640x3xN ``images`` appears in h5py as (N, 3, W, H); the
    test builds frames as (H, W, ...) arrays and stores them transposed.
    """
    rgb = rng.integers(0, 256, size=(N, H, W, 3), dtype=np.uint8)
    depth = rng.uniform(0.5, 9.0, size=(N, H, W))
    depth[0, 0, 0] = 0.
    depth[1, 2, 3] = np.nan
    labels = rng.integers(0, 895, size=(N, H, W)).astype(np.uint16)
    labels[:, 0, 1] = 0  # unlabelled
    with h5py.File(path, 'w') as f:
        f['images'] = rgb.transpose(0, 3, 2, 1)
        f['depths'] = depth.transpose(0, 2, 1)
        f['rawDepths'] = (depth * 0.5).transpose(0, 2, 1)
        f['labels'] = labels.transpose(0, 2, 1)
    return rgb, depth, labels


@pytest.fixture
def nyu_mat(tmp_path):
    rng = np.random.default_rng(0)
    mat = tmp_path / 'nyu_depth_v2_labeled.mat'
    frames = write_labeled_mat(mat, rng)
    mapping = rng.integers(1, 41, size=894)
    mapping[10] = 0  # raw id 11 -> void
    return mat, frames, mapping


def check_output(out, frames, mapping, split_frames):
    rgb, depth, labels = frames
    for split, numbers in split_frames.items():
        stems = (out / f'{split}.txt').read_text().split()
        assert stems == [f'{i:06d}' for i in numbers]
        for i, stem in zip(numbers, stems):
            k = i - 1
            got_rgb = cv2.imread(str(out / 'rgb' / split / f'{stem}.png'),
                                 cv2.IMREAD_UNCHANGED)
            assert np.array_equal(got_rgb[..., ::-1], rgb[k])
            got_depth = cv2.imread(
                str(out / 'depth' / split / f'{stem}.png'),
                cv2.IMREAD_UNCHANGED)
            assert got_depth.dtype == np.uint16
            ref = np.round(np.nan_to_num(depth[k]) * 5000)
            assert np.array_equal(got_depth, ref.astype(np.uint16))
            got_label = cv2.imread(
                str(out / 'label' / split / f'{stem}.png'),
                cv2.IMREAD_UNCHANGED)
            assert got_label.dtype == np.uint8
            full = np.concatenate([[0], mapping])[labels[k].astype(int)]
            ref = np.where(full > 0, full - 1, 255)
            assert np.array_equal(got_label, ref)
            assert got_label[0, 1] == 255


def test_convert_with_text_files(nyu_mat, tmp_path):
    conv = load_converter()
    mat, frames, mapping = nyu_mat
    (tmp_path / 'map.txt').write_text('\n'.join(map(str, mapping)))
    (tmp_path / 'train.lst').write_text('1\n3\n')
    (tmp_path / 'test.lst').write_text('2\n4\n')
    out = tmp_path / 'nyudv2'
    counts = conv.convert_nyudv2(
        str(mat),
        str(tmp_path / 'map.txt'),
        str(out),
        train_list=str(tmp_path / 'train.lst'),
        test_list=str(tmp_path / 'test.lst'),
        depth_key='depths')  # the in-painted option
    assert counts == dict(train=2, test=2)
    check_output(out, frames, mapping, dict(train=[1, 3], test=[2, 4]))
    depth = cv2.imread(str(out / 'depth/train/000001.png'),
                       cv2.IMREAD_UNCHANGED)
    assert depth[0, 0] == 0  # 0 m stays "no reading"
    depth = cv2.imread(str(out / 'depth/test/000002.png'),
                       cv2.IMREAD_UNCHANGED)
    assert depth[2, 3] == 0  # NaN -> no reading

    # The converted set loads with the dataset and its pipeline.
    import cen_mm.seg  # noqa: F401
    from mmengine.registry import DefaultScope

    from cen_mm.seg.datasets import NYUDv2RGBDDataset
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = NYUDv2RGBDDataset(
            data_root=str(out),
            ann_file='test.txt',
            data_prefix=dict(
                img_path='rgb/test',
                depth_path='depth/test',
                seg_map_path='label/test'),
            pipeline=[
                dict(type='LoadRGBDFromFile'),
                dict(type='LoadRGBDAnnotations', num_classes=40),
                dict(type='PackSegInputs')
            ])
        assert len(ds) == 2
        packed = ds[1]
    assert packed['inputs'].shape == (6, H, W)
    np.testing.assert_allclose(packed['inputs'][3].numpy(),
                               np.round(frames[1][3] * 5000))


def test_convert_with_mat_files_and_default_raw_depth(nyu_mat, tmp_path):
    conv = load_converter()
    mat, frames, mapping = nyu_mat
    # MATLAB's 1x894 mapClass and 795x1 / 654x1 index vectors, as h5py
    # shows them in v7.3 files.
    with h5py.File(tmp_path / 'classMapping40.mat', 'w') as f:
        f['mapClass'] = mapping.reshape(894, 1).astype(np.float64)
    with h5py.File(tmp_path / 'splits.mat', 'w') as f:
        f['trainNdxs'] = np.array([[2., 3.]])
        f['testNdxs'] = np.array([[1., 4.]])
    out = tmp_path / 'out'
    conv.convert_nyudv2(
        str(mat),
        str(tmp_path / 'classMapping40.mat'),
        str(out),
        splits=str(tmp_path / 'splits.mat'))  # default: raw, as official
    rgb, depth, labels = frames
    check_output(out, (rgb, depth * 0.5, labels), mapping,
                 dict(train=[2, 3], test=[1, 4]))


def test_mapping_formats_and_errors(tmp_path):
    conv = load_converter()
    mapping = np.arange(894) % 40 + 1
    np.save(tmp_path / 'm.npy', mapping)
    table = conv.load_class_mapping(str(tmp_path / 'm.npy'))
    assert table[0] == 255 and table[1] == 0 and table[40] == 39
    assert table[894] == mapping[-1] - 1
    with_zero = np.concatenate([[0], mapping])
    np.save(tmp_path / 'm895.npy', with_zero)
    assert np.array_equal(
        conv.load_class_mapping(str(tmp_path / 'm895.npy')), table)
    np.save(tmp_path / 'bad.npy', mapping[:10])
    with pytest.raises(ValueError, match='894 entries'):
        conv.load_class_mapping(str(tmp_path / 'bad.npy'))
    np.save(tmp_path / 'bad.npy', mapping + 1)
    with pytest.raises(ValueError, match='outside 0..40'):
        conv.load_class_mapping(str(tmp_path / 'bad.npy'))
    (tmp_path / 'a.txt').write_text('1\n2\n')
    (tmp_path / 'b.txt').write_text('2\n')
    with pytest.raises(ValueError, match='overlap'):
        conv.load_splits(
            train_list=str(tmp_path / 'a.txt'),
            test_list=str(tmp_path / 'b.txt'))
    (tmp_path / 'b.txt').write_text('0\n')
    with pytest.raises(ValueError, match='1-based'):
        conv.load_splits(
            train_list=str(tmp_path / 'a.txt'),
            test_list=str(tmp_path / 'b.txt'))
    with pytest.raises(ValueError, match='--splits'):
        conv.load_splits()


def test_bad_mat_layout(tmp_path):
    conv = load_converter()
    with h5py.File(tmp_path / 'x.mat', 'w') as f:
        f['images'] = np.zeros((2, 3, 8, 6), np.uint8)
        f['rawDepths'] = np.zeros((2, 6, 8))  # not transposed like images
        f['labels'] = np.zeros((2, 8, 6), np.uint16)
    np.save(tmp_path / 'm.npy', np.ones(894))
    (tmp_path / 'a.txt').write_text('1\n')
    (tmp_path / 'b.txt').write_text('2\n')
    with pytest.raises(ValueError, match=r'rawDepths must be \(2, 8, 6\)'):
        conv.convert_nyudv2(
            str(tmp_path / 'x.mat'),
            str(tmp_path / 'm.npy'),
            str(tmp_path / 'o'),
            train_list=str(tmp_path / 'a.txt'),
            test_list=str(tmp_path / 'b.txt'))
