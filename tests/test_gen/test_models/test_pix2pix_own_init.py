# Copyright (c) cen_mm contributors. All rights reserved.
"""Stock mmagic Pix2Pix configs beside cen_mm: mmagic#2109 and its opt-in
fix (README, "Stack traps")."""
import pytest
import torch
from mmagic.models.base_models import BaseTranslationModel
from mmagic.models.editors import Pix2Pix
from mmagic.registry import MODELS
from mmengine.config import Config
from mmengine.registry import DefaultScope

import cen_mm.gen  # noqa: F401
from cen_mm.gen.models import Pix2PixOwnInit

STOCK = 'mmagic::pix2pix/pix2pix_vanilla-unet-bn_1xb1-80kiters_facades.py'


@pytest.fixture(scope='module')
def stock_model_cfg(tmp_path_factory):
    path = tmp_path_factory.mktemp('cfg') / 'stock.py'
    path.write_text(f"_base_ = ['{STOCK}']\n")
    cfg = Config.fromfile(str(path)).model
    # A smaller U-Net keeps the test fast; the init path is the same.
    cfg.generator.update(num_down=5, base_channels=8)
    cfg.discriminator.update(base_channels=8)
    return cfg


def build(cfg, **kwargs):
    with DefaultScope.overwrite_default_scope('mmagic'):
        return MODELS.build(dict(cfg, **kwargs))


def test_stock_pix2pix_init_crash_is_untouched(stock_model_cfg):
    # cen_mm changes nothing in mmagic: the upstream bug is still there
    # (if mmagic fixes it, Pix2PixOwnInit can go).
    assert Pix2Pix.init_weights is BaseTranslationModel.init_weights
    model = build(stock_model_cfg)
    assert type(model) is Pix2Pix
    with pytest.raises(UnboundLocalError, match='init_info'):
        model.init_weights()


def test_opt_in_fix_initialises_like_g_and_d(stock_model_cfg):
    torch.manual_seed(3)
    model = build(stock_model_cfg, type='Pix2PixOwnInit')
    assert isinstance(model, Pix2PixOwnInit)
    torch.manual_seed(4)
    model.init_weights()
    reference = build(stock_model_cfg)
    torch.manual_seed(4)
    reference.generators['photo'].init_weights()
    reference.discriminators['photo'].init_weights()
    got, want = model.state_dict(), reference.state_dict()
    assert got.keys() == want.keys()
    for key in got:
        assert torch.equal(got[key], want[key]), key
    # The generator's convs got the N(0, 0.02) init of generation_init_weights.
    conv = model.generators['photo'].model.model[0].conv
    assert abs(conv.weight.std().item() - 0.02) < 0.005
