# Copyright (c) cen_mm contributors. All rights reserved.
"""Taskonomy domains and their per-domain decoding to 8-bit RGB.

Pure numpy (no mmagic import), so the synthetic scene renderer and tests can
use it directly.

Encodings (Taskonomy conventions, see ``docs/taskonomy.md``):

* ``rgb``, ``normal`` (centred on 127), ``reshading`` (3 equal channels) and
  ``principal_curvature`` (2 used channels, 127 = zero): RGB8, used as is.
* ``depth_zbuffer`` / ``depth_euclidean``: uint16 in 1/512 m, 65535 =
  invalid. Decoded as the official CEN code does: ``log(1 + d)`` on the raw
  value, rescaled by the maximum 11.1 to 0..255.
* ``edge_texture`` / ``edge_occlusion``: uint16, linearly rescaled to 0..255
  with the official maxima 11355 and 11584.
* ``segment_unsup2d`` / ``segment_unsup25d`` / ``segment_semantic``: 8-bit
  ids, replicated to 3 channels.
"""
from typing import Dict, Optional

import numpy as np

__all__ = [
    'TASKONOMY_DOMAINS', 'DOMAIN_SPECS', 'decode_taskonomy_domain',
    'encode_depth', 'DEPTH_UNITS_PER_METRE', 'DEPTH_INVALID'
]

#: Official domain indices of the CEN translation code (``--img-types``),
#: plus ``segment_semantic`` (index 10), which the official code lacks.
TASKONOMY_DOMAINS = ('rgb', 'normal', 'reshading', 'depth_euclidean',
                     'depth_zbuffer', 'principal_curvature', 'edge_occlusion',
                     'edge_texture', 'segment_unsup2d', 'segment_unsup25d',
                     'segment_semantic')

#: Raw depth units: 1/512 m, 65535 marks an invalid pixel.
DEPTH_UNITS_PER_METRE = 512
DEPTH_INVALID = 65535

#: How each domain is stored and decoded. ``kind`` is one of
#: ``'rgb8'`` (8-bit, 3 channels, used as is), ``'label8'`` (8-bit ids,
#: replicated), ``'log16'`` (uint16, ``log(1+v)`` scaled by ``max``) and
#: ``'linear16'`` (uint16 scaled by ``max``).
DOMAIN_SPECS: Dict[str, dict] = dict(
    rgb=dict(kind='rgb8'),
    normal=dict(kind='rgb8'),
    reshading=dict(kind='rgb8'),
    principal_curvature=dict(kind='rgb8'),
    depth_euclidean=dict(kind='log16', max=11.1, depth=True),
    depth_zbuffer=dict(kind='log16', max=11.1, depth=True),
    edge_occlusion=dict(kind='linear16', max=11584.),
    edge_texture=dict(kind='linear16', max=11355.),
    segment_unsup2d=dict(kind='label8'),
    segment_unsup25d=dict(kind='label8'),
    segment_semantic=dict(kind='label8'),
)

_KINDS = ('rgb8', 'label8', 'log16', 'linear16')


def _to_uint8(values: np.ndarray, overflow: str) -> np.ndarray:
    """Truncate non-negative floats to uint8 ('clip' or official 'wrap')."""
    truncated = np.floor(values)
    if overflow == 'clip':
        return np.clip(truncated, 0, 255).astype(np.uint8)
    # numpy's float -> uint8 cast in the official code truncates and keeps
    # the low 8 bits on common platforms; reproduce it deterministically.
    return np.mod(truncated.astype(np.int64), 256).astype(np.uint8)


def _check_dtype(img: np.ndarray, expected, domain: str, kind: str,
                 filename: Optional[str]) -> None:
    if img.dtype != expected:
        bits = 'a 16-bit' if expected == np.uint16 else 'an 8-bit'
        raise ValueError(
            f'Taskonomy domain "{domain}" ({kind}) expects {bits} PNG, but '
            f'{filename or "the image"} has dtype {img.dtype} and shape '
            f'{img.shape}.')


def decode_taskonomy_domain(img: np.ndarray,
                            domain: str,
                            spec: Optional[dict] = None,
                            overflow: str = 'clip',
                            depth_invalid: str = 'raw',
                            filename: Optional[str] = None) -> np.ndarray:
    """Decode a raw Taskonomy image into uint8 HxWx3 RGB.

    Args:
        img (np.ndarray): The image as stored, HxW or HxWxC (RGB channel
            order, alpha allowed and dropped), uint8 or uint16.
        domain (str): Domain name, e.g. ``'depth_zbuffer'``.
        spec (dict, optional): Decoding spec overriding ``DOMAIN_SPECS``
            (keys ``kind``, ``max``, ``depth``). Default: None.
        overflow (str): How scaled values above 255 become uint8: ``'clip'``
            (saturate) or ``'wrap'`` (official ``astype(uint8)`` truncating
            wrap-around, e.g. for edge_texture values above 11355).
            Default: 'clip'.
        depth_invalid (str): What invalid depth (65535) becomes: ``'raw'``
            (official: decoded like any value, i.e. 254, the far end),
            ``'max'`` (255) or ``'zero'`` (0). Default: 'raw'.
        filename (str, optional): Used in error messages. Default: None.

    Returns:
        np.ndarray: uint8 array of shape (H, W, 3), RGB.
    """
    if spec is None:
        if domain not in DOMAIN_SPECS:
            raise KeyError(
                f'Unknown Taskonomy domain "{domain}"; known domains are '
                f'{sorted(DOMAIN_SPECS)}. Pass a decoding spec for others.')
        spec = DOMAIN_SPECS[domain]
    kind = spec['kind']
    if kind not in _KINDS:
        raise ValueError(f'Unknown decoding kind "{kind}" for domain '
                         f'"{domain}"; expected one of {_KINDS}.')
    if overflow not in ('clip', 'wrap'):
        raise ValueError(f"overflow must be 'clip' or 'wrap', got {overflow}")
    if depth_invalid not in ('raw', 'max', 'zero'):
        raise ValueError("depth_invalid must be 'raw', 'max' or 'zero', got "
                         f'{depth_invalid}')
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ValueError(f'Taskonomy domain "{domain}": expected an HxW or '
                         f'HxWx3 image, but {filename or "the image"} has '
                         f'shape {img.shape}.')

    if kind in ('rgb8', 'label8'):
        _check_dtype(img, np.uint8, domain, kind, filename)
        if kind == 'label8' and img.ndim == 3:
            raise ValueError(
                f'Taskonomy domain "{domain}" expects single-channel 8-bit '
                f'ids, but {filename or "the image"} has shape {img.shape}.')
        out = img
    else:
        _check_dtype(img, np.uint16, domain, kind, filename)
        if img.ndim == 3:
            # 16-bit colour PNGs are not a Taskonomy encoding; reject rather
            # than guess which channel carries the data.
            raise ValueError(
                f'Taskonomy domain "{domain}" expects a single-channel '
                f'16-bit PNG, but {filename or "the image"} has shape '
                f'{img.shape}.')
        values = img.astype(np.float64)
        if kind == 'log16':
            values = np.log1p(values)
        scaled = values / float(spec['max']) * 255.
        out = _to_uint8(scaled, overflow)
        if spec.get('depth', False) and depth_invalid != 'raw':
            out[img == DEPTH_INVALID] = 255 if depth_invalid == 'max' else 0
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=2)
    return np.ascontiguousarray(out)


def encode_depth(depth_m: np.ndarray, valid: Optional[np.ndarray] = None
                 ) -> np.ndarray:
    """Encode metric depth as Taskonomy uint16 (1/512 m, 65535 = invalid).

    Args:
        depth_m (np.ndarray): Depth in metres.
        valid (np.ndarray, optional): Boolean mask of valid pixels; invalid
            and non-finite pixels become 65535. Default: None.

    Returns:
        np.ndarray: uint16 array of the same shape.
    """
    invalid = ~np.isfinite(depth_m)
    units = np.round(np.where(invalid, 0., depth_m) * DEPTH_UNITS_PER_METRE)
    units = np.clip(units, 0, DEPTH_INVALID - 1)
    if valid is not None:
        invalid |= ~valid
    units[invalid] = DEPTH_INVALID
    return units.astype(np.uint16)

