# Copyright (c) cen_mm contributors. All rights reserved.
import copy

import cv2
import numpy as np
import pytest
from mmcv.transforms import Compose
from mmseg.registry import TRANSFORMS

from cen_mm.seg.datasets.transforms import (RGBDRandomResize, RGBDResize,
                                            depth_to_hha)


def build(cfg):
    return TRANSFORMS.build(cfg)


def sample_results(nyu_samples):
    return dict(
        img_path=str(nyu_samples / 'rgb' / '000464.png'),
        depth_path=str(nyu_samples / 'depth' / '000464.png'),
        seg_map_path=str(nyu_samples / 'label40' / '000464.png'),
        reduce_zero_label=False,
        seg_fields=[])


def load(results, **kwargs):
    results = build(dict(type='LoadRGBDFromFile', **kwargs))(results)
    return build(dict(type='LoadRGBDAnnotations', num_classes=40))(results)


def write_case(tmp_path, rgb=None, depth=None, label=None):
    """Write one RGB-D sample to tmp files; return a results dict."""
    h, w = 6, 8
    rgb = np.full((h, w, 3), 100, np.uint8) if rgb is None else rgb
    depth = np.full((h, w), 9000, np.uint16) if depth is None else depth
    label = np.zeros((h, w), np.uint8) if label is None else label
    paths = dict(
        img_path=str(tmp_path / 'rgb.png'),
        depth_path=str(tmp_path / 'depth.png'),
        seg_map_path=str(tmp_path / 'label.png'))
    for key, arr in zip(paths, (rgb, depth, label)):
        assert cv2.imwrite(paths[key], arr)
    return dict(paths, reduce_zero_label=False, seg_fields=[])


def test_load_real_sample(nyu_samples):
    results = load(sample_results(nyu_samples))
    img = results['img']
    assert img.dtype == np.float32 and img.shape == (480, 640, 6)
    assert results['img_shape'] == results['ori_shape'] == (480, 640)
    bgr = cv2.imread(results['img_path'], cv2.IMREAD_COLOR)
    depth = cv2.imread(results['depth_path'], cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.uint16
    assert np.array_equal(img[..., :3], bgr.astype(np.float32))
    for c in range(3, 6):
        assert np.array_equal(img[..., c], depth.astype(np.float32))
    # About a third of the pixels have no reading (README).
    assert 0.2 < (depth == 0).mean() < 0.5
    assert results['gt_seg_map'].shape == (480, 640)

    metres = build(
        dict(type='LoadRGBDFromFile', depth_scale=1 / 5000,
             depth_channels=1))(sample_results(nyu_samples))['img']
    assert metres.shape == (480, 640, 4)
    np.testing.assert_allclose(metres[..., 3], depth / 5000., rtol=1e-6)
    assert 0.5 < metres[..., 3][depth > 0].mean() < 10


def test_hha_geometry():
    h, w = 120, 160
    fx, fy, cx, cy = 100., 100., w / 2, h / 2
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    # A fronto-parallel wall at 2 m.
    wall = np.full((h, w), 2.0)
    hha = depth_to_hha(wall, (fx, fy, cx, cy))
    assert depth_to_hha(wall).shape == (h, w, 3)  # NYU default intrinsics
    assert hha.shape == (h, w, 3) and hha.dtype == np.float32
    np.testing.assert_allclose(hha[..., 0], 155., atol=1e-3)  # 310 / 2
    inner = hha[10:-10, 10:-10, 2]
    np.testing.assert_allclose(inner, 128., atol=0.5)  # 90 degrees + 38
    # Height grows upwards (smaller v) by 2 m / fy per row, in cm.
    np.testing.assert_allclose(hha[0, 5, 1] - hha[1, 5, 1], 200. / fy,
                               rtol=1e-4)
    assert hha[-1, 5, 1] == 0  # the lowest point
    # A floor 1.2 m below the camera: y = 1.2 -> z = fy * 1.2 / (v - cy).
    rows = v > cy + 20
    floor = np.where(rows, fy * 1.2 / np.maximum(v - cy, 1e-6), 0.)
    hha = depth_to_hha(floor, (fx, fy, cx, cy))
    inner = hha[rows][..., 2].reshape(-1, w)[5:-5, 10:-10]
    np.testing.assert_allclose(inner, 38., atol=0.5)  # normal = up
    np.testing.assert_allclose(hha[rows][..., 1], 0., atol=1e-3)  # lowest
    assert (hha[~rows] == 0).all()  # no depth -> 0


def test_load_with_hha(nyu_samples):
    results = build(dict(type='LoadRGBDFromFile', hha=True))(
        sample_results(nyu_samples))
    img = results['img']
    assert img.shape == (480, 640, 6)
    hha = img[..., 3:]
    depth = cv2.imread(results['depth_path'], cv2.IMREAD_UNCHANGED)
    assert hha.min() >= 0 and hha.max() <= 255
    assert (hha[depth == 0] == 0).all()
    valid = depth > 0
    np.testing.assert_allclose(
        hha[..., 0][valid],
        np.clip(310. / (depth[valid] / 5000.), 0, 255),
        rtol=1e-4)
    # Real scene: angles span floors/walls, heights span > 1 m.
    assert hha[..., 1][valid].max() > 100
    assert np.median(hha[..., 2][valid]) > 50


def test_bad_inputs_are_named(tmp_path):
    loader = build(dict(type='LoadRGBDFromFile'))
    with pytest.raises(ValueError, match='depth_channels'):
        build(dict(type='LoadRGBDFromFile', depth_channels=2))
    with pytest.raises(ValueError, match='HHA'):
        build(dict(type='LoadRGBDFromFile', hha=True, depth_channels=1))
    with pytest.raises(KeyError, match='depth_path'):
        loader(dict(img_path='x.png'))

    results = write_case(tmp_path)
    (tmp_path / 'depth.png').unlink()
    with pytest.raises(FileNotFoundError, match=r'depth map .*depth\.png'):
        loader(results)

    results = write_case(tmp_path, depth=np.ones((5, 8), np.uint16))
    with pytest.raises(ValueError, match=r'depth map .*depth\.png.*size'):
        loader(results)

    results = write_case(tmp_path, depth=np.ones((6, 8), np.uint8))
    with pytest.raises(ValueError, match=r'depth map .*depth\.png is 8-bit'):
        loader(results)
    assert build(dict(type='LoadRGBDFromFile', allow_8bit_depth=True))(
        results)['img'].shape == (6, 8, 6)

    results = write_case(tmp_path, depth=np.ones((6, 8, 3), np.uint16))
    with pytest.raises(ValueError, match=r'depth map .*single-channel'):
        loader(results)

    results = write_case(tmp_path, rgb=np.ones((6, 8), np.uint8))
    with pytest.raises(ValueError, match=r'RGB image .*rgb\.png.*3 colour'):
        loader(results)

    label_loader = build(dict(type='LoadRGBDAnnotations', num_classes=40))
    bad = np.zeros((6, 8), np.uint8)
    bad[2, 3] = 40
    bad[0, 0] = 255  # ignore is fine
    results = write_case(tmp_path, label=bad)
    with pytest.raises(ValueError,
                       match=r'label map .*label\.png has values \[40\]'):
        label_loader(results)

    wide = np.zeros((6, 8), np.uint16)
    wide[1, 1] = 300  # would wrap to 44 in a uint8 cast
    results = write_case(tmp_path, label=wide)
    with pytest.raises(ValueError, match=r'label map .*0\.\.255'):
        label_loader(results)

    results = write_case(tmp_path, label=np.zeros((6, 8, 3), np.uint8))
    with pytest.raises(ValueError, match=r'label map .*single-channel'):
        label_loader(results)

    results = write_case(tmp_path, label=np.zeros((6, 7), np.uint8))
    results = loader(results)
    with pytest.raises(ValueError, match=r'label map .*label\.png has size'):
        label_loader(results)


def test_label_range_comes_from_the_dataset(tmp_path):
    label = np.zeros((6, 8), np.uint8)
    label[1, 2] = 4
    shared = build(dict(type='LoadRGBDAnnotations'))  # as in the base configs
    # RGBDSegDataset puts its class count in every data info.
    results = shared(dict(write_case(tmp_path, label=label), num_classes=5))
    assert results['gt_seg_map'][1, 2] == 4
    with pytest.raises(ValueError, match=r'values \[4\] outside \[0, 4\)'):
        shared(dict(write_case(tmp_path, label=label), num_classes=4))
    # An explicit num_classes wins; none at all skips the check.
    with pytest.raises(ValueError, match=r'outside \[0, 3\)'):
        build(dict(type='LoadRGBDAnnotations', num_classes=3))(
            dict(write_case(tmp_path, label=label), num_classes=5))
    assert shared(write_case(tmp_path, label=label))['gt_seg_map'].max() == 4


def test_rgbd_resize_per_modality_interpolation(nyu_samples):
    results = load(sample_results(nyu_samples))
    img = results['img'].copy()
    label = results['gt_seg_map'].copy()
    out = build(dict(type='RGBDResize', scale=(320, 240)))(results)
    assert out['img'].shape == (240, 320, 6)
    assert out['img_shape'] == (240, 320)
    assert out['gt_seg_map'].shape == (240, 320)
    depth_ref = cv2.resize(np.ascontiguousarray(img[..., 3]), (320, 240),
                           interpolation=cv2.INTER_NEAREST)
    for c in range(3, 6):
        assert np.array_equal(out['img'][..., c], depth_ref)
    rgb_ref = np.clip(
        cv2.resize(np.ascontiguousarray(img[..., :3]), (320, 240),
                   interpolation=cv2.INTER_CUBIC), 0, 255)
    np.testing.assert_allclose(out['img'][..., :3], rgb_ref, atol=1e-4)
    assert np.array_equal(
        out['gt_seg_map'],
        cv2.resize(label, (320, 240), interpolation=cv2.INTER_NEAREST))
    # Nearest keeps real depth readings; bilinear would invent new ones.
    assert set(np.unique(depth_ref)) <= set(np.unique(img[..., 3]))

    # Upscaling with bicubic overshoots; RGB stays within [0, 255].
    up = build(dict(type='RGBDResize', scale_factor=1.7, keep_ratio=True))(
        load(sample_results(nyu_samples)))
    assert up['img'].shape == (816, 1088, 6)
    assert up['img'][..., :3].min() >= 0 and up['img'][..., :3].max() <= 255

    with pytest.raises(ValueError, match='channel-stacked'):
        build(dict(type='RGBDResize', scale=(4, 4)))(
            dict(img=np.zeros((8, 8, 3), np.float32)))


def test_rgbd_random_resize_official_rule():
    img = np.zeros((480, 640, 6), np.float32)
    small = build(
        dict(type='RGBDRandomResize', ratio_range=(0.5, 0.5),
             min_short_side=350))
    assert isinstance(small, RGBDRandomResize)
    assert isinstance(small.resize, RGBDResize)
    out = small(dict(img=img.copy()))
    # 480 * 0.5 < 350, so s = 350 / 480.
    assert out['img'].shape == (350, 467, 6)
    big = build(
        dict(type='RGBDRandomResize', ratio_range=(2.0, 2.0),
             min_short_side=350))
    assert big(dict(img=img.copy()))['img'].shape == (960, 1280, 6)
    rand = build(dict(type='RGBDRandomResize'))
    np.random.seed(0)
    shapes = {rand(dict(img=img[:48, :64].copy()))['img'].shape
              for _ in range(5)}
    # Tiny input: the 350 floor always wins.
    assert shapes == {(350, 467, 6)}
    np.random.seed(0)
    sizes = [
        rand(dict(img=img[:, :, :].copy()))['img'].shape[0]
        for _ in range(8)
    ]
    assert min(sizes) >= 350 and max(sizes) <= 960 and len(set(sizes)) > 3
    # With `scale`, mmcv RandomResize semantics apply.
    fixed = build(
        dict(type='RGBDRandomResize', scale=(100, 50), ratio_range=(1., 1.),
             keep_ratio=False))
    assert fixed(dict(img=img.copy()))['img'].shape == (50, 100, 6)


def test_rgb_photometric_distortion_leaves_depth(nyu_samples):
    results = load(sample_results(nyu_samples))
    before = results['img'].copy()
    np.random.seed(3)
    out = build(dict(type='RGBPhotoMetricDistortion'))(results)['img']
    assert out.shape == before.shape and out.dtype == np.float32
    assert np.array_equal(out[..., 3:], before[..., 3:])
    assert not np.array_equal(out[..., :3], before[..., :3])
    rgb = out[..., :3]
    assert rgb.min() >= 0 and rgb.max() <= 255
    assert np.array_equal(rgb, np.round(rgb))


def _find_offsets(haystack, needle):
    hh, hw = needle.shape
    for y in range(haystack.shape[0] - hh + 1):
        for x in range(haystack.shape[1] - hw + 1):
            if np.array_equal(haystack[y:y + hh, x:x + hw], needle):
                yield y, x


def test_geometric_pipeline_keeps_modalities_aligned(nyu_samples):
    raw = load(sample_results(nyu_samples))
    img, label = raw['img'].copy(), raw['gt_seg_map'].copy()
    pipeline = Compose([
        build(cfg) for cfg in [
            dict(type='RGBDResize', scale_factor=0.25, keep_ratio=True),
            dict(type='RandomFlip', prob=1.0),
            dict(type='RandomCrop', crop_size=(60, 80)),
            dict(type='PackSegInputs'),
        ]
    ])
    np.random.seed(1)
    packed = pipeline(copy.deepcopy(raw))
    inputs = packed['inputs'].numpy()
    seg = packed['data_samples'].gt_sem_seg.data[0].numpy()
    assert inputs.shape == (6, 60, 80) and seg.shape == (60, 80)
    assert packed['data_samples'].flip

    # Reference: resize and flip each modality on its own.
    size = (160, 120)
    depth_ref = cv2.resize(
        np.ascontiguousarray(img[..., 3]), size,
        interpolation=cv2.INTER_NEAREST)[:, ::-1]
    rgb_ref = np.clip(
        cv2.resize(
            np.ascontiguousarray(img[..., :3]), size,
            interpolation=cv2.INTER_CUBIC), 0, 255)[:, ::-1]
    label_ref = cv2.resize(label, size,
                           interpolation=cv2.INTER_NEAREST)[:, ::-1]
    matches = [(y, x) for y, x in _find_offsets(depth_ref, inputs[3])
               if np.array_equal(seg, label_ref[y:y + 60, x:x + 80])]
    assert matches, 'depth and label crops do not come from one window'
    y, x = matches[0]
    np.testing.assert_allclose(
        inputs[:3].transpose(1, 2, 0), rgb_ref[y:y + 60, x:x + 80],
        atol=1e-3)
    for c in (4, 5):
        assert np.array_equal(inputs[c], inputs[3])
