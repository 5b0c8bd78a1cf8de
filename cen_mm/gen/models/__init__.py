# Copyright (c) cen_mm contributors. All rights reserved.
from .cen_multi_pix2pix import CENMultiPix2Pix
from .cen_multi_unet_generator import CENMultiUnetGenerator
from .cen_patch_discriminator import CENPatchDiscriminator
from .cen_pix2pix import CENPix2Pix
from .cen_unet_generator import CENUnetGenerator
from .fusion_unet_generator import FusionUnetGenerator
from .pix2pix_own_init import Pix2PixOwnInit
from .unet_layout import UnetLayout

__all__ = [
    'CENUnetGenerator', 'CENPix2Pix', 'CENPatchDiscriminator',
    'FusionUnetGenerator', 'CENMultiUnetGenerator', 'CENMultiPix2Pix',
    'Pix2PixOwnInit', 'UnetLayout'
]
