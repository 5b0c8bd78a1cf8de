# Copyright (c) cen_mm contributors. All rights reserved.
import os
import runpy
import sys
from pathlib import Path

import mmcv
import numpy as np
import pytest
import torch

from cen_mm.seg.apis import get_palette_for, inference_rgbd, init_cen_model

REPO = Path(__file__).parents[3]
CONFIG = REPO / 'configs' / 'cen' / 'cen-refinenet_r50_synthetic-rgbd.py'
DATA = Path(os.environ.get('CEN_MM_DATA', REPO / '..' / 'shared' / 'data'))
NYU = DATA / 'nyudv2-samples'


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return init_cen_model(CONFIG, device='cpu')


@pytest.fixture(scope='module')
def rgbd_files(tmp_path_factory):
    """A small RGB-D pair on disk: the real NYUDv2 sample (cropped to keep
    the test fast) when available, else a synthetic one."""
    root = tmp_path_factory.mktemp('rgbd')
    rgb_src, depth_src = NYU / 'rgb' / '000464.png', NYU / 'depth' / \
        '000464.png'
    if rgb_src.exists() and depth_src.exists():
        rgb = mmcv.imread(str(rgb_src))[100:196, 200:328]
        depth = mmcv.imread(str(depth_src), flag='unchanged')[100:196,
                                                               200:328]
    else:
        rng = np.random.default_rng(0)
        rgb = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
        depth = rng.integers(0, 20000, (96, 128), dtype=np.uint16)
    assert depth.dtype == np.uint16
    mmcv.imwrite(rgb, str(root / 'rgb.png'))
    mmcv.imwrite(depth, str(root / 'depth.png'))
    return root / 'rgb.png', root / 'depth.png', rgb, depth


def test_init_cen_model(model):
    assert not model.training
    assert model.dataset_meta['classes'][0] == 'background'
    assert model.cfg.model.backbone.init_cfg is None
    palette = get_palette_for(model)
    assert palette.shape == (model.decode_head.num_classes, 3)
    assert palette.dtype == np.uint8


def test_inference_paths_and_arrays_agree(model, rgbd_files):
    rgb_path, depth_path, rgb, depth = rgbd_files
    by_path = inference_rgbd(model, rgb_path, depth_path)
    by_array = inference_rgbd(model, rgb, depth)
    by_rgb_order = inference_rgbd(
        model, rgb[..., ::-1].copy(), depth.astype(np.float32),
        channel_order='rgb')
    mixed = inference_rgbd(model, str(rgb_path), depth)
    h, w = rgb.shape[:2]
    for result in (by_path, by_array, by_rgb_order, mixed):
        assert result.pred_sem_seg.data.shape == (1, h, w)
        for name in ('rgb', 'depth'):
            assert result.get(f'pred_sem_seg_{name}').data.shape == (1, h, w)
        torch.testing.assert_close(result.seg_logits.data,
                                   by_path.seg_logits.data)
    # The ensemble is the softmax(alpha)-weighted mean of the stream logits.
    weights = model.decode_head.ensemble.weights.detach()
    ens = by_path.seg_logits.data
    mean = weights[0] * by_path.seg_logits_rgb.data + \
        weights[1] * by_path.seg_logits_depth.data
    torch.testing.assert_close(ens, mean, rtol=1e-4, atol=1e-4)


def test_inference_bad_inputs(model, rgbd_files):
    _, depth_path, rgb, depth = rgbd_files
    with pytest.raises(ValueError, match='differ in size'):
        inference_rgbd(model, rgb[:50], depth)
    with pytest.raises(ValueError, match='HxWx3'):
        inference_rgbd(model, rgb[..., 0], depth)
    with pytest.raises(ValueError, match='single-channel'):
        inference_rgbd(model, rgb, np.stack([depth] * 2, axis=2))
    with pytest.raises(FileNotFoundError, match='nope.png'):
        inference_rgbd(model, rgb, 'nope.png')
    with pytest.raises(AttributeError, match='init_cen_model'):
        inference_rgbd(torch.nn.Module(), rgb, depth)


def test_demo_writes_coloured_masks(rgbd_files, tmp_path, monkeypatch):
    rgb_path, depth_path, rgb, _ = rgbd_files
    monkeypatch.setattr(sys, 'argv', [
        'rgbd_demo.py',
        str(rgb_path),
        str(depth_path),
        str(CONFIG), '--out-dir',
        str(tmp_path)
    ])
    runpy.run_path(str(REPO / 'demo' / 'rgbd_demo.py'), run_name='__main__')
    model = init_cen_model(CONFIG)
    palette = {tuple(c) for c in get_palette_for(model)}
    for name in ('ens', 'rgb', 'depth'):
        out = mmcv.imread(str(tmp_path / f'rgb_{name}.png'),
                          channel_order='rgb')
        assert out.shape == rgb.shape
        assert {tuple(c) for c in out.reshape(-1, 3)} <= palette
