# Copyright (c) cen_mm contributors. All rights reserved.
"""CENSegLocalVisualizer panels, and SegVisualizationHook images landing in
the visualiser's backends (files and offline TensorBoard)."""
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.engine.hooks import SegVisualizationHook
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer

from cen_mm.seg.visualization import CENSegLocalVisualizer

REPO = Path(__file__).parents[3]
CLASSES = ('wall', 'floor', 'chair', 'table')
PALETTE = [[120, 120, 120], [180, 120, 120], [6, 230, 230], [80, 50, 50]]
H, W = 40, 48


def _sample(img_path=None):
    g = torch.Generator().manual_seed(0)
    sample = SegDataSample(metainfo=dict(
        stream_names=('rgb', 'depth'), img_path=img_path))
    sample.gt_sem_seg = PixelData(data=torch.zeros(1, H, W, dtype=torch.long))
    sample.gt_sem_seg.data[:, :, W // 2:] = 2
    for key, top in (('pred_sem_seg', 3), ('pred_sem_seg_rgb', 2),
                     ('pred_sem_seg_depth', 1)):
        pred = torch.randint(0, top + 1, (1, H, W), generator=g)
        sample.set_data({key: PixelData(data=pred)})
    return sample


def _image():
    return np.random.default_rng(0).integers(0, 256, (H, W, 3), np.uint8)


def test_panels_are_mmseg_overlays_with_titles_and_legend():
    meta = dict(classes=CLASSES, palette=PALETTE)
    vis = CENSegLocalVisualizer(name='test_cen_vis_panels', alpha=0.5)
    ref = SegLocalVisualizer(name='test_cen_vis_ref', alpha=0.5)
    vis.dataset_meta = ref.dataset_meta = meta
    image, sample = _image(), _sample()
    canvas = vis.draw_panels(image, sample)
    # input | ground truth | rgb | depth | ensemble, each under a 22 px
    # title bar, and the legend of the 4 classes present in 20 px rows.
    assert canvas.shape[1:] == (5 * W, 3)
    legend_rows, rest = divmod(canvas.shape[0] - 22 - H - 4, 20)
    assert rest == 0 and 1 <= legend_rows <= 4
    np.testing.assert_array_equal(canvas[22:22 + H, :W], image)
    for i, key in enumerate(('gt_sem_seg', 'pred_sem_seg_rgb',
                             'pred_sem_seg_depth', 'pred_sem_seg'), 1):
        expected = ref._draw_sem_seg(image, sample.get(key), CLASSES,
                                     PALETTE, True)
        np.testing.assert_array_equal(
            canvas[22:22 + H, i * W:(i + 1) * W], expected)
    # Title bars are white with dark text; the legend has each colour.
    assert (canvas[:22] < 128).any() and (canvas[:22] == 255).mean() > 0.7
    legend = canvas[22 + H:]
    for colour in PALETTE:
        # a 12 x 12 swatch (anti-aliased text may add a pixel or two)
        assert 144 <= (legend == colour).all(axis=2).sum() <= 150
    with pytest.raises(ValueError, match='dataset_meta'):
        vis.dataset_meta = {}
        vis.draw_panels(image, sample)


def test_visualization_hook_images_land_in_backends(tmp_path):
    """SegVisualizationHook (draw=True) -> CENSegLocalVisualizer -> a PNG
    from LocalVisBackend and an image summary in an offline TensorBoard
    event file."""
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    img_path = str(tmp_path / 'scene.png')
    mmcv.imwrite(_image()[..., ::-1], img_path)  # written BGR, read RGB
    vis = CENSegLocalVisualizer.get_instance(
        'test_cen_vis_hook',
        vis_backends=[dict(type='LocalVisBackend'),
                      dict(type='TensorboardVisBackend')],
        save_dir=str(tmp_path / 'vis'))
    vis.dataset_meta = dict(classes=CLASSES, palette=PALETTE)
    hook = SegVisualizationHook(draw=True, interval=1)
    hook._visualizer = vis
    hook.after_test_iter(SimpleNamespace(iter=7), 0, {}, [_sample(img_path)])
    files = list((tmp_path / 'vis').rglob('*.png'))
    assert [f.name for f in files] == ['test_scene.png_7.png']
    saved = mmcv.imread(str(files[0]), channel_order='rgb')
    np.testing.assert_array_equal(saved, vis.get_image())
    events = list((tmp_path / 'vis').rglob('events.out.tfevents.*'))
    assert len(events) == 1
    vis._vis_backends['TensorboardVisBackend'].close()
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    assert acc.Tags()['images'] == ['test_scene.png']
    assert acc.Images('test_scene.png')[0].width == 5 * W


def test_show_dir_config_rewrite():
    spec = importlib.util.spec_from_file_location(
        'cen_mm_tools_test_show_dir', str(REPO / 'tools' / 'test.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    cfg = Config(dict(
        default_hooks=dict(visualization=dict(type='SegVisualizationHook')),
        visualizer=dict(type='CENSegLocalVisualizer', name='visualizer')))
    tool.setup_show_dir(cfg, 'out/vis')
    assert 'name' not in cfg.visualizer
    assert cfg.default_hooks.visualization.draw
    assert cfg.default_hooks.visualization.interval == 1
    assert cfg.visualizer.save_dir == 'out/vis'
    with pytest.raises(KeyError, match='default_hooks.visualization'):
        tool.setup_show_dir(Config(dict(default_hooks=dict())), 'x')
