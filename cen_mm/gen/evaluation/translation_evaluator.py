# Copyright (c) cen_mm contributors. All rights reserved.
"""The paper's metrics for every output of a translation model."""
from typing import List, Optional, Sequence, Tuple, Union

from mmagic.evaluation import Evaluator
from mmagic.registry import EVALUATORS

__all__ = ['CENTranslationEvaluator']

FEATURE_METRICS = ('CENFID', 'CENKID')
PIXEL_METRICS = ('CENMAE', 'CENMSE')


@EVALUATORS.register_module()
class CENTranslationEvaluator(Evaluator):
    """mmagic's :class:`~mmagic.evaluation.Evaluator` with the paper's
    metrics for every target of a multi-flow translation model.

    For a target domain ``t`` (model output ``pred_img_{t}``, target
    ``gt_img_{t}``, reported with prefix ``t``):

    - image domains (``feature_targets``, RGB by default): ``CENFID`` and
      ``CENKID`` (x100) on BGR outputs (mmagic's preprocessor
      de-normalises to BGR) with the official per-image min-max stretch;
    - other domains: ``CENMAE`` and ``CENMSE`` with
      ``convention='paper'`` (x100 on [-1, 1], MSE = root mean squared
      error).

    With ``streams=True`` every stream of a flow is evaluated too:
    ``pred_img_{t}_{s}`` for each source ``s``, prefix ``'{t}/{s}'``.

    For the one-flow fusion model (``CENPix2Pix``) pass ``target`` and
    ``sources`` instead of ``targets``: its ensemble ``pred_img`` (prefix
    ``'ens'``) and every stream ``pred_img_{s}`` (prefix ``s``) are
    evaluated against ``gt_img``, with the same metrics by target.

    mmagic's ``MultiValLoop`` / ``MultiTestLoop`` require a ``metrics`` key
    in an evaluator config and log a generic warning for any evaluator type
    other than ``'Evaluator'``; this one is mmagic's Evaluator with its
    metric list filled in.

    Examples:
        >>> val_evaluator = dict(
        ...     type='CENTranslationEvaluator', targets=target_domains,
        ...     metrics=[])
        >>> # a metric for each flow output and each of its streams
        >>> val_evaluator = dict(
        ...     type='CENTranslationEvaluator', targets=flows, streams=True,
        ...     metrics=[])
        >>> # the fusion model: ensemble and every stream
        >>> val_evaluator = dict(
        ...     type='CENTranslationEvaluator', target='rgb',
        ...     sources=['reshading', 'edge_texture'], metrics=[])

    Args:
        targets (Sequence[str | dict], optional): Target domain names, or
            the model's flows (dicts with ``target`` and ``sources``).
            Default: None (then ``target`` and ``sources``).
        streams (bool): Also evaluate every stream of every flow (needs
            flows). Default: False.
        feature_targets (Sequence[str]): Targets evaluated by FID / KID; the
            offline CPU demos pass ``()`` (FID / KID need the Inception
            weights). Default: ``('rgb', )``.
        convention (str): ``convention`` of ``CENMAE`` / ``CENMSE``;
            ``'plain'`` keeps the fusion configs' [0, 1] values
            (docs/parity.md). Default: 'paper'.
        metrics (dict | BaseMetric | Sequence, optional): Further metrics,
            after the generated ones. Default: None.
        target (str, optional): The fusion model's target domain (instead
            of ``targets``). Default: None.
        sources (Sequence[str], optional): The fusion model's source
            domains, one stream each (with ``target``). Default: None.
    """

    def __init__(self,
                 targets: Optional[Sequence[Union[str, dict]]] = None,
                 streams: bool = False,
                 feature_targets: Sequence[str] = ('rgb', ),
                 convention: str = 'paper',
                 metrics: Optional[Union[dict, Sequence]] = None,
                 target: Optional[str] = None,
                 sources: Optional[Sequence[str]] = None) -> None:
        generated = self.metric_cfgs(targets, streams, feature_targets,
                                     convention, target, sources)
        if metrics is None:
            metrics = []
        elif isinstance(metrics, dict) or not isinstance(metrics, Sequence):
            metrics = [metrics]
        super().__init__(generated + list(metrics))

    @staticmethod
    def metric_cfgs(targets: Optional[Sequence[Union[str, dict]]] = None,
                    streams: bool = False,
                    feature_targets: Sequence[str] = ('rgb', ),
                    convention: str = 'paper',
                    target: Optional[str] = None,
                    sources: Optional[Sequence[str]] = None) -> List[dict]:
        """The metric configs of :class:`CENTranslationEvaluator`.

        Arguments are those of the class.

        Returns:
            list[dict]: Per target (and stream), in order: its two metrics.
        """
        if target is not None or sources is not None:
            if targets is not None or streams:
                raise ValueError(
                    'CENTranslationEvaluator: give either targets (multi-'
                    'flow models) or target and sources (the fusion '
                    f'model), got targets={targets!r}, streams={streams!r}, '
                    f'target={target!r}, sources={sources!r}')
            if not isinstance(target, str) or isinstance(
                    sources, str) or not sources:
                raise TypeError(
                    'CENTranslationEvaluator: the fusion model needs a '
                    'target domain name and a non-empty list of source '
                    f'domains, got target={target!r}, sources={sources!r}')
            outputs = [('ens', 'pred_img')] + [(s, f'pred_img_{s}')
                                               for s in sources]
            return _metrics(target, outputs, 'gt_img', feature_targets,
                            convention)
        if isinstance(targets, (str, dict)) or not targets:
            raise TypeError('CENTranslationEvaluator: targets must be a '
                            'non-empty list of target domain names or of '
                            f'flow dicts, got {targets!r} (the fusion '
                            'model: target and sources instead)')
        cfgs = []
        for flow in targets:
            if isinstance(flow, dict):
                if 'target' not in flow:
                    raise KeyError('CENTranslationEvaluator: a flow needs '
                                   f'a "target" key, got {flow!r}')
                target, sources = flow['target'], flow.get('sources', ())
            else:
                target, sources = flow, None
            if streams and sources is None:
                raise ValueError(
                    'CENTranslationEvaluator: streams=True needs the flows '
                    f'(dicts with "sources"), got the name {target!r}')
            outputs = [(target, f'pred_img_{target}')]
            if streams:
                outputs += [(f'{target}/{s}', f'pred_img_{target}_{s}')
                            for s in sources]
            cfgs += _metrics(target, outputs, f'gt_img_{target}',
                             feature_targets, convention)
        return cfgs


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
