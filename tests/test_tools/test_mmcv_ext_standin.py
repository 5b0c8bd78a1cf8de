# Copyright (c) cen_mm contributors. All rights reserved.
"""The managed environment's stand-in for mmcv's compiled ``mmcv._ext``
(tools/env/cen_mm_mmcv_ext_standin.py, installed by tools/env.sh for the
default mmcv-lite variant)."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

STANDIN = Path(__file__).parents[2] / 'tools' / 'env' / \
    'cen_mm_mmcv_ext_standin.py'


def _run(code: str, timeout: int = 600) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, '-c', code],
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _ext_is_standin() -> bool:
    import mmcv
    if importlib.util.find_spec('mmcv._ext') is None:
        return False
    import mmcv._ext
    return getattr(mmcv._ext, 'is_cen_mm_standin', False) and bool(mmcv)


needs_standin = pytest.mark.skipif(
    not _ext_is_standin(),
    reason='mmcv._ext is the real compiled extension (CEN_MM_MMCV=full) or '
    'absent: the stand-in is not in use in this environment')

# Import every module of mmseg and mmagic in a fresh interpreter; report the
# names and the modules that failed (walk_packages skips the children of a
# package that fails).
WALK = '''
import importlib, json, pkgutil, sys
names, failed = [], {}
def onerror(name):
    err = sys.exc_info()[1]
    failed[name] = f'{type(err).__name__}: {err}'
for pkg in ('mmseg', 'mmagic'):
    names.append(pkg)
    for info in pkgutil.walk_packages(importlib.import_module(pkg).__path__,
                                      pkg + '.', onerror=onerror):
        names.append(info.name)
        if info.name not in failed:
            try:
                importlib.import_module(info.name)
            except Exception as err:
                failed[info.name] = f'{type(err).__name__}: {err}'
print(json.dumps(dict(names=names, failed=failed)))
'''


def test_every_mmseg_and_mmagic_module_imports():
    report = json.loads(_run(WALK).stdout.strip().splitlines()[-1])
    names = set(report['names'])
    # The modules that import compiled ops at module level are among them.
    for module in ('mmseg.utils.mask_classification',
                   'mmseg.models.utils.point_sample',
                   'mmseg.models.losses.focal_loss',
                   'mmseg.models.decode_heads.san_head',
                   'mmagic.models.editors.basicvsr_plusplus_net.'
                   'basicvsr_plusplus_net',
                   'mmagic.models.editors.edvr.edvr_net',
                   'mmagic.models.editors.tdan.tdan_net',
                   'mmagic.models.editors.stylegan2.stylegan2_modules'):
        assert module in names, module
    assert sum(n.startswith('mmseg.') for n in names) > 150
    assert sum(n.startswith('mmagic.') for n in names) > 350
    # The one known failure is unrelated to mmcv: mmagic.apis imports
    # controlnet_aux (not in the lock; see README "Stack traps").
    expected = {}
    if importlib.util.find_spec('controlnet_aux') is None:
        expected['mmagic.apis'] = ("ModuleNotFoundError: No module named "
                                   "'controlnet_aux'")
    assert report['failed'] == expected


@needs_standin
def test_a_compiled_op_raises_naming_the_op():
    from mmcv.ops import nms, sigmoid_focal_loss
    from mmcv.ops.deform_conv import DeformConv2d
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.]])
    with pytest.raises(NotImplementedError,
                       match=r'mmcv op `nms` needs the compiled mmcv.*'
                       r'CEN_MM_MMCV=full'):
        nms(boxes, torch.tensor([0.9, 0.8]), 0.5)
    with pytest.raises(NotImplementedError,
                       match='`sigmoid_focal_loss_forward`'):
        sigmoid_focal_loss(
            torch.randn(2, 3), torch.tensor([0, 2]), 2.0, 0.25)
    conv = DeformConv2d(2, 2, 3, padding=1)
    with pytest.raises(NotImplementedError,
                       match='`deform_conv_forward`'):
        conv(torch.randn(1, 2, 5, 5), torch.zeros(1, 18, 5, 5))
    # The version helpers mmengine/mmcv call while collecting env info
    # return strings instead of raising.
    import mmcv._ext as ext
    assert isinstance(ext.get_compiler_version(), str)
    assert isinstance(ext.get_compiling_cuda_version(), str)


def test_the_finder_answers_only_for_mmcv_ext():
    spec = importlib.util.spec_from_file_location('_standin_under_test',
                                                  STANDIN)
    standin = importlib.util.module_from_spec(spec)
    meta_path = list(sys.meta_path)
    try:
        spec.loader.exec_module(standin)  # install() appends a finder
    finally:
        sys.meta_path[:] = meta_path
    finder = standin._Finder()
    assert finder.find_spec('mmcv.ops') is None
    assert finder.find_spec('mmcv._ext_other') is None
    ext_spec = finder.find_spec('mmcv._ext')
    module = ext_spec.loader.create_module(ext_spec)
    ext_spec.loader.exec_module(module)
    op = module.roi_align_forward
    assert 'roi_align_forward' in repr(op)
    with pytest.raises(NotImplementedError, match='`roi_align_forward`'):
        op(torch.zeros(1))
    with pytest.raises(AttributeError):
        module.__wrapped__  # dunder look-ups (inspect, pickle) stay honest


@needs_standin
def test_the_finder_comes_after_the_path_finder():
    # Registered last, so a real compiled mmcv._ext on the path wins.
    from importlib.machinery import PathFinder
    kinds = [type(f).__name__ for f in sys.meta_path]
    assert '_Finder' in kinds
    assert kinds.index('_Finder') > sys.meta_path.index(PathFinder)


def test_import_cen_mm_never_uses_the_standin():
    # Remove the stand-in (as in a user's own environment with mmcv-lite and
    # no stand-in), forbid re-importing it, then import cen_mm's host-free
    # packages: they need neither the stand-in nor mmcv._ext.
    _run('''
import sys
sys.meta_path[:] = [f for f in sys.meta_path
                    if type(f).__module__ != 'cen_mm_mmcv_ext_standin']
sys.modules.pop('cen_mm_mmcv_ext_standin', None)

class Forbid:
    def find_spec(self, name, path=None, target=None):
        if name in ('cen_mm_mmcv_ext_standin', 'mmcv._ext', 'mmcv.ops'):
            raise ImportError(f'cen_mm imported {name}')

sys.meta_path.insert(0, Forbid())
import cen_mm, cen_mm.cnn, cen_mm.engine, cen_mm.datasets
loaded = [m for m in ('cen_mm_mmcv_ext_standin', 'mmcv._ext', 'mmcv.ops')
          if m in sys.modules]
assert not loaded, loaded
''')
    sources = Path(__file__).parents[2] / 'cen_mm'
    for path in sources.rglob('*.py'):
        assert 'cen_mm_mmcv_ext_standin' not in path.read_text(), path
