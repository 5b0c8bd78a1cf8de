# Copyright (c) cen_mm contributors. All rights reserved.
import os
from pathlib import Path

import pytest

DATA_ROOT = Path(
    os.environ.get('CEN_MM_DATA',
                   Path(__file__).parents[3] / '..' / 'shared' / 'data'))
NYU_SAMPLES = DATA_ROOT / 'nyudv2-samples'


@pytest.fixture(scope='session')
def nyu_samples() -> Path:
    """The real NYUDv2 sample frames (see /work/shared/data/README.md)."""
    if not (NYU_SAMPLES / 'depth' / '000464.png').is_file():
        pytest.skip(f'NYUDv2 samples not found at {NYU_SAMPLES} (set '
                    'CEN_MM_DATA to the shared data folder)')
    return NYU_SAMPLES


@pytest.fixture(autouse=True)
def _mmseg_scope():
    """Build transforms under the mmseg scope, as configs do."""
    from mmengine.registry import DefaultScope

    import cen_mm.seg  # noqa: F401
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield
