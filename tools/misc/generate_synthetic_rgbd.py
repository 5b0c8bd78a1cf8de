# Copyright (c) cen_mm contributors. All rights reserved.
"""Write the synthetic RGB-D segmentation set (no download needed).

Example::

    python tools/misc/generate_synthetic_rgbd.py data/synthetic_rgbd \
        --num-train 60 --num-val 20 --size 96 --seed 0

The scenes and classes are described in ``cen_mm/datasets/synthetic_rgbd.py``
and docs/datasets.md; the output is read by ``SyntheticRGBDDataset``
(``configs/_base_/datasets/synthetic_rgbd.py``). Needs neither mmseg nor
mmagic; the folder is written atomically.
"""
import argparse
import os.path as osp
import sys

# Run this checkout's cen_mm, whatever else is installed or on the path.
sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from cen_mm.datasets import generate_synthetic_rgbd  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(
        description='Generate the synthetic RGB-D segmentation set')
    parser.add_argument(
        'out_dir', nargs='?', default='data/synthetic_rgbd',
        help='output data_root')
    parser.add_argument('--num-train', type=int, default=60)
    parser.add_argument('--num-val', type=int, default=20)
    parser.add_argument('--size', type=int, default=96,
                        help='image height and width')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing non-empty out_dir')
    return parser.parse_args()


def main():
    args = parse_args()
    counts = generate_synthetic_rgbd(
        args.out_dir,
        num_train=args.num_train,
        num_val=args.num_val,
        size=args.size,
        seed=args.seed,
        overwrite=args.overwrite)
    print(f'wrote {counts} images to {args.out_dir}')


if __name__ == '__main__':
    main()
