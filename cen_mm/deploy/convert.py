# Copyright (c) cen_mm contributors. All rights reserved.
"""Freeze a trained CEN network into a plain inference network.

With running statistics, each stream's norm is a per-channel affine map and
the exchange masks are constants, so an exchanging norm becomes a fixed
per-stream affine map plus a fixed per-channel mix of the streams
(:class:`StreamAffineMix`), and ordinary batch norms are folded into the
convolution before them. Host-free: torch + cen_mm.cnn only.
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from cen_mm.cnn import ExchangeNorm
from cen_mm.cnn.exchange_norm import _same_key
from cen_mm.cnn.row_kernel import affine_stream_rows, row_kernel

__all__ = [
    'StreamAffineMix', 'convert_exchange_norms', 'fold_conv_bn',
    'deploy_model'
]


class StreamAffineMix(nn.Module):
    """Inference form of an exchanging norm with frozen statistics.

    On the stream-folded batch ``x`` (viewed as ``(M, N, C, ...)``)::

        out[o, :, c] = Σ_m A[o, m, c] * x[m, :, c] + B[o, c]

    Without exchanged channels ``A`` is diagonal and the layer is one
    per-(stream, channel) multiply-add; with exchanged channels the mix is
    applied densely (M multiply-adds), which exports to ONNX as plain
    ``Mul``/``Add`` nodes.

    Args:
        weight (Tensor): ``A``, shape ``(M, M, C)``.
        bias (Tensor): ``B``, shape ``(M, C)``.
    """

    def __init__(self, weight: Tensor, bias: Tensor) -> None:
        super().__init__()
        num_streams, _, channels = weight.shape
        if weight.shape != (num_streams, num_streams, channels) or \
                bias.shape != (num_streams, channels):
            raise ValueError(
                'StreamAffineMix: expected weight (M, M, C) and bias (M, C), '
                f'got {tuple(weight.shape)} and {tuple(bias.shape)}')
        self.num_streams = num_streams
        self.num_features = channels
        eye = torch.eye(num_streams, dtype=torch.bool)[:, :, None]
        self.mixed = bool(weight.masked_fill(eye, 0).any())
        diag = weight.diagonal(dim1=0, dim2=1).t()
        self.register_buffer('weight', weight.clone() if self.mixed else
                             diag.contiguous())
        self.register_buffer('bias', bias.clone())
        # Every output (o, c) reads ONE input stream (swaps and copies:
        # every M = 2 exchange); see `_row_affine`.
        self.one_source = bool(((weight != 0).sum(dim=1) <= 1).all())
        self._per_sample = self._per_stream = None

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        # (M, N, C, L); L = 1 keeps the broadcast for 2-D inputs too.
        x = x.reshape(self.num_streams, -1, self.num_features,
                      shape[2:].numel())
        if self.one_source and not torch.onnx.is_in_onnx_export():
            if (x.is_cpu and x.dtype in (torch.float32, torch.float64)
                    and not (torch.is_grad_enabled() and x.requires_grad)
                    and row_kernel() is not None):
                # the CPU row kernel: one pass, no per-row tables
                return affine_stream_rows(x.view(shape),
                                          *self._stream_affine(x))
            return self._row_affine(x).view(shape)
        bias = self.bias[:, None, :, None]
        if not self.mixed:
            return torch.addcmul(bias, x, self.weight[:, None, :,
                                                      None]).view(shape)
        out = bias
        for m in range(self.num_streams):
            out = torch.addcmul(out, x[m:m + 1],
                                self.weight[:, m, None, :, None])
        return out.reshape(shape)

    def _row_affine(self, x: Tensor) -> Tensor:
        """One-source mixes as ONE native affine pass over the rows of the
        ``(M * N * C, L)`` view (``F.batch_norm`` with zero mean, unit
        variance and eps 0 is exactly ``coef * x + bias``, and faster than a
        broadcast multiply-add), plus a copy of the rows that read another
        stream."""
        m, n, c, length = x.shape
        key = (n, x.dtype, x.device, self.weight, self.weight._version,
               self.bias, self.bias._version)
        cached = self._per_sample
        if not _same_key(cached and cached[0], key):
            cached = self._per_sample = (key, *self._rows(n, x))
        coef, bias, zeros, ones, dst, src = cached[1:]
        flat = x.reshape(-1, length)
        out = F.batch_norm(flat[None], zeros, ones, coef, bias, False, 0.0,
                           0.0)[0]
        if dst.numel():
            out.index_copy_(
                0, dst,
                torch.addcmul(bias[dst, None], flat.index_select(0, src),
                              coef[dst, None]))
        return out

    def _stream_affine(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """The source stream, coefficient and bias of every output (stream,
        channel) of a one-source mix, ``(M, C)`` each, on ``x``'s device and
        in its dtype; kept while the buffers are unchanged."""
        key = (x.dtype, x.device, self.weight, self.weight._version,
               self.bias, self.bias._version)
        cached = self._per_stream
        if not _same_key(cached and cached[0], key):
            m, c = self.num_streams, self.num_features
            with torch.no_grad():
                if self.mixed:
                    source = self.weight.abs().argmax(dim=1)  # (M_out, C)
                    coef = self.weight.gather(1, source[:, None]).squeeze(1)
                else:
                    source = torch.arange(
                        m, device=self.weight.device)[:, None].expand(m, c)
                    coef = self.weight
                cached = self._per_stream = (
                    key, source.to(x.device).contiguous(),
                    coef.to(x).contiguous(), self.bias.to(x).contiguous())
        return cached[1:]

    def _rows(self, n: int, x: Tensor) -> Tuple[Tensor, ...]:
        """Per-row coefficient and bias of the ``(M * N * C, L)`` view, the
        zero mean / unit variance, and the rows ``dst`` that read row
        ``src`` of another stream."""
        m, c = self.num_streams, self.num_features
        source, coef, _ = self._stream_affine(x)
        with torch.no_grad():
            index = torch.arange(m * n * c, device=x.device).view(m, n, c)
            moved = (source != torch.arange(m, device=x.device)[:, None])[
                :, None].expand(m, n, c)
            src = source[:, None].expand(m, n, c) * (n * c) + index % (n * c)

            def rows(t):
                return t.to(x)[:, None].expand(m, n, c).reshape(-1)

            return (rows(coef), rows(self.bias), x.new_zeros(m * n * c),
                    x.new_ones(m * n * c), index[moved], src[moved])

    @classmethod
    def from_exchange_norm(cls, layer: ExchangeNorm) -> 'StreamAffineMix':
        """Freeze ``layer`` as it computes in eval mode.

        Raises:
            ValueError: If a stream normalises with input statistics at
                inference (no running statistics), which no affine map can
                represent.
        """
        for norm in layer.streams:
            if not norm.track_running_stats or norm.running_mean is None:
                raise ValueError(
                    f'StreamAffineMix: {type(layer).__name__} normalises with '
                    'input statistics at inference (track_running_stats='
                    'False); it cannot be frozen into an affine map')
        with torch.no_grad():
            stats = [torch.stack([getattr(n, key) for n in layer.streams])
                     for key in ('weight', 'bias', 'running_mean',
                                 'running_var')]
            gamma, beta, mean, var = (t.double() for t in stats)
            eps = torch.tensor([n.eps for n in layer.streams],
                               dtype=torch.float64)[:, None]
            scale = gamma / (var + eps).sqrt()
            shift = beta - mean * scale
            m, c = scale.shape
            mix = torch.eye(m, dtype=torch.float64)[:, :, None].repeat(1, 1, c)
            if layer.exchange:
                cols, weights = layer._mixing(torch.float64)
                # weights: (K, M_out, M_in) -> (M_out, M_in, K)
                mix[:, :, cols] = weights.permute(1, 2, 0).to(mix)
            weight = mix * scale[None]
            bias = (mix * shift[None]).sum(dim=1)
        dtype = stats[0].dtype
        return cls(weight.to(dtype), bias.to(dtype))

    def extra_repr(self) -> str:
        return (f'{self.num_features}, num_streams={self.num_streams}, '
                f'mixed={self.mixed}')


def convert_exchange_norms(model: nn.Module) -> nn.Module:
    """Replace, in place, every :class:`ExchangeNorm` of ``model`` by its
    :class:`StreamAffineMix` (layers without running statistics are kept).

    Returns:
        nn.Module: ``model``.
    """
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, ExchangeNorm) and all(
                    n.track_running_stats for n in child.streams):
                setattr(module, child_name,
                        StreamAffineMix.from_exchange_norm(child))
    return model


def _conv_norm_pairs(model: nn.Module,
                     example_inputs: Tuple) -> List[Tuple[str, str]]:
    """Find ``(conv, norm)`` module names where the norm's input is exactly
    the conv's output and nothing else uses that output.

    Runs ``model`` once with hooks; the users of each conv output are
    counted on the autograd graph of that run (input made differentiable),
    so any module structure works.
    """
    outputs: Dict[int, Tuple[str, object]] = {}
    pairs: List[Tuple[str, str, object]] = []
    handles = []

    def conv_hook(name):
        def hook(module, args, output):
            outputs[id(output)] = (name, output.grad_fn)
        return hook

    def norm_hook(name):
        def hook(module, args):
            source = outputs.get(id(args[0]))
            if source is not None:
                pairs.append((source[0], name, source[1]))
        return hook

    for name, module in model.named_modules():
        if type(module) is nn.Conv2d:
            handles.append(module.register_forward_hook(conv_hook(name)))
        elif type(module) in (nn.BatchNorm2d, StreamAffineMix):
            handles.append(module.register_forward_pre_hook(norm_hook(name)))
    inputs = tuple(
        t.detach().clone().requires_grad_()
        if isinstance(t, Tensor) and t.is_floating_point() else t
        for t in example_inputs)
    try:
        with torch.enable_grad():
            result = model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    users: Dict[object, int] = {}
    seen = set()
    stack = [t.grad_fn for t in _flatten(result) if t.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for next_node, _ in node.next_functions:
            if next_node is not None:
                users[next_node] = users.get(next_node, 0) + 1
                stack.append(next_node)
    return [(conv, norm) for conv, norm, grad_fn in pairs
            if grad_fn is not None and users.get(grad_fn, 0) == 1]


def _affine_of(norm: nn.Module) -> Optional[Tuple[Tensor, Tensor]]:
    """The ``(scale, shift)`` of a norm that is one per-channel affine map
    for the whole batch at inference, else None."""
    if isinstance(norm, nn.BatchNorm2d):
        if not norm.track_running_stats or norm.running_mean is None:
            return None
        scale = torch.ones_like(norm.running_var) if norm.weight is None \
            else norm.weight.detach().clone()
        scale = scale / (norm.running_var + norm.eps).sqrt()
        shift = -norm.running_mean * scale
        if norm.bias is not None:
            shift = shift + norm.bias.detach()
        return scale, shift
    if isinstance(norm, StreamAffineMix) and not norm.mixed and bool(
            (norm.weight == norm.weight[:1]).all()) and bool(
                (norm.bias == norm.bias[:1]).all()):
        return norm.weight[0].clone(), norm.bias[0].clone()
    return None


def fold_conv_bn(model: nn.Module, example_inputs: Sequence) -> nn.Module:
    """Fold, in place, every batch norm (or stream-identical
    :class:`StreamAffineMix`) whose input is a ``Conv2d``'s output into that
    conv, and replace the norm by ``nn.Identity``.

    The conv/norm pairs are found by running ``model(*example_inputs)`` with
    hooks (so any module structure works); a conv whose output is used by
    more than one module is left alone.

    Returns:
        nn.Module: ``model``.
    """
    modules = dict(model.named_modules())
    for conv_name, norm_name in _conv_norm_pairs(model,
                                                 tuple(example_inputs)):
        conv, norm = modules[conv_name], modules[norm_name]
        affine = _affine_of(norm)
        if affine is None:
            continue
        scale, shift = affine
        with torch.no_grad():
            weight = conv.weight * scale.view(-1, 1, 1, 1).to(conv.weight)
            bias = shift.to(conv.weight)
            if conv.bias is not None:
                bias = bias + conv.bias * scale.to(conv.weight)
            conv.weight.copy_(weight)
            if conv.bias is None:
                conv.bias = nn.Parameter(bias)
            else:
                conv.bias.copy_(bias)
        parent_name, _, child = norm_name.rpartition('.')
        parent = modules[parent_name] if parent_name else model
        setattr(parent, child, nn.Identity())
    return model


def deploy_model(model: nn.Module,
                 example_inputs: Optional[Sequence] = None,
                 fold_bn: bool = True,
                 atol: float = 1e-5) -> nn.Module:
    """Convert a trained CEN network into its inference network.

    A deep copy of ``model`` is put in eval mode, its exchanging norms are
    frozen into :class:`StreamAffineMix` layers and, with ``fold_bn`` and
    ``example_inputs``, foldable norms are folded into their convs. With
    ``example_inputs`` the converted network is checked against the eval
    original on them (max abs difference ``<= atol``).

    Args:
        model (nn.Module): The trained network (left unchanged).
        example_inputs (Sequence, optional): Positional inputs of
            ``model.forward`` used to find conv/norm pairs and to check the
            conversion.
        fold_bn (bool): Fold norms into convs. Default: True.
        atol (float): Tolerance of the check. Default: 1e-5.

    Returns:
        nn.Module: The converted network, in eval mode.

    Raises:
        RuntimeError: If the converted network's outputs differ from the
            original's by more than ``atol``.
    """
    original = model
    model = convert_exchange_norms(copy.deepcopy(model).eval())
    if example_inputs is None:
        return model
    example_inputs = tuple(example_inputs)
    if fold_bn:
        fold_conv_bn(model, example_inputs)
    was_training = original.training
    original.eval()
    try:
        with torch.no_grad():
            expected, got = original(*example_inputs), model(*example_inputs)
    finally:
        original.train(was_training)
    pairs = list(zip(_flatten(expected), _flatten(got)))
    worst = max(((e - g).abs().max().item() for e, g in pairs), default=0.)
    if worst > atol:
        raise RuntimeError(
            f'deploy_model: the converted network differs from the eval-mode '
            f'original by {worst:.3g} > atol={atol:g}')
    return model


def _flatten(outputs) -> List[Tensor]:
    if isinstance(outputs, Tensor):
        return [outputs]
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    return [t for item in outputs for t in _flatten(item)]
