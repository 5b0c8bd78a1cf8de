# Copyright (c) cen_mm contributors. All rights reserved.
from .loading import LoadTaskonomyDomains, read_taskonomy_png

__all__ = ['LoadTaskonomyDomains', 'read_taskonomy_png']
