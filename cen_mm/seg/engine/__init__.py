# Copyright (c) cen_mm contributors. All rights reserved.
from .optim_constructor import SummaryOptimWrapperConstructor
from .staged_lr import StagedLR

__all__ = ['StagedLR', 'SummaryOptimWrapperConstructor']
