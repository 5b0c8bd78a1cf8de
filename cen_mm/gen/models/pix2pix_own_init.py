# Copyright (c) cen_mm contributors. All rights reserved.
from mmagic.models.editors import Pix2Pix
from mmagic.registry import MODELS

__all__ = ['Pix2PixOwnInit']


@MODELS.register_module()
class Pix2PixOwnInit(Pix2Pix):
    """mmagic's ``Pix2Pix`` that initialises G and D by their own
    ``init_weights``: an opt-in fix for open-mmlab/mmagic#2109.

    mmagic 1.2.0's ``BaseTranslationModel.init_weights`` attaches init-info
    tracking to the generator and discriminator, after which
    ``generation_init_weights`` raises ``UnboundLocalError: init_info`` for
    any stock Pix2Pix config trained through a Runner. Nothing is patched:
    ``Pix2Pix`` keeps mmagic's behaviour; a config opts in with::

        custom_imports = dict(imports=['cen_mm.gen'])
        model = dict(type='Pix2PixOwnInit')

    The weights are those ``init_weights`` of G and D give (``CENPix2Pix``
    initialises the same way).
    """

    def init_weights(self) -> None:
        for domain in self._reachable_domains:
            self.get_module(self.generators)[domain].init_weights()
            if self.discriminators is not None:
                self.get_module(self.discriminators)[domain].init_weights()
