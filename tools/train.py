# Copyright (c) cen_mm contributors. All rights reserved.
"""Train a model from an mmseg or mmagic config.

Example::

    python tools/train.py configs/cen/<config>.py --work-dir work_dirs/x
    bash tools/dist_train.sh configs/cen/<config>.py 2   # CPU: gloo
"""
import argparse
import os.path as osp
import sys

# Run this checkout's cen_mm, whatever else is installed or on the path.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import cen_mm  # noqa: E402,F401
import cen_mm.engine  # noqa: E402,F401  (GammaSparsityHook, safe checkpoints)
from cen_mm.engine.launch import (add_common_args, build_runner, enable_amp,
                                  load_config)


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
    add_common_args(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args)
    if args.amp:
        enable_amp(cfg)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    runner = build_runner(cfg)
    runner.train()


if __name__ == '__main__':
    main()
