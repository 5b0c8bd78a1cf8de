# Copyright (c) cen_mm contributors. All rights reserved.
from .cen_resnet import CENBottleneck, CENResNet, CENResNetV1c

__all__ = ['CENBottleneck', 'CENResNet', 'CENResNetV1c']
