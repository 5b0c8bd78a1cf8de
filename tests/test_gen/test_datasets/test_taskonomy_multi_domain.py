# Copyright (c) cen_mm contributors. All rights reserved.
"""Several sources and targets (multitask, cycle flows) from one Taskonomy
view, and exact decoding of every domain Tables 6-9 use, on the real
samples and on generated files."""

import cv2
import numpy as np
import pytest
from mmagic.registry import DATASETS
from mmengine.registry import DefaultScope

import cen_mm.gen  # noqa: F401

# Domains of Tables 6-9 and the sample view that has each (segment_semantic
# is in no sample folder; it is tested on generated files only).
TABLE_DOMAINS = {
    'rgb': 'taskonomy', 'depth_euclidean': 'taskonomy',
    'depth_zbuffer': 'taskonomy', 'normal': 'taskonomy',
    'reshading': 'taskonomy', 'edge_texture': 'taskonomy',
    'edge_occlusion': 'taskonomy', 'principal_curvature': 'taskonomy',
    'segment_semantic': None,
}
VIEW = 'point_202_view_5'


def _expected(raw, domain):
    """Independent decoding: the Taskonomy encodings as the official CEN
    code reads them (docs/taskonomy.md)."""
    if domain in ('depth_euclidean', 'depth_zbuffer'):
        v = np.floor(np.log(1. + raw.astype(np.float64)) / 11.1 * 255.)
    elif domain == 'edge_texture':
        v = np.floor(raw.astype(np.float64) / 11355. * 255.)
    elif domain == 'edge_occlusion':
        v = np.floor(raw.astype(np.float64) / 11584. * 255.)
    else:
        v = raw.astype(np.float64)
    v = np.clip(v, 0, 255).astype(np.uint8)
    return np.stack([v] * 3, -1) if v.ndim == 2 else v


def _companion(domain):
    return 'reshading' if domain == 'rgb' else 'rgb'


def _load(root, domain, view):
    with DefaultScope.overwrite_default_scope('mmagic'):
        dataset = DATASETS.build(
            dict(type='TaskonomyDataset', data_root=str(root),
                 source_domains=[_companion(domain)], target_domain=domain,
                 on_missing='skip',
                 pipeline=[dict(type='LoadTaskonomyDomains',
                                domains='{domains}')]))
    views = [dataset.get_data_info(i)['view'] for i in range(len(dataset))]
    return dataset[views.index(view)]


def _raw(path):
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img.ndim == 3:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)
    return img


@pytest.mark.parametrize('domain', sorted(TABLE_DOMAINS))
def test_table_domain_decodes_generated_files(domain, tmp_path):
    rng = np.random.default_rng(0)
    if domain in ('depth_euclidean', 'depth_zbuffer', 'edge_texture',
                  'edge_occlusion'):
        raw = rng.integers(0, 65536, (8, 8)).astype(np.uint16)
        raw[0, :4] = [0, 512, 11583, 65535]  # 0 m, 1 m, edge max, invalid
    elif domain == 'segment_semantic':
        raw = rng.integers(0, 18, (8, 8)).astype(np.uint8)
    else:
        raw = rng.integers(0, 256, (8, 8, 3)).astype(np.uint8)
    view = 'point_3_view_1'
    for d in {domain, _companion(domain)}:
        (tmp_path / d).mkdir()
        img = raw if d == domain else np.zeros((8, 8, 3), np.uint8)
        if img.ndim == 3:
            img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(tmp_path / d / f'{view}_domain_{d}.png'), img)
    results = _load(tmp_path, domain, view)
    np.testing.assert_array_equal(results[f'img_{domain}'],
                                  _expected(raw, domain))
    if domain in ('depth_euclidean', 'depth_zbuffer'):
        # 1 m = 512 units -> floor(log(513) / 11.1 * 255) = 143
        assert results[f'img_{domain}'][0, 1, 0] == 143


@pytest.mark.parametrize(
    'domain', sorted(d for d, folder in TABLE_DOMAINS.items() if folder))
def test_table_domain_decodes_real_samples(domain, taskonomy_samples):
    root = taskonomy_samples / TABLE_DOMAINS[domain]
    results = _load(root, domain, VIEW)
    raw = _raw(root / domain / f'{VIEW}_domain_{domain}.png')
    decoded = results[f'img_{domain}']
    np.testing.assert_array_equal(decoded, _expected(raw, domain))
    assert decoded.shape == (512, 512, 3) and decoded.std() > 0


def test_multiple_targets_and_flows_load_every_domain_once(tmp_path):
    domains = ['rgb', 'reshading', 'edge_texture']
    for d in domains:
        (tmp_path / d).mkdir()
        for v in ('point_0_view_0', 'point_0_view_1'):
            img = np.full((4, 4, 3) if d != 'edge_texture' else (4, 4),
                          domains.index(d) + 1, np.uint8 if d != 'edge_texture'
                          else np.uint16)
            cv2.imwrite(str(tmp_path / d / f'{v}_domain_{d}.png'), img)
    flows = [dict(sources=[m for m in domains if m != t], target=t)
             for t in domains]
    with DefaultScope.overwrite_default_scope('mmagic'):
        dataset = DATASETS.build(
            dict(type='TaskonomyDataset', data_root=str(tmp_path),
                 flows=flows,
                 pipeline=[dict(type='LoadTaskonomyDomains',
                                domains='{domains}'),
                           dict(type='PackInputs', keys='{img_keys}',
                                meta_keys='{meta_keys}')]))
        multitask = DATASETS.build(
            dict(type='TaskonomyDataset', data_root=str(tmp_path),
                 source_domains=['rgb'],
                 target_domains=['reshading', 'edge_texture']))
    assert dataset.domains == ['reshading', 'edge_texture', 'rgb']
    assert dataset.metainfo['flows'] == (
        (('reshading', 'edge_texture'), 'rgb'),
        (('rgb', 'edge_texture'), 'reshading'),
        (('rgb', 'reshading'), 'edge_texture'))
    packed = dataset[0]['inputs']
    assert sorted(packed) == ['img_edge_texture', 'img_reshading', 'img_rgb']
    assert int(packed['img_reshading'][0, 0, 0]) == 2
    assert multitask.placeholders['{target_img_keys}'] == [
        'img_reshading', 'img_edge_texture']
    assert multitask.placeholders['{source_img_keys}'] == ['img_rgb']
    assert multitask.metainfo['target_domains'] == ('reshading',
                                                    'edge_texture')


@pytest.mark.parametrize('kwargs, match', [
    (dict(flows=[dict(sources=['rgb', 'normal'], target='normal')]),
     'target among its sources|target "normal" among'),
    (dict(source_domains=['rgb'], target_domains=['normal', 'rgb']),
     'also a source'),
    (dict(source_domains=['rgb'], target_domains=['semantic_depth']),
     'unknown domains'),
    (dict(source_domains=['rgb'], flows=[dict(sources=['rgb'],
                                             target='normal')]),
     'either flows'),
    (dict(flows=[dict(sources=['rgb'], target='normal'),
                 dict(sources=['reshading'], target='normal')]),
     'same target'),
])
def test_bad_domain_declarations(kwargs, match, tmp_path, mmagic_scope):
    with pytest.raises(ValueError, match=match):
        DATASETS.build(dict(type='TaskonomyDataset', data_root=str(tmp_path),
                            **kwargs))
