# Copyright (c) cen_mm contributors. All rights reserved.
"""CENMAE / CENMSE per stream on known inputs."""
import numpy as np
import pytest
import torch

from cen_mm.gen.evaluation import CENMAE, CENMSE


def samples():
    gt = torch.zeros(3, 4, 4)
    return [
        # stream prediction on the sample, ensemble under ``output``
        dict(gt_img=gt, pred_img_normal=torch.full((3, 4, 4), 51.),
             output=dict(pred_img=torch.full((3, 4, 4), 102.))),
        dict(gt_img=gt + 255, pred_img_normal=torch.full((3, 4, 4), 204.),
             output=dict(pred_img=torch.full((3, 4, 4), 255.))),
    ]


def test_mae_mse_known_values_times_100():
    mae = CENMAE(pred_key='pred_img_normal', prefix='normal')
    mse = CENMSE(pred_key='pred_img_normal', prefix='normal')
    ens_mae = CENMAE(prefix='ens')
    ens_mse = CENMSE(prefix='ens')
    for metric in (mae, mse, ens_mae, ens_mse):
        metric.process(None, samples())
    # |0 - 0.2| and |1 - 0.8| -> 0.2; squared 0.04
    assert mae.evaluate(2)['normal/MAE'] == pytest.approx(20.)
    assert mse.evaluate(2)['normal/MSE'] == pytest.approx(4.)
    # ensemble: 0.4 and 0 -> mean 0.2; 0.16 and 0 -> 0.08
    assert ens_mae.evaluate(2)['ens/MAE'] == pytest.approx(20.)
    assert ens_mse.evaluate(2)['ens/MSE'] == pytest.approx(8.)


def test_numpy_images_mask_and_errors():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (5, 6, 3)).astype(np.float64)
    pred = rng.integers(0, 256, (5, 6, 3)).astype(np.float64)
    mask = np.zeros((5, 6, 3))
    mask[:2] = 1
    metric = CENMAE(scaling=1, mask_key='mask')
    metric.process(None, [dict(gt_img=gt, pred_img=pred, mask=mask)])
    expected = np.abs(gt - pred)[:2].mean() / 255
    assert metric.evaluate(1)['MAE'] == pytest.approx(expected)
    with pytest.raises(KeyError, match='"pred_img_rgb" not found'):
        CENMSE(pred_key='pred_img_rgb').process(None, samples())
    with pytest.raises(ValueError, match='has shape'):
        CENMSE().process(None, [dict(gt_img=torch.zeros(3, 4, 4),
                                     pred_img=torch.zeros(3, 5, 4))])


def test_paper_convention_known_values():
    """The paper's MAE is on [-1, 1] images (twice the plain one) and its
    "MSE" is the root mean squared error on [-1, 1], per image, x100."""
    mae = CENMAE(pred_key='pred_img_normal', prefix='normal',
                 convention='paper')
    mse = CENMSE(prefix='ens', convention='paper')
    for metric in (mae, mse):
        metric.process(None, samples())
    assert mae.evaluate(2) == {'normal/MAE_paper': pytest.approx(40.)}
    # ensemble errors 0.4 and 0 on [0, 1] -> 0.8 and 0 on [-1, 1]:
    # RMSE 0.8 and 0, mean 0.4 -> 40
    assert mse.evaluate(2) == {'ens/MSE_paper': pytest.approx(40.)}
    # against a direct computation on [-1, 1] images
    rng = np.random.default_rng(1)
    gt = rng.integers(0, 256, (3, 5, 6)).astype(np.float64)
    pred = rng.integers(0, 256, (3, 5, 6)).astype(np.float64)
    metric = CENMSE(convention='paper')
    metric.process(None, [dict(gt_img=torch.from_numpy(gt),
                               output=dict(pred_img=torch.from_numpy(pred)))])
    rmse = np.sqrt(np.mean((gt / 127.5 - pred / 127.5)**2))
    assert metric.evaluate(1)['MSE_paper'] == pytest.approx(100 * rmse)
    with pytest.raises(ValueError, match='convention'):
        CENMAE(convention='official')
