# Copyright (c) cen_mm contributors. All rights reserved.
"""Train a model from an mmseg or mmagic config.

Example::

    python tools/train.py configs/cen/<config>.py --work-dir work_dirs/x
    bash tools/dist_train.sh configs/cen/<config>.py 2   # CPU: gloo
"""
import argparse
import contextlib
import os
import os.path as osp
import sys

# Run this checkout's cen_mm, whatever else is installed or on the path.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import cen_mm  # noqa: E402,F401
from cen_mm.engine import safe_checkpoint_loading  # noqa: E402
from cen_mm.engine import work_dir_lock  # noqa: E402
from cen_mm.engine.launch import (add_common_args, build_runner,  # noqa: E402
                                  enable_amp, enable_non_finite_guard,
                                  enable_safe_checkpointing, load_config,
                                  setup_resume)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        default=None,
        help='resume from the given checkpoint, or (no value) from the '
        'latest checkpoint in the work dir')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic mixed precision training (CUDA only)')
    parser.add_argument(
        '--partial-load',
        action='store_true',
        help='let `load_from`/`--resume` load a checkpoint that leaves model '
        'weights unfilled (by default that is an error)')
    add_common_args(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args)
    enable_safe_checkpointing(cfg, strict_load=not args.partial_load)
    enable_non_finite_guard(cfg)
    if args.amp:
        enable_amp(cfg)
    # One training per work dir (rank 0 holds the lock for the whole job).
    lock = work_dir_lock(cfg.work_dir) if int(os.environ.get(
        'RANK', 0)) == 0 else contextlib.nullcontext()
    with lock, safe_checkpoint_loading():
        setup_resume(cfg, args.resume)
        runner = build_runner(cfg)
        runner.train()


if __name__ == '__main__':
    main()
