# Copyright (c) cen_mm contributors. All rights reserved.
from typing import List

from mmengine.structures import PixelData
from mmseg.models.segmentors import SegTTAModel
from mmseg.registry import MODELS
from mmseg.utils import SampleList

__all__ = ['CENSegTTAModel']


@MODELS.register_module()
class CENSegTTAModel(SegTTAModel):
    """mmseg ``SegTTAModel`` that also merges every stream's prediction.

    mmseg's TTA merges ``seg_logits`` (the ensemble of
    :class:`CENEncoderDecoder`) into ``pred_sem_seg``; this subclass merges
    ``seg_logits_{name}`` the same way (mean of the softmax over the
    augmentations) into ``pred_sem_seg_{name}`` for every stream name of the
    wrapped segmentor, so per-stream metrics see merged predictions too.
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
        for prediction, data_samples in zip(predictions, data_samples_list):
            for name in getattr(self.module, 'stream_names', ()):
                key = f'seg_logits_{name}'
                if key not in data_samples[0]:
                    continue
                logits = sum(
                    self._probabilities(sample.get(key).data)
                    for sample in data_samples) / len(data_samples)
                prediction.set_data(
                    {f'pred_sem_seg_{name}': PixelData(data=self._labels(
                        logits))})
        return predictions

    def _probabilities(self, logits):
        if self.module.out_channels > 1:
            return logits.softmax(dim=0)
        return logits.sigmoid()

    def _labels(self, probs):
        if self.module.out_channels == 1:
            return (probs > self.module.decode_head.threshold).to(probs)
        return probs.argmax(dim=0, keepdim=True)
