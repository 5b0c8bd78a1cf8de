# Copyright (c) cen_mm contributors. All rights reserved.
"""The CPU-demo translation configs take their data from one base
(synthetic_scenes_cpu.py): the official crop recipe scaled to the crop their
U-Net needs, batch 4, the synthetic scenes."""
from pathlib import Path

import pytest
from mmengine.config import Config

CONFIGS = sorted(
    (Path(__file__).parents[3] / 'configs' / 'cen_gen').glob(
        '*synthetic*.py'))


def test_every_synthetic_config_is_covered():
    # 8 multitask / cycle U-Net-64 configs, the U-Net-128 fusion demo and
    # the U-Net-64 Table-4 study
    assert len(CONFIGS) == 10


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.name)
def test_synthetic_config_data(path):
    cfg = Config.fromfile(str(path))
    crop = 2**cfg.model.generator.num_down  # the U-Net's input size
    assert f'unet{crop}' in path.name
    resize = {64: 72, 128: 143}[crop]  # 286 / 256 of the crop, rounded
    assert resize == round(crop * 286 / 256)
    assert cfg.train_pipeline == cfg.cpu_pipelines[f'px{crop}'].train
    assert cfg.test_pipeline == cfg.cpu_pipelines[f'px{crop}'].test
    for split, pipeline in (('train', cfg.train_pipeline),
                            ('val', cfg.test_pipeline),
                            ('test', cfg.test_pipeline)):
        loader = cfg[f'{split}_dataloader']
        assert loader.batch_size == 4
        assert loader.dataset.data_root == 'data/synthetic_scenes'
        assert loader.dataset.pipeline == pipeline
    train = cfg.train_pipeline
    assert [t.type for t in train] == [
        'LoadTaskonomyDomains', 'Resize', 'FixedCrop', 'Flip', 'PackInputs'
    ]
    assert train[1].scale == (resize, resize) and not train[1].keep_ratio
    assert train[2].crop_size == (crop, crop)
    assert train[3].flip_ratio == 0.5
    test = cfg.test_pipeline
    assert [t.type for t in test] == [
        'LoadTaskonomyDomains', 'Resize', 'PackInputs'
    ]
    assert test[1].scale == (crop, crop)
