# Copyright (c) cen_mm contributors. All rights reserved.
"""Procedural scenes (host-free renderer): determinism,
geometric/photometric consistency, atomic writes and the CLI."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cen_mm.datasets import (SYNTHETIC_DOMAINS, decode_taskonomy_domain,
                             sample_view, write_synthetic_taskonomy)

SIZE = 64


def decode_normal(normal8):
    return (normal8.astype(np.float64) - 127) / 127


def test_render_is_deterministic_per_seed():
    a, _, _ = sample_view(seed=5, size=SIZE)
    b, _, _ = sample_view(seed=5, size=SIZE)
    c, _, _ = sample_view(seed=6, size=SIZE)
    for domain in SYNTHETIC_DOMAINS:
        np.testing.assert_array_equal(a[domain], b[domain])
    assert not np.array_equal(a['rgb'], c['rgb'])


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_encodings_and_value_ranges(seed):
    views, _, _ = sample_view(seed=seed, size=SIZE)
    for domain in ('rgb', 'normal', 'reshading'):
        assert views[domain].shape == (SIZE, SIZE, 3)
        assert views[domain].dtype == np.uint8
    for domain in ('depth_zbuffer', 'depth_euclidean', 'edge_texture',
                   'edge_occlusion'):
        assert views[domain].shape == (SIZE, SIZE)
        assert views[domain].dtype == np.uint16
    assert views['segment_semantic'].dtype == np.uint8
    # a closed room: every pixel hits a surface, depth is valid
    assert (views['depth_zbuffer'] < 65535).all()
    assert (views['depth_zbuffer'] <= views['depth_euclidean']).all()
    # reshading has 3 equal channels; normals are unit length
    assert (views['reshading'][..., 0] == views['reshading'][..., 2]).all()
    norms = np.linalg.norm(decode_normal(views['normal']), axis=-1)
    assert np.abs(norms - 1).max() < 0.02
    # textures and objects give non-trivial edges
    assert (views['edge_texture'] > 0).mean() > 0.02
    assert (views['edge_occlusion'] > 0).any()
    # every decoded domain is valid uint8 RGB for the pipeline
    for domain in SYNTHETIC_DOMAINS:
        assert decode_taskonomy_domain(views[domain],
                                       domain).shape == (SIZE, SIZE, 3)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_shading_is_lambertian_in_the_normals(seed):
    views, _, _ = sample_view(seed=seed, size=SIZE)
    light = np.array(views['meta']['light_cam'])
    normal = decode_normal(views['normal'])
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    predicted = 255 * np.maximum(0., normal @ light)
    error = np.abs(predicted - views['reshading'][..., 0])
    # only the 8-bit quantisation of the normals separates the two
    assert error.mean() < 1 and error.max() < 3


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_normals_agree_with_depth_gradient(seed):
    views, _, _ = sample_view(seed=seed, size=SIZE)
    meta = views['meta']
    depth = views['depth_zbuffer'].astype(np.float64) / 512
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    # back-project (camera: x right, y up, z towards the camera)
    points = np.stack([(xs - meta['cx']) / meta['fx'] * depth,
                       -(ys - meta['cx']) / meta['fx'] * depth, -depth],
                      axis=-1)
    du = points[1:-1, 2:] - points[1:-1, :-2]
    dv = points[2:, 1:-1] - points[:-2, 1:-1]
    from_depth = np.cross(dv, du)
    from_depth /= np.linalg.norm(from_depth, axis=-1, keepdims=True)
    stored = decode_normal(views['normal'])[1:-1, 1:-1]
    stored /= np.linalg.norm(stored, axis=-1, keepdims=True)
    # compare on smooth interiors: no occlusion edge and one normal around
    normal8 = views['normal'].astype(int)
    smooth = np.ones((SIZE - 2, SIZE - 2), bool)
    for dy in range(3):
        for dx in range(3):
            window = (slice(dy, dy + SIZE - 2), slice(dx, dx + SIZE - 2))
            smooth &= views['edge_occlusion'][window] == 0
            smooth &= np.abs(normal8[window] -
                             normal8[1:-1, 1:-1]).max(-1) <= 2
    cosine = (from_depth * stored).sum(-1)[smooth]
    assert smooth.mean() > 0.5
    assert np.median(cosine) > 0.9999
    assert (cosine > 0.99).mean() > 0.99


def test_occlusion_edges_sit_on_depth_jumps():
    views, _, _ = sample_view(seed=4, size=SIZE)
    depth = views['depth_zbuffer'].astype(np.float64) / 512
    padded = np.pad(depth, 1, mode='edge')
    jump = np.zeros_like(depth)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        jump = np.maximum(jump, padded[dy:dy + SIZE, dx:dx + SIZE] - depth)
    edges = views['edge_occlusion'] > 0
    assert edges.any()
    assert (jump[edges] > 0.03 * depth[edges]).all()
    assert (jump[~edges] <= 0.04 * depth[~edges] + 1 / 512).all()


def test_written_layout_and_determinism(tmp_path):
    splits = write_synthetic_taskonomy(
        str(tmp_path / 'a'), num_train=5, num_val=2, size=32, seed=7)
    assert len(splits['train']) == 5 and len(splits['val']) == 2
    points = {s: {v.split('_view_')[0] for v in views}
              for s, views in splits.items()}
    assert not points['train'] & points['val']
    assert (tmp_path / 'a' / 'val.txt').read_text().split() == splits['val']
    meta = json.loads((tmp_path / 'a' / 'scenes.json').read_text())
    assert sorted(meta['views']) == sorted(splits['train'] + splits['val'])
    # same seed, same bytes
    write_synthetic_taskonomy(
        str(tmp_path / 'b'), num_train=5, num_val=2, size=32, seed=7)
    files = sorted(p.relative_to(tmp_path / 'a')
                   for p in (tmp_path / 'a').rglob('*') if p.is_file())
    assert len(files) == 7 * len(SYNTHETIC_DOMAINS) + 3
    for name in files:
        assert (tmp_path / 'a' / name).read_bytes() == \
            (tmp_path / 'b' / name).read_bytes(), name


def test_writes_are_atomic(tmp_path, monkeypatch):
    out = tmp_path / 'scenes'
    write_synthetic_taskonomy(str(out), num_train=2, num_val=1, size=16)
    before = (out / 'train.txt').read_text()
    # An existing, non-empty folder is refused unless overwrite=True ...
    with pytest.raises(FileExistsError, match='overwrite'):
        write_synthetic_taskonomy(str(out), num_train=1, num_val=1, size=16)
    # ... and a run that dies half way keeps the old content and leaves no
    # scratch folder behind.
    import cen_mm.datasets.synthetic_scenes as renderer
    calls = []

    def failing_render(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError('disk full')
        return render_view(*args, **kwargs)

    render_view = renderer.render_view
    monkeypatch.setattr(renderer, 'render_view', failing_render)
    with pytest.raises(RuntimeError, match='disk full'):
        write_synthetic_taskonomy(
            str(out), num_train=3, num_val=1, size=16, overwrite=True)
    assert (out / 'train.txt').read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['scenes']
    monkeypatch.undo()
    write_synthetic_taskonomy(
        str(out), num_train=3, num_val=1, size=16, overwrite=True)
    assert len((out / 'train.txt').read_text().split()) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ['scenes']


def test_cli_writes_the_layout(tmp_path):
    script = Path(__file__).parents[2] / 'tools' / 'misc' / \
        'generate_synthetic_scenes.py'
    out = subprocess.run([
        sys.executable,
        str(script),
        str(tmp_path), '--num-train', '2', '--num-val', '1', '--size', '16',
        '--domains', 'rgb', 'reshading'
    ],
                         capture_output=True,
                         text=True,
                         check=True)
    assert 'Wrote 2 train and 1 val views' in out.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'reshading', 'rgb', 'scenes.json', 'train.txt', 'val.txt'
    ]
    assert len(list((tmp_path / 'rgb').glob('*_domain_rgb.png'))) == 3
