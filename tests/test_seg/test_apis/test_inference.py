# Copyright (c) cen_mm contributors. All rights reserved.
"""RGB-D inference through mmseg's init_model / inference_model and the
RGB-D demo (real NYUDv2 sample when present, synthetic pair otherwise)."""
import os
import runpy
import sys
from pathlib import Path

import mmcv
import numpy as np
import pytest
import torch
from mmengine.dataset import Compose
from mmseg.apis import inference_model

from cen_mm.seg.apis import init_model, load_rgbd
from cen_mm.seg.datasets.transforms import LoadRGBDFromNDArray

REPO = Path(__file__).parents[3]
CONFIG = REPO / 'configs' / 'cen' / 'cen-refinenet_r50_synthetic-rgbd.py'
DATA = Path(os.environ.get('CEN_MM_DATA', REPO / '..' / 'shared' / 'data'))
NYU = DATA / 'nyudv2-samples'


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return init_model(CONFIG, device='cpu')


@pytest.fixture(scope='module', params=['nyudv2', 'synthetic'])
def rgbd_files(request, tmp_path_factory):
    """A small RGB-D pair on disk: a crop of the real NYUDv2 sample, and a
    generated one."""
    root = tmp_path_factory.mktemp('rgbd')
    if request.param == 'nyudv2':
        rgb_src, depth_src = NYU / 'rgb' / '000464.png', \
            NYU / 'depth' / '000464.png'
        if not (rgb_src.exists() and depth_src.exists()):
            pytest.skip(f'NYUDv2 samples not found in {NYU}; the generated '
                        'pair (synthetic) covers it')
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


def test_init_model(model):
    assert not model.training
    # No checkpoint: classes and palette of the config's dataset, not a
    # guessed mmseg dataset.
    assert model.dataset_meta['classes'][0] == 'background'
    assert len(model.dataset_meta['palette']) == \
        model.decode_head.num_classes
    types = [t['type'] for t in model.cfg.test_pipeline]
    assert types[:2] == ['LoadImageFromNDArray', 'LoadRGBDFromNDArray']
    assert 'LoadRGBDAnnotations' not in types


def test_mmseg_inference_model_equals_file_pipeline(model, rgbd_files):
    """mmseg's inference_model on the RGB-D array gives exactly what the
    config's file pipeline (LoadRGBDFromFile) + test_step give."""
    rgb_path, depth_path, rgb, depth = rgbd_files
    rgbd = load_rgbd(rgb_path, depth_path)
    assert rgbd.shape == rgb.shape[:2] + (4, ) and rgbd.dtype == np.float32
    np.testing.assert_array_equal(rgbd[..., :3], rgb)
    np.testing.assert_array_equal(rgbd[..., 3], depth)
    result = inference_model(model, rgbd)

    pipeline = [t for t in model.cfg.test_dataloader.dataset.pipeline
                if t['type'] != 'LoadRGBDAnnotations']
    data = Compose(pipeline)(
        dict(img_path=str(rgb_path), depth_path=str(depth_path)))
    with torch.no_grad():
        ref = model.test_step(
            dict(inputs=[data['inputs']],
                 data_samples=[data['data_samples']]))[0]
    h, w = rgb.shape[:2]
    assert result.pred_sem_seg.data.shape == (1, h, w)
    for key in ('seg_logits', 'seg_logits_rgb', 'seg_logits_depth'):
        torch.testing.assert_close(result.get(key).data, ref.get(key).data)
    assert result.stream_names == ('rgb', 'depth')
    # The ensemble is the softmax(alpha)-weighted mean of the stream logits.
    weights = model.decode_head.ensemble.weights.detach()
    mean = weights[0] * result.seg_logits_rgb.data + \
        weights[1] * result.seg_logits_depth.data
    torch.testing.assert_close(result.seg_logits.data, mean, rtol=1e-4,
                               atol=1e-4)


def test_load_rgbd_from_ndarray_bad_inputs(rgbd_files):
    _, depth_path, rgb, depth = rgbd_files
    load = LoadRGBDFromNDArray()
    ok = load(dict(img=rgb, depth=depth))['img']
    np.testing.assert_array_equal(
        ok, load(dict(img=np.dstack([rgb, depth]).astype(np.float32)))['img'])
    with pytest.raises(ValueError, match='differs|has size'):
        load(dict(img=rgb[:50], depth=depth))
    with pytest.raises(ValueError, match=r'\(H, W, 4\)'):
        load(dict(img=rgb[..., 0]))
    with pytest.raises(ValueError, match='single-channel'):
        load(dict(img=rgb, depth=np.stack([depth] * 2, axis=2)))
    with pytest.raises(ValueError, match='8-bit'):
        load(dict(img=rgb, depth=depth.astype(np.uint8)))
    with pytest.raises(ValueError, match='0..255 integers'):
        load(dict(img=np.dstack([rgb * 1.5, depth]).astype(np.float32)))
    with pytest.raises(FileNotFoundError, match='nope.png'):
        load_rgbd('nope.png', depth_path)


def test_demo_draws_every_stream(rgbd_files, tmp_path, monkeypatch, model):
    rgb_path, depth_path, rgb, _ = rgbd_files
    label = np.zeros(rgb.shape[:2], np.uint8)
    label[:, rgb.shape[1] // 2:] = 3
    mmcv.imwrite(label, str(tmp_path / 'label.png'))
    monkeypatch.setattr(sys, 'argv', [
        'rgbd_demo.py',
        str(rgb_path),
        str(depth_path),
        str(CONFIG), '--out-dir',
        str(tmp_path), '--label',
        str(tmp_path / 'label.png')
    ])
    runpy.run_path(str(REPO / 'demo' / 'rgbd_demo.py'), run_name='__main__')
    palette = {tuple(c) for c in model.dataset_meta['palette']}
    h, w = rgb.shape[:2]
    for name in ('ens', 'rgb', 'depth'):
        out = mmcv.imread(str(tmp_path / f'rgb_{name}.png'),
                          channel_order='rgb')
        assert out.shape == rgb.shape
        assert {tuple(c) for c in out.reshape(-1, 3)} <= palette
    # Panels: input, ground truth, rgb, depth, ensemble; a title bar over
    # each; the legend below.
    panels = mmcv.imread(str(tmp_path / 'rgb_cen.png'), channel_order='rgb')
    assert panels.shape[1] == 5 * w
    assert panels.shape[0] > 22 + h
    np.testing.assert_array_equal(panels[22:22 + h, :w], rgb[..., ::-1])
    # The GT panel is mmseg's overlay of the class 3 colour on the right
    # half (apart from the class-name box drawn on the region).
    alpha = 0.5
    gt = panels[22:22 + h, w:2 * w].astype(np.float64)
    colour = np.asarray(model.dataset_meta['palette'][3], np.float64)
    right = (rgb[:, w // 2:, ::-1] * (1 - alpha) + colour * alpha).astype(
        np.uint8)
    close = np.abs(gt[:, w // 2:] - right).max(axis=2) <= 1
    assert close.mean() > 0.9
