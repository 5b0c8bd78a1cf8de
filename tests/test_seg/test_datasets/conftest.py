# Copyright (c) cen_mm contributors. All rights reserved.
# `nyu_samples` (the real NYUDv2 frames and their generated twin) is in
# tests/conftest.py.
import pytest


@pytest.fixture(autouse=True)
def _mmseg_scope(mmseg_scope):
    """Build transforms under the mmseg scope, as configs do."""
    yield
