# Copyright (c) cen_mm contributors. All rights reserved.
"""The CPU row kernels of the exchanging norms.

A one-source exchange (every M = 2 exchange, discards, the fixed and random
portions) only changes which stream's row an output row reads. The kernels
in ``csrc/stream_rows.c`` normalise (frozen or batch statistics) and
exchange in the passes one batch norm needs, forward and backward, so an
exchanging layer costs what one batch norm costs.

It is plain C + OpenMP, built on first use with the system C compiler
(``$CC``, default ``cc``) into a per-user cache
(``$CEN_MM_KERNEL_CACHE``, default ``~/.cache/cen_mm/kernels``) and loaded
with :mod:`ctypes`: it uses no torch C++ API, so a torch upgrade cannot break
it. Where it cannot be built, a warning says why once and the layers use
their torch kernels (same results). ``CEN_MM_CPU_KERNEL=0`` switches it off.
"""
import ctypes
import hashlib
import os
import os.path as osp
import platform
import subprocess
import tempfile
import threading
import warnings
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = [
    'row_kernel', 'frozen_stream_rows', 'input_stream_rows', 'MAX_STREAMS'
]

_SOURCE = osp.join(osp.dirname(osp.abspath(__file__)), 'csrc',
                   'stream_rows.c')
_FLAGS = ['-O3', '-fopenmp', '-shared', '-fPIC']
_SUFFIX = {torch.float32: 'f32', torch.float64: 'f64'}
# The C backward's per-channel reader list.
MAX_STREAMS = 64

_lock = threading.Lock()
_state: dict = {}


def _build(compiler: str, cache_dir: str) -> str:
    """Compile the kernels (once per source, flags and compiler) and return
    the shared library's path; written atomically, so concurrent first uses
    and interrupted builds leave no broken library behind."""
    with open(_SOURCE, 'rb') as f:
        source = f.read()
    key = hashlib.sha256(b'\0'.join(
        [source, ' '.join(_FLAGS).encode(), compiler.encode(),
         platform.machine().encode()])).hexdigest()[:16]
    path = osp.join(cache_dir, f'stream_rows-{key}.so')
    if osp.exists(path):
        return path
    os.makedirs(cache_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix='.so', dir=cache_dir)
    os.close(fd)
    try:
        result = subprocess.run([compiler, *_FLAGS, _SOURCE, '-o', tmp],
                                capture_output=True, text=True,
                                timeout=300)
        if result.returncode:
            raise RuntimeError(f'{compiler} failed on {_SOURCE}:\n'
                               f'{result.stderr.strip()}')
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return path


def _declare(lib: ctypes.CDLL) -> dict:
    """The kernels by dtype: ``{dtype: (frozen, batch, backward)}``."""
    ptr, i64, cint = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    kernels = {}
    for dtype, suffix in _SUFFIX.items():
        frozen = getattr(lib, f'cen_rows_forward_{suffix}')
        frozen.argtypes = [ptr] * 6 + [i64] * 4 + [cint]
        batch = getattr(lib, f'cen_rows_batch_forward_{suffix}')
        batch.argtypes = [ptr] * 7 + [i64] * 4 + [ctypes.c_double, cint,
                                                  cint]
        backward = getattr(lib, f'cen_rows_backward_{suffix}')
        backward.argtypes = [ptr] * 9 + [i64] * 4 + [cint, cint]
        kernels[dtype] = (frozen, batch, backward)
    return kernels


def _load() -> Optional[dict]:
    if os.environ.get('CEN_MM_CPU_KERNEL', '1') == '0':
        return None
    compiler = os.environ.get('CC', 'cc')
    cache_dir = os.environ.get('CEN_MM_KERNEL_CACHE') or osp.join(
        osp.expanduser('~'), '.cache', 'cen_mm', 'kernels')
    try:
        return _declare(ctypes.CDLL(_build(compiler, cache_dir)))
    except (OSError, RuntimeError, subprocess.SubprocessError) as err:
        warnings.warn('cen_mm: the CPU row kernel of the exchanging norms is '
                      f'unavailable ({err}); using torch kernels (same '
                      'results, slower). Set CEN_MM_CPU_KERNEL=0 to silence '
                      'this.')
        return None


def row_kernel() -> Optional[dict]:
    """The loaded kernels by dtype, built on first call; None where
    switched off (``CEN_MM_CPU_KERNEL=0``, read at the first call) or where
    they cannot be built (warned once)."""
    if 'lib' not in _state:
        with _lock:
            if 'lib' not in _state:
                _state['lib'] = _load()
    return _state['lib']


def _pointers(tensors: Sequence[Tensor]) -> ctypes.Array:
    return (ctypes.c_void_p * len(tensors))(*(t.data_ptr() for t in tensors))


def _ptr(t: Optional[Tensor]) -> Optional[int]:
    return None if t is None else t.data_ptr()


class _StreamRows(torch.autograd.Function):
    """Norm + one-source exchange; frozen statistics when ``mean`` is given
    (returns ``out``), else input statistics per (stream, channel) or, with
    ``per_sample``, per (stream, sample, channel) (returns ``out``, the
    mean and the biased variance)."""

    @staticmethod
    def forward(ctx, x: Tensor, src: Tensor, mean: Optional[Tensor],
                invstd: Optional[Tensor], eps: float, per_sample: bool,
                *params: Tensor):
        x, src = x.contiguous(), src.contiguous()
        params = [p.contiguous() for p in params]
        if mean is not None:
            mean, invstd = mean.contiguous(), invstd.contiguous()
        _check(x, src, params, mean, invstd)
        m, c = src.shape
        shape = (m, x.size(0) // m, c, x.numel() // (x.size(0) * c))
        out = torch.empty_like(x, memory_format=torch.contiguous_format)
        frozen, batch, _ = _state['lib'][x.dtype]
        ctx.mode = 0 if mean is not None else 2 if per_sample else 1
        if ctx.mode:
            stats = (m, shape[1], c) if per_sample else (m, c)
            mean, var, invstd = params[0].new_empty((3, *stats)).unbind(0)
            batch(x.data_ptr(), out.data_ptr(), _pointers(params),
                  mean.data_ptr(), var.data_ptr(), invstd.data_ptr(),
                  src.data_ptr(), *shape, eps, int(per_sample),
                  torch.get_num_threads())
        else:
            frozen(x.data_ptr(), out.data_ptr(), _pointers(params),
                   mean.data_ptr(), invstd.data_ptr(), src.data_ptr(), *shape,
                   torch.get_num_threads())
        ctx.shape = shape
        ctx.save_for_backward(x, src, mean, invstd, *params[:m])
        if not ctx.mode:
            return out
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor, *unused):
        x, src, mean, invstd, *gammas = ctx.saved_tensors
        m, _, c, _ = ctx.shape
        needs = ctx.needs_input_grad[6:]
        grad_x = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        grad_w = x.new_empty((m, c)) if any(needs[:m]) else None
        grad_b = x.new_empty((m, c)) if any(needs[m:]) else None
        # kept in a name: a temporary copy would be freed before the call
        grad = grad.contiguous()
        _state['lib'][x.dtype][2](
            grad.data_ptr(), x.data_ptr(), _pointers(gammas),
            mean.data_ptr(), invstd.data_ptr(), src.data_ptr(),
            _ptr(grad_x), _ptr(grad_w), _ptr(grad_b), *ctx.shape, ctx.mode,
            torch.get_num_threads())
        return (grad_x, None, None, None, None, None,
                *_per_stream(grad_w, m), *_per_stream(grad_b, m))


def _check(x: Tensor, src: Tensor, params: Sequence[Tensor],
           *stats: Optional[Tensor]) -> None:
    """The kernels read raw buffers: refuse what they would misread."""
    m, c = src.shape if src.dim() == 2 else (0, 0)
    floats = [*params, *(t for t in stats if t is not None)]
    if (x.device.type != 'cpu' or x.dtype not in _SUFFIX or x.dim() < 2
            or src.dtype != torch.int64 or m == 0 or m > MAX_STREAMS
            or x.size(1) != c or x.size(0) % m or len(params) != 2 * m
            or any(t.dtype != x.dtype or t.device != x.device
                   for t in floats)
            or any(p.shape != (c, ) for p in params)
            or any(t.shape[0] != m or t.shape[-1] != c for t in stats
                   if t is not None)):
        raise ValueError(
            'cen_mm row kernels: expected a CPU float32/float64 input (M * N, '
            'C, ...), int64 sources (M, C) with M <= 64, M weights and M '
            'biases (C,) and statistics (M, ..., C), all of the input\'s '
            f'dtype; got input {tuple(x.shape)} {x.dtype} on {x.device}, '
            f'sources {tuple(src.shape)} {src.dtype}, '
            f'{[(tuple(t.shape), t.dtype) for t in floats]}')


def _per_stream(grad: Optional[Tensor], m: int) -> List[Optional[Tensor]]:
    return [None] * m if grad is None else list(grad.unbind(0))


def frozen_stream_rows(x: Tensor, src: Tensor, mean: Tensor, invstd: Tensor,
                       weight: Sequence[Tensor],
                       bias: Sequence[Tensor]) -> Tensor:
    """Frozen per-stream norm + one-source exchange in one pass.

    On the ``(M, N, C, ...)`` view of the folded batch, ``out[m, :, c] =
    (x[s] - mean[s, c]) * invstd[s, c] * weight[s][c] + bias[s][c]`` with
    ``s = src[m, c]``; zeros where ``s < 0``. Call :func:`row_kernel` first.

    Args:
        x (Tensor): Contiguous stream-folded CPU batch ``(M * N, C, ...)``,
            float32 or float64.
        src (Tensor): Source stream per output (stream, channel), ``(M, C)``
            int64, contiguous.
        mean, invstd (Tensor): Per-stream frozen statistics, ``(M, C)``,
            contiguous, of ``x``'s dtype.
        weight, bias (Sequence[Tensor]): Each stream's γ and β, ``(C,)``.

    Returns:
        Tensor: A fresh contiguous tensor of ``x``'s shape.
    """
    return _StreamRows.apply(x, src, mean, invstd, 0.0, False, *weight,
                             *bias)


def input_stream_rows(x: Tensor,
                      src: Tensor,
                      eps: float,
                      weight: Sequence[Tensor],
                      bias: Sequence[Tensor],
                      per_sample: bool = False
                      ) -> Tuple[Tensor, Tensor, Tensor]:
    """:func:`frozen_stream_rows` with input statistics computed in the
    kernel: ``mean`` and ``invstd = 1 / sqrt(var + eps)`` (biased variance)
    of each stream's channel over its N samples (batch norm) or, with
    ``per_sample``, of each sample's channel (instance norm).

    Returns:
        tuple[Tensor]: The output (fresh, contiguous, ``x``'s shape), and the
        mean and biased variance, ``(M, C)`` or ``(M, N, C)`` (for the
        running statistics; not differentiable).
    """
    return _StreamRows.apply(x, src, None, None, float(eps), per_sample,
                             *weight, *bias)
