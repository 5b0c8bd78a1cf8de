# Copyright (c) cen_mm contributors. All rights reserved.
from .functional import (InceptionPool3, find_fid_helper_inception,
                         frechet_distance, frechet_distance_from_features,
                         kernel_inception_distance, polynomial_mmd2)
from .metrics import (CENFID, CENKID, CENMAE, CENMSE, CENTranslationMetrics,
                      PairedFeatureMetric)
from .translation_evaluator import CENTranslationEvaluator

__all__ = [
    'CENTranslationEvaluator', 'CENTranslationMetrics', 'CENFID', 'CENKID', 'CENMAE', 'CENMSE',
    'PairedFeatureMetric', 'InceptionPool3', 'find_fid_helper_inception', 'frechet_distance',
    'frechet_distance_from_features', 'kernel_inception_distance',
    'polynomial_mmd2'
]
