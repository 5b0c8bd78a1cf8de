# Copyright (c) cen_mm contributors. All rights reserved.
from .staged_lr import StagedLR

__all__ = ['StagedLR']
