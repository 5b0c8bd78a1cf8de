# Copyright (c) cen_mm contributors. All rights reserved.
"""Segment one RGB-D pair with a CEN model and draw what every stream sees.

Runs mmseg's ``inference_model`` on the pair (read into one RGB-D array by
``cen_mm.seg.apis.load_rgbd``) and writes

- ``{stem}_cen.png``: labelled overlays of the input, the ground truth (with
  ``--label``), each stream and the ensemble, with a class legend
  (``CENSegLocalVisualizer``, i.e. mmseg's ``SegLocalVisualizer``);
- ``{stem}_ens.png`` and ``{stem}_{stream}.png``: the plain colour masks.

Example::

    python demo/rgbd_demo.py rgb/000464.png depth/000464.png \\
        configs/cen/refinenet_r152_nyudv2.py \\
        --checkpoint cen_refinenet_r152_nyudv2.pth --out-dir demo_out
"""
import argparse
import os.path as osp
import sys
from typing import Dict

# Run this checkout's cen_mm, whatever else is installed or on the path.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import mmcv  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.structures import PixelData  # noqa: E402
from mmengine.utils import mkdir_or_exist  # noqa: E402
from mmseg.apis import inference_model  # noqa: E402

from cen_mm.seg.apis import init_model, load_rgbd  # noqa: E402
from cen_mm.seg.visualization import CENSegLocalVisualizer  # noqa: E402


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
        '--label', default=None, help='ground-truth label map to draw too')
    parser.add_argument(
        '--out-dir', required=True, help='folder for the drawn results')
    parser.add_argument(
        '--opacity', type=float, default=0.5, help='overlay opacity')
    parser.add_argument(
        '--device', default='cpu', help='device, e.g. cpu or cuda:0')
    return parser.parse_args()


def save_results(result, model, rgb_path: str, out_dir: str,
                 label_path: str = None,
                 opacity: float = 0.5) -> Dict[str, str]:
    """Write the labelled panels and the plain masks of ``result``.

    Returns:
        dict[str, str]: Output name (``'cen'``, ``'ens'``, stream names) ->
        written file.
    """
    stem = osp.splitext(osp.basename(rgb_path))[0]
    mkdir_or_exist(out_dir)
    palette = np.asarray(model.dataset_meta['palette'], np.uint8)
    written = {}
    masks = {'ens': result.pred_sem_seg.data}
    for name in model.stream_names:
        masks[name] = result.get(f'pred_sem_seg_{name}').data
    for name, mask in masks.items():
        mask = mask[0].cpu().numpy()
        colour = palette[np.clip(mask, 0, len(palette) - 1)]
        written[name] = osp.join(out_dir, f'{stem}_{name}.png')
        mmcv.imwrite(mmcv.rgb2bgr(colour), written[name])
    if label_path is not None:
        label = mmcv.imread(label_path, flag='unchanged')
        result.gt_sem_seg = PixelData(
            data=torch.from_numpy(label[None].astype(np.int64)))
    visualizer = CENSegLocalVisualizer.get_instance(
        f'rgbd_demo_{id(model)}', alpha=opacity)
    visualizer.dataset_meta = dict(model.dataset_meta)
    written['cen'] = osp.join(out_dir, f'{stem}_cen.png')
    visualizer.add_datasample(
        stem,
        mmcv.imread(rgb_path, channel_order='rgb'),
        result,
        draw_gt=label_path is not None,
        out_file=written['cen'])
    return written


def main() -> None:
    args = parse_args()
    model = init_model(args.config, args.checkpoint, device=args.device)
    result = inference_model(model, load_rgbd(args.rgb, args.depth))
    for name, path in save_results(result, model, args.rgb, args.out_dir,
                                   args.label, args.opacity).items():
        print(f'{name}: {path}')


if __name__ == '__main__':
    main()
