# Copyright (c) cen_mm contributors. All rights reserved.
"""CEN for MMagic: multimodal image-to-image translation.

Importing this package registers the models, datasets, transforms and
metrics into ``mmagic.registry`` (configs load it with
``custom_imports=dict(imports=['cen_mm.gen'])``). It imports mmagic, which
is heavy; ``cen_mm`` and ``cen_mm.seg`` never import it.
"""
import mmagic.registry  # noqa: F401  (registries the submodules fill)

from . import datasets, evaluation, models  # noqa: F401

__all__ = ['datasets', 'evaluation', 'models']
