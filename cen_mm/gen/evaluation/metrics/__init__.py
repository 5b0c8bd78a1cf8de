# Copyright (c) cen_mm contributors. All rights reserved.
from .dump_results import DumpGenResults
from .inception_metrics import CENFID, CENKID, PairedFeatureMetric
from .pixel_metrics import CENMAE, CENMSE
from .translation_metrics import CENTranslationMetrics

__all__ = [
    'DumpGenResults', 'CENFID', 'CENKID', 'PairedFeatureMetric', 'CENMAE',
    'CENMSE', 'CENTranslationMetrics'
]
