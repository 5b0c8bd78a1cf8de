# Copyright (c) cen_mm contributors. All rights reserved.
"""Convert an official CEN RefineNet segmentation checkpoint to cen_mm.

Source: ``github.com/yikaiw/CEN`` (``semantic_segmentation/``), the released
NYUDv2 models (``model-best.pth.tar`` / ``checkpoint.pth.tar``, RefineNet on
a 2-stream ResNet-50/101/152). The file is ``{'segmenter': state_dict,
'epoch_start': int, 'best_val': numpy.float64}``; it is read with
``torch.load(weights_only=True)`` plus an allow-list of the numpy scalar
types only (see :mod:`cen_mm.engine.official_checkpoint`), never with a plain
unpickler.

Key mapping (after dropping DataParallel's leading ``module.``; ``m`` is the
stream, 0 = RGB, 1 = depth; ``i`` the official 1-based stage, deepest
first, ``s = i - 1``):

=====================================================  =====================================
official                                               cen_mm (``CENEncoderDecoder``)
=====================================================  =====================================
``conv1.module.weight``                                ``backbone.conv1.weight``
``bn1.bn_{m}.*``                                       ``backbone.bn1.streams.{m}.*``
``layer{L}.{b}.conv{k}.module.weight``                 ``backbone.layer{L}.{b}.conv{k}.weight``
``layer{L}.{b}.bn{k}.bn_{m}.*``                        ``backbone.layer{L}.{b}.bn{k}.streams.{m}.*``
``layer{L}.0.downsample.0.module.weight``              ``backbone.layer{L}.0.downsample.0.weight``
``layer{L}.0.downsample.1.bn_{m}.*``                   ``backbone.layer{L}.0.downsample.1.streams.{m}.*``
``p_ims1d2_outl{i}_dimred``                            ``decode_head.dimreds.{s}``
``adapt_stage{i}_b.0.{b}_conv``                        ``decode_head.adapts.{s}.blocks.{b-1}.0``
``adapt_stage{i}_b.0.{b}_conv_relu_varout_dimred``     ``decode_head.adapts.{s}.blocks.{b-1}.1``
``adapt_stage{i}_b2_joint_varout_dimred``              ``decode_head.adapt_outs.{s-1}``
``mflow_conv_g{i}_pool.0.{k}_outvar_dimred``           ``decode_head.crps.{s}.convs.{k-1}``
``mflow_conv_g{i}_b.0.{b}_conv[_relu_varout_dimred]``  ``decode_head.fuses.{s}.blocks.{b-1}.{0|1}``
``mflow_conv_g{i}_b3_joint_varout_dimred``             ``decode_head.out_convs.{s}``
``clf_conv``                                           ``decode_head.conv_seg``
``alpha``                                              ``decode_head.ensemble.alpha``
=====================================================  =====================================

(decoder convs end in ``.module.weight`` / ``.module.bias`` officially). No
official key is unused; an unknown key, a missing cen_mm key or a shape
mismatch against the cen_mm model (built on the ``meta`` device from
``--config``) is an error. The output is an mmengine checkpoint
(``state_dict`` + ``meta.dataset_meta``) that ``tools/test.py`` and mmseg's
``init_model`` load.

Example::

    python tools/model_converters/cen2mmseg.py model-best.pth.tar \\
        checkpoints/cen_refinenet_r101_nyudv2.pth
    python tools/test.py \\
        configs/cen/cen-refinenet_r101_1xb6-300e_nyudv2-rgbd-500x500.py \\
        checkpoints/cen_refinenet_r101_nyudv2.pth
"""
import argparse
import os.path as osp
import re
import sys
from typing import Dict, Optional, Tuple

import torch

# Run this checkout's cen_mm, whatever else is installed or on the path.
sys.path.insert(0,
                osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from cen_mm.engine.official_checkpoint import (  # noqa: E402
    NORM_STATE, ConversionResult, KeyRule, check_converted, convert_state_dict,
    extract_state_dict, load_official_checkpoint)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# Blocks in layer3 -> ResNet depth (torchvision bottleneck ResNets).
LAYER3_BLOCKS_TO_DEPTH = {6: 50, 23: 101, 36: 152}
DEFAULT_CONFIGS = {
    depth:
    osp.join(REPO, 'configs', '_base_', 'models',
             f'cen_resnet{depth}_refinenet.py')
    for depth in LAYER3_BLOCKS_TO_DEPTH.values()
}
DATASETS = ('nyudv2', 'sunrgbd')


def _stage(match: re.Match, offset: int = 1) -> int:
    return int(match.group(1)) - offset


def _rcu(prefix: str, field: str):
    """Target for ``{field}{i}_b.0.{b}_conv...``: block b-1, conv 0 or 1."""

    def target(m: re.Match) -> str:
        conv = 1 if m.group(3) else 0
        return (f'decode_head.{field}.{_stage(m)}.blocks.{int(m.group(2)) - 1}'
                f'.{conv}.{m.group(4)}')

    return target


SEG_RULES = (
    KeyRule(r'conv1\.module\.weight', 'backbone.conv1.weight'),
    KeyRule(rf'bn1\.bn_(\d+)\.{NORM_STATE}', r'backbone.bn1.streams.\1.\2'),
    KeyRule(r'(layer[1-4]\.\d+)\.conv([123])\.module\.weight',
            r'backbone.\1.conv\2.weight'),
    KeyRule(rf'(layer[1-4]\.\d+)\.bn([123])\.bn_(\d+)\.{NORM_STATE}',
            r'backbone.\1.bn\2.streams.\3.\4'),
    KeyRule(r'(layer[1-4]\.0)\.downsample\.0\.module\.weight',
            r'backbone.\1.downsample.0.weight'),
    KeyRule(rf'(layer[1-4]\.0)\.downsample\.1\.bn_(\d+)\.{NORM_STATE}',
            r'backbone.\1.downsample.1.streams.\2.\3'),
    KeyRule(r'p_ims1d2_outl([1-4])_dimred\.module\.weight',
            lambda m: f'decode_head.dimreds.{_stage(m)}.weight'),
    KeyRule(
        r'adapt_stage([1-4])_b\.0\.(\d+)_conv(_relu_varout_dimred)?'
        r'\.module\.(weight|bias)', _rcu('adapt_stage', 'adapts')),
    KeyRule(r'adapt_stage([2-4])_b2_joint_varout_dimred\.module\.weight',
            lambda m: f'decode_head.adapt_outs.{_stage(m, 2)}.weight'),
    KeyRule(
        r'mflow_conv_g([1-4])_pool\.0\.(\d+)_outvar_dimred\.module\.weight',
        lambda m: f'decode_head.crps.{_stage(m)}.convs.'
        f'{int(m.group(2)) - 1}.weight'),
    KeyRule(
        r'mflow_conv_g([1-4])_b\.0\.(\d+)_conv(_relu_varout_dimred)?'
        r'\.module\.(weight|bias)', _rcu('mflow_conv_g', 'fuses')),
    KeyRule(r'mflow_conv_g([1-3])_b3_joint_varout_dimred\.module\.weight',
            lambda m: f'decode_head.out_convs.{_stage(m)}.weight'),
    KeyRule(r'clf_conv\.module\.(weight|bias)', r'decode_head.conv_seg.\1'),
    KeyRule(r'alpha', 'decode_head.ensemble.alpha'),
)


def detect_depth(state_dict: Dict[str, torch.Tensor], source: str) -> int:
    """ResNet depth from the number of layer3 blocks."""
    blocks = {
        int(m.group(1))
        for m in (re.match(r'(?:module\.)?layer3\.(\d+)\.', k)
                  for k in state_dict) if m
    }
    depth = LAYER3_BLOCKS_TO_DEPTH.get(len(blocks))
    if depth is None:
        raise ValueError(
            f'{source}: {len(blocks)} blocks in layer3 match no official '
            f'ResNet ({LAYER3_BLOCKS_TO_DEPTH}: blocks -> depth)')
    return depth


def convert_official_seg(state_dict: Dict[str, torch.Tensor],
                         source: str = 'checkpoint') -> ConversionResult:
    """Rename an official CEN RefineNet state dict to cen_mm's names.

    Args:
        state_dict (dict): The official ``segmenter`` state dict (with or
            without DataParallel's ``module.`` prefix).
        source (str): Name for messages.

    Returns:
        ConversionResult: Tensors (the same objects, renamed), the mapping
        and the unused keys (none for a valid official checkpoint).
    """
    return convert_state_dict(state_dict,
                              SEG_RULES,
                              source,
                              strip_prefixes=('module.', ))


def model_shapes(config: str, num_classes: int) -> Dict[str, torch.Size]:
    """Key -> shape of the cen_mm model of ``config`` (built on ``meta``)."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS

    import cen_mm.seg  # noqa: F401
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None  # no download
    cfg.model.decode_head.num_classes = num_classes
    cfg.model.pop('pretrained', None)
    with DefaultScope.overwrite_default_scope('mmseg'), torch.device('meta'):
        model = MODELS.build(cfg.model)
    return {k: v.shape for k, v in model.state_dict().items()}


def dataset_meta(dataset: str) -> Dict:
    """``classes`` and ``palette`` of a cen_mm RGB-D dataset."""
    from cen_mm.seg.datasets import NYUDv2RGBDDataset, SUNRGBDDataset
    cls = dict(nyudv2=NYUDv2RGBDDataset, sunrgbd=SUNRGBDDataset)[dataset]
    return dict(classes=tuple(cls.METAINFO['classes']),
                palette=[list(c) for c in cls.METAINFO['palette']])


def sanity_notes(state_dict: Dict[str, torch.Tensor]) -> Tuple[str, ...]:
    """Facts expected of an official checkpoint trained with frozen BN
    (running statistics equal across streams, no batches tracked)."""
    notes = []
    differ = [
        k for k in state_dict if k.endswith(('running_mean', 'running_var'))
        and '.streams.0.' in k and not torch.equal(
            state_dict[k], state_dict[k.replace('.streams.0.', '.streams.1.')])
    ]
    if differ:
        notes.append(f'{len(differ)} BN running statistics differ between '
                     f'the streams (e.g. {differ[0]}): not the official '
                     'frozen-BN training')
    tracked = [
        k for k, v in state_dict.items()
        if k.endswith('num_batches_tracked') and int(v) != 0
    ]
    if tracked:
        notes.append(f'{len(tracked)} num_batches_tracked are non-zero')
    return tuple(notes)


def convert_file(src: str,
                 dst: str,
                 config: Optional[str] = None,
                 dataset: str = 'nyudv2') -> Dict:
    """Convert ``src`` into the mmengine checkpoint ``dst``.

    Returns:
        dict: A report: ``depth``, ``mapped`` / ``unused`` counts, ``extras``
        (``epoch_start``, ``best_val``) and ``notes``.
    """
    if dataset not in DATASETS:
        raise ValueError(f'dataset must be one of {DATASETS}, got {dataset!r}')
    state, extras = extract_state_dict(load_official_checkpoint(src), src)
    depth = detect_depth(state, src)
    result = convert_official_seg(state, src)
    classifier = result.state_dict.get('decode_head.conv_seg.bias')
    if classifier is None:
        raise KeyError(f'{src}: no clf_conv (classifier) in the checkpoint')
    num_classes = classifier.numel()
    meta = dataset_meta(dataset)
    if len(meta['classes']) != num_classes:
        raise ValueError(f'{src}: the classifier has {num_classes} classes, '
                         f'{dataset} has {len(meta["classes"])}')
    config = config or DEFAULT_CONFIGS[depth]
    check_converted(result.state_dict, model_shapes(config, num_classes),
                    f'{src} -> {config}')
    notes = sanity_notes(result.state_dict)
    report = dict(source=osp.basename(src),
                  converter='tools/model_converters/cen2mmseg.py',
                  depth=depth,
                  mapped=len(result.mapped),
                  unused=[list(u) for u in result.unused],
                  official=extras,
                  notes=list(notes))
    torch.save(
        dict(meta=dict(dataset_meta=meta, cen_mm_conversion=report),
             state_dict=result.state_dict), dst)
    return report


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert an official CEN RefineNet checkpoint '
        '(github.com/yikaiw/CEN) to a cen_mm (mmseg) checkpoint.')
    parser.add_argument('src', help='official model-best.pth.tar')
    parser.add_argument('dst', help='output .pth')
    parser.add_argument(
        '--config',
        help='cen_mm config whose model the result must fill (default: '
        'configs/_base_/models/cen_resnet{depth}_refinenet.py)')
    parser.add_argument('--dataset', default='nyudv2', choices=DATASETS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    report = convert_file(args.src, args.dst, args.config, args.dataset)
    print(f'ResNet-{report["depth"]}: {report["mapped"]} keys mapped, '
          f'{len(report["unused"])} unused; official extras '
          f'{report["official"]}')
    for key, reason in report['unused']:
        print(f'  unused {key}: {reason}')
    for note in report['notes']:
        print(f'  note: {note}')
    print(f'wrote {args.dst}')


if __name__ == '__main__':
    main()
