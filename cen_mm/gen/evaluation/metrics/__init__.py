# Copyright (c) cen_mm contributors. All rights reserved.
from .inception_metrics import CENFID, CENKID, PairedFeatureMetric
from .pixel_metrics import CENMAE, CENMSE

__all__ = ['CENFID', 'CENKID', 'PairedFeatureMetric', 'CENMAE', 'CENMSE']
