# Copyright (c) cen_mm contributors. All rights reserved.
"""Deployment: CEN networks frozen into plain inference networks, and their
ONNX export. Host-free (torch + cen_mm.cnn)."""
from .convert import (StreamAffineMix, convert_exchange_norms, deploy_model,
                      fold_conv_bn)
from .export import GeneratorExporter, SegmentorExporter, export_onnx

__all__ = [
    'StreamAffineMix', 'convert_exchange_norms', 'fold_conv_bn',
    'deploy_model', 'SegmentorExporter', 'GeneratorExporter', 'export_onnx'
]
