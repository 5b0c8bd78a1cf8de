# Copyright (c) cen_mm contributors. All rights reserved.
from typing import Optional

import torch.nn as nn
from mmagic.registry import METRICS
from mmengine.evaluator import DumpResults
from torch.utils.data import DataLoader

__all__ = ['DumpGenResults']


@METRICS.register_module()
class DumpGenResults(DumpResults):
    """mmengine's ``DumpResults`` for mmagic's ``Evaluator``.

    mmagic's evaluator groups its metrics by ``SAMPLER_MODE`` /
    ``sample_model``, calls ``prepare`` and ``get_metric_sampler`` on them
    and ``evaluate()`` without a size; this adds those (as mmagic's
    sample-wise metrics do) so ``tools/test.py --out results.pkl`` can dump
    translation predictions next to the config's metrics.

    Args:
        out_file_path (str): The ``.pkl``/``.pickle`` file to write.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Default: 'cpu'.
        collect_dir (str, optional): Temporary directory for collecting
            results on CPU across ranks. Default: None.
    """
    SAMPLER_MODE = 'normal'
    sample_model = 'orig'

    def prepare(self, module: nn.Module, dataloader: DataLoader) -> None:
        """Record the dataset size (mmagic calls this before testing)."""
        self.size = len(dataloader.dataset)

    def get_metric_sampler(self, model: nn.Module, dataloader: DataLoader,
                           metrics) -> DataLoader:
        """The dataloader itself: the predictions of the real inputs."""
        return dataloader

    def evaluate(self, size: Optional[int] = None) -> dict:
        """Dump the collected predictions; returns an empty dict."""
        return super().evaluate(self.size if size is None else size)
