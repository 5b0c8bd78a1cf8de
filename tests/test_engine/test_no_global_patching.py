# Copyright (c) cen_mm contributors. All rights reserved.
"""``import cen_mm`` (and ``cen_mm.seg`` / ``cen_mm.gen``) registers modules
and changes nothing global: every attribute of every already imported torch,
numpy, mmengine, mmcv, mmseg and mmagic module (and of the classes they
define) is the same object after the import, and torch's ``weights_only``
allow-list is unchanged. Nothing is compiled either."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r'''
import importlib, sys, types
import numpy, torch, mmengine, mmengine.hooks, mmengine.logging
import mmengine.runner, mmengine.runner.checkpoint, mmengine.runner.runner

WATCH = ('torch', 'numpy', 'mmengine', 'mmcv', 'mmseg', 'mmagic')


def snapshot():
    snap = {}
    for name, mod in list(sys.modules.items()):
        if not isinstance(mod, types.ModuleType) or \
                name.split('.')[0] not in WATCH:
            continue
        for attr, value in list(vars(mod).items()):
            if isinstance(value, types.ModuleType):
                continue  # a newly imported submodule is no patch
            snap[(name, attr)] = value
            if isinstance(value, type) and value.__module__ == name:
                for key, member in list(vars(value).items()):
                    snap[(name, attr, key)] = member
    return snap


def check(hosts, plugin):
    for host in hosts:
        importlib.import_module(host)
    before = snapshot()
    modules = {key[0] for key in before}
    safe = set(map(repr, torch.serialization.get_safe_globals()))
    getstate = mmengine.logging.HistoryBuffer.__getstate__
    importlib.import_module(plugin)
    after = snapshot()
    changed = sorted(str(k) for k, v in before.items()
                     if k not in after or after[k] is not v)
    added = sorted(str(k) for k in after
                   if k not in before and k[0] in modules)
    assert not changed, f'{plugin} changed {changed[:20]}'
    assert not added, f'{plugin} added {added[:20]}'
    assert set(map(repr, torch.serialization.get_safe_globals())) == safe
    assert mmengine.logging.HistoryBuffer.__getstate__ is getstate
    print(plugin, 'checked', len(before), 'attributes')


check([], 'cen_mm')
if sys.argv[1] == 'seg':
    check(['mmseg.models', 'mmseg.datasets', 'mmseg.evaluation',
           'mmseg.engine', 'mmseg.structures', 'mmseg.visualization'],
          'cen_mm.seg')
elif sys.argv[1] == 'gen':
    check(['mmagic.models', 'mmagic.datasets', 'mmagic.evaluation',
           'mmagic.engine', 'mmagic.structures'], 'cen_mm.gen')
'''


@pytest.mark.parametrize('host', ['none', 'seg', 'gen'])
def test_import_changes_nothing_global(host, tmp_path):
    if host != 'none':
        pytest.importorskip({'seg': 'mmseg', 'gen': 'mmagic'}[host])
    kernels = tmp_path / 'kernels'  # the CPU row kernel builds on first use
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS='1',
               CEN_MM_KERNEL_CACHE=str(kernels))
    proc = subprocess.run([sys.executable, '-c', SCRIPT, host],
                          cwd=str(REPO), env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'cen_mm checked' in proc.stdout
    assert not kernels.exists()
    if host != 'none':
        assert f'cen_mm.{host} checked' in proc.stdout
