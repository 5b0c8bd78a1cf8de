# Copyright (c) cen_mm contributors. All rights reserved.
import os.path as osp
from typing import Optional

from mmseg.registry import DATASETS

from cen_mm.datasets.synthetic_rgbd import (AGREEMENT_CLASSES,
                                            AGREEMENT_PALETTE,
                                            CONJUNCTION_CLASSES,
                                            CONJUNCTION_PALETTE,
                                            SYNTHETIC_CLASSES,
                                            SYNTHETIC_PALETTE,
                                            generate_synthetic_rgbd)
from .rgbd_seg_dataset import RGBDSegDataset

__all__ = [
    'SyntheticRGBDDataset', 'SyntheticAgreementRGBDDataset',
    'SyntheticConjunctionRGBDDataset'
]


@DATASETS.register_module()
class SyntheticRGBDDataset(RGBDSegDataset):
    """Synthetic RGB-D scenes where neither modality alone suffices.

    The scenes and classes are described in
    :mod:`cen_mm.datasets.synthetic_rgbd`. With ``generate`` set, a missing
    ``data_root`` is generated on first use (deterministically and atomically,
    with :func:`~cen_mm.datasets.generate_synthetic_rgbd`), so configs work
    without any download.

    Args:
        generate (dict, optional): Keyword arguments of
            :func:`~cen_mm.datasets.generate_synthetic_rgbd` (``num_train``,
            ``num_val``, ``size``, ``seed``) used when ``data_root`` does not
            exist. None disables generation. Defaults to ``dict()`` (60/20
            images, 96 px, seed 0).
        **kwargs: Arguments of :class:`RGBDSegDataset`.
    """
    METAINFO = dict(classes=SYNTHETIC_CLASSES, palette=SYNTHETIC_PALETTE)

    def __init__(self, generate: Optional[dict] = dict(), **kwargs) -> None:
        data_root = kwargs.get('data_root')
        if (generate is not None and data_root is not None
                and not osp.exists(data_root)):
            generate_synthetic_rgbd(data_root, **generate)
        super().__init__(**kwargs)


@DATASETS.register_module()
class SyntheticAgreementRGBDDataset(SyntheticRGBDDataset):
    """The synthetic RGB-D scenes labelled by the agreement of colour and
    depth profile: ``matched`` (red dome, blue flat) vs ``crossed`` (red
    flat, blue dome), plus background.

    Neither modality alone nor a late fusion of independently trained
    streams can separate the two object classes; only feature-level fusion
    can. Same images as :class:`SyntheticRGBDDataset`; generated with
    ``rule='agreement'``.

    Args:
        generate (dict, optional): As :class:`SyntheticRGBDDataset`
            (``rule`` is set to ``'agreement'``). Defaults to ``dict()``.
        **kwargs: Arguments of :class:`RGBDSegDataset`.
    """
    METAINFO = dict(classes=AGREEMENT_CLASSES, palette=AGREEMENT_PALETTE)

    def __init__(self, generate: Optional[dict] = dict(), **kwargs) -> None:
        if generate is not None:
            generate = {**generate, 'rule': 'agreement'}
        super().__init__(generate=generate, **kwargs)


@DATASETS.register_module()
class SyntheticConjunctionRGBDDataset(SyntheticRGBDDataset):
    """The synthetic RGB-D scenes labelled by the conjunction of colour and
    depth cue: ``red_near``, ``mixed`` (red far or blue near), ``blue_far``,
    plus background (the main demo's data).

    The classes are linear in the two cues, so a network that sees both
    learns them quickly, but the colour is only in RGB and the distance only
    in depth; a late fusion of independent streams ties between two classes
    on half of the objects. Generated with ``rule='conjunction'``; pass
    ``generate=dict(depth_cue='distance')`` for near/far plates instead of
    dome/flat profiles.

    Args:
        generate (dict, optional): As :class:`SyntheticRGBDDataset`
            (``rule`` is set to ``'conjunction'``). Defaults to ``dict()``.
        **kwargs: Arguments of :class:`RGBDSegDataset`.
    """
    METAINFO = dict(classes=CONJUNCTION_CLASSES, palette=CONJUNCTION_PALETTE)

    def __init__(self, generate: Optional[dict] = dict(), **kwargs) -> None:
        if generate is not None:
            generate = {**generate, 'rule': 'conjunction'}
        super().__init__(generate=generate, **kwargs)
