# Copyright (c) cen_mm contributors. All rights reserved.
"""The 'agreement' label rule of the synthetic RGB-D scenes."""
import numpy as np
import pytest

from cen_mm.datasets import (AGREEMENT_CLASSES, CLASS_COLOUR, CLASS_PROFILE,
                             CONJUNCTION_CLASSES, generate_synthetic_rgbd,
                             generate_synthetic_scene)


def test_same_images_agreement_labels():
    for seed in range(5):
        rgb, depth, pair = generate_synthetic_scene(
            np.random.default_rng(seed), 48)
        rgb2, depth2, agree = generate_synthetic_scene(
            np.random.default_rng(seed), 48, rule='agreement')
        assert np.array_equal(rgb, rgb2) and np.array_equal(depth, depth2)
        for cls in range(1, 5):
            matched = (CLASS_COLOUR[cls] == 'red') == \
                (CLASS_PROFILE[cls] == 'dome')
            expected = AGREEMENT_CLASSES.index(
                'matched' if matched else 'crossed')
            assert (agree[pair == cls] == expected).all()
        assert (agree[pair == 0] == 0).all()
    # red_flat -> crossed, red_dome -> matched, blue_flat -> matched
    assert AGREEMENT_CLASSES == ('background', 'matched', 'crossed')


def test_bad_rule(tmp_path):
    with pytest.raises(ValueError, match='rule must be one of'):
        generate_synthetic_scene(np.random.default_rng(0), 16, rule='xor')
    with pytest.raises(ValueError, match='rule must be one of'):
        generate_synthetic_rgbd(str(tmp_path / 'x'), rule='xor')


def test_distance_cue_and_conjunction_labels():
    """'distance': flat plates in a near or far band by profile; the
    'conjunction' labels are a function of (colour, band) that neither cue
    alone determines."""
    colours_per_label = {}
    bands_per_label = {}
    for seed in range(8):
        rng_pair = np.random.default_rng(seed)
        rng_conj = np.random.default_rng(seed)
        rgb, depth, pair = generate_synthetic_scene(
            rng_pair, 64, noise=False, depth_cue='distance')
        rgb2, depth2, conj = generate_synthetic_scene(
            rng_conj, 64, noise=False, rule='conjunction',
            depth_cue='distance')
        assert np.array_equal(rgb, rgb2) and np.array_equal(depth, depth2)
        metres = depth / 5000.
        assert (metres[pair == 0] > 3.1).all()
        for cls in range(1, 5):
            mask = pair == cls
            if not mask.any():
                continue
            near = CLASS_PROFILE[cls] == 'dome'
            lo, hi = (1.15, 1.85) if near else (2.35, 3.05)  # ± tilt
            assert lo < metres[mask].min() and metres[mask].max() < hi
            expected = CONJUNCTION_CLASSES.index(
                f'{CLASS_COLOUR[cls]}_{"near" if near else "far"}'
                if (CLASS_COLOUR[cls] == 'red') == near else 'mixed')
            assert (conj[mask] == expected).all()
            colours_per_label.setdefault(expected, set()).add(
                CLASS_COLOUR[cls])
            bands_per_label.setdefault(expected, set()).add(near)
        assert (conj[pair == 0] == 0).all()
    # red_near / blue_far: one colour and one band each; mixed: both of each,
    # so a red pixel is red_near or mixed, a near pixel red_near or mixed.
    red_near, mixed, blue_far = (CONJUNCTION_CLASSES.index(n)
                                 for n in ('red_near', 'mixed', 'blue_far'))
    assert colours_per_label[red_near] == {'red'}
    assert bands_per_label[red_near] == {True}
    assert colours_per_label[blue_far] == {'blue'}
    assert bands_per_label[blue_far] == {False}
    assert colours_per_label[mixed] == {'red', 'blue'}
    assert bands_per_label[mixed] == {True, False}


def test_profile_scenes_unchanged_by_depth_cue_option():
    """The default ('profile') scenes are what they were before the
    'distance' option: same draws, domes bulge towards the camera."""
    a = generate_synthetic_scene(np.random.default_rng(3), 48)
    b = generate_synthetic_scene(np.random.default_rng(3), 48,
                                 depth_cue='profile')
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    with pytest.raises(ValueError, match='depth_cue must be one of'):
        generate_synthetic_scene(np.random.default_rng(0), 16,
                                 depth_cue='shading')
