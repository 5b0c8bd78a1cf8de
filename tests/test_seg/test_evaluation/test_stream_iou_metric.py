# Copyright (c) cen_mm contributors. All rights reserved.
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.structures import PixelData
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS
from mmseg.structures import SegDataSample

import cen_mm.seg  # noqa: F401
from cen_mm.seg.evaluation import StreamIoUMetric

META = dict(classes=('a', 'b', 'c'))


def make_sample(gt, ens, rgb, depth, names=('rgb', 'depth')):

    def pix(x):
        return PixelData(data=torch.tensor(x).unsqueeze(0))

    # The segmentor declares the stream names in every prediction.
    sample = SegDataSample(
        gt_sem_seg=pix(gt), pred_sem_seg=pix(ens),
        metainfo=dict(img_path='x.png', stream_names=names))
    sample.set_data(dict(pred_sem_seg_rgb=pix(rgb),
                         pred_sem_seg_depth=pix(depth)))
    return sample


def samples(names=('rgb', 'depth')):
    # Hand-computed below; 255 is ignored.
    first = make_sample(
        gt=[[0, 0, 1], [1, 2, 255]],
        ens=[[0, 0, 1], [1, 2, 0]],
        rgb=[[0, 1, 1], [1, 2, 2]],
        depth=[[1, 1, 1], [1, 1, 1]],
        names=names)
    second = make_sample(gt=[[2]], ens=[[2]], rgb=[[0]], depth=[[2]],
                         names=names)
    return [first, second]


def evaluate(metric, data_samples):
    evaluator = Evaluator(metric)
    evaluator.dataset_meta = META
    evaluator.process(data_samples=data_samples, data_batch=None)
    return evaluator.evaluate(len(data_samples))


def test_known_numbers():
    metric = METRICS.build(dict(type='StreamIoUMetric'))
    assert isinstance(metric, StreamIoUMetric)
    res = evaluate(metric, samples())
    assert set(res) == {
        'aAcc', 'mIoU', 'mAcc', 'rgb/aAcc', 'rgb/mIoU', 'rgb/mAcc',
        'depth/aAcc', 'depth/mIoU', 'depth/mAcc'
    }
    # Ensemble: every valid pixel right.
    assert (res['aAcc'], res['mIoU'], res['mAcc']) == (100., 100., 100.)
    # rgb over both images: intersections (1, 2, 1), predictions (2, 3, 1),
    # labels (2, 2, 2) -> IoU (1/3, 2/3, 1/2), Acc (1/2, 1, 1/2), 4/6 right.
    assert res['rgb/mIoU'] == pytest.approx(50.0)
    assert res['rgb/mAcc'] == pytest.approx(66.67)
    assert res['rgb/aAcc'] == pytest.approx(66.67)
    # depth: intersections (0, 2, 1), predictions (0, 5, 1), labels (2, 2, 2)
    # -> IoU (0, 2/5, 1/2), Acc (0, 1, 1/2), 3/6 right.
    assert res['depth/mIoU'] == pytest.approx(30.0)
    assert res['depth/mAcc'] == pytest.approx(50.0)
    assert res['depth/aAcc'] == pytest.approx(50.0)


def test_matches_iou_metric_per_stream():
    data = samples()
    ours = evaluate(StreamIoUMetric(), data)
    assert {k: ours[k] for k in ('aAcc', 'mIoU', 'mAcc')} == evaluate(
        IoUMetric(), samples())
    for name in ('rgb', 'depth'):
        moved = samples()
        for s in moved:
            s.pred_sem_seg = s.get(f'pred_sem_seg_{name}')
        ref = evaluate(IoUMetric(), moved)
        assert {k: ours[f'{name}/{k}'] for k in ref} == ref


def test_more_metrics_and_one_stream():
    res = evaluate(
        StreamIoUMetric(iou_metrics=['mIoU', 'mDice']), samples(('rgb', )))
    assert 'rgb/mDice' in res and 'mDice' in res and 'depth/mIoU' not in res


def test_stream_names_come_from_the_model():
    # Declared on the model only: a metric config naming them is refused
    # when it is built, before any evaluation.
    with pytest.raises(TypeError, match='declared once, on the model'):
        METRICS.build(dict(type='StreamIoUMetric', stream_names=('rgb', )))
    data = samples()
    data[0].set_metainfo(dict(stream_names=None))
    with pytest.raises(KeyError, match="has no 'stream_names'"):
        evaluate(StreamIoUMetric(), data)


def test_per_class_table_only_for_the_ensemble():
    import logging

    from mmengine.logging import MMLogger

    class Records(logging.Handler):

        def __init__(self):
            super().__init__()
            self.text = ''

        def emit(self, record):
            self.text += record.getMessage() + '\n'

    records = Records()
    MMLogger.get_instance('test_stream_iou_tables',
                          log_level='INFO').addHandler(records)
    evaluate(StreamIoUMetric(), samples())
    assert records.text.count('per class results') == 1
    records.text = ''
    evaluate(StreamIoUMetric(per_class_table=False), samples())
    assert 'per class results' not in records.text
