# Copyright (c) cen_mm contributors. All rights reserved.
"""Issue 12: with two clones, each clone's scripts run that clone's cen_mm,
whatever the other clone puts on PYTHONPATH (or installs)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Every script that imports cen_mm; --help imports it and exits.
SCRIPTS = ['tools/train.py', 'tools/test.py', 'demo/rgbd_demo.py',
           'tools/misc/generate_synthetic_rgbd.py',
           'tools/misc/generate_synthetic_scenes.py']
MARK = '\nimport os as _os\nwith open(_os.environ["CEN_MM_IMPORT_LOG"], "a") '\
    'as _f:\n    _f.write(__file__ + "\\n")\n'


def make_clone(root: Path) -> Path:
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc')
    for name in ('cen_mm', 'tools', 'demo'):
        shutil.copytree(REPO / name, root / name, ignore=ignore)
    with open(root / 'cen_mm' / '__init__.py', 'a') as f:
        f.write(MARK)  # records which clone's cen_mm was imported
    return root


@pytest.mark.parametrize('script', SCRIPTS)
def test_each_clone_runs_its_own_code(tmp_path, script):
    if not (REPO / script).is_file():
        pytest.skip(f'{script} is not in this checkout')
    clone_a = make_clone(tmp_path / 'a')
    clone_b = make_clone(tmp_path / 'b')
    log = tmp_path / 'imports.log'
    # clone b first on the path, as if it were installed or exported
    env = dict(os.environ, PYTHONPATH=str(clone_b), CEN_MM_IMPORT_LOG=str(log),
               NO_ALBUMENTATIONS_UPDATE='1', OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, str(clone_a / script), '--help'],
                          cwd=str(tmp_path), env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert log.read_text().splitlines() == [
        str(clone_a / 'cen_mm' / '__init__.py')]
