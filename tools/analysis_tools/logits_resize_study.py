# Copyright (c) cen_mm contributors. All rights reserved.
"""How much does bicubic (official) vs bilinear (mmseg) logits resizing change
NYUDv2 predictions?

The official CEN test resizes the stride-4 logits to the label size with
``cv2.INTER_CUBIC`` before the argmax; mmseg resizes bilinearly. This script
measures the difference on the real NYUDv2 sample frames
(``$CEN_MM_DATA/nyudv2-samples``, default ``../shared/data``) with two fixed
predictors, both evaluated with the two modes on the *same* logits:

- ``oracle``: the ground truth seen at stride 4 (each 4x4 cell's class
  frequencies as logits), on all 6 labelled sample frames; this isolates
  the resize itself at real object boundaries;
- ``cen-r101``: the NYUDv2 paper config's CEN RefineNet-R101 with seeded
  random weights (no trained weights are available offline), on the one
  frame with depth; the ensemble and both streams.

Reported per predictor: the fraction of labelled pixels whose argmax changes
and the mIoU (over the classes present) with each mode, ×100.

Example::

    python tools/analysis_tools/logits_resize_study.py
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, List, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

# Run this checkout's cen_mm, whatever else is installed or on the path.
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

MODES = ('bilinear', 'bicubic')
NUM_CLASSES = 40
CONFIG = 'configs/cen/cen-refinenet_r101_1xb6-300e_nyudv2-rgbd-500x500.py'


def sample_root() -> str:
    root = os.environ.get('CEN_MM_DATA', osp.join(REPO, '..', 'shared',
                                                  'data'))
    path = osp.join(root, 'nyudv2-samples')
    if not osp.isdir(path):
        raise FileNotFoundError(f'NYUDv2 samples not found at {path} (set '
                                'CEN_MM_DATA)')
    return path


def read_label(path: str) -> np.ndarray:
    # Palette PNGs (the rgb-label-only frames) hold the class ids as indices.
    from PIL import Image
    label = np.asarray(Image.open(path))
    if label.ndim != 2:
        raise ValueError(f'{path}: expected a single-channel/palette label')
    return label


def labels(root: str) -> List[Tuple[str, np.ndarray]]:
    out = [('000464', read_label(osp.join(root, 'label40', '000464.png')))]
    extra = osp.join(root, 'rgb-label-only', 'label40')
    for name in sorted(os.listdir(extra)):
        out.append((name[:-4], read_label(osp.join(extra, name))))
    return out


def resize_argmax(logits: torch.Tensor, size: Tuple[int, int],
                  mode: str) -> np.ndarray:
    up = F.interpolate(logits, size=size, mode=mode, align_corners=False)
    return up.argmax(1)[0].numpy()


def oracle_logits(label: np.ndarray) -> torch.Tensor:
    """Class frequencies of each 4x4 cell (stride-4 'perfect' logits)."""
    h, w = label.shape
    onehot = np.zeros((NUM_CLASSES, h, w), np.float32)
    valid = label < NUM_CLASSES
    onehot[label[valid], np.nonzero(valid)[0], np.nonzero(valid)[1]] = 1
    t = torch.from_numpy(onehot)[None]
    return F.avg_pool2d(t, 4, ceil_mode=True)


class Confusion:

    def __init__(self) -> None:
        self.matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)

    def add(self, pred: np.ndarray, gt: np.ndarray) -> None:
        valid = gt < NUM_CLASSES
        self.matrix += np.bincount(
            gt[valid].astype(np.int64) * NUM_CLASSES + pred[valid],
            minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES)

    def miou(self) -> float:
        m = self.matrix
        inter = np.diag(m)
        union = m.sum(0) + m.sum(1) - inter
        present = m.sum(1) > 0
        return float(np.mean(inter[present] / union[present]) * 100)


def compare(items: List[Tuple[torch.Tensor, np.ndarray]]) -> Dict:
    conf = {mode: Confusion() for mode in MODES}
    changed = total = 0
    for logits, gt in items:
        preds = {m: resize_argmax(logits, gt.shape, m) for m in MODES}
        for m in MODES:
            conf[m].add(preds[m], gt)
        valid = gt < NUM_CLASSES
        changed += int((preds['bilinear'] != preds['bicubic'])[valid].sum())
        total += int(valid.sum())
    return dict(changed=100 * changed / total,
                pixels=total,
                **{f'mIoU_{m}': conf[m].miou()
                   for m in MODES})


def cen_logits(root: str, seed: int) -> Dict[str, torch.Tensor]:
    """Stride-4 logits of the seeded random-init paper model on 000464."""
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import cen_mm.seg  # noqa: F401
    cfg = Config.fromfile(osp.join(REPO, CONFIG))
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmseg')
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model).eval()
    pipeline = Compose(cfg.test_pipeline)
    data = pipeline(
        dict(img_path=osp.join(root, 'rgb', '000464.png'),
             depth_path=osp.join(root, 'depth', '000464.png'),
             seg_map_path=osp.join(root, 'label40', '000464.png'),
             reduce_zero_label=False,
             seg_fields=[]))
    batch = model.data_preprocessor(
        dict(inputs=[data['inputs']], data_samples=[data['data_samples']]))
    with torch.no_grad():
        out = model.decode_head(model.extract_feat(batch['inputs']))
    rgb, depth, ens = out.chunk(3)
    return dict(ens=ens, rgb=rgb, depth=depth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--skip-model',
                        action='store_true',
                        help='only the oracle (fast)')
    args = parser.parse_args()
    root = sample_root()
    gts = labels(root)
    rows = [('oracle (6 frames)',
             compare([(oracle_logits(gt), gt) for _, gt in gts]))]
    if not args.skip_model:
        gt = gts[0][1]
        for name, logits in cen_logits(root, args.seed).items():
            rows.append((f'cen-r101 seed {args.seed}, {name} (000464)',
                         compare([(logits, gt)])))
    print('| predictor | labelled px | argmax changed (%) | mIoU bilinear '
          '| mIoU bicubic |')
    print('| --- | --- | --- | --- | --- |')
    for name, r in rows:
        print(f'| {name} | {r["pixels"]} | {r["changed"]:.3f} | '
              f'{r["mIoU_bilinear"]:.2f} | {r["mIoU_bicubic"]:.2f} |')


if __name__ == '__main__':
    main()
