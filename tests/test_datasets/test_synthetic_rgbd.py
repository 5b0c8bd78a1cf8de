# Copyright (c) cen_mm contributors. All rights reserved.
import filecmp
import importlib.util
import itertools
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from cen_mm.datasets import (CLASS_COLOUR, CLASS_PROFILE, SYNTHETIC_CLASSES,
                             generate_synthetic_rgbd, generate_synthetic_scene)

REPO = Path(__file__).parents[2]


def _tree(root):
    return sorted(
        str(p.relative_to(root)) for p in Path(root).rglob('*') if p.is_file())


def test_generation_is_deterministic(tmp_path):
    kwargs = dict(num_train=3, num_val=2, size=32)
    generate_synthetic_rgbd(str(tmp_path / 'a'), seed=5, **kwargs)
    generate_synthetic_rgbd(str(tmp_path / 'b'), seed=5, **kwargs)
    generate_synthetic_rgbd(str(tmp_path / 'c'), seed=6, **kwargs)
    files = _tree(tmp_path / 'a')
    assert files == _tree(tmp_path / 'b') == _tree(tmp_path / 'c')
    assert len(files) == 3 * 5 + 2
    assert 'depth/val/000001.png' in files and 'train.txt' in files
    for name in files:
        assert filecmp.cmp(tmp_path / 'a' / name, tmp_path / 'b' / name,
                           shallow=False)
    assert not filecmp.cmp(tmp_path / 'a' / 'rgb/train/000000.png',
                           tmp_path / 'c' / 'rgb/train/000000.png',
                           shallow=False)
    # The val split does not depend on the size of the train split.
    generate_synthetic_rgbd(str(tmp_path / 'd'), seed=5, num_train=1,
                            num_val=2, size=32)
    assert filecmp.cmp(tmp_path / 'a' / 'label/val/000001.png',
                       tmp_path / 'd' / 'label/val/000001.png',
                       shallow=False)


def test_scene_encoding(tmp_path):
    generate_synthetic_rgbd(str(tmp_path / 's'), num_train=2, num_val=1,
                            size=48, seed=0)
    rgb = cv2.imread(str(tmp_path / 's/rgb/train/000000.png'),
                     cv2.IMREAD_UNCHANGED)
    depth = cv2.imread(str(tmp_path / 's/depth/train/000000.png'),
                       cv2.IMREAD_UNCHANGED)
    label = cv2.imread(str(tmp_path / 's/label/train/000000.png'),
                       cv2.IMREAD_UNCHANGED)
    assert rgb.shape == (48, 48, 3) and rgb.dtype == np.uint8
    assert depth.shape == (48, 48) and depth.dtype == np.uint16
    assert label.shape == (48, 48) and label.dtype == np.uint8
    assert label.max() < len(SYNTHETIC_CLASSES)
    valid = depth > 0
    assert 0 < (~valid).mean() < 0.2  # some holes
    metres = depth[valid] / 5000.
    assert metres.min() > 0.8 and metres.max() < 5.5

    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(10):
        seen |= set(np.unique(generate_synthetic_scene(rng, 48)[2]).tolist())
    assert seen == set(range(len(SYNTHETIC_CLASSES)))


def _class_features(num_scenes=40, size=96):
    """Per-class mean colour, mean depth and fraction of curved pixels."""
    rng = np.random.default_rng(123)
    colour = {k: [] for k in range(len(SYNTHETIC_CLASSES))}
    depth_m = {k: [] for k in colour}
    curved = {k: [] for k in colour}
    noisy_colour = {k: [] for k in colour}
    for _ in range(num_scenes):
        rgb, depth, label = generate_synthetic_scene(rng, size, noise=False)
        d = depth.astype(np.float64)
        # Second differences over 3 px; rounding to uint16 adds <= 4 units.
        lap = (np.roll(d, 3, 0) + np.roll(d, -3, 0) + np.roll(d, 3, 1) +
               np.roll(d, -3, 1) - 4 * d)
        for k in colour:
            mask = cv2.erode((label == k).astype(np.uint8),
                             np.ones((3, 3), np.uint8),
                             iterations=4).astype(bool)
            mask[:4], mask[-4:], mask[:, :4], mask[:, -4:] = (False, ) * 4
            if mask.sum() == 0:
                continue
            colour[k].append(rgb[mask].astype(np.float64))
            depth_m[k].append(d[mask] / 5000.)
            curved[k].append(np.abs(lap[mask]) > 8)
        rgb, _, label = generate_synthetic_scene(rng, size, noise=True)
        for k in colour:
            if (label == k).any():
                noisy_colour[k].append(rgb[label == k].astype(np.float64))
    return {
        k: dict(
            colour=np.concatenate(colour[k]).mean(0),
            noisy_colour=np.concatenate(noisy_colour[k]).mean(0),
            depth=np.concatenate(depth_m[k]).mean(),
            curved=np.concatenate(curved[k]).mean())
        for k in colour
    }


def test_neither_modality_alone_separates_the_classes():
    feats = _class_features()
    pairs = list(itertools.combinations(range(len(SYNTHETIC_CLASSES)), 2))
    same_colour = {
        (a, b)
        for a, b in pairs
        if np.abs(feats[a]['colour'] - feats[b]['colour']).max() < 20
    }
    same_depth = {(a, b)
                  for a, b in pairs
                  if abs(feats[a]['curved'] - feats[b]['curved']) < 0.25
                  and abs(feats[a]['depth'] - feats[b]['depth']) < 0.3}
    # RGB confuses the two profiles of a colour, depth the two colours of a
    # profile; together they separate every pair.
    assert same_colour == {(1, 2), (3, 4)}, feats
    assert same_depth == {(1, 3), (2, 4)}, feats
    assert not same_colour & same_depth
    # The generator's tables say the same.
    for a, b in same_colour:
        assert CLASS_COLOUR[a] == CLASS_COLOUR[b]
        assert CLASS_PROFILE[a] != CLASS_PROFILE[b]
    for a, b in same_depth:
        assert CLASS_PROFILE[a] == CLASS_PROFILE[b]
    for k in (1, 3):  # flat plates have no curvature, domes a lot
        assert feats[k]['curved'] < 0.1 and feats[k + 1]['curved'] > 0.5
    # Noise does not make colour informative about the profile.
    for a, b in same_colour:
        diff = feats[a]['noisy_colour'] - feats[b]['noisy_colour']
        assert np.abs(diff).max() < 20


def test_cli(tmp_path, monkeypatch):
    # In-process: a subprocess would spend most of its time importing torch.
    spec = importlib.util.spec_from_file_location(
        'generate_synthetic_rgbd_cli',
        REPO / 'tools/misc/generate_synthetic_rgbd.py')
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    out = tmp_path / 'cli'
    monkeypatch.setattr(sys, 'argv', [
        'generate_synthetic_rgbd.py',
        str(out), '--num-train', '2', '--num-val', '1', '--size', '24'
    ])
    cli.main()
    assert (out / 'train.txt').read_text().split() == ['000000', '000001']
    assert cv2.imread(str(out / 'rgb/val/000000.png')).shape == (24, 24, 3)
    monkeypatch.setattr(sys, 'argv', ['generate_synthetic_rgbd.py', str(out)])
    with pytest.raises(FileExistsError, match='overwrite'):
        cli.main()
