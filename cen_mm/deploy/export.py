# Copyright (c) cen_mm contributors. All rights reserved.
"""Export wrappers: a converted CEN network as a graph with plain tensor
inputs and named per-stream outputs, and ONNX export.

Host-free: the segmentor wrapper only calls ``extract_feat`` and the decode
head's ``forward`` (mmseg's contract), so this module imports no mmseg.
"""
import keyword
from pathlib import Path
from typing import List, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from cen_mm.cnn import fold_channels

__all__ = ['SegmentorExporter', 'GeneratorExporter', 'export_onnx']


def _rename_keyword_children(model: nn.Module) -> None:
    """Rename children called like Python keywords (mmcv names an instance
    norm ``in``), which graph capture cannot emit as attribute names; an
    owner's ``norm_name`` pointing at one follows the rename."""
    for module in model.modules():
        for name, child in list(module.named_children()):
            if keyword.iskeyword(name):
                delattr(module, name)
                module.add_module(f'{name}_', child)
                if getattr(module, 'norm_name', None) == name:
                    module.norm_name = f'{name}_'


class SegmentorExporter(nn.Module):
    """A CEN segmentor as ``inputs -> (logits_{stream}..., logits_ens)``.

    Input ``inputs``: ``(N, sum(C_m), H, W)`` float, the M modalities stacked
    on channels (e.g. RGB + HHA-encoded depth, 6 channels) and normalised as
    the model's data preprocessor does (mean/std; see :attr:`mean`,
    :attr:`std`). Outputs: ``M + 1`` tensors ``(N, K, H, W)``, the logits of
    each stream in ``stream_names`` order and then the ensemble, resized to
    the input size as mmseg's ``predict_by_feat`` does (bilinear,
    ``align_corners`` of the decode head). ``argmax(dim=1)`` gives labels.

    Args:
        segmentor (nn.Module): A (converted) CEN encoder-decoder with a
            multi-stream decode head whose ``forward`` returns the
            ``((M + 1) * N, K, h, w)`` stream blocks followed by the
            ensemble.
    """

    def __init__(self, segmentor: nn.Module) -> None:
        super().__init__()
        _rename_keyword_children(segmentor)
        self.segmentor = segmentor
        self.num_streams = int(segmentor.num_streams)
        self.output_names = [f'logits_{name}' for name in
                             segmentor.stream_names] + ['logits_ens']
        preprocessor = getattr(segmentor, 'data_preprocessor', None)
        self.mean = getattr(preprocessor, 'mean', None)
        self.std = getattr(preprocessor, 'std', None)

    def forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        head = self.segmentor.decode_head
        logits = head(self.segmentor.extract_feat(inputs))
        logits = F.interpolate(logits, size=inputs.shape[2:],
                               mode='bilinear',
                               align_corners=head.align_corners)
        return tuple(logits.chunk(self.num_streams + 1))


class GeneratorExporter(nn.Module):
    """A CEN generator as ``inputs -> (out_{stream}..., out_ens)``.

    Input ``inputs``: ``(N, M * C, H, W)``, the M stream images (each C
    channels in [-1, 1]) stacked on channels; H and W divisible by
    ``2 ** num_down``. Outputs: ``M + 1`` images ``(N, C_out, H, W)`` in
    [-1, 1], each stream's translation and then the ensemble.

    Args:
        generator (nn.Module): A (converted) stream-folded generator such as
            ``CENUnetGenerator`` returning ``((M + 1) * N, C_out, H, W)``.
            Children named like Python keywords are renamed in place.
    """

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        _rename_keyword_children(generator)
        self.generator = generator
        self.num_streams = int(generator.num_streams)
        self.in_channels = int(generator.in_channels)
        self.output_names = [f'out_{m}' for m in range(self.num_streams)
                             ] + ['out_ens']

    def forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        folded = fold_channels(inputs, (self.in_channels, ) * self.num_streams)
        return tuple(self.generator(folded).chunk(self.num_streams + 1))


def export_onnx(exporter: Union[SegmentorExporter, GeneratorExporter],
                example: Tensor, path: Union[str, Path],
                dynamic_batch: bool = False,
                opset_version: int = 18) -> List[str]:
    """Export an exporter module to ONNX with input ``inputs`` and its
    ``output_names``.

    Args:
        exporter: :class:`SegmentorExporter` or :class:`GeneratorExporter`.
        example (Tensor): An example input (fixes H and W).
        path (str | Path): The ``.onnx`` file to write (weights inside).
        dynamic_batch (bool): Ask the exporter for a dynamic batch
            dimension; the stream folding and mmseg's resizing may
            specialise it, so by default the graph is exported for the
            example's N (re-export for another batch size).
        opset_version (int): ONNX opset. Default: 18.

    Returns:
        list[str]: The output names.
    """
    exporter = exporter.eval()
    names: Sequence[str] = exporter.output_names
    kwargs = {}
    if dynamic_batch:
        kwargs['dynamic_shapes'] = (
            {0: torch.export.Dim('batch', min=1, max=1024)}, )
    with torch.no_grad():
        torch.onnx.export(exporter, (example, ), str(path),
                          input_names=['inputs'], output_names=list(names),
                          opset_version=opset_version, dynamo=True,
                          external_data=False, **kwargs)
    return list(names)
