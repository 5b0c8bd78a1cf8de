# Copyright (c) cen_mm contributors. All rights reserved.
"""Suite-wide isolation, so the tests pass in any order (pytest-randomly
shuffles them; ``tools/test_suite.sh`` prints the seed).

Every test, and every module, finds the state the one before it found:

* mmengine's global instances (``ManagerMixin`` subclasses: the default
  registry scope ``DefaultScope`` that ``init_default_scope`` sets, and the
  ``MessageHub``, ``Visualizer`` and logger instances a ``Runner`` creates)
  are restored after each test; otherwise a test that built modules under
  ``mmagic`` changes which registry the next one builds from;
* torch's global switches (default dtype, grad mode, thread count) and the
  working directory are restored;
* the same again after each module, for what module-scoped fixtures leave;
* torch's RNG is seeded per test from ``random``, which pytest-randomly
  reseeds before each test from the run's seed, so a test's random numbers
  depend on the seed, not on the tests that ran before it.

The ``nyu_samples`` and ``taskonomy_samples`` fixtures give the real sample
folders and generated twins of them (below).

Tests that build from a host's registry ask for the scope per test with the
``mmseg_scope`` / ``mmagic_scope`` fixtures (e.g.
``pytestmark = pytest.mark.usefixtures('mmseg_scope')``), never by calling
``init_default_scope`` at import time, which would leak into other modules.
"""
import contextlib
import os
import random
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.utils import ManagerMixin


def _manager_classes():
    todo, seen = [ManagerMixin], []
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo.extend(cls.__subclasses__())
    return seen


@contextlib.contextmanager
def _restored_globals():
    # Classes defined meanwhile (e.g. by an import) start empty, so snapshot
    # the ones that exist now and clear the new ones afterwards.
    instances = {cls: cls._instance_dict.copy() for cls in _manager_classes()}
    dtype = torch.get_default_dtype()
    grad = torch.is_grad_enabled()
    threads = torch.get_num_threads()
    cwd = os.getcwd()
    try:
        yield
    finally:
        for cls in _manager_classes():
            cls._instance_dict = instances.get(cls,
                                               type(cls._instance_dict)())
        torch.set_default_dtype(dtype)
        torch.set_grad_enabled(grad)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        os.chdir(cwd)


@pytest.fixture(autouse=True, scope='module')
def _isolate_module():
    # Module-scoped fixtures (a Runner trained once for a module, say) run
    # outside any test's snapshot: what they leave ends with the module.
    with _restored_globals():
        yield


@pytest.fixture(autouse=True)
def _isolate_test():
    with _restored_globals():
        torch.manual_seed(random.getrandbits(32))
        yield


@pytest.fixture
def mmseg_scope():
    """Build from mmseg's registries (as configs with
    ``default_scope='mmseg'`` do), with cen_mm's seg modules registered."""
    import cen_mm.seg  # noqa: F401
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


@pytest.fixture
def mmagic_scope():
    """Build from mmagic's registries, with cen_mm's gen modules
    registered."""
    import cen_mm.gen  # noqa: F401
    with DefaultScope.overwrite_default_scope('mmagic'):
        yield


# Real sample data and its generated twin -----------------------------------
# The shared folder (../shared/data, or $CEN_MM_DATA; /work/shared/data/
# README.md) holds real frames. Every test of them also runs on generated
# files with the same layout, sizes and encodings, so nothing goes untested
# where the folder is absent: only the `shared` variant is then skipped.
DATA_ROOT = Path(
    os.environ.get('CEN_MM_DATA',
                   Path(__file__).resolve().parents[1] / '..' / 'shared' /
                   'data'))

# Views of each Taskonomy-format sample set, per domain (as shared).
_ALL = ('rgb', 'normal', 'reshading', 'depth_zbuffer', 'edge_occlusion',
        'edge_texture', 'keypoints3d', 'segment_unsup25d')
TASKONOMY_SAMPLE_VIEWS = {
    'taskonomy': {
        **{d: ('point_202_view_5', )
           for d in ('depth_euclidean', 'depth_zbuffer', 'edge_occlusion',
                     'keypoints2d', 'principal_curvature')},
        **{d: ('point_202_view_5', 'point_21_view_2')
           for d in ('edge_texture', 'keypoints3d', 'normal', 'reshading',
                     'rgb')},
        'segment_unsup2d': ('point_21_view_2', ),
        'segment_unsup25d': ('point_21_view_2', ),
    },
    'hm3d': {
        d: ('point_0_view_3', 'point_12_view_1', 'point_27_view_0',
            'point_29_view_2', 'point_7_view_1')
        for d in _ALL
    },
    'replica': {
        d: ('point_47_view_25', )
        for d in _ALL + ('keypoints2d', 'principal_curvature',
                         'segment_unsup2d')
    },
}


def _smooth(rng, shape, low, high, cells=8):
    """Smooth random values in [low, high] (PNG-friendly)."""
    h, w = shape[:2]
    coarse = rng.uniform(low, high, (cells, cells) + tuple(shape[2:]))
    out = cv2.resize(coarse.astype(np.float32), (w, h),
                     interpolation=cv2.INTER_CUBIC)
    return np.clip(out, low, high).reshape(shape)


def _write(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img), path


def write_nyudv2_samples(root: Path, seed: int = 0) -> None:
    """NYUDv2-format frames as in the shared ``nyudv2-samples``: a 640x480
    room (floor, ceiling, three walls, a table) seen by the NYU Kinect
    intrinsics; RGB 8-bit, raw depth uint16 metres x 5000 with a zero border
    band and holes (about a third of the pixels), 40-class labels with 255
    = ignore; plus five 625x468 RGB + label frames without depth."""
    from cen_mm.seg.datasets.transforms.hha import NYU_INTRINSICS
    rng = np.random.default_rng(seed)
    h, w = 480, 640
    fx, fy, cx, cy = NYU_INTRINSICS
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    dx, dy = (u - cx) / fx, (v - cy) / fy
    with np.errstate(divide='ignore'):
        # Distance along the optical axis to each plane (camera 1.3 m up).
        planes = {
            1: np.where(dy > 0, 1.3 / dy, np.inf),  # floor
            21: np.where(dy < 0, -1.3 / dy, np.inf),  # ceiling
            0: np.minimum(np.full_like(dx, 4.5),  # walls
                          np.where(dx < 0, -2.0 / dx, 2.2 / dx)),
        }
    labels = np.array(list(planes))
    stack = np.stack(list(planes.values()))
    depth = stack.min(0)
    label = labels[stack.argmin(0)].astype(np.uint8)
    table = (u > 250) & (u < 420) & (v > 260) & (v < 380) & (depth > 2.5)
    depth[table], label[table] = 2.5, 6
    colours = {0: (180, 170, 150), 1: (60, 90, 120), 21: (230, 230, 230),
               6: (40, 60, 140)}
    rgb = np.zeros((h, w, 3))
    for k, colour in colours.items():
        rgb[label == k] = colour
    rgb += _smooth(rng, (h, w, 3), -30, 30, cells=24)
    rgb += rng.normal(0, 4, rgb.shape)
    raw = np.round(depth * 5000 + rng.normal(0, 20, depth.shape))
    holes = _smooth(rng, (h, w), 0, 1, cells=12) > 0.8
    holes[:45], holes[-45:], holes[:, :40], holes[:, -40:] = (True, ) * 4
    raw[holes] = 0
    label[_smooth(rng, (h, w), 0, 1, cells=16) > 0.9] = 255
    frame = '000464'
    _write(root / 'rgb' / f'{frame}.png',
           np.clip(rgb, 0, 255).astype(np.uint8))
    _write(root / 'depth' / f'{frame}.png', raw.astype(np.uint16))
    _write(root / 'label40' / f'{frame}.png', label)
    for frame in ('000834', '000972', '001096', '001299', '001391'):
        _write(root / 'rgb-label-only' / 'rgb' / f'{frame}.png',
               _smooth(rng, (468, 625, 3), 0, 255).astype(np.uint8))
        _write(root / 'rgb-label-only' / 'label40' / f'{frame}.png',
               _smooth(rng, (468, 625), 0, 39).astype(np.uint8))


def write_taskonomy_samples(root: Path, seed: int = 0,
                            size: int = 512) -> None:
    """Taskonomy-format views as in the shared ``taskonomy-samples`` (same
    sample sets, views, domains and encodings: RGB8 rgb / normal / reshading
    (equal channels) / principal_curvature (2 used channels), uint16 depth in
    1/512 m with 65535 = invalid, uint16 edges and keypoints, 8-bit segment
    ids), smooth random content."""
    from cen_mm.datasets import encode_depth
    rng = np.random.default_rng(seed)
    shape = (size, size)
    for source, domains in TASKONOMY_SAMPLE_VIEWS.items():
        for domain, views in domains.items():
            for view in views:
                if domain.startswith('depth'):
                    depth = _smooth(rng, shape, 0.5, 8.)
                    img = encode_depth(depth, valid=depth < 7.5)
                elif domain.startswith(('edge', 'keypoints')):
                    img = _smooth(rng, shape, 0, 12000).astype(np.uint16)
                elif domain.startswith('segment'):
                    img = _smooth(rng, shape, 0, 40).astype(np.uint8)
                else:
                    img = _smooth(rng, shape + (3, ), 0, 255).astype(
                        np.uint8)
                    if domain == 'reshading':
                        img[..., 1:] = img[..., :1]
                    elif domain == 'principal_curvature':
                        img[..., 0] = 127  # B of the RGB file: unused
                _write(root / source / domain /
                       f'{view}_domain_{domain}.png', img)


def _samples(request, tmp_path_factory, name, write):
    if request.param == 'shared':
        root = DATA_ROOT / name
        if not root.is_dir():
            pytest.skip(f'{name} not found under {DATA_ROOT} (set CEN_MM_DATA '
                        'to the shared data folder); the generated twin runs')
        return root
    root = tmp_path_factory.mktemp('generated') / name
    write(root)
    return root


@pytest.fixture(scope='session', params=['shared', 'generated'])
def nyu_samples(request, tmp_path_factory) -> Path:
    """The NYUDv2 sample folder: the real frames, then generated ones."""
    return _samples(request, tmp_path_factory, 'nyudv2-samples',
                    write_nyudv2_samples)


@pytest.fixture(scope='session', params=['shared', 'generated'])
def taskonomy_samples(request, tmp_path_factory) -> Path:
    """The Taskonomy-format sample folder (``taskonomy/``, ``hm3d/``,
    ``replica/``): the real views, then generated ones."""
    return _samples(request, tmp_path_factory, 'taskonomy-samples',
                    write_taskonomy_samples)
