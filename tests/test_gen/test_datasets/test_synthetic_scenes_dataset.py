# Copyright (c) cen_mm contributors. All rights reserved.
"""The renderer's Taskonomy layout read back through TaskonomyDataset."""
import numpy as np
from mmengine.registry import init_default_scope

from cen_mm.datasets import SYNTHETIC_DOMAINS, write_synthetic_taskonomy
from cen_mm.gen.datasets import TaskonomyDataset
from cen_mm.gen.datasets.transforms import read_taskonomy_png


def test_written_layout_is_read_by_taskonomy_dataset(tmp_path):
    init_default_scope('mmagic')
    splits = write_synthetic_taskonomy(
        str(tmp_path / 'a'), num_train=5, num_val=2, size=32, seed=7)
    # same seed, same images through the loader's reader
    write_synthetic_taskonomy(
        str(tmp_path / 'b'), num_train=5, num_val=2, size=32, seed=7)
    for domain in SYNTHETIC_DOMAINS:
        name = f'{splits["val"][1]}_domain_{domain}.png'
        np.testing.assert_array_equal(
            read_taskonomy_png(str(tmp_path / 'a' / domain / name)),
            read_taskonomy_png(str(tmp_path / 'b' / domain / name)))

    dataset = TaskonomyDataset(
        data_root=str(tmp_path / 'a'),
        ann_file='train.txt',
        source_domains=['reshading', 'edge_texture'],
        target_domain='rgb',
        pipeline=[
            dict(type='LoadTaskonomyDomains', domains='{domains}'),
            dict(
                type='Resize',
                keys='{img_keys}',
                scale=(36, 36),
                keep_ratio=False,
                interpolation='bilinear',
                backend='pillow'),
            dict(type='FixedCrop', keys='{img_keys}', crop_size=(32, 32)),
            dict(type='Flip', keys='{img_keys}', direction='horizontal'),
            dict(
                type='PackInputs', keys='{img_keys}',
                meta_keys='{meta_keys}'),
        ])
    assert len(dataset) == 5
    packed = dataset[0]
    assert sorted(packed['inputs']) == [
        'img_edge_texture', 'img_reshading', 'img_rgb'
    ]
    assert packed['inputs']['img_rgb'].shape == (3, 32, 32)
    # the scanned folders give train + val views
    all_views = TaskonomyDataset(
        data_root=str(tmp_path / 'a'),
        source_domains=['depth_zbuffer', 'normal'],
        target_domain='segment_semantic')
    assert len(all_views) == 7
