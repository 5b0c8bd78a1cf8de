# Copyright (c) cen_mm contributors. All rights reserved.
"""`import cen_mm` stays light: neither mmseg nor mmagic; `cen_mm.seg` does
not pull in mmagic."""
import subprocess
import sys

import pytest

CHECK = ('import sys, {module}; '
         'loaded = sorted(m for m in {forbidden} if m in sys.modules); '
         'sys.exit(f"{module} imported {{loaded}}" if loaded else 0)')


@pytest.mark.parametrize('module,forbidden', [
    ('cen_mm', ('mmseg', 'mmagic')),
    ('cen_mm.datasets', ('mmseg', 'mmagic')),
    ('cen_mm.seg', ('mmagic', )),
])
def test_import_is_light(module, forbidden):
    done = subprocess.run(
        [sys.executable, '-c',
         CHECK.format(module=module, forbidden=forbidden)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
