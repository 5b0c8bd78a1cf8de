# Copyright (c) cen_mm contributors. All rights reserved.
"""TaskonomyDataset + LoadTaskonomyDomains on the sample views (real, and
generated in the same format: the `taskonomy_samples` fixture)."""
import os
import shutil

import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

from cen_mm.datasets import decode_taskonomy_domain
from cen_mm.gen.datasets import LoadTaskonomyDomains, TaskonomyDataset

def make_pipeline(size=256, resize=286, flip_ratio=0.5):
    return [
        dict(type='LoadTaskonomyDomains', domains='{domains}'),
        dict(
            type='Resize',
            keys='{img_keys}',
            scale=(resize, resize),
            keep_ratio=False,
            interpolation='bilinear',
            backend='pillow'),
        dict(type='FixedCrop', keys='{img_keys}', crop_size=(size, size)),
        dict(
            type='Flip',
            keys='{img_keys}',
            flip_ratio=flip_ratio,
            direction='horizontal'),
        dict(type='PackInputs', keys='{img_keys}', meta_keys='{meta_keys}'),
    ]


@pytest.fixture(autouse=True)
def mmagic_scope():
    init_default_scope('mmagic')


# (source set, source domains, target domain, number of views)
REAL_TASKS = [
    ('taskonomy', ['reshading', 'edge_texture'], 'rgb', 2),
    ('hm3d', ['depth_zbuffer', 'edge_occlusion'], 'normal', 5),
    ('replica', ['principal_curvature', 'segment_unsup2d',
                 'depth_zbuffer'], 'rgb', 1),
]


@pytest.mark.parametrize('source,sources,target,num_views', REAL_TASKS)
def test_real_views_train_step_through_data_preprocessor(
        source, sources, target, num_views, taskonomy_samples):
    from mmagic.models import DataPreprocessor

    dataset = TaskonomyDataset(
        data_root=str(taskonomy_samples / source),
        source_domains=sources,
        target_domain=target,
        pipeline=make_pipeline(size=64, resize=72, flip_ratio=1.))
    assert len(dataset) == num_views
    info = dataset.get_data_info(0)
    for domain in sources + [target]:
        path = info[f'img_{domain}_path']
        assert path.endswith(f'{info["view"]}_domain_{domain}.png')
        assert os.path.isfile(path)
    assert dataset.metainfo['target_domain'] == target

    batch = pseudo_collate([dataset[i] for i in range(len(dataset))])
    keys = [f'img_{d}' for d in sources + [target]]
    assert sorted(batch['inputs']) == sorted(keys)
    for key in keys:
        assert batch['inputs'][key][0].shape == (3, 64, 64)
        assert batch['inputs'][key][0].dtype == torch.uint8
    sample = batch['data_samples'][0]
    assert sample.metainfo['view'] == info['view']
    assert sample.metainfo[f'img_{target}_channel_order'] == 'rgb'

    preprocessor = DataPreprocessor()
    out = preprocessor(batch, training=True)
    assert sorted(out['inputs']) == sorted(keys)
    for key in keys:
        value = out['inputs'][key]
        assert value.shape == (num_views, 3, 64, 64)
        assert value.dtype == torch.float32
        assert value.min() >= -1 and value.max() <= 1
        # normalisation is (x - 127.5) / 127.5 of the decoded uint8 image
        expected = (torch.stack(batch['inputs'][key]).float() - 127.5) / 127.5
        torch.testing.assert_close(value, expected)


def test_crop_and_flip_are_shared_across_domains(taskonomy_samples):
    domains = ('reshading', 'normal', 'rgb')

    def run(flip_ratio, seed):
        dataset = TaskonomyDataset(
            data_root=str(taskonomy_samples / 'taskonomy'),
            source_domains=['reshading', 'normal'],
            target_domain='rgb',
            pipeline=make_pipeline(
                size=40, resize=48, flip_ratio=flip_ratio)[:-1])
        np.random.seed(seed)
        return dataset[0]

    for seed in range(2):
        plain, flipped = run(0., seed), run(1., seed)
        bboxes = {tuple(plain[f'img_{d}_crop_bbox']) for d in domains}
        assert len(bboxes) == 1, 'crop position must be shared'
        assert tuple(flipped['img_rgb_crop_bbox']) == bboxes.pop()
        for d in domains:
            assert plain[f'img_{d}'].shape == (40, 40, 3)
            np.testing.assert_array_equal(flipped[f'img_{d}'],
                                          plain[f'img_{d}'][:, ::-1])


def test_test_pipeline_and_decoding_of_real_depth(taskonomy_samples):
    pipeline = [
        dict(type='LoadTaskonomyDomains', domains='{domains}'),
        dict(
            type='Resize',
            keys='{img_keys}',
            scale=(32, 32),
            keep_ratio=False,
            interpolation='bilinear',
            backend='pillow'),
        dict(type='PackInputs', keys='{img_keys}', meta_keys='{meta_keys}'),
    ]
    dataset = TaskonomyDataset(
        data_root=str(taskonomy_samples / 'taskonomy'),
        source_domains=['depth_zbuffer', 'depth_euclidean', 'edge_occlusion'],
        target_domain='principal_curvature',
        pipeline=pipeline,
        test_mode=True)
    assert len(dataset) == 1
    packed = dataset[0]
    assert packed['inputs']['img_depth_zbuffer'].shape == (3, 32, 32)
    # decoding matches the official formula on the raw file
    path = dataset.get_data_info(0)['img_depth_zbuffer_path']
    raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16
    loaded = LoadTaskonomyDomains(['depth_zbuffer'])(
        dict(img_depth_zbuffer_path=path))['img_depth_zbuffer']
    expected = np.floor(np.log1p(raw.astype(np.float64)) / 11.1 * 255)
    np.testing.assert_array_equal(loaded[..., 1], expected.astype(np.uint8))
    np.testing.assert_array_equal(
        loaded, decode_taskonomy_domain(raw, 'depth_zbuffer'))


def test_real_rgb_matches_file_in_rgb_order(taskonomy_samples):
    path = str(taskonomy_samples / 'taskonomy' / 'rgb' /
               'point_202_view_5_domain_rgb.png')
    results = LoadTaskonomyDomains(['rgb'])(dict(img_rgb_path=path))
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(results['img_rgb'], bgr[..., ::-1])
    assert results['img_rgb_channel_order'] == 'rgb'
    assert results['ori_img_rgb_shape'] == (512, 512, 3)


def test_view_missing_in_one_domain_is_an_error(taskonomy_samples):
    # point_21_view_2 has rgb but no depth_zbuffer in the taskonomy samples
    with pytest.raises(FileNotFoundError,
                       match=r'point_21_view_2 \(no depth_zbuffer'):
        TaskonomyDataset(
            data_root=str(taskonomy_samples / 'taskonomy'),
            source_domains=['depth_zbuffer'],
            target_domain='rgb')
    dataset = TaskonomyDataset(
        data_root=str(taskonomy_samples / 'taskonomy'),
        source_domains=['depth_zbuffer'],
        target_domain='rgb',
        on_missing='skip')
    assert [dataset.get_data_info(i)['view']
            for i in range(len(dataset))] == ['point_202_view_5']


def test_split_file_formats_and_missing_file(tmp_path, taskonomy_samples):
    root = taskonomy_samples / 'taskonomy'
    split = tmp_path / 'val.txt'
    split.write_text('{domain}/point_202_view_5_domain_{domain}.png\n'
                     '\n'
                     'point_21_view_2\n')
    dataset = TaskonomyDataset(
        data_root=str(root),
        ann_file=str(split),
        source_domains=['reshading'],
        target_domain='rgb')
    assert [dataset.get_data_info(i)['view'] for i in range(2)] == [
        'point_202_view_5', 'point_21_view_2'
    ]
    # a listed view whose file is missing in a requested domain
    with pytest.raises(FileNotFoundError,
                       match=r'point_21_view_2 \(no depth_euclidean: .*'
                       r'point_21_view_2_domain_depth_euclidean\.png'):
        TaskonomyDataset(
            data_root=str(root),
            ann_file=str(split),
            source_domains=['reshading', 'depth_euclidean'],
            target_domain='rgb')
    split.write_text('rgb/not_a_view.png\n')
    with pytest.raises(ValueError, match=r'val\.txt:1: expected a view name'):
        TaskonomyDataset(
            data_root=str(root),
            ann_file=str(split),
            source_domains=['reshading'],
            target_domain='rgb')


def test_missing_domain_folder_and_bad_arguments(tmp_path):
    (tmp_path / 'rgb').mkdir()
    with pytest.raises(FileNotFoundError,
                       match='no folder for domain "normal"'):
        TaskonomyDataset(
            data_root=str(tmp_path), source_domains=['normal'])
    with pytest.raises(ValueError, match='also a source domain'):
        TaskonomyDataset(
            data_root=str(tmp_path), source_domains=['rgb'],
            target_domain='rgb')
    with pytest.raises(ValueError, match='on_missing'):
        TaskonomyDataset(
            data_root=str(tmp_path), source_domains=['normal'],
            on_missing='drop')
    with pytest.raises(KeyError, match='Unknown Taskonomy domains'):
        LoadTaskonomyDomains(['rgb', 'keypoints9d'])


def test_wrong_bit_depth_file_names_the_file(tmp_path):
    for domain in ('depth_zbuffer', 'rgb'):
        (tmp_path / domain).mkdir()
    view = 'point_0_view_0'
    depth8 = tmp_path / 'depth_zbuffer' / f'{view}_domain_depth_zbuffer.png'
    cv2.imwrite(str(depth8), np.full((8, 8), 40, np.uint8))
    cv2.imwrite(str(tmp_path / 'rgb' / f'{view}_domain_rgb.png'),
                np.zeros((8, 8, 3), np.uint8))
    dataset = TaskonomyDataset(
        data_root=str(tmp_path),
        source_domains=['depth_zbuffer'],
        pipeline=[dict(type='LoadTaskonomyDomains', domains='{domains}')])
    with pytest.raises(ValueError,
                       match=r'expects a 16-bit PNG, but .*'
                       r'point_0_view_0_domain_depth_zbuffer\.png has dtype '
                       r'uint8'):
        dataset[0]
    # a 16-bit rgb is rejected too
    rgb16 = tmp_path / 'rgb' / f'{view}_domain_rgb.png'
    cv2.imwrite(str(rgb16), np.zeros((8, 8, 3), np.uint16))
    with pytest.raises(ValueError, match='expects an 8-bit PNG'):
        LoadTaskonomyDomains(['rgb'])(dict(img_rgb_path=str(rgb16)))
    with pytest.raises(FileNotFoundError, match='Taskonomy image not found'):
        LoadTaskonomyDomains(['rgb'])(
            dict(img_rgb_path=str(tmp_path / 'nope.png')))
    with pytest.raises(KeyError, match='img_rgb_path'):
        LoadTaskonomyDomains(['rgb'])(dict(view=view))
    shutil.rmtree(tmp_path / 'rgb')


def test_pipeline_placeholders_expand_in_nested_configs():
    from cen_mm.gen.datasets.taskonomy_dataset import \
        expand_domain_placeholders
    marker = object()
    placeholders = {'{img_keys}': ['img_a', 'img_b'], '{domains}': ['a', 'b']}
    cfg = [
        dict(type='Load', domains='{domains}'),
        dict(
            type='TransformBroadcaster',
            mapping=dict(img=['{img_keys}', 'extra']),
            transforms=[dict(type='Flip', keys=('{img_keys}', ))]),
        marker,
    ]
    out = expand_domain_placeholders(cfg, placeholders)
    assert out[0] == dict(type='Load', domains=['a', 'b'])
    assert out[1]['mapping']['img'] == ['img_a', 'img_b', 'extra']
    assert out[1]['transforms'][0]['keys'] == ('img_a', 'img_b')
    assert out[2] is marker
    assert cfg[0]['domains'] == '{domains}'  # the input is not modified
