# Copyright (c) cen_mm contributors. All rights reserved.
"""Issue 12: tools/test.py --out results.pkl on a translation (mmagic)
config dumps the predictions instead of failing with mmagic's
"Unsupported evaluator type"."""
import pickle
import sys
from pathlib import Path

import pytest

pytest.importorskip('mmagic')

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / 'test_gen'))


def test_out_pickle_on_translation_config(tmp_path):
    from test_engine_tools import run_tool
    from test_train_synthetic import make_cfg

    from cen_mm.datasets import write_synthetic_taskonomy
    data_root = str(tmp_path / 'scenes')
    write_synthetic_taskonomy(data_root, num_train=2, num_val=2, size=32,
                              seed=0,
                              domains=('rgb', 'reshading', 'edge_texture'))
    cfg = make_cfg(str(tmp_path / 'work'), data_root, iters=1, size=32,
                   num_down=5, base_channels=8, batch_size=2,
                   val_interval=1, log_interval=1)
    cfg.test_evaluator = cfg.val_evaluator
    cfg_file = str(tmp_path / 'translation.py')
    cfg.dump(cfg_file)
    run_tool('train', cfg_file, '--work-dir', str(tmp_path / 'work'))
    out = str(tmp_path / 'results.pkl')
    run_tool('test', cfg_file, str(tmp_path / 'work' / 'iter_1.pth'),
             '--work-dir', str(tmp_path / 'work'), '--out', out)
    with open(out, 'rb') as f:
        results = pickle.load(f)
    assert len(results) == 2
    assert {'pred_img', 'pred_img_reshading',
            'pred_img_edge_texture'} <= set(results[0])
