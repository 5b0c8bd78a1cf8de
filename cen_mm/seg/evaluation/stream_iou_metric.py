# Copyright (c) cen_mm contributors. All rights reserved.
"""IoU of the ensemble and of every stream of a multi-stream segmentor."""
from collections import OrderedDict
from typing import Dict, List, Sequence

from mmengine.logging import MMLogger, print_log
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

    Args:
        stream_names (Sequence[str]): Stream names, as the segmentor's
            ``stream_names``. Defaults to ``('rgb', 'depth')``.
        **kwargs: Arguments of :class:`mmseg.evaluation.IoUMetric`
            (``ignore_index``, ``iou_metrics``, ``nan_to_num``, ...).
    """

    def __init__(self,
                 stream_names: Sequence[str] = ('rgb', 'depth'),
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.stream_names = tuple(stream_names)

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
            for name in self.stream_names:
                key = f'pred_sem_seg_{name}'
                if key not in sample:
                    raise KeyError(
                        f'{type(self).__name__}: data sample of '
                        f"{sample.get('img_path', '?')} has no {key!r} "
                        f'(stream_names={self.stream_names}); keys: '
                        f'{sorted(sample.keys())}')
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
        logger: MMLogger = MMLogger.get_current_instance()
        metrics: Dict[str, float] = OrderedDict()
        for name in ('ens', ) + self.stream_names:
            print_log(f'{type(self).__name__}: {name}', logger)
            stream = super().compute_metrics([r[name] for r in results])
            if name == 'ens':
                metrics.update(stream)
            else:
                metrics.update(
                    (f'{name}/{key}', val) for key, val in stream.items())
        return metrics
