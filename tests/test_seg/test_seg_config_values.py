# Copyright (c) cen_mm contributors. All rights reserved.
"""The values users rely on in the shipped segmentation configs: λ, θ, the
staged learning rates and milestones, epochs, crops and pipelines, batch and
classes, as the official recipe (docs/parity.md) and configs/cen/README.md
state them."""
from pathlib import Path

import pytest
from mmengine.config import Config, ConfigDict

CONFIGS = Path(__file__).parents[2] / 'configs' / 'cen'
OFFICIAL_ENC = [5e-4, 2.5e-4, 1e-4]
OFFICIAL_DEC = [3e-3, 1.5e-3, 7e-4]

# config: (λ, θ, encoder lrs, decoder lrs, milestones, epochs, crop,
#          batch, classes, dataset)
RECIPES = {
    'cen-refinenet_r101_1xb6-300e_nyudv2-rgbd-500x500.py':
    (6e-4, 2e-2, OFFICIAL_ENC, OFFICIAL_DEC, [100, 200], 300, (500, 500),
     6, 40, 'NYUDv2RGBDDataset'),
    'cen-refinenet_r152_1xb6-450e_nyudv2-rgbd-500x500.py':
    (6e-4, 2e-2, OFFICIAL_ENC, OFFICIAL_DEC, [150, 300], 450, (500, 500),
     6, 40, 'NYUDv2RGBDDataset'),
    'cen-pspnet_r152-d8_1xb6-450e_nyudv2-rgbd-500x500.py':
    (6e-4, 2e-2, OFFICIAL_ENC, OFFICIAL_DEC, [150, 300], 450, (500, 500),
     6, 40, 'NYUDv2RGBDDataset'),
    'cen-refinenet_r101_1xb6-60e_sunrgbd-rgbd-500x500.py':
    (6e-4, 2e-2, OFFICIAL_ENC, OFFICIAL_DEC, [20, 40], 60, (500, 500), 6,
     37, 'SUNRGBDDataset'),
    'cen-generic_mobilenet-v2-d8_pspnet_nyudv2-rgbd.py':
    (6e-4, 2e-2, OFFICIAL_ENC, OFFICIAL_DEC, [100, 200], 300, (500, 500),
     6, 40, 'NYUDv2RGBDDataset'),
    'cen-refinenet_r50_synthetic-rgbd.py':
    (5e-2, 2e-2, [2e-2, 1e-2, 4e-3], [2e-2, 1e-2, 4e-3], [20, 30], 40,
     (96, 96), 8, 5, 'SyntheticRGBDDataset'),
    'cen-refinenet_r50_synthetic-conjunction-rgbd.py':
    (5e-3, 2e-2, [2e-2, 1e-2, 4e-3], [2e-2, 1e-2, 4e-3], [40, 60], 80,
     (64, 64), 8, 4, 'SyntheticConjunctionRGBDDataset'),
    'cen-refinenet_r50_synthetic-agreement-rgbd.py':
    (2e-2, 2e-2, [2e-2, 1e-2, 4e-3], [2e-2, 1e-2, 4e-3], [10, 15], 20,
     (64, 64), 8, 3, 'SyntheticAgreementRGBDDataset'),
}


# Stock mmseg configs made CEN in a few keys: the host's model, schedule and
# runtime; their values are tested in test_mmseg_recipes.py.
MMSEG_HOSTED = {
    'cen-deeplabv3plus_r50-d8_1xb6-40k_nyudv2-rgbd-500x500.py',
    'cen-upernet_r50_1xb6-40k_nyudv2-rgbd-500x500.py',
    'cen-fcn_r50-d8_1xb6-40k_nyudv2-rgbd-500x500.py',
}


def test_every_config_has_a_recipe_row():
    shipped = {p.name for p in CONFIGS.glob('*.py')}
    assert shipped == set(RECIPES) | {'refinenet_r152_nyudv2.py'
                                      } | MMSEG_HOSTED


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_recipe_values(name):
    (lam, theta, enc, dec, milestones, epochs, crop, batch, classes,
     dataset) = RECIPES[name]
    cfg = Config.fromfile(str(CONFIGS / name))
    model = cfg.model

    # L1 on γ by the hook (not the loss term), θ at every exchanging BN.
    hooks = [h for h in cfg.custom_hooks if h.type == 'GammaSparsityHook']
    assert len(hooks) == 1 and hooks[0].lam == lam
    assert model.get('slim_loss_weight', 0.) == 0.
    backbone = model.backbone
    if 'exchange_cfg' in backbone:  # CEN ResNets
        assert backbone.exchange_cfg.threshold == theta
        assert backbone.exchange_cfg.exchange_scope == 'any'
        assert backbone.exchange_cfg.sparsity == 'own'
        assert backbone.exchange_sites == ('norm2', )
    else:  # any mmseg backbone with an ExchangeBN norm_cfg
        assert backbone.norm_cfg.type == 'ExchangeBN'
        assert backbone.norm_cfg.threshold == theta

    # Staged SGD: per-stage constant LRs for encoder and decoder, momentum
    # reset at each stage.
    optim = cfg.optim_wrapper.optimizer
    assert (optim.type, optim.momentum, optim.weight_decay) == ('SGD', 0.9,
                                                                1e-5)
    assert optim.lr == dec[0]
    backbone_group = cfg.optim_wrapper.paramwise_cfg.custom_keys.backbone
    assert backbone_group.lr_group == 'encoder'
    assert optim.lr * backbone_group.lr_mult == pytest.approx(enc[0],
                                                              rel=1e-12)
    [sched] = cfg.param_scheduler
    assert sched.type == 'StagedLR' and sched.by_epoch and sched.reset_state
    assert sched.milestones == milestones
    assert sched.lrs == dict(encoder=enc, default=dec)
    assert cfg.train_cfg.max_epochs == epochs
    # validation every 5 epochs (the pilot and the main demo validate once,
    # at the end)
    once = dataset in ('SyntheticAgreementRGBDDataset',
                       'SyntheticConjunctionRGBDDataset')
    assert cfg.train_cfg.val_interval == (epochs if once else 5)

    # Data: batch, crop (padded by the preprocessor), classes everywhere.
    train = cfg.train_dataloader
    assert train.batch_size == batch
    assert train.dataset.type == dataset
    assert model.decode_head.num_classes == classes
    assert model.data_preprocessor.size == crop
    [crop_step] = [t for t in train.dataset.pipeline if t.type == 'RandomCrop']
    assert crop_step.crop_size == crop and crop_step.cat_max_ratio == 1.0
    resizes = [
        t for t in train.dataset.pipeline if t.type == 'RGBDRandomResize'
    ]
    if once:
        assert resizes == []  # 64 px scenes cropped without rescaling
        resizes = [dict(interpolation='bicubic', depth_interpolation='nearest',
                        ratio_range=(0.75, 1.5), min_short_side=None)]
    [resize] = [ConfigDict(r) for r in resizes]
    assert (resize.interpolation, resize.depth_interpolation) == ('bicubic',
                                                                  'nearest')
    if dataset.startswith('Synthetic'):
        assert (resize.ratio_range, resize.min_short_side) == ((0.75, 1.5),
                                                               None)
    else:  # official: s ~ U(0.5, 2), shorter side >= 350
        assert (resize.ratio_range, resize.min_short_side) == ((0.5, 2.0),
                                                               350)
    # The official loader drops the last incomplete batch; the generic
    # recipe keeps mmseg's default.
    official = not dataset.startswith('Synthetic') and 'generic' not in name
    assert train.get('drop_last', False) == official
    test_steps = [t.type for t in cfg.test_dataloader.dataset.pipeline]
    assert test_steps == [
        'LoadRGBDFromFile', 'LoadRGBDAnnotations', 'PackSegInputs'
    ]  # single scale at full resolution

    # Official normalisation: ImageNet RGB; raw depth x 1/5000.
    pre = model.data_preprocessor
    assert pre.mean == [123.675, 116.28, 103.53, 0., 0., 0.]
    assert pre.std == [58.395, 57.12, 57.375, 5000., 5000., 5000.]
    assert tuple(pre.bgr_to_rgb) == (True, False)
    # Loss averaged over labelled pixels, as the official NLL loss (not in
    # the generic recipe, which keeps mmseg's head settings).
    assert model.decode_head.loss_decode.get('avg_non_ignore', False) == (
        'generic' not in name)
    # Streams declared once, on the model; the metric and the hook read them
    # from there.
    assert tuple(model.stream_names) == ('rgb', 'depth')
    assert cfg.val_evaluator.type == 'StreamIoUMetric'
    assert 'stream_names' not in cfg.val_evaluator
    assert 'stream_names' not in hooks[0]
