# Copyright (c) cen_mm contributors. All rights reserved.
"""Per-domain Taskonomy decoding against the official formulas."""
import math

import numpy as np
import pytest

from cen_mm.datasets import (DOMAIN_SPECS, TASKONOMY_DOMAINS,
                             decode_taskonomy_domain, encode_depth)


def test_official_domain_indices():
    # --img-types indices of the official code, plus segment_semantic.
    assert TASKONOMY_DOMAINS[:10] == (
        'rgb', 'normal', 'reshading', 'depth_euclidean', 'depth_zbuffer',
        'principal_curvature', 'edge_occlusion', 'edge_texture',
        'segment_unsup2d', 'segment_unsup25d')
    assert TASKONOMY_DOMAINS[10] == 'segment_semantic'
    assert set(DOMAIN_SPECS) == set(TASKONOMY_DOMAINS)
    # the largest raw depth stays below the official log maximum (no wrap)
    assert math.log1p(65535) < DOMAIN_SPECS['depth_zbuffer']['max']


@pytest.mark.parametrize('domain', ['depth_zbuffer', 'depth_euclidean'])
def test_depth_log_scaling(domain):
    raw = np.array([[0, 1, 512], [5000, 30000, 65535]], dtype=np.uint16)
    out = decode_taskonomy_domain(raw, domain)
    assert out.shape == (2, 3, 3) and out.dtype == np.uint8
    expected = np.floor(np.log1p(raw.astype(np.float64)) / 11.1 * 255)
    np.testing.assert_array_equal(out[..., 0], expected.astype(np.uint8))
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    assert out[1, 2, 0] == 254  # official: invalid decodes like the far end
    assert decode_taskonomy_domain(
        raw, domain, depth_invalid='max')[1, 2, 0] == 255
    zero = decode_taskonomy_domain(raw, domain, depth_invalid='zero')
    assert zero[1, 2, 0] == 0
    np.testing.assert_array_equal(zero[0], out[0])


@pytest.mark.parametrize('domain,maximum', [('edge_texture', 11355),
                                            ('edge_occlusion', 11584)])
def test_edge_scaling_clip_and_official_wrap(domain, maximum):
    raw = np.array([[0, maximum // 2, maximum, 2 * maximum]],
                   dtype=np.uint16)
    clip = decode_taskonomy_domain(raw, domain)[0, :, 0]
    assert clip.tolist() == [0, int(maximum // 2 / maximum * 255), 255, 255]
    wrap = decode_taskonomy_domain(raw, domain, overflow='wrap')[0, :, 0]
    # official astype(uint8): floor(510) = 510 wraps to 254
    assert wrap.tolist() == [0, clip[1], 255, 510 % 256]


def test_rgb_like_domains_pass_through_and_labels_replicate():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    for domain in ('rgb', 'normal', 'reshading', 'principal_curvature'):
        np.testing.assert_array_equal(
            decode_taskonomy_domain(rgb, domain), rgb)
    rgba = np.concatenate([rgb, np.full((5, 6, 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(decode_taskonomy_domain(rgba, 'rgb'), rgb)
    labels = rng.integers(0, 256, (5, 6), dtype=np.uint8)
    for domain in ('segment_unsup2d', 'segment_unsup25d', 'segment_semantic'):
        out = decode_taskonomy_domain(labels, domain)
        assert out.shape == (5, 6, 3)
        for c in range(3):
            np.testing.assert_array_equal(out[..., c], labels)
    # single-channel reshading (some releases) is replicated as well
    assert decode_taskonomy_domain(labels, 'reshading').shape == (5, 6, 3)


def test_wrong_bit_depth_and_shape_errors():
    with pytest.raises(ValueError, match=r'16-bit PNG.*depth\.png.*uint8'):
        decode_taskonomy_domain(
            np.zeros((4, 4), np.uint8), 'depth_zbuffer', filename='depth.png')
    with pytest.raises(ValueError, match=r'8-bit PNG.*rgb\.png.*uint16'):
        decode_taskonomy_domain(
            np.zeros((4, 4, 3), np.uint16), 'rgb', filename='rgb.png')
    with pytest.raises(ValueError, match='single-channel 16-bit'):
        decode_taskonomy_domain(
            np.zeros((4, 4, 3), np.uint16), 'edge_texture')
    with pytest.raises(ValueError, match='single-channel 8-bit ids'):
        decode_taskonomy_domain(
            np.zeros((4, 4, 3), np.uint8), 'segment_unsup2d')
    with pytest.raises(KeyError, match='Unknown Taskonomy domain'):
        decode_taskonomy_domain(np.zeros((4, 4), np.uint16), 'keypoints3d')
    out = decode_taskonomy_domain(
        np.full((2, 2), 65535, np.uint16),
        'keypoints3d',
        spec=dict(kind='linear16', max=65535))
    assert (out == 255).all()


def test_encode_depth_round_trip():
    depth = np.array([[0.5, 2.0], [np.inf, 3.25]])
    units = encode_depth(depth)
    assert units.dtype == np.uint16
    assert units.tolist() == [[256, 1024], [65535, 1664]]
    valid = np.array([[True, False], [True, True]])
    assert encode_depth(depth, valid)[0, 1] == 65535
