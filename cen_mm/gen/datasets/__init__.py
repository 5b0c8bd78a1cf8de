# Copyright (c) cen_mm contributors. All rights reserved.
from .synthetic_scenes import (SEMANTIC_CLASSES, SYNTHETIC_DOMAINS,
                               render_view, sample_view,
                               write_synthetic_taskonomy)
from .taskonomy_dataset import TaskonomyDataset
from .taskonomy_domains import (DOMAIN_SPECS, TASKONOMY_DOMAINS,
                                decode_taskonomy_domain, encode_depth)
from .transforms import LoadTaskonomyDomains, read_taskonomy_png

__all__ = [
    'TaskonomyDataset', 'LoadTaskonomyDomains', 'read_taskonomy_png',
    'TASKONOMY_DOMAINS', 'DOMAIN_SPECS', 'decode_taskonomy_domain',
    'encode_depth', 'SYNTHETIC_DOMAINS', 'SEMANTIC_CLASSES', 'render_view',
    'sample_view', 'write_synthetic_taskonomy'
]
