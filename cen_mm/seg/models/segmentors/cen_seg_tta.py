# Copyright (c) cen_mm contributors. All rights reserved.
from typing import List

from mmseg.models.segmentors import SegTTAModel
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import SampleList

__all__ = ['CENSegTTAModel']


@MODELS.register_module()
class CENSegTTAModel(SegTTAModel):
    """mmseg's ``SegTTAModel`` applied to the ensemble and to every stream.

    mmseg merges ``seg_logits`` (the ensemble of :class:`CENEncoderDecoder`)
    into ``pred_sem_seg``. The per-stream logits ``seg_logits_{name}`` are
    merged by the very same ``SegTTAModel.merge_preds`` (mean of the softmax
    over the augmentations) into ``pred_sem_seg_{name}``, so per-stream
    metrics see merged predictions too; without this subclass they would
    see the last augmentation's.
    """

    def merge_preds(self, data_samples_list: List[SampleList]) -> SampleList:
        """Merge the ensemble and the per-stream predictions.

        Args:
            data_samples_list (list[list[:obj:`SegDataSample`]]): Per image,
                the predictions of all its augmentations.

        Returns:
            list[:obj:`SegDataSample`]: Merged predictions.
        """
        predictions = super().merge_preds(data_samples_list)
        for name in self.module.stream_names:
            streams = super().merge_preds([[
                SegDataSample(
                    metainfo=sample.metainfo,
                    seg_logits=sample.get(f'seg_logits_{name}'))
                for sample in samples
            ] for samples in data_samples_list])
            for prediction, stream in zip(predictions, streams):
                prediction.set_data(
                    {f'pred_sem_seg_{name}': stream.pred_sem_seg})
        return predictions
