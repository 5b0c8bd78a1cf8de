# Copyright (c) cen_mm contributors. All rights reserved.
import numpy as np
import pytest

from cen_mm.seg.datasets.transforms import RGBDCenterPad


def test_official_centred_pad_values_and_sizes():
    img = np.arange(3 * 4 * 6, dtype=np.float32).reshape(3, 4, 6) + 1000
    label = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = RGBDCenterPad(size=(6, 5))(dict(img=img.copy(),
                                          gt_seg_map=label.copy(),
                                          seg_fields=['gt_seg_map']))
    # ceil((6 - 3) / 2) = 2 rows on both sides, ceil((5 - 4) / 2) = 1 column
    assert out['img'].shape == (7, 6, 6) and out['img_shape'] == (7, 6)
    assert out['padding'] == (2, 2, 1, 1)
    np.testing.assert_array_equal(out['img'][2:5, 1:5], img)
    np.testing.assert_array_equal(out['gt_seg_map'][2:5, 1:5], label)
    # [B, G, R, d, d, d] <- official RGB-order (123, 116, 103), also on depth
    np.testing.assert_array_equal(out['img'][0, 0],
                                  [103, 116, 123, 123, 116, 103])
    np.testing.assert_array_equal(out['img'][6, 5],
                                  [103, 116, 123, 123, 116, 103])
    assert (out['gt_seg_map'][:2] == 255).all()
    assert (out['gt_seg_map'][:, 0] == 255).all()

    big = dict(img=np.zeros((7, 8, 6), np.float32), seg_fields=[])
    assert RGBDCenterPad(size=(6, 5))(big)['img'].shape == (7, 8, 6)
    with pytest.raises(ValueError, match='pad_val has 6 values'):
        RGBDCenterPad()(dict(img=np.zeros((2, 2, 4)), img_path='x.png'))
