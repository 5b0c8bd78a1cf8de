# Copyright (c) cen_mm contributors. All rights reserved.
"""Procedural indoor scenes rendered into mutually consistent Taskonomy
domains (numpy ray casting; no mmagic import, ``TaskonomyDataset`` in
``cen_mm.gen.datasets`` reads the output).

A scene is a room (floor, ceiling, four walls) with a few boxes (rotated
about the vertical axis) and spheres, lit by one directional light. Every
view renders, from the same rays:

* ``depth_zbuffer`` / ``depth_euclidean``: uint16, 1/512 m (z and ray
  length);
* ``normal``: camera-frame normals as RGB8 centred on 127 (R: +x right,
  G: +y up, B: +z towards the camera);
* ``reshading``: ``255 * max(0, n . l)`` in 3 equal channels;
* ``rgb``: ``albedo * (ambient + (1 - ambient) * shading)`` with textured
  albedo (floor checkers, wall stripes, box checkers);
* ``edge_texture``: uint16 Sobel magnitude of the rgb luminance, scaled so a
  black-to-white step reaches the official maximum 11355;
* ``edge_occlusion``: uint16 depth-discontinuity strength (jumps larger than
  a fraction of the depth), scaled to the official maximum 11584;
* ``segment_semantic``: 8-bit class ids (see ``SEMANTIC_CLASSES``).

So the translation tasks are real: e.g. reshading + edge_texture determine
most of rgb, depth determines normal and occlusion edges.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from .fileio import atomic_output_dir
from .taskonomy_domains import encode_depth

__all__ = [
    'SYNTHETIC_DOMAINS', 'SEMANTIC_CLASSES', 'render_view', 'sample_view',
    'write_synthetic_taskonomy'
]

SYNTHETIC_DOMAINS = ('rgb', 'normal', 'reshading', 'depth_zbuffer',
                     'depth_euclidean', 'edge_texture', 'edge_occlusion',
                     'segment_semantic')
SEMANTIC_CLASSES = ('unlabelled', 'floor', 'ceiling', 'wall', 'box',
                    'sphere')

_EDGE_TEXTURE_MAX = 11355
_EDGE_OCCLUSION_MAX = 11584
_AMBIENT = 0.3
# Depth jump (relative to depth) above which a pixel is an occlusion edge.
_OCCLUSION_REL_JUMP = 0.04


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _rot_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0., s], [0., 1., 0.], [-s, 0., c]])


def _sample_scene(rng: np.random.Generator) -> dict:
    """Random room layout, objects, materials and light."""
    width, depth, height = rng.uniform(4., 7.), rng.uniform(4., 7.), \
        rng.uniform(2.5, 3.2)
    objects = []
    for _ in range(int(rng.integers(2, 5))):
        size = rng.uniform(0.3, 0.9, size=3) * np.array([1., 1.2, 1.])
        objects.append(
            dict(
                type='box',
                half=size / 2,
                centre=np.array([
                    rng.uniform(-width / 2 + 0.8, width / 2 - 0.8),
                    size[1] / 2,
                    rng.uniform(-depth / 2 + 0.8, depth / 2 - 0.8)
                ]),
                rot=_rot_y(rng.uniform(0, np.pi)),
                colour=rng.uniform(0.15, 0.95, size=3),
                colour2=rng.uniform(0.15, 0.95, size=3),
                checker=float(rng.uniform(0.1, 0.3)) if rng.random() < 0.5
                else 0.))
    for _ in range(int(rng.integers(1, 3))):
        radius = rng.uniform(0.2, 0.45)
        objects.append(
            dict(
                type='sphere',
                radius=radius,
                centre=np.array([
                    rng.uniform(-width / 2 + 0.8, width / 2 - 0.8),
                    radius + rng.uniform(0., 0.6),
                    rng.uniform(-depth / 2 + 0.8, depth / 2 - 0.8)
                ]),
                colour=rng.uniform(0.15, 0.95, size=3)))
    elevation = rng.uniform(np.radians(35), np.radians(70))
    azimuth = rng.uniform(0, 2 * np.pi)
    light = np.array([
        np.cos(elevation) * np.cos(azimuth),
        np.sin(elevation),
        np.cos(elevation) * np.sin(azimuth)
    ])
    return dict(
        room=np.array([width, height, depth]),
        objects=objects,
        light=light,
        floor=(rng.uniform(0.2, 0.9, size=3), rng.uniform(0.2, 0.9, size=3),
               rng.uniform(0.3, 0.8)),
        wall=(rng.uniform(0.3, 0.95, size=3), rng.uniform(0.3, 0.95, size=3),
              rng.uniform(0.2, 0.6)),
        ceiling=rng.uniform(0.6, 0.95, size=3))


def _inside_object(position: np.ndarray, objects: List[dict]) -> bool:
    for obj in objects:
        reach = obj['radius'] if obj['type'] == 'sphere' else np.linalg.norm(
            obj['half'][[0, 2]])
        offset = position - obj['centre']
        if np.hypot(offset[0], offset[2]) < reach + 0.3:
            return True
    return False


def _sample_camera(rng: np.random.Generator, scene: dict) -> dict:
    width, _, depth = scene['room']
    for _ in range(100):
        position = np.array([
            rng.uniform(-width / 2 + 0.5, width / 2 - 0.5),
            rng.uniform(1.2, 1.7),
            rng.uniform(-depth / 2 + 0.5, depth / 2 - 0.5)
        ])
        if not _inside_object(position, scene['objects']):
            break
    # look roughly towards the room centre, so most views see the room
    to_centre = -position[[0, 2]]
    yaw = np.arctan2(to_centre[0], to_centre[1]) + rng.uniform(-0.6, 0.6)
    pitch = rng.uniform(np.radians(-30), np.radians(-10))
    forward = np.array([
        np.cos(pitch) * np.sin(yaw),
        np.sin(pitch),
        np.cos(pitch) * np.cos(yaw)
    ])
    right = _normalize(np.cross(forward, np.array([0., 1., 0.])))
    up = np.cross(right, forward)
    # Columns: camera x (right), y (up), z (towards the camera = -forward).
    rotation = np.stack([right, up, -forward], axis=1)
    return dict(
        position=position,
        rotation=rotation,
        fov=np.radians(rng.uniform(55, 70)))


def _hit_room(origin, dirs, room):
    half = np.array([room[0] / 2, room[1] / 2, room[2] / 2])
    centre = np.array([0., room[1] / 2, 0.])
    o = origin - centre
    with np.errstate(divide='ignore'):
        t_axes = np.where(dirs > 0, (half - o) / dirs, (-half - o) / dirs)
    axis = np.argmin(t_axes, axis=-1)
    t = np.take_along_axis(t_axes, axis[..., None], -1)[..., 0]
    normal = np.zeros_like(dirs)
    sign = np.sign(np.take_along_axis(dirs, axis[..., None], -1)[..., 0])
    np.put_along_axis(normal, axis[..., None], -sign[..., None], -1)
    return t, normal, axis


def _hit_box(origin, dirs, obj):
    rot = obj['rot']
    o = (origin - obj['centre']) @ rot
    d = dirs @ rot
    half = obj['half']
    with np.errstate(divide='ignore', invalid='ignore'):
        t1 = (-half - o) / d
        t2 = (half - o) / d
    t_near_axes = np.minimum(t1, t2)
    t_far = np.min(np.maximum(t1, t2), axis=-1)
    axis = np.argmax(t_near_axes, axis=-1)
    t_near = np.take_along_axis(t_near_axes, axis[..., None], -1)[..., 0]
    hit = (t_near <= t_far) & (t_near > 1e-6)
    normal_local = np.zeros_like(d)
    sign = np.sign(np.take_along_axis(d, axis[..., None], -1)[..., 0])
    np.put_along_axis(normal_local, axis[..., None], -sign[..., None], -1)
    return np.where(hit, t_near, np.inf), normal_local @ rot.T


def _hit_sphere(origin, dirs, obj):
    oc = origin - obj['centre']
    b = dirs @ oc
    c = oc @ oc - obj['radius']**2
    disc = b * b - c
    t = -b - np.sqrt(np.maximum(disc, 0.))
    hit = (disc > 0) & (t > 1e-6)
    t = np.where(hit, t, np.inf)
    points = origin + np.where(hit, t, 0.)[..., None] * dirs
    return t, _normalize(points - obj['centre'])


def _checker(u, v, scale):
    return ((np.floor(u / scale) + np.floor(v / scale)) % 2).astype(bool)


def _sobel_magnitude(img: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(
        img, cv2.CV_64F, 1, 0, ksize=3, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.Sobel(
        img, cv2.CV_64F, 0, 1, ksize=3, borderType=cv2.BORDER_REPLICATE)
    return np.sqrt(gx * gx + gy * gy)


def render_view(scene: dict, camera: dict, size: int = 256) -> dict:
    """Render one view of a scene into all synthetic domains.

    Args:
        scene (dict): A scene from the sampler (room, objects, light).
        camera (dict): ``position``, ``rotation`` (3x3, columns = camera
            x/y/z axes in world coordinates) and ``fov`` (radians).
        size (int): Output height and width. Default: 256.

    Returns:
        dict: Domain name -> stored image (uint8 HxWx3 / HxW or uint16 HxW),
        plus ``'meta'`` with ``fx`` (= fy), ``cx`` (= cy), ``light_cam``
        (light direction in camera coordinates) and ``ambient``.
    """
    focal = 0.5 * size / np.tan(camera['fov'] / 2)
    centre = (size - 1) / 2
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    # Camera coordinates: x right, y up, z towards the camera (looks at -z).
    dirs_cam = np.stack(
        [(xs - centre) / focal, -(ys - centre) / focal, -np.ones_like(xs)],
        axis=-1)
    dirs_cam = _normalize(dirs_cam)
    rotation = camera['rotation']
    dirs = dirs_cam @ rotation.T
    origin = camera['position']

    t, normal, room_axis = _hit_room(origin, dirs, scene['room'])
    label = np.where(room_axis == 1, 0, 3)  # y walls are floor/ceiling
    points = origin + t[..., None] * dirs
    lower = points[..., 1] < scene['room'][1] / 2
    label = np.where((room_axis == 1) & lower, 1, label)
    label = np.where((room_axis == 1) & (label == 0), 2, label)
    obj_index = np.full(t.shape, -1)
    for i, obj in enumerate(scene['objects']):
        hit_fn = _hit_box if obj['type'] == 'box' else _hit_sphere
        t_obj, n_obj = hit_fn(origin, dirs, obj)
        closer = t_obj < t
        t = np.where(closer, t_obj, t)
        normal = np.where(closer[..., None], n_obj, normal)
        obj_index = np.where(closer, i, obj_index)
        label = np.where(closer, 4 if obj['type'] == 'box' else 5, label)
    points = origin + t[..., None] * dirs

    # Albedo with textures (in world or object coordinates).
    albedo = np.zeros(t.shape + (3, ))
    floor_a, floor_b, floor_scale = scene['floor']
    is_floor = label == 1
    chk = _checker(points[..., 0], points[..., 2], floor_scale)
    albedo[is_floor] = np.where(chk[is_floor, None], floor_a, floor_b)
    wall_a, wall_b, stripe = scene['wall']
    is_wall = label == 3
    along = points[..., 0] + points[..., 2]
    stripes = (np.floor(along / stripe) % 2).astype(bool)
    albedo[is_wall] = np.where(stripes[is_wall, None], wall_a, wall_b)
    albedo[label == 2] = scene['ceiling']
    for i, obj in enumerate(scene['objects']):
        mask = obj_index == i
        if not mask.any():
            continue
        colour = np.broadcast_to(obj['colour'], (int(mask.sum()), 3))
        if obj['type'] == 'box' and obj['checker'] > 0:
            local = (points[mask] - obj['centre']) @ obj['rot']
            chk = ((np.floor(local / obj['checker']).sum(-1)) % 2).astype(bool)
            colour = np.where(chk[:, None], obj['colour'], obj['colour2'])
        albedo[mask] = colour

    shading = np.maximum(0., normal @ scene['light'])
    rgb = albedo * (_AMBIENT + (1 - _AMBIENT) * shading[..., None])

    normal_cam = normal @ rotation
    light_cam = scene['light'] @ rotation
    depth_z = t * (-dirs_cam[..., 2])
    depth_euclid = t

    rgb8 = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)
    luminance = rgb8.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    edge_texture = _sobel_magnitude(luminance / 255.) / 4. * _EDGE_TEXTURE_MAX
    padded = np.pad(depth_z, 1, mode='edge')
    jump = np.zeros_like(depth_z)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        neighbour = padded[dy:dy + size, dx:dx + size]
        jump = np.maximum(jump, neighbour - depth_z)
    # Occlusion boundaries on the near side of a depth jump.
    occlusion = np.where(jump > _OCCLUSION_REL_JUMP * depth_z,
                         np.clip(jump / 0.5, 0.25, 1.), 0.)

    return dict(
        rgb=rgb8,
        normal=np.clip(np.round(127 + 127 * normal_cam), 0,
                       255).astype(np.uint8),
        reshading=np.repeat(
            np.round(255 * shading).astype(np.uint8)[..., None], 3, axis=2),
        depth_zbuffer=encode_depth(depth_z),
        depth_euclidean=encode_depth(depth_euclid),
        edge_texture=np.clip(np.round(edge_texture), 0,
                             65535).astype(np.uint16),
        edge_occlusion=np.round(occlusion * _EDGE_OCCLUSION_MAX).astype(
            np.uint16),
        segment_semantic=label.astype(np.uint8),
        meta=dict(
            fx=float(focal),
            cx=float(centre),
            light_cam=light_cam.tolist(),
            ambient=_AMBIENT))


def _write_png(path: str, img: np.ndarray) -> None:
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(path, img):
        raise OSError(f'Could not write {path}')


def write_synthetic_taskonomy(out_dir: str,
                              num_train: int = 40,
                              num_val: int = 10,
                              size: int = 256,
                              seed: int = 0,
                              views_per_point: int = 2,
                              domains: Sequence[str] = SYNTHETIC_DOMAINS,
                              overwrite: bool = False
                              ) -> Dict[str, List[str]]:
    """Render scenes and write them in the Taskonomy file layout.

    Writes ``out_dir/{domain}/point_{P}_view_{V}_domain_{domain}.png``, the
    split files ``train.txt`` / ``val.txt`` (one view name per line; a point
    never appears in both splits) and ``scenes.json`` (camera intrinsics and
    light per view). The folder is written atomically
    (:func:`atomic_output_dir`): it appears complete or not at all.

    Args:
        out_dir (str): Output folder.
        num_train (int): Number of training views. Default: 40.
        num_val (int): Number of validation views. Default: 10.
        size (int): Image size. Default: 256.
        seed (int): Random seed; the output is a function of it.
            Default: 0.
        views_per_point (int): Views rendered per scene (point).
            Default: 2.
        domains (Sequence[str]): Domains to write. Default: all of
            ``SYNTHETIC_DOMAINS``.
        overwrite (bool): Replace an existing non-empty ``out_dir`` (an
            empty one is always used). Default: False.

    Returns:
        dict: ``{'train': [...], 'val': [...]}`` view names.
    """
    unknown = [d for d in domains if d not in SYNTHETIC_DOMAINS]
    if unknown:
        raise ValueError(f'The renderer cannot produce {unknown}; available: '
                         f'{SYNTHETIC_DOMAINS}')
    with atomic_output_dir(out_dir, overwrite) as tmp:
        for domain in domains:
            os.makedirs(osp.join(tmp, domain))
        splits = _render_splits(tmp, num_train, num_val, size, seed,
                                views_per_point, domains)
    return splits


def _render_splits(root: str, num_train: int, num_val: int, size: int,
                   seed: int, views_per_point: int,
                   domains: Sequence[str]) -> Dict[str, List[str]]:
    rng = np.random.default_rng(seed)
    splits: Dict[str, List[str]] = dict(train=[], val=[])
    meta: Dict[str, dict] = {}
    point = 0
    for split, count in (('train', num_train), ('val', num_val)):
        while len(splits[split]) < count:
            scene = _sample_scene(rng)
            for view_index in range(min(views_per_point,
                                        count - len(splits[split]))):
                camera = _sample_camera(rng, scene)
                view = f'point_{point}_view_{view_index}'
                rendered = render_view(scene, camera, size)
                for domain in domains:
                    _write_png(
                        osp.join(root, domain, f'{view}_domain_{domain}.png'),
                        rendered[domain])
                meta[view] = rendered['meta']
                splits[split].append(view)
            point += 1
    for split, views in splits.items():
        with open(osp.join(root, f'{split}.txt'), 'w') as f:
            f.write(''.join(f'{v}\n' for v in views))
    with open(osp.join(root, 'scenes.json'), 'w') as f:
        json.dump(dict(seed=seed, size=size, views=meta), f, indent=1)
    return splits


def sample_view(seed: int, size: int = 64) -> Tuple[dict, dict, dict]:
    """Render a single random view (for tests and quick looks).

    Returns:
        tuple: ``(rendered, scene, camera)``.
    """
    rng = np.random.default_rng(seed)
    scene = _sample_scene(rng)
    camera = _sample_camera(rng, scene)
    return render_view(scene, camera, size), scene, camera

