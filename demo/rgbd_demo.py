# Copyright (c) cen_mm contributors. All rights reserved.
"""Segment one RGB-D pair with a CEN model and save coloured masks.

Writes ``{stem}_ens.png`` (the ensemble) and ``{stem}_{stream}.png`` for
every stream (e.g. ``rgb``, ``depth``), coloured with the dataset palette.

Example::

    python demo/rgbd_demo.py rgb/000464.png depth/000464.png \\
        configs/cen/refinenet_r152_nyudv2.py \\
        --checkpoint cen_refinenet_r152_nyudv2.pth --out-dir demo_out
"""
import argparse
import os.path as osp
from typing import Dict

import mmcv
import numpy as np
from mmengine.utils import mkdir_or_exist

from cen_mm.seg.apis import get_palette_for, inference_rgbd, init_cen_model


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='CEN RGB-D semantic segmentation demo')
    parser.add_argument('rgb', help='RGB image file')
    parser.add_argument('depth', help='depth map file (e.g. uint16 PNG)')
    parser.add_argument('config', help='model config file')
    parser.add_argument(
        '--checkpoint',
        default=None,
        help='checkpoint file (random weights if omitted)')
    parser.add_argument(
        '--out-dir', required=True, help='folder for the coloured masks')
    parser.add_argument(
        '--device', default='cpu', help='device, e.g. cpu or cuda:0')
    return parser.parse_args()


def colorize(mask: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Map an HxW label mask to an HxWx3 uint8 RGB image."""
    return palette[np.clip(mask, 0, len(palette) - 1)]


def save_masks(result, model, rgb_path: str, out_dir: str) -> Dict[str, str]:
    """Save the ensemble and per-stream masks of ``result`` as PNGs.

    Returns:
        dict[str, str]: Output name -> written file.
    """
    palette = get_palette_for(model)
    stem = osp.splitext(osp.basename(rgb_path))[0]
    mkdir_or_exist(out_dir)
    masks = {'ens': result.pred_sem_seg.data}
    for name in model.stream_names:
        masks[name] = result.get(f'pred_sem_seg_{name}').data
    written = {}
    for name, mask in masks.items():
        colour = colorize(mask[0].cpu().numpy(), palette)
        path = osp.join(out_dir, f'{stem}_{name}.png')
        mmcv.imwrite(colour[..., ::-1], path)  # mmcv writes BGR
        written[name] = path
    return written


def main() -> None:
    args = parse_args()
    model = init_cen_model(args.config, args.checkpoint, device=args.device)
    result = inference_rgbd(model, args.rgb, args.depth)
    for name, path in save_masks(result, model, args.rgb,
                                 args.out_dir).items():
        print(f'{name}: {path}')


if __name__ == '__main__':
    main()
