# Copyright (c) cen_mm contributors. All rights reserved.
"""The CPU row kernels of the exchanging norms.

A one-source exchange (every M = 2 exchange, discards, the fixed and random
portions) only changes which stream's row an output row reads. The kernels
in ``csrc/stream_rows.c`` normalise (frozen or input statistics) and
exchange in the passes one batch norm needs, forward and backward, so an
exchanging layer costs what one batch norm costs.

``csrc/stream_rows.cpp`` wraps them as functions with a C++ autograd node,
built on first use with :func:`torch.utils.cpp_extension.load` (the system
C++ compiler and the ``ninja`` package, a dependency; about a minute, once
per torch version and source)
into a per-user cache (``$CEN_MM_KERNEL_CACHE``, default
``~/.cache/cen_mm/kernels``). It uses torch's public C++ extension API
(``torch::autograd::Function``, ``at::Tensor``), and the cache key holds
torch's version, so a torch upgrade rebuilds it instead of loading a stale
binary. Where it cannot be built, a warning says why once and the layers use
their torch kernels (same results). ``CEN_MM_CPU_KERNEL=0`` switches it off.
"""
import hashlib
import importlib.machinery
import importlib.util
import os
import os.path as osp
import platform
import shutil
import sys
import tempfile
import threading
import warnings
from types import ModuleType
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor

__all__ = [
    'row_kernel', 'frozen_stream_rows', 'input_stream_rows',
    'affine_stream_rows', 'threshold_sources', 'MAX_STREAMS'
]

_CSRC = osp.join(osp.dirname(osp.abspath(__file__)), 'csrc')
_SOURCES = [osp.join(_CSRC, 'stream_rows.cpp')]
_DEPENDS = [osp.join(_CSRC, 'stream_rows.c')]  # included by the .cpp
_CFLAGS = ['-O3', '-fopenmp']
_LDFLAGS = ['-fopenmp']
# The C backward's per-channel reader list.
MAX_STREAMS = 64

_lock = threading.Lock()
_state: dict = {}


def _build_key() -> str:
    digest = hashlib.sha256()
    for path in _SOURCES + _DEPENDS:
        with open(path, 'rb') as f:
            digest.update(f.read())
    digest.update('\0'.join([
        *_CFLAGS, *_LDFLAGS, torch.__version__, sys.version,
        platform.machine(),
        os.environ.get('CXX', '')
    ]).encode())
    return digest.hexdigest()[:16]


def _import(name: str, path: str) -> ModuleType:
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _ninja_dir() -> str:
    """The ``ninja`` package's binary folder ('' without the package)."""
    try:
        import ninja
        return ninja.BIN_DIR
    except (ImportError, AttributeError):
        return ''


def _build(cache_dir: str) -> ModuleType:
    """Build the extension (once per source, flags, compiler, torch and
    Python) and import it. It is built in a fresh directory and moved into
    the cache when complete, so concurrent first uses and interrupted builds
    leave no broken or locked library behind."""
    name = f'cen_mm_stream_rows_{_build_key()}'
    path = osp.join(cache_dir, name + '.so')
    if osp.exists(path):
        return _import(name, path)
    os.makedirs(cache_dir, exist_ok=True)
    build_dir = tempfile.mkdtemp(prefix='build-', dir=cache_dir)
    try:
        # imported here: it probes for CUDA and compilers on import
        from torch.utils.cpp_extension import load
        path_before = os.environ.get('PATH', '')
        try:
            # load() runs `ninja` from PATH: add the pip package's, which an
            # environment that is not activated does not have on PATH.
            os.environ['PATH'] = os.pathsep.join(
                filter(None, [_ninja_dir(), path_before]))
            # Built (and dlopen-ed, not imported: the module is imported
            # once, from its final path); copies of the flags, which load()
            # appends to.
            load(name, list(_SOURCES), extra_cflags=list(_CFLAGS),
                 extra_ldflags=list(_LDFLAGS), build_directory=build_dir,
                 is_python_module=False)
        except (RuntimeError, OSError, ImportError) as err:
            raise RuntimeError(f'building {_SOURCES[0]} failed: '
                               f'{str(err).strip()[-2000:]}') from err
        finally:
            os.environ['PATH'] = path_before
        os.replace(osp.join(build_dir, name + '.so'), path)
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
    return _import(name, path)


def _load() -> Optional[ModuleType]:
    if os.environ.get('CEN_MM_CPU_KERNEL', '1') == '0':
        return None
    cache_dir = os.environ.get('CEN_MM_KERNEL_CACHE') or osp.join(
        osp.expanduser('~'), '.cache', 'cen_mm', 'kernels')
    try:
        return _build(cache_dir)
    except (OSError, RuntimeError, ImportError) as err:
        warnings.warn('cen_mm: the CPU row kernel of the exchanging norms is '
                      f'unavailable ({err}); using torch kernels (same '
                      'results, slower). Set CEN_MM_CPU_KERNEL=0 to silence '
                      'this.')
        return None


def row_kernel() -> Optional[ModuleType]:
    """The loaded kernel extension, built on first call; None where switched
    off (``CEN_MM_CPU_KERNEL=0``, read at the first call) or where it cannot
    be built (warned once)."""
    if 'lib' not in _state:
        with _lock:
            if 'lib' not in _state:
                _state['lib'] = _load()
    return _state['lib']


def threshold_sources(weight: Sequence[Tensor],
                      threshold: float,
                      discard: bool = False,
                      parts: Optional[Tensor] = None) -> Optional[Tensor]:
    """The source stream of every output (stream, channel) under the
    threshold rule, for :func:`frozen_stream_rows`: where ``|γ_m,c| < θ``
    (and, with ``parts``, c is in stream m's own part) the output reads the
    other stream (M = 2) or is zeroed (``discard``); else its own. Compared
    in γ's dtype, as ``γ.abs() < θ``. Call :func:`row_kernel` first.

    Args:
        weight (Sequence[Tensor]): Each stream's γ, ``(C,)``, CPU, float32
            or float64, one dtype.
        threshold (float): θ.
        discard (bool): Zero the replaced outputs. Default: False.
        parts (Tensor, optional): Bool ``(M, C)``: the channels each stream
            may replace. Default: None (all).

    Returns:
        Tensor | None: ``(M, C)`` int64, -1 where zeroed; None where a
        replaced output would take the mean of several streams (M > 2).

    Raises:
        ValueError: On arguments the kernel would misread.
    """
    return _state['lib'].threshold_sources(list(weight), float(threshold),
                                           bool(discard), parts)


def frozen_stream_rows(x: Tensor, src: Tensor, weight: Sequence[Tensor],
                       bias: Sequence[Tensor],
                       running_mean: Sequence[Tensor],
                       running_var: Sequence[Tensor], eps: float) -> Tensor:
    """Frozen per-stream norm + one-source exchange in one pass.

    On the ``(M, N, C, ...)`` view of the folded batch, ``out[m, :, c] =
    (x[s] - mean_s[c]) / sqrt(var_s[c] + eps) * weight[s][c] + bias[s][c]``
    with ``s = src[m, c]``; zeros where ``s < 0``. Differentiable in ``x``,
    ``weight`` and ``bias``. Call :func:`row_kernel` first.

    Args:
        x (Tensor): Stream-folded CPU batch ``(M * N, C, ...)``, float32 or
            float64 (copied if not contiguous).
        src (Tensor): Source stream per output (stream, channel), ``(M, C)``
            int64.
        weight, bias (Sequence[Tensor]): Each stream's γ and β, ``(C,)``.
        running_mean, running_var (Sequence[Tensor]): Each stream's frozen
            statistics, ``(C,)``.
        eps (float): Added to the variance.

    Returns:
        Tensor: A fresh contiguous tensor of ``x``'s shape.

    Raises:
        ValueError: On shapes, dtypes or devices the kernel would misread.
    """
    return _state['lib'].frozen_rows(x, src, list(weight), list(bias),
                                     list(running_mean), list(running_var),
                                     float(eps))


def input_stream_rows(x: Tensor,
                      src: Tensor,
                      eps: float,
                      weight: Sequence[Tensor],
                      bias: Sequence[Tensor],
                      per_sample: bool = False
                      ) -> Tuple[Tensor, Tensor, Tensor]:
    """:func:`frozen_stream_rows` with input statistics computed in the
    kernel: the mean and biased variance of each stream's channel over its N
    samples (batch norm) or, with ``per_sample``, of each sample's channel
    (instance norm).

    Returns:
        tuple[Tensor]: The output (fresh, contiguous, ``x``'s shape), and the
        mean and biased variance, ``(M, C)`` or ``(M, N, C)`` (for the
        running statistics; not differentiable).
    """
    return tuple(_state['lib'].input_rows(x, src, list(weight), list(bias),
                                          float(eps), bool(per_sample)))


def affine_stream_rows(x: Tensor, src: Tensor, weight: Tensor,
                       bias: Tensor) -> Tensor:
    """A per-output affine map of one source stream, for inference (a
    deployed exchanging norm): on the ``(M, N, C, ...)`` view, ``out[o, :,
    c] = x[s, :, c] * weight[o, c] + bias[o, c]`` with ``s = src[o, c]``
    (``bias[o, c]`` alone where ``s < 0``). Call :func:`row_kernel` first.

    Args:
        x (Tensor): Stream-folded CPU batch ``(M * N, C, ...)``, float32 or
            float64.
        src (Tensor): Source stream per output (stream, channel), ``(M, C)``
            int64.
        weight, bias (Tensor): ``(M, C)``, of ``x``'s dtype.

    Returns:
        Tensor: A fresh contiguous tensor of ``x``'s shape.

    Raises:
        ValueError: On arguments the kernel would misread, or where autograd
            would need a gradient (it has none).
    """
    return _state['lib'].affine_rows(x, src, weight, bias)
