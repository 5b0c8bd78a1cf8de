# Copyright (c) cen_mm contributors. All rights reserved.
from .taskonomy_dataset import TaskonomyDataset
from .transforms import LoadTaskonomyDomains, read_taskonomy_png

__all__ = ['TaskonomyDataset', 'LoadTaskonomyDomains', 'read_taskonomy_png']
