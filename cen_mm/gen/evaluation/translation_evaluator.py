# Copyright (c) cen_mm contributors. All rights reserved.
"""The paper's metrics for every output of a translation model."""
from typing import List, Optional, Sequence, Union

from mmagic.evaluation import Evaluator
from mmagic.registry import EVALUATORS

from .metrics.translation_metrics import (CENTranslationMetrics,
                                          refuse_domain_keys)

__all__ = ['CENTranslationEvaluator']


@EVALUATORS.register_module()
class CENTranslationEvaluator(Evaluator):
    """mmagic's :class:`~mmagic.evaluation.Evaluator` with the paper's
    metrics for every output of a CEN translation model.

    Its first metric is :class:`CENTranslationMetrics`: FID / KID for image
    targets, MAE / MSE otherwise, for the fusion model's ensemble and every
    stream, or for every flow of a multi-flow model (and its streams with
    ``streams=True``). The domains are not configured here: they are
    declared once, on the model, which writes them into its predictions
    (``target_domain`` / ``source_domains`` or ``flows``); ``targets``,
    ``target``, ``sources`` and the like are refused at build time.

    mmagic's ``MultiValLoop`` / ``MultiTestLoop`` require a ``metrics`` key
    in an evaluator config and log a generic warning for any evaluator type
    other than ``'Evaluator'``; this one is mmagic's Evaluator with its
    metric list filled in.

    Examples:
        >>> val_evaluator = dict(type='CENTranslationEvaluator', metrics=[])
        >>> # a metric for each flow output and each of its streams
        >>> val_evaluator = dict(
        ...     type='CENTranslationEvaluator', streams=True, metrics=[])

    Args:
        streams (bool): Also evaluate every stream of every flow of a
            multi-flow model. Default: False.
        feature_targets (Sequence[str]): Targets evaluated by FID / KID; the
            offline CPU demos pass ``()`` (FID / KID need the Inception
            weights). Default: ``('rgb', )``.
        convention (str): ``convention`` of ``CENMAE`` / ``CENMSE``;
            ``'plain'`` keeps the fusion configs' [0, 1] values
            (docs/parity.md). Default: 'paper'.
        metrics (dict | BaseMetric | Sequence, optional): Further metrics,
            after the generated ones. Default: None.
    """

    def __init__(self,
                 streams: bool = False,
                 feature_targets: Sequence[str] = ('rgb', ),
                 convention: str = 'paper',
                 metrics: Optional[Union[dict, Sequence]] = None,
                 **kwargs) -> None:
        refuse_domain_keys(type(self).__name__, kwargs)
        if metrics is None:
            metrics = []
        elif isinstance(metrics, dict) or not isinstance(metrics, Sequence):
            metrics = [metrics]
        translation = dict(
            type='CENTranslationMetrics',
            streams=streams,
            feature_targets=feature_targets,
            convention=convention)
        super().__init__([translation] + list(metrics))

    @staticmethod
    def metric_cfgs(model: dict,
                    streams: bool = False,
                    feature_targets: Sequence[str] = ('rgb', ),
                    convention: str = 'paper') -> List[dict]:
        """The metric configs generated for the predictions of a model.

        Args:
            model (dict): A model config: ``flows`` (CENMultiPix2Pix) or
                ``target_domain`` and ``source_domains`` (CENPix2Pix), the
                domains the model writes into its predictions.
            streams, feature_targets, convention: As the class arguments.

        Returns:
            list[dict]: Per output, in order: its two metrics.
        """
        if model.get('flows') is not None:
            domains = dict(flows=model['flows'])
        else:
            domains = dict(target_domain=model['target_domain'],
                           source_domains=model['source_domains'])
        return CENTranslationMetrics.metric_cfgs(domains, streams,
                                                 feature_targets, convention)
