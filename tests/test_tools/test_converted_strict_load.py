# Copyright (c) cen_mm contributors. All rights reserved.
"""Converted official checkpoints load under cen_mm's strict loading; the
unconverted official file is refused (it fills none of the model)."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from cen_mm.engine.checkpoint import load_model_checkpoint

REPO = Path(__file__).parents[2]


def load_test_module():
    spec = importlib.util.spec_from_file_location(
        'converter_tests', REPO / 'tests/test_tools/test_model_converters.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_converted_segmentation_checkpoint_loads_strictly(tmp_path):
    t = load_test_module()
    tool = t.load_tool('cen2mmseg')
    cfg, model = t.build_tiny_segmentor()
    cfg.dump(str(tmp_path / 'tiny.py'))
    official = t.tiny_official_refinenet()
    src = tmp_path / 'model-best.pth.tar'
    torch.save(dict(segmenter=official, epoch_start=1,
                    best_val=np.float64(0.5)), src)
    dst = tmp_path / 'converted.pth'
    tool.convert_file(str(src), str(dst), config=str(tmp_path / 'tiny.py'))
    load_model_checkpoint(model, str(dst), strict=True)
    for old, new, _ in tool.convert_official_seg(official).mapped:
        assert torch.equal(model.state_dict()[new], official[old])
    torch.save(official, tmp_path / 'raw.pth')
    with pytest.raises(RuntimeError, match='672 of its 672 weights are '
                       'missing'):
        load_model_checkpoint(model, str(tmp_path / 'raw.pth'), strict=True)
