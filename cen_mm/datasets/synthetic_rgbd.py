# Copyright (c) cen_mm contributors. All rights reserved.
"""Procedural RGB-D scenes that need both modalities (default data).

Numpy and OpenCV only (no mmseg): ``SyntheticRGBDDataset`` in
``cen_mm.seg.datasets`` reads what :func:`generate_synthetic_rgbd` writes.

Every scene is a textured, tilted wall with 3-7 overlapping objects. An
object's class is the pair (colour family, depth profile):

=====  ==========  =============  ===================================
 id     name        colour         depth profile
=====  ==========  =============  ===================================
 0      background  grey wall      far plane (3.5-4.5 m), tilted
 1      red_flat    red            flat plate (1.5-3.0 m)
 2      red_dome    red            dome bulging towards the camera
 3      blue_flat   blue           flat plate
 4      blue_dome   blue           dome
=====  ==========  =============  ===================================

Colour is drawn independently of the profile and the depth independently of
the colour, and objects are not shaded, so RGB alone cannot tell 1 from 2 or
3 from 4, and depth alone cannot tell 1 from 3 or 2 from 4; only the pair
separates all five classes. Random layouts, object sizes, shapes
(rectangles, ellipses), occlusions, colour jitter, global brightness, pixel
noise, Kinect-like multiplicative depth noise and depth holes (value 0)
keep it from being trivial.

Files use the layout of :class:`RGBDSegDataset` and NYUDv2's encodings
(RGB PNG, depth uint16 PNG in metres x 5000 with 0 = no reading, labels
uint8), so the same pipelines and preprocessor settings apply.
"""
import os
import os.path as osp
from typing import Dict, Tuple

import cv2
import numpy as np

from .fileio import atomic_output_dir

__all__ = [
    'generate_synthetic_scene', 'generate_synthetic_rgbd',
    'SYNTHETIC_CLASSES', 'SYNTHETIC_PALETTE', 'CLASS_COLOUR',
    'CLASS_PROFILE', 'DEPTH_SCALE', 'LABEL_RULES', 'DEPTH_CUES',
    'AGREEMENT_CLASSES', 'AGREEMENT_PALETTE', 'CONJUNCTION_CLASSES',
    'CONJUNCTION_PALETTE'
]

SYNTHETIC_CLASSES = ('background', 'red_flat', 'red_dome', 'blue_flat',
                     'blue_dome')
SYNTHETIC_PALETTE = [[128, 128, 128], [220, 20, 60], [255, 160, 122],
                     [30, 60, 220], [135, 206, 250]]
# Colour family and depth profile of each object class (None: background).
CLASS_COLOUR = (None, 'red', 'red', 'blue', 'blue')
CLASS_PROFILE = (None, 'flat', 'dome', 'flat', 'dome')
_COLOUR_MEANS = dict(red=(190., 45., 45.), blue=(45., 65., 190.))
DEPTH_SCALE = 5000  # raw uint16 units per metre, as in NYUDv2
# How an object's (colour, profile) becomes its label. 'pair': the 5 classes
# above. 'agreement': 'matched' (red dome, blue flat) vs 'crossed' (red flat,
# blue dome), which neither modality nor any late fusion of independent
# streams can tell apart (see docs/ablations.md).
# 'conjunction': 'red_near' (red AND near), 'blue_far' (blue AND far),
# 'mixed' (the other two pairs), where near = dome / near band and far = flat
# / far band: the classes are linear in the two cues, but each modality alone
# sees only one of them and a late fusion of independent streams ties between
# two classes on half of the objects (docs/ablations.md).
LABEL_RULES = ('pair', 'agreement', 'conjunction')
# How an object's profile shows in depth. 'profile': flat plate vs dome
# bulging towards the camera (a second-order, object-scale cue).
# 'distance': both are flat plates, 'flat' objects far (2.4-3.0 m), 'dome'
# objects near (1.2-1.8 m) -- a per-pixel cue, so the scenes test the fusion
# of the two modalities rather than how fast curvature is learned.
DEPTH_CUES = ('profile', 'distance')
_DISTANCE_BANDS = dict(flat=(2.4, 3.0), dome=(1.2, 1.8))
AGREEMENT_CLASSES = ('background', 'matched', 'crossed')
AGREEMENT_PALETTE = [[128, 128, 128], [255, 160, 122], [30, 60, 220]]
CONJUNCTION_CLASSES = ('background', 'red_near', 'mixed', 'blue_far')
CONJUNCTION_PALETTE = [[128, 128, 128], [220, 20, 60], [186, 85, 211],
                       [30, 60, 220]]
# pair class id -> class id under each rule
_RULE_LABEL = dict(
    pair=(0, 1, 2, 3, 4), agreement=(0, 2, 1, 1, 2),
    conjunction=(0, 2, 1, 3, 2))


def generate_synthetic_scene(
        rng: np.random.Generator,
        size: int = 96,
        noise: bool = True,
        rule: str = 'pair',
        depth_cue: str = 'profile'
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw one scene.

    Args:
        rng (np.random.Generator): Source of randomness.
        size (int): Height and width in pixels.
        noise (bool): Add brightness changes, pixel noise, depth noise and
            depth holes. False gives clean scenes for inspection and tests.
            Defaults to True.
        rule (str): Label rule, one of :data:`LABEL_RULES`; the images do
            not depend on it. Defaults to ``'pair'``.
        depth_cue (str): How the profile shows in depth, one of
            :data:`DEPTH_CUES`. Defaults to ``'profile'``.

    Returns:
        tuple: ``rgb`` (H, W, 3) uint8 in RGB order, ``depth`` (H, W) uint16
        in metres x 5000 (0 = no reading), ``label`` (H, W) uint8 class ids.
    """
    if rule not in LABEL_RULES:
        raise ValueError(
            f'rule must be one of {LABEL_RULES}, got {rule!r}')
    if depth_cue not in DEPTH_CUES:
        raise ValueError(
            f'depth_cue must be one of {DEPTH_CUES}, got {depth_cue!r}')
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64) / size

    # Wall: a tilted plane with a low-frequency grey texture.
    depth = (rng.uniform(3.5, 4.5) + rng.uniform(-0.3, 0.3) * (xs - 0.5) +
             rng.uniform(-0.3, 0.3) * (ys - 0.5))
    grey = rng.uniform(90, 170) + rng.uniform(-15, 15, size=3)
    texture = 12 * np.sin(2 * np.pi * (rng.uniform(1, 3) * xs +
                                       rng.uniform(1, 3) * ys +
                                       rng.uniform(0, 1)))
    rgb = grey[None, None, :] + texture[..., None]
    label = np.zeros((size, size), dtype=np.uint8)

    num_objects = int(rng.integers(3, 8))
    objects = []
    for _ in range(num_objects):
        objects.append(
            dict(
                cls=int(rng.integers(1, len(SYNTHETIC_CLASSES))),
                ellipse=bool(rng.integers(0, 2)),
                centre=rng.uniform(0.1, 0.9, size=2),
                half=rng.uniform(0.08, 0.25, size=2),
                base=rng.uniform(1.5, 3.0),
                bulge=rng.uniform(0.15, 0.4),
                tilt=rng.uniform(-0.1, 0.1, size=2),
                colour_jitter=rng.normal(0, 12, size=3)))
        if depth_cue == 'distance':
            # Same draws as 'profile' (its scenes stay unchanged); the base
            # depth is moved into the band of the object's profile.
            lo, hi = _DISTANCE_BANDS[CLASS_PROFILE[objects[-1]['cls']]]
            objects[-1]['base'] = lo + (objects[-1]['base'] - 1.5) / 1.5 * (
                hi - lo)
    # Painter's order: far objects first so near ones occlude them.
    for obj in sorted(objects, key=lambda o: -o['base']):
        dx = (xs - obj['centre'][0]) / obj['half'][0]
        dy = (ys - obj['centre'][1]) / obj['half'][1]
        if obj['ellipse']:
            radius2 = dx**2 + dy**2
            mask = radius2 <= 1
        else:
            radius2 = np.maximum(dx**2, dy**2)
            mask = (np.abs(dx) <= 1) & (np.abs(dy) <= 1)
        if not mask.any():
            continue
        obj_depth = (obj['base'] + obj['tilt'][0] * dx * obj['half'][0] +
                     obj['tilt'][1] * dy * obj['half'][1])
        if CLASS_PROFILE[obj['cls']] == 'dome' and depth_cue == 'profile':
            obj_depth = obj_depth - obj['bulge'] * np.sqrt(
                np.clip(1 - radius2, 0, 1))
        colour = np.array(_COLOUR_MEANS[CLASS_COLOUR[obj['cls']]])
        depth[mask] = obj_depth[mask]
        rgb[mask] = colour + obj['colour_jitter']
        label[mask] = _RULE_LABEL[rule][obj['cls']]

    if noise:
        rgb = rgb * rng.uniform(0.85, 1.15) + rng.normal(
            0, 6, size=rgb.shape)
        depth = depth * (1 + rng.normal(0, 0.005, size=depth.shape))
    rgb = np.clip(np.round(rgb), 0, 255).astype(np.uint8)
    depth_raw = np.clip(np.round(depth * DEPTH_SCALE), 1, 65535)
    if noise:
        holes = rng.random(depth.shape) < 0.03
        # A blob of missing readings, like Kinect shadows.
        by, bx = rng.uniform(0, 1, size=2)
        holes |= ((ys - by)**2 + (xs - bx)**2) < rng.uniform(0, 0.01)
        depth_raw[holes] = 0
    return rgb, depth_raw.astype(np.uint16), label


def _write_split(root: str, split: str, num: int, size: int,
                 rng: np.random.Generator, **scene_kwargs) -> None:
    for kind in ('rgb', 'depth', 'label'):
        os.makedirs(osp.join(root, kind, split), exist_ok=True)
    stems = []
    for idx in range(num):
        stem = f'{idx:06d}'
        rgb, depth, label = generate_synthetic_scene(rng, size, **scene_kwargs)
        for kind, img in (('rgb', rgb[..., ::-1]), ('depth', depth),
                          ('label', label)):
            path = osp.join(root, kind, split, stem + '.png')
            if not cv2.imwrite(path, img):
                raise OSError(f'Could not write {path}')
        stems.append(stem)
    with open(osp.join(root, f'{split}.txt'), 'w') as f:
        f.write('\n'.join(stems) + '\n')


def generate_synthetic_rgbd(out_dir: str,
                            num_train: int = 60,
                            num_val: int = 20,
                            size: int = 96,
                            seed: int = 0,
                            overwrite: bool = False,
                            rule: str = 'pair',
                            depth_cue: str = 'profile') -> Dict[str, int]:
    """Write a synthetic RGB-D segmentation set in the cen_mm layout.

    The output is a deterministic function of the arguments. It is written
    atomically (:func:`atomic_output_dir`): concurrent callers (e.g. several
    ranks) never see a partial set, and a failed run leaves nothing behind.

    Args:
        out_dir (str): Destination ``data_root``.
        num_train (int): Images in ``train``. Defaults to 60.
        num_val (int): Images in ``val``. Defaults to 20.
        size (int): Image height and width. Defaults to 96.
        seed (int): Random seed. Defaults to 0.
        overwrite (bool): Replace an existing non-empty ``out_dir``.
            Defaults to False.
        rule (str): Label rule, one of :data:`LABEL_RULES`.
            Defaults to ``'pair'``.
        depth_cue (str): One of :data:`DEPTH_CUES`.
            Defaults to ``'profile'``.

    Returns:
        dict: Number of images per split.
    """
    if rule not in LABEL_RULES:
        raise ValueError(
            f'rule must be one of {LABEL_RULES}, got {rule!r}')
    if depth_cue not in DEPTH_CUES:
        raise ValueError(
            f'depth_cue must be one of {DEPTH_CUES}, got {depth_cue!r}')
    with atomic_output_dir(out_dir, overwrite) as tmp:
        # Separate streams per split: val does not change with num_train.
        train_rng, val_rng = (np.random.default_rng(s)
                              for s in np.random.SeedSequence(seed).spawn(2))
        for split, num, rng in (('train', num_train, train_rng),
                                ('val', num_val, val_rng)):
            _write_split(tmp, split, num, size, rng, rule=rule,
                         depth_cue=depth_cue)
    return dict(train=num_train, val=num_val)
