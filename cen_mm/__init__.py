# Copyright (c) cen_mm contributors. All rights reserved.
"""Channel-Exchanging Networks (CEN) for OpenMMLab.

``import cen_mm`` registers the pieces every host needs (exchanging norms in
mmengine's root MODELS, the L1-on-γ and safe-checkpoint hooks in its root
HOOKS) and changes no behaviour of torch or mmengine; it imports neither
mmseg nor mmagic. Import
``cen_mm.seg`` (MMSegmentation) or ``cen_mm.gen`` (MMagic) for the rest.
"""
from . import cnn, engine  # noqa: F401

__version__ = '0.1.0'
__all__ = ['__version__']
