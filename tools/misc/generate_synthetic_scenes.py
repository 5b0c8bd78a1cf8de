# Copyright (c) cen_mm contributors. All rights reserved.
"""Render the procedural scenes in the Taskonomy layout.

Example::

    python tools/misc/generate_synthetic_scenes.py data/synthetic_scenes \\
        --num-train 40 --num-val 10 --size 256 --seed 0

The renderer is ``cen_mm/datasets/synthetic_scenes.py`` (see
docs/taskonomy.md); the folder is written atomically.
"""
import argparse
import os.path as osp
import sys
import time

# Run this checkout's cen_mm, whatever else is installed or on the path.
sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

# cen_mm.datasets needs neither mmagic nor mmseg (numpy and OpenCV only).
from cen_mm.datasets import (SYNTHETIC_DOMAINS,  # noqa: E402
                             write_synthetic_taskonomy)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Render synthetic indoor scenes (rgb, depth, normal, '
        'reshading, edges, semantics) in the Taskonomy file layout')
    parser.add_argument(
        'out_dir',
        nargs='?',
        default='data/synthetic_scenes',
        help='output folder (default: data/synthetic_scenes)')
    parser.add_argument('--num-train', type=int, default=40)
    parser.add_argument('--num-val', type=int, default=10)
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--views-per-point',
        type=int,
        default=2,
        help='views rendered per scene (a point never spans two splits)')
    parser.add_argument(
        '--domains',
        nargs='+',
        default=list(SYNTHETIC_DOMAINS),
        choices=SYNTHETIC_DOMAINS)
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='replace an existing non-empty out_dir')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    start = time.time()
    splits = write_synthetic_taskonomy(
        args.out_dir,
        num_train=args.num_train,
        num_val=args.num_val,
        size=args.size,
        seed=args.seed,
        views_per_point=args.views_per_point,
        domains=args.domains,
        overwrite=args.overwrite)
    print(f'Wrote {len(splits["train"])} train and {len(splits["val"])} val '
          f'views ({len(args.domains)} domains, {args.size}x{args.size}) to '
          f'{args.out_dir} in {time.time() - start:.1f} s')


if __name__ == '__main__':
    main()
