# Copyright (c) cen_mm contributors. All rights reserved.
from .stream_iou_metric import StreamIoUMetric

__all__ = ['StreamIoUMetric']
