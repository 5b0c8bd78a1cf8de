# Copyright (c) cen_mm contributors. All rights reserved.
"""Render the procedural scenes in the Taskonomy layout.

Example::

    python tools/misc/generate_synthetic_scenes.py data/synthetic_scenes \\
        --num-train 40 --num-val 10 --size 256 --seed 0
"""
import argparse
import importlib.util
import os.path as osp
import sys
import time
import types


def load_renderer() -> types.ModuleType:
    """Import the renderer without ``cen_mm.gen`` (which imports mmagic).

    The renderer needs only numpy and OpenCV; going through ``cen_mm.gen``
    would cost tens of seconds of mmagic imports.
    """
    spec = importlib.util.find_spec('cen_mm')
    if spec is None:  # not installed: use the checkout this script is in
        root = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..')
        folder = osp.join(root, 'cen_mm', 'gen', 'datasets')
    else:
        folder = osp.join(
            list(spec.submodule_search_locations)[0], 'gen', 'datasets')
    package = types.ModuleType('_cen_mm_scenes')
    package.__path__ = [folder]
    sys.modules['_cen_mm_scenes'] = package
    return importlib.import_module('_cen_mm_scenes.synthetic_scenes')


renderer = load_renderer()
SYNTHETIC_DOMAINS = renderer.SYNTHETIC_DOMAINS
write_synthetic_taskonomy = renderer.write_synthetic_taskonomy


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
        domains=args.domains)
    print(f'Wrote {len(splits["train"])} train and {len(splits["val"])} val '
          f'views ({len(args.domains)} domains, {args.size}x{args.size}) to '
          f'{args.out_dir} in {time.time() - start:.1f} s')


if __name__ == '__main__':
    main()
