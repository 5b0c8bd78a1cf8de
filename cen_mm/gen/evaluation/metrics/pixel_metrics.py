# Copyright (c) cen_mm contributors. All rights reserved.
"""MAE / MSE per output stream, ×100: plain ([0, 1] images) or the paper's
definitions ([-1, 1] images, "MSE" = root mean squared error)."""
from typing import Optional, Sequence

import torch
from mmagic.evaluation.metrics import MAE, MSE
from mmagic.registry import METRICS

from .utils import get_sample_value, to_chw_tensor

__all__ = ['CENMAE', 'CENMSE']

CONVENTIONS = ('plain', 'paper')


class _StreamPixelMetricMixin:
    """Resolve ``pred_key`` / ``gt_key`` on the sample or its ``output``.

    mmagic's ``MAE`` / ``MSE`` read predictions only from ``output``; CEN
    translation models store one prediction per stream (``pred_img``,
    ``pred_img_{domain}``) and may keep them on the sample itself.
    """

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for data in data_samples:
            if not isinstance(data, dict):
                data = data.to_dict()
            gt = to_chw_tensor(get_sample_value(data, self.gt_key),
                               self.gt_key).double().to(self.device)
            pred = to_chw_tensor(get_sample_value(data, self.pred_key),
                                 self.pred_key).double().to(self.device)
            if gt.shape != pred.shape:
                raise ValueError(
                    f'{self.metric}: "{self.pred_key}" has shape '
                    f'{tuple(pred.shape)} but "{self.gt_key}" has shape '
                    f'{tuple(gt.shape)}')
            if self.mask_key is not None:
                mask = to_chw_tensor(
                    get_sample_value(data, self.mask_key),
                    self.mask_key).double().to(self.device)
                mask = (mask != 0).double()
            else:
                mask = torch.ones_like(pred)
            result = float(self.process_image(gt, pred, mask))
            if self.convention == 'paper':
                result = self.to_paper(result)
            self.results.append({self.metric: result})

    def _set_convention(self, convention: str) -> None:
        if convention not in CONVENTIONS:
            raise ValueError(f'{type(self).__name__}: convention must be one '
                             f'of {CONVENTIONS}, got {convention!r}')
        self.convention = convention
        if convention == 'paper':
            # an instance attribute: mmagic keys results by `self.metric`
            self.metric = f'{type(self).metric}_paper'

    def evaluate(self, size: Optional[int] = None) -> dict:
        """Evaluate; ``size`` is given by mmengine's evaluator, while
        mmagic's relies on ``prepare`` having recorded it."""
        if size is not None:
            self.size = size
        elif not hasattr(self, 'size'):
            self.size = len(self.results)
        return super().evaluate()


@METRICS.register_module()
class CENMAE(_StreamPixelMetricMixin, MAE):
    """Mean absolute error per image, averaged over images, ×100.

    ``convention='plain'`` (reported as ``MAE``): on [0, 1] images.
    ``convention='paper'`` (reported as ``MAE_paper``): on [-1, 1] images,
    as the official CEN evaluation (twice the plain value); the paper's
    tables' MAE (×10⁻²).

    Args:
        gt_key (str): Key of the target. Default: 'gt_img'.
        pred_key (str): Key of the prediction, e.g. ``'pred_img'`` (the
            ensemble) or ``'pred_img_{domain}'`` (one stream).
            Default: 'pred_img'.
        mask_key (str, optional): Key of a mask. Default: None.
        scaling (float): Factor of the reported value. Default: 100.
        device (str): Device of the computation. Default: 'cpu'.
        collect_device (str): Device to collect results. Default: 'cpu'.
        prefix (str, optional): Prefix of the reported name, e.g.
            ``'reshading'`` gives ``'reshading/MAE'``. Default: None.
        convention (str): ``'plain'`` or ``'paper'``. Default: 'plain'.
    """

    def __init__(self,
                 gt_key: str = 'gt_img',
                 pred_key: str = 'pred_img',
                 mask_key: Optional[str] = None,
                 scaling: float = 100.,
                 device: str = 'cpu',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 convention: str = 'plain') -> None:
        super().__init__(gt_key, pred_key, mask_key, scaling, device,
                         collect_device, prefix)
        self._set_convention(convention)

    @staticmethod
    def to_paper(mae01: float) -> float:
        """MAE of one image on [0, 1] -> on [-1, 1]."""
        return 2. * mae01


@METRICS.register_module()
class CENMSE(_StreamPixelMetricMixin, MSE):
    """Mean squared error per image, averaged over images, ×100.

    ``convention='plain'`` (reported as ``MSE``): mean squared error on
    [0, 1] images. ``convention='paper'`` (reported as ``MSE_paper``): what
    the paper's tables call MSE, the *root* of the mean squared error on
    [-1, 1] images (``2 · sqrt(MSE on [0, 1])`` per image, ×100).

    Arguments are those of :class:`CENMAE`.
    """

    def __init__(self,
                 gt_key: str = 'gt_img',
                 pred_key: str = 'pred_img',
                 mask_key: Optional[str] = None,
                 scaling: float = 100.,
                 device: str = 'cpu',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 convention: str = 'plain') -> None:
        super().__init__(gt_key, pred_key, mask_key, scaling, device,
                         collect_device, prefix)
        self._set_convention(convention)

    @staticmethod
    def to_paper(mse01: float) -> float:
        """MSE of one image on [0, 1] -> RMSE on [-1, 1]."""
        return 2. * mse01**0.5
