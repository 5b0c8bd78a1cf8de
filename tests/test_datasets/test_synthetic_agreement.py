# Copyright (c) cen_mm contributors. All rights reserved.
"""The 'agreement' label rule of the synthetic RGB-D scenes."""
import numpy as np
import pytest

from cen_mm.datasets import (AGREEMENT_CLASSES, CLASS_COLOUR, CLASS_PROFILE,
                             generate_synthetic_rgbd, generate_synthetic_scene)


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
