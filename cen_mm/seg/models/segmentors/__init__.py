# Copyright (c) cen_mm contributors. All rights reserved.
from .cen_encoder_decoder import CENEncoderDecoder
from .cen_seg_tta import CENSegTTAModel

__all__ = ['CENEncoderDecoder', 'CENSegTTAModel']
