# Copyright (c) cen_mm contributors. All rights reserved.
"""The paper's metrics for every output a translation model predicts, for
the domains named by the model in its predictions."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch.nn as nn
from mmagic.registry import METRICS
from mmengine.evaluator import BaseMetric
from torch.utils.data import DataLoader

from ...flows import parse_flows
from .pixel_metrics import CONVENTIONS

__all__ = ['CENTranslationMetrics', 'refuse_domain_keys']

FEATURE_METRICS = ('CENFID', 'CENKID')
PIXEL_METRICS = ('CENMAE', 'CENMSE')
# Domain names the evaluators once took; the models declare them now.
DOMAIN_KEYS = ('targets', 'target', 'sources', 'flows', 'target_domain',
               'source_domains')


def refuse_domain_keys(owner: str, kwargs: dict) -> None:
    """Raise if a config names domains that only the model declares.

    Raises:
        TypeError: Naming the first domain key in ``kwargs`` (or, for other
            keys, the unexpected argument).
    """
    for key in kwargs:
        if key in DOMAIN_KEYS:
            raise TypeError(
                f'{owner}: remove `{key}` from the evaluator config; the '
                'domains are declared once, on the model (CENPix2Pix '
                'source_domains / target_domain, CENMultiPix2Pix flows), '
                'which writes them into its predictions, where they are '
                'read')
    if kwargs:
        raise TypeError(f'{owner}: unexpected arguments {sorted(kwargs)}')


@METRICS.register_module()
class CENTranslationMetrics(BaseMetric):
    """CENFID / CENKID or CENMAE / CENMSE for every output of a translation
    model, for the domains its predictions name.

    The domains are not configured: each prediction carries the metainfo
    its model writes, ``target_domain`` and ``source_domains``
    (:class:`CENPix2Pix`) or ``flows`` (:class:`CENMultiPix2Pix`), and the
    per-output metrics (:meth:`metric_cfgs`) are built from the first
    batch; a later prediction naming other domains is an error.

    For a target domain ``t``:

    - image domains (``feature_targets``, RGB by default): ``CENFID`` and
      ``CENKID`` (x100) on BGR outputs (mmagic's preprocessor de-normalises
      to BGR) with the official per-image min-max stretch;
    - other domains: ``CENMAE`` and ``CENMSE`` in ``convention``.

    Outputs: the fusion model's ensemble ``pred_img`` (prefix ``'ens'``)
    and every stream ``pred_img_{s}`` (prefix ``s``) against ``gt_img``; a
    multi-flow model's ``pred_img_{t}`` (prefix ``t``) against
    ``gt_img_{t}`` per flow and, with ``streams=True``, every stream
    ``pred_img_{t}_{s}`` of the flow (prefix ``'{t}/{s}'``).

    Args:
        streams (bool): Also evaluate every stream of every flow of a
            multi-flow model. Default: False.
        feature_targets (Sequence[str]): Targets evaluated by FID / KID; the
            offline CPU demos pass ``()`` (FID / KID need the Inception
            weights). Default: ``('rgb', )``.
        convention (str): ``convention`` of ``CENMAE`` / ``CENMSE``.
            Default: 'paper'.
        collect_device (str): Device to collect results across ranks.
            Default: 'cpu'.
    """
    SAMPLER_MODE = 'normal'
    sample_model = 'orig'

    def __init__(self,
                 streams: bool = False,
                 feature_targets: Sequence[str] = ('rgb', ),
                 convention: str = 'paper',
                 collect_device: str = 'cpu',
                 **kwargs) -> None:
        refuse_domain_keys(type(self).__name__, kwargs)
        if convention not in CONVENTIONS:
            raise ValueError(f'{type(self).__name__}: convention must be one '
                             f'of {CONVENTIONS}, got {convention!r}')
        super().__init__(collect_device=collect_device)
        self.streams = streams
        self.feature_targets = tuple(feature_targets)
        self.convention = convention
        self.domains: Optional[dict] = None
        self.metrics: List[BaseMetric] = []
        self._prepared: Optional[Tuple[nn.Module, DataLoader]] = None

    @staticmethod
    def metric_cfgs(domains: dict,
                    streams: bool = False,
                    feature_targets: Sequence[str] = ('rgb', ),
                    convention: str = 'paper') -> List[dict]:
        """The metric configs for the domains a model's predictions name.

        Args:
            domains (dict): ``target_domain`` and ``source_domains`` (the
                fusion model) or ``flows`` (a multi-flow model).
            streams, feature_targets, convention: As the class arguments.

        Returns:
            list[dict]: Per output, in order: its two metrics.
        """
        if 'flows' in domains:
            cfgs = []
            for flow in parse_flows(domains['flows'], 'CENTranslationMetrics'):
                target = flow['target']
                outputs = [(target, f'pred_img_{target}')]
                if streams:
                    outputs += [(f'{target}/{s}', f'pred_img_{target}_{s}')
                                for s in flow['sources']]
                cfgs += _metrics(target, outputs, f'gt_img_{target}',
                                 feature_targets, convention)
            return cfgs
        if streams:
            raise ValueError(
                'CENTranslationMetrics: streams=True is for multi-flow models '
                "(predictions with 'flows'); the fusion model's streams are "
                'always evaluated')
        target, sources = domains['target_domain'], domains['source_domains']
        outputs = [('ens', 'pred_img')] + [(s, f'pred_img_{s}')
                                           for s in sources]
        return _metrics(target, outputs, 'gt_img', feature_targets,
                        convention)

    def _domains(self, sample: dict) -> dict:
        """The domains a prediction names (checked against the first)."""
        if 'flows' in sample:
            domains = dict(flows=[
                dict(sources=list(f['sources']), target=f['target'])
                for f in sample['flows']
            ])
        elif 'target_domain' in sample and 'source_domains' in sample:
            domains = dict(target_domain=sample['target_domain'],
                           source_domains=list(sample['source_domains']))
        else:
            raise KeyError(
                f'{type(self).__name__}: a prediction names no domains: it '
                "needs the 'target_domain' and 'source_domains' (CENPix2Pix) "
                "or 'flows' (CENMultiPix2Pix) metainfo that the translation "
                f'models write; got the keys {sorted(sample)}')
        if self.domains is not None and domains != self.domains:
            raise ValueError(f'{type(self).__name__}: the predicted domains '
                             f'changed from {self.domains} to {domains}')
        return domains

    def prepare(self, module: nn.Module, dataloader: DataLoader) -> None:
        """Keep what mmagic's evaluator passes before evaluating, for the
        metrics built later (and pass it to those built already)."""
        self._prepared = (module, dataloader)
        for metric in self.metrics:
            metric.prepare(module, dataloader)

    def get_metric_sampler(self, model: nn.Module, dataloader: DataLoader,
                           metrics) -> DataLoader:
        """The dataloader itself: the predictions of the real inputs."""
        return dataloader

    def process(self, data_batch, data_samples: Sequence) -> None:
        """Pass one batch of predictions to every output's metrics.

        Args:
            data_batch: A batch from the dataloader.
            data_samples (Sequence[dict | DataSample]): Model outputs with
                the domains' metainfo.
        """
        samples = [
            s if isinstance(s, dict) else s.to_dict() for s in data_samples
        ]
        for sample in samples:
            self.domains = self._domains(sample)
        if samples and not self.metrics:
            self.metrics = [
                METRICS.build(cfg) for cfg in self.metric_cfgs(
                    self.domains, self.streams, self.feature_targets,
                    self.convention)
            ]
            if self._prepared is not None:
                for metric in self.metrics:
                    metric.prepare(*self._prepared)
        # the same dicts for all: FID and KID share the features they cache
        for metric in self.metrics:
            metric.process(data_batch, samples)

    def evaluate(self, size: Optional[int] = None) -> Dict[str, float]:
        """Every output's metrics, in :meth:`metric_cfgs` order.

        Args:
            size (int, optional): Dataset size (mmengine's evaluator passes
                it; mmagic's does not, and ``prepare`` records it).
        """
        results: Dict[str, float] = {}
        for metric in self.metrics:
            results.update(metric.evaluate(size))
        return results

    def compute_metrics(self, results: list) -> dict:
        """Unused: :meth:`evaluate` collects the per-output metrics."""
        raise NotImplementedError


def _metrics(target: str, outputs: Sequence[Tuple[str, str]], gt_key: str,
             feature_targets: Sequence[str], convention: str) -> List[dict]:
    """The two metrics of each ``(prefix, key)`` output of ``target``."""
    if target in feature_targets:
        return [
            dict(type=metric, prefix=prefix, fake_key=key, real_key=gt_key,
                 channel_order='bgr', minmax_stretch=True)
            for prefix, key in outputs for metric in FEATURE_METRICS
        ]
    return [
        dict(type=metric, prefix=prefix, pred_key=key, gt_key=gt_key,
             convention=convention)
        for prefix, key in outputs for metric in PIXEL_METRICS
    ]
