# Copyright (c) cen_mm contributors. All rights reserved.
"""Host-free data code: procedural data generators and file formats.

Needs only numpy and OpenCV and imports neither mmseg nor mmagic, so the
generators in ``tools/misc`` and any process can use it cheaply;
``cen_mm.seg.datasets`` and ``cen_mm.gen.datasets`` build their dataset
classes on top of it.

* :mod:`.synthetic_rgbd`: RGB-D segmentation scenes whose classes need both
  modalities (read by ``SyntheticRGBDDataset``; CLI
  ``tools/misc/generate_synthetic_rgbd.py``).
* :mod:`.synthetic_scenes`: ray-cast indoor scenes rendered into consistent
  Taskonomy domains (``tools/misc/generate_synthetic_scenes.py``).
* :mod:`.taskonomy_domains`: Taskonomy's per-domain encodings.
* :func:`.atomic_output_dir`: both generators write a folder atomically.
"""
from .fileio import atomic_output_dir
from .synthetic_rgbd import (AGREEMENT_CLASSES, AGREEMENT_PALETTE,
                             CLASS_COLOUR, CLASS_PROFILE, CONJUNCTION_CLASSES,
                             CONJUNCTION_PALETTE, DEPTH_CUES, LABEL_RULES,
                             SYNTHETIC_CLASSES, SYNTHETIC_PALETTE,
                             generate_synthetic_rgbd,
                             generate_synthetic_scene)
from .synthetic_scenes import (SEMANTIC_CLASSES, SYNTHETIC_DOMAINS,
                               render_view, sample_view,
                               write_synthetic_taskonomy)
from .taskonomy_domains import (DEPTH_INVALID, DEPTH_UNITS_PER_METRE,
                                DOMAIN_SPECS, TASKONOMY_DOMAINS,
                                decode_taskonomy_domain, encode_depth)

__all__ = [
    'atomic_output_dir', 'SYNTHETIC_CLASSES', 'SYNTHETIC_PALETTE',
    'CLASS_COLOUR', 'CLASS_PROFILE', 'LABEL_RULES', 'AGREEMENT_CLASSES',
    'AGREEMENT_PALETTE', 'CONJUNCTION_CLASSES', 'CONJUNCTION_PALETTE',
    'DEPTH_CUES', 'generate_synthetic_scene',
    'generate_synthetic_rgbd', 'SYNTHETIC_DOMAINS', 'SEMANTIC_CLASSES',
    'render_view', 'sample_view', 'write_synthetic_taskonomy',
    'TASKONOMY_DOMAINS', 'DOMAIN_SPECS', 'DEPTH_UNITS_PER_METRE',
    'DEPTH_INVALID', 'decode_taskonomy_domain', 'encode_depth'
]
