# Copyright (c) cen_mm contributors. All rights reserved.
from mmagic.models.archs import PatchDiscriminator
from mmagic.registry import MODELS

from .weight_init import init_norms_and_biases

__all__ = ['CENPatchDiscriminator']


@MODELS.register_module()
class CENPatchDiscriminator(PatchDiscriminator):
    """mmagic's PatchGAN with the official code's initial IN γ and biases.

    mmagic's ``PatchDiscriminator`` draws conv weights ~ N(0, gain) and
    zeroes their biases; its IN γ stay 1. The official CEN discriminator
    (PyTorch 1.0) draws the same weights but keeps PyTorch's default biases
    and γ ~ U(0, 1). ``norm_init='uniform'`` / ``bias_init='pytorch'``
    reproduce that; the defaults are mmagic's.

    Args:
        norm_init (str): ``'ones'`` or ``'uniform'``. Default: 'ones'.
        bias_init (str): ``'zeros'`` or ``'pytorch'``. Default: 'zeros'.
        **kwargs: Arguments of mmagic's ``PatchDiscriminator``.
    """

    def __init__(self,
                 *args,
                 norm_init: str = 'ones',
                 bias_init: str = 'zeros',
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.norm_init = norm_init
        self.bias_init = bias_init
        init_norms_and_biases(self, norm_init, bias_init)

    def init_weights(self) -> None:
        """mmagic's init, then the chosen IN γ and conv biases."""
        super().init_weights()
        if not (self.init_cfg or {}).get('type') == 'Pretrained':
            init_norms_and_biases(self, self.norm_init, self.bias_init)
