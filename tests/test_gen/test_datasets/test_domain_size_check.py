# Copyright (c) cen_mm contributors. All rights reserved.
"""Issue 12: the domains of one view must have the same size (resizing each
separately would distort the aspect ratios without a word)."""
import cv2
import numpy as np
import pytest

from cen_mm.gen.datasets import LoadTaskonomyDomains


def test_domains_of_different_sizes_are_refused(tmp_path):
    rgb, normal = str(tmp_path / 'rgb.png'), str(tmp_path / 'normal.png')
    cv2.imwrite(rgb, np.zeros((32, 32, 3), np.uint8))
    cv2.imwrite(normal, np.zeros((32, 48, 3), np.uint8))
    loader = LoadTaskonomyDomains(domains=['normal', 'rgb'])
    with pytest.raises(ValueError) as info:
        loader(dict(img_rgb_path=rgb, img_normal_path=normal))
    assert f'{normal} (32, 48)' in str(info.value)
    assert f'{rgb} (32, 32)' in str(info.value)
    cv2.imwrite(normal, np.zeros((32, 32, 3), np.uint8))
    out = loader(dict(img_rgb_path=rgb, img_normal_path=normal))
    assert out['img_rgb'].shape == out['img_normal'].shape == (32, 32, 3)
