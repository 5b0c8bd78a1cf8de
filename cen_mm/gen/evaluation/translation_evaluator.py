# Copyright (c) cen_mm contributors. All rights reserved.
"""The paper's metrics for every output of a multitask / cycle model."""
from typing import List, Optional, Sequence, Union

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

    Args:
        targets (Sequence[str | dict]): Target domain names, or the model's
            flows (dicts with ``target`` and ``sources``).
        streams (bool): Also evaluate every stream of every flow (needs
            flows). Default: False.
        feature_targets (Sequence[str]): Targets evaluated by FID / KID; the
            offline CPU demos pass ``()`` (FID / KID need the Inception
            weights). Default: ``('rgb', )``.
        metrics (dict | BaseMetric | Sequence, optional): Further metrics,
            after the generated ones. Default: None.
    """

    def __init__(self,
                 targets: Sequence[Union[str, dict]],
                 streams: bool = False,
                 feature_targets: Sequence[str] = ('rgb', ),
                 metrics: Optional[Union[dict, Sequence]] = None) -> None:
        generated = self.metric_cfgs(targets, streams, feature_targets)
        if metrics is None:
            metrics = []
        elif isinstance(metrics, dict) or not isinstance(metrics, Sequence):
            metrics = [metrics]
        super().__init__(generated + list(metrics))

    @staticmethod
    def metric_cfgs(targets: Sequence[Union[str, dict]],
                    streams: bool = False,
                    feature_targets: Sequence[str] = ('rgb', )
                    ) -> List[dict]:
        """The metric configs of :class:`CENTranslationEvaluator`.

        Arguments are those of the class.

        Returns:
            list[dict]: Per target (and stream), in order: its two metrics.
        """
        if isinstance(targets, (str, dict)) or not targets:
            raise TypeError('CENTranslationEvaluator: targets must be a '
                            'non-empty list of target domain names or of '
                            f'flow dicts, got {targets!r}')
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
            gt_key = f'gt_img_{target}'
            for prefix, key in outputs:
                if target in feature_targets:
                    cfgs += [
                        dict(type=metric, prefix=prefix, fake_key=key,
                             real_key=gt_key, channel_order='bgr',
                             minmax_stretch=True)
                        for metric in FEATURE_METRICS]
                else:
                    cfgs += [
                        dict(type=metric, prefix=prefix, pred_key=key,
                             gt_key=gt_key, convention='paper')
                        for metric in PIXEL_METRICS]
        return cfgs
