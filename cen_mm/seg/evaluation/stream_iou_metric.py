# Copyright (c) cen_mm contributors. All rights reserved.
"""IoU of the ensemble and of every stream of a multi-stream segmentor."""
from collections import OrderedDict
from typing import Dict, List, Sequence

from mmengine.logging import MMLogger
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS

__all__ = ['StreamIoUMetric']


@METRICS.register_module()
class StreamIoUMetric(IoUMetric):
    """mmseg ``IoUMetric`` for the ensemble plus one set per stream.

    The ensemble prediction ``pred_sem_seg`` is evaluated exactly as by
    ``IoUMetric`` (keys ``aAcc``, ``mIoU``, ``mAcc``, ..., so
    ``save_best='mIoU'`` selects on the ensemble). Every stream ``name``
    is evaluated the same way from ``pred_sem_seg_{name}`` and reported as
    ``{name}/aAcc``, ``{name}/mIoU``, ``{name}/mAcc``. Accumulation over the
    dataset and the per-class formulas are IoUMetric's (official CEN also
    accumulates one confusion matrix over the whole set).

    The stream names are not configured here: they come with the
    predictions (the ``stream_names`` metainfo that
    :class:`CENEncoderDecoder` declares), so they cannot disagree with the
    model. Passing ``stream_names`` is refused at build time.

    Args:
        per_class_table (bool): Print mmseg's per-class table for the
            ensemble. The streams' tables are never printed (they repeat it
            M times, mostly ``nan`` on small sets). Default: True.
        **kwargs: Arguments of :class:`mmseg.evaluation.IoUMetric`
            (``ignore_index``, ``iou_metrics``, ``nan_to_num``, ...).
    """

    def __init__(self, per_class_table: bool = True, **kwargs) -> None:
        if 'stream_names' in kwargs:
            raise TypeError(
                f'{type(self).__name__}: stream_names are declared once, on '
                'the model (CENEncoderDecoder.stream_names), and read from '
                'its predictions; remove stream_names from the metric config')
        super().__init__(**kwargs)
        self.per_class_table = per_class_table
        self.stream_names = None

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Accumulate intersections and unions for all predictions.

        Args:
            data_batch (dict): A batch from the dataloader.
            data_samples (Sequence[dict]): Model outputs, each with
                ``pred_sem_seg``, ``pred_sem_seg_{name}`` for every stream
                and ``gt_sem_seg``.
        """
        # The ensemble (and output_dir / format_only) is IoUMetric's job.
        start = len(self.results)
        super().process(data_batch, data_samples)
        ensemble = self.results[start:]
        del self.results[start:]
        if self.format_only:
            return

        num_classes = len(self.dataset_meta['classes'])
        for sample, ens in zip(data_samples, ensemble):
            entry = dict(ens=ens)
            label = sample['gt_sem_seg']['data'].squeeze()
            names = sample.get('stream_names')
            if names is None:
                raise KeyError(
                    f'{type(self).__name__}: the prediction of '
                    f"{sample.get('img_path', '?')} has no 'stream_names' "
                    '(it needs a multi-stream segmentor such as '
                    'CENEncoderDecoder)')
            names = tuple(names)
            if self.stream_names is None:
                self.stream_names = names
            elif names != self.stream_names:
                raise ValueError(
                    f'{type(self).__name__}: stream names changed from '
                    f'{self.stream_names} to {names}')
            for name in names:
                key = f'pred_sem_seg_{name}'
                pred = sample[key]['data'].squeeze()
                entry[name] = self.intersect_and_union(
                    pred, label.to(pred), num_classes, self.ignore_index)
            self.results.append(entry)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Compute the metrics of the ensemble and of every stream.

        Args:
            results (list[dict]): Per-sample dicts of ``(intersect, union,
                pred_area, label_area)`` tuples keyed by ``'ens'`` and the
                stream names.

        Returns:
            dict[str, float]: Ensemble metrics under IoUMetric's keys and
            stream metrics under ``{name}/{key}``.
        """
        if self.format_only:
            return super().compute_metrics(results)
        names = tuple(n for n in results[0] if n != 'ens') if results \
            else ()
        metrics: Dict[str, float] = OrderedDict()
        for name in ('ens', ) + names:
            stream = self._compute(name, [r[name] for r in results])
            if name == 'ens':
                metrics.update(stream)
            else:
                metrics.update(
                    (f'{name}/{key}', val) for key, val in stream.items())
        return metrics

    def _compute(self, name: str, results: list) -> Dict[str, float]:
        """IoUMetric's metrics, with its per-class table printed for the
        ensemble only (if ``per_class_table``)."""
        if name == 'ens' and self.per_class_table:
            return super().compute_metrics(results)
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel('WARNING')  # IoUMetric prints its table at INFO
        try:
            return super().compute_metrics(results)
        finally:
            logger.setLevel(level)
