# Copyright (c) cen_mm contributors. All rights reserved.
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
from mmagic.registry import TRANSFORMS
from mmcv.transforms import BaseTransform
from mmengine import fileio

from cen_mm.datasets.taskonomy_domains import (DOMAIN_SPECS,
                                               decode_taskonomy_domain)

__all__ = ['LoadTaskonomyDomains', 'read_taskonomy_png']


def read_taskonomy_png(filename: str,
                       backend_args: Optional[dict] = None) -> np.ndarray:
    """Read a PNG keeping its bit depth; colour images come back RGB(A).

    Args:
        filename (str): Path of the image.
        backend_args (dict, optional): mmengine file backend arguments.
            Default: None.

    Returns:
        np.ndarray: uint8 or uint16 image, HxW or HxWxC in RGB(A) order.
    """
    try:
        content = fileio.get(filename, backend_args=backend_args)
    except FileNotFoundError:
        raise FileNotFoundError(
            f'Taskonomy image not found: {filename}') from None
    img = cv2.imdecode(
        np.frombuffer(content, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f'Cannot decode {filename} as an image.')
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)
    return img


@TRANSFORMS.register_module()
class LoadTaskonomyDomains(BaseTransform):
    """Load and decode the images of several Taskonomy domains of one view.

    Every domain is decoded to uint8 HxWx3 RGB as the official CEN code
    does (see :func:`decode_taskonomy_domain`): single-channel images are
    replicated, depth becomes ``log(1 + d)`` scaled by 11.1, edges are scaled
    by their official maxima.

    All domains of a view must have the same size (an error names the
    files otherwise).

    Required Keys:

    - img_{domain}_path (for every domain)

    Added Keys:

    - img_{domain} (np.uint8, HxWx3, RGB)
    - img_{domain}_channel_order ('rgb')
    - img_{domain}_color_type ('color')
    - ori_img_{domain}_shape ((H, W, 3))

    Args:
        domains (Sequence[str]): Domains to load, e.g.
            ``['reshading', 'edge_texture', 'rgb']``.
        overflow (str): ``'clip'`` saturates scaled values above 255;
            ``'wrap'`` reproduces the official ``astype(uint8)`` wrap-around
            (edge values above their official maximum wrap to dark).
            Default: 'clip'.
        depth_invalid (str): What invalid depth pixels (65535) become:
            ``'raw'`` (official: decoded like any value, giving 254, the far
            end), ``'max'`` (255) or ``'zero'``. Default: 'raw'.
        domain_specs (dict, optional): Extra or overriding decoding specs per
            domain, e.g. ``dict(keypoints3d=dict(kind='linear16',
            max=65535))``. Default: None.
        backend_args (dict, optional): mmengine file backend arguments.
            Default: None.
    """

    def __init__(self,
                 domains: Sequence[str],
                 overflow: str = 'clip',
                 depth_invalid: str = 'raw',
                 domain_specs: Optional[Dict[str, dict]] = None,
                 backend_args: Optional[dict] = None) -> None:
        if isinstance(domains, str):
            domains = [domains]
        if len(domains) == 0:
            raise ValueError('LoadTaskonomyDomains needs at least one domain')
        self.specs = dict(DOMAIN_SPECS)
        self.specs.update(domain_specs or {})
        unknown = [d for d in domains if d not in self.specs]
        if unknown:
            raise KeyError(f'Unknown Taskonomy domains {unknown}; known: '
                           f'{sorted(self.specs)} (pass domain_specs for '
                           'others).')
        if overflow not in ('clip', 'wrap'):
            raise ValueError(f"overflow must be 'clip' or 'wrap', got "
                             f'{overflow!r}')
        if depth_invalid not in ('raw', 'max', 'zero'):
            raise ValueError("depth_invalid must be 'raw', 'max' or 'zero', "
                             f'got {depth_invalid!r}')
        self.domains: List[str] = list(domains)
        self.overflow = overflow
        self.depth_invalid = depth_invalid
        self.backend_args = backend_args

    def transform(self, results: dict) -> dict:
        """Decode every domain of ``results``.

        Args:
            results (dict): Result dict with ``img_{domain}_path`` keys.

        Returns:
            dict: The result dict with the decoded images added.
        """
        sizes = {}
        for domain in self.domains:
            key = f'img_{domain}'
            path_key = f'{key}_path'
            if path_key not in results:
                raise KeyError(
                    f'LoadTaskonomyDomains: results lack "{path_key}" '
                    f'(available keys: {sorted(results)})')
            filename = results[path_key]
            raw = read_taskonomy_png(filename, self.backend_args)
            img = decode_taskonomy_domain(
                raw,
                domain,
                spec=self.specs[domain],
                overflow=self.overflow,
                depth_invalid=self.depth_invalid,
                filename=filename)
            sizes[filename] = img.shape[:2]
            results[key] = img
            results[f'ori_{key}_shape'] = img.shape
            results[f'{key}_channel_order'] = 'rgb'
            results[f'{key}_color_type'] = 'color'
        if len(set(sizes.values())) > 1:
            # Resizing them separately would distort the aspect ratios and
            # misalign the pixels of the domains.
            raise ValueError(
                'LoadTaskonomyDomains: the domains of one view differ in '
                'size (H, W): ' +
                ', '.join(f'{f} {s}' for f, s in sizes.items()) +
                '; every domain of a view must have the same size')
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(domains={self.domains}, '
                f'overflow={self.overflow!r}, '
                f'depth_invalid={self.depth_invalid!r})')
