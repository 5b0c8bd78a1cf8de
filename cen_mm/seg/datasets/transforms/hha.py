# Copyright (c) cen_mm contributors. All rights reserved.
"""HHA encoding of a depth map (Gupta et al., ECCV 2014), simplified."""
from typing import Sequence, Tuple

import cv2
import numpy as np

__all__ = ['NYU_INTRINSICS', 'depth_to_hha']

# Colour camera of the NYU Depth V2 Kinect (fx, fy, cx, cy), 640x480 frames.
NYU_INTRINSICS = (518.857901, 519.469611, 325.582449, 253.736166)


def _point_map(depth: np.ndarray,
               intrinsics: Sequence[float]) -> np.ndarray:
    fx, fy, cx, cy = intrinsics
    h, w = depth.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.stack([(u - cx) * depth / fx, (v - cy) * depth / fy, depth],
                    axis=-1)


def _surface_normals(points: np.ndarray, valid: np.ndarray,
                     window: int) -> np.ndarray:
    """Unit normals from the smoothed tangents of the point map."""
    # Average tangents over a window, ignoring pixels without depth.
    weights = valid.astype(np.float64)
    count = cv2.boxFilter(weights, -1, (window, window), normalize=False)
    count = np.maximum(count, 1e-6)
    tangents = []
    for axis in (1, 0):  # d/du, d/dv
        grad = np.gradient(np.where(valid[..., None], points, 0.), axis=axis)
        ok = valid & np.roll(valid, 1, axis) & np.roll(valid, -1, axis)
        grad = grad * ok[..., None]
        tangents.append(
            np.stack([
                cv2.boxFilter(grad[..., c], -1, (window, window),
                              normalize=False) / count for c in range(3)
            ], axis=-1))
    normals = np.cross(tangents[0], tangents[1])
    # Orient every normal towards the camera (opposite to the viewing ray).
    flip = np.sum(normals * points, axis=-1) > 0
    normals[flip] *= -1
    norm = np.linalg.norm(normals, axis=-1, keepdims=True)
    return normals / np.maximum(norm, 1e-12)


def depth_to_hha(depth: np.ndarray,
                 intrinsics: Sequence[float] = NYU_INTRINSICS,
                 up: Tuple[float, float, float] = (0., -1., 0.),
                 normal_window: int = 5) -> np.ndarray:
    """Encode a metric depth map as HHA.

    The three channels follow Gupta et al.'s 8-bit encoding:

    - horizontal disparity ``31000 / depth_cm`` (i.e. ``310 / depth_m``),
    - height above the lowest observed point, in cm,
    - angle between the surface normal and gravity-up, in degrees, + 38
      (so a floor is 38 and a wall 128),

    each clipped to [0, 255]; pixels without depth are 0 in every channel.

    Simplification: gravity is not estimated from the scene (Gupta et al.
    refine it iteratively from surface normals); it is the fixed camera
    direction ``up``, by default the negative image y axis, which holds for
    a roughly level camera such as NYUDv2's. Missing depth is not in-painted.

    Args:
        depth (np.ndarray): (H, W) depth in metres, 0 or non-finite where
            there is no reading.
        intrinsics (Sequence[float]): Pinhole ``(fx, fy, cx, cy)`` in pixels
            of the frame ``depth`` is in. Defaults to NYUDv2's colour camera.
        up (tuple[float]): Unit gravity-up vector in camera coordinates
            (x right, y down, z forward). Defaults to ``(0, -1, 0)``.
        normal_window (int): Side of the window that smooths the tangents
            used for normals. Defaults to 5.

    Returns:
        np.ndarray: (H, W, 3) float32 HHA in [0, 255], channel order
        (disparity, height, angle).
    """
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim != 2:
        raise ValueError(f'depth_to_hha expects an (H, W) depth map, got '
                         f'shape {depth.shape}')
    valid = np.isfinite(depth) & (depth > 0)
    depth = np.where(valid, depth, 0.)
    hha = np.zeros(depth.shape + (3, ), dtype=np.float32)
    if not valid.any():
        return hha
    up = np.asarray(up, dtype=np.float64)
    up = up / np.linalg.norm(up)
    points = _point_map(depth, intrinsics)

    disparity = 310. / np.where(valid, depth, np.inf)
    height = points @ up
    height = (height - height[valid].min()) * 100.
    normals = _surface_normals(points, valid, normal_window)
    angle = np.degrees(np.arccos(np.clip(normals @ up, -1., 1.))) + 38.

    hha[..., 0] = disparity
    hha[..., 1] = height
    hha[..., 2] = angle
    hha[~valid] = 0
    return np.clip(hha, 0, 255)
