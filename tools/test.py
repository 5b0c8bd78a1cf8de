# Copyright (c) cen_mm contributors. All rights reserved.
"""Test (evaluate) a checkpoint with an mmseg or mmagic config.

Example::

    python tools/test.py configs/cen/<config>.py work_dirs/x/iter_1000.pth
    python tools/test.py CONFIG CKPT --tta      # multi-scale + flip (mmseg)
    bash tools/dist_test.sh CONFIG CKPT 2       # CPU: gloo
"""
import argparse
import os.path as osp
import sys

# Run this checkout's cen_mm, whatever else is installed or on the path.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import cen_mm  # noqa: E402,F401
import cen_mm.engine  # noqa: E402,F401  (safe checkpoint loading)
from cen_mm.engine.launch import add_common_args, build_runner, load_config


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out',
        help='a .pkl/.pickle file to dump every prediction to, or a '
        'directory where the evaluator saves its formatted results '
        '(mmseg IoUMetric `output_dir`, `keep_results=True`)')
    parser.add_argument(
        '--tta', action='store_true', help='test time augmentation')
    add_common_args(parser)
    return parser.parse_args()


def setup_tta(cfg) -> None:
    """Wrap the model in ``cfg.tta_model`` and test with ``tta_pipeline``
    (as mmseg's ``tools/test.py --tta``)."""
    missing = [k for k in ('tta_model', 'tta_pipeline') if k not in cfg]
    if missing:
        raise KeyError(f'--tta needs {missing} in the config')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


def setup_out(cfg, out: str) -> None:
    """Dump predictions to a pickle, or let the evaluator write formatted
    results into a directory."""
    if out.endswith(('.pkl', '.pickle')):
        evaluator = cfg.test_evaluator
        metrics = evaluator if isinstance(evaluator, list) else [evaluator]
        cfg.test_evaluator = [*metrics, dict(type='DumpResults',
                                             out_file_path=out)]
        return
    evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator,
                                                  list) else [
                                                      cfg.test_evaluator]
    for evaluator in evaluators:
        evaluator['output_dir'] = out
        evaluator['keep_results'] = True


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    if args.tta:
        setup_tta(cfg)
    if args.out is not None:
        setup_out(cfg, args.out)
    runner = build_runner(cfg)
    runner.test()


if __name__ == '__main__':
    main()
