# Copyright (c) cen_mm contributors. All rights reserved.
"""Safe and atomic mmengine checkpoints.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``, which
refuses the numpy arrays/scalars and the mmengine ``HistoryBuffer`` objects
that mmengine 0.10.7 itself writes into every checkpoint (message hub, meta).
That breaks ``--resume`` and loading a trained checkpoint for testing.

:func:`install_safe_checkpointing` keeps the ``weights_only`` protection and
allow-lists exactly the plain-data types mmengine writes (see
:func:`checkpoint_safe_globals`); a checkpoint holding any other pickled
object is still refused. ``HistoryBuffer`` stops pickling its class-level
statistics functions (which would need ``getattr`` allow-listed).

It also makes local checkpoint writes atomic: the file is written to a
temporary file in the same directory, flushed to disk, then renamed over the
target, so a run killed while saving leaves the previous checkpoint intact.
"""
import os
import os.path as osp
import uuid
from typing import Any, Callable, List, Optional

import mmengine.runner
import mmengine.runner.checkpoint as mme_checkpoint
import mmengine.runner.runner as mme_runner
import numpy as np
import torch
from mmengine.fileio import LocalBackend, get_file_backend
from mmengine.logging import HistoryBuffer

__all__ = [
    'checkpoint_safe_globals', 'atomic_save_checkpoint',
    'install_safe_checkpointing'
]

# Numeric numpy dtypes whose arrays and scalars mmengine stores (metrics,
# history buffers); the object dtype is deliberately absent.
_NUMPY_DTYPES = ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8',
                 'uint16', 'uint32', 'uint64', 'float16', 'float32',
                 'float64')

_installed = False
_original_save: Optional[Callable] = None


def checkpoint_safe_globals() -> List[Any]:
    """The globals a checkpoint written by mmengine's Runner needs.

    Found by saving real Runner checkpoints (message hub, meta, optimizer and
    scheduler states) and listing what ``weights_only`` loading refuses:

    - ``mmengine.logging.HistoryBuffer`` (message hub scalar logs);
    - ``numpy.ndarray``, ``numpy.dtype``,
      ``numpy.core.multiarray._reconstruct``
      (arrays inside the history buffers);
    - ``numpy.core.multiarray.scalar`` and the numeric dtype classes
      ``numpy.dtypes.{Bool,Int8..Int64,UInt8..UInt64,Float16..Float64}DType``
      (numpy scalars such as metric values and ``best_score``).

    Returns:
        list: Objects for ``torch.serialization.add_safe_globals``.
    """
    multiarray = np.core.multiarray if int(np.__version__.split('.')[0]) < 2 \
        else np._core.multiarray  # noqa: SLF001
    dtype_classes = []
    for name in _NUMPY_DTYPES:
        cls = type(np.dtype(name))
        if cls not in dtype_classes:
            dtype_classes.append(cls)
    return [
        HistoryBuffer, np.ndarray, np.dtype, multiarray._reconstruct,
        multiarray.scalar, *dtype_classes
    ]


def _history_buffer_getstate(self: HistoryBuffer) -> dict:
    # mmengine pickles the class-level statistics methods with every buffer,
    # as `getattr(HistoryBuffer, 'min')` etc.; loading that needs `getattr`
    # allow-listed, which would let a checkpoint reach and mutate arbitrary
    # attributes (e.g. a function's module globals). The methods are
    # class-level and re-registered on import, and `__setstate__` restores
    # the defaults, so the buffer's state is complete without them.
    state = self.__dict__.copy()
    state.pop('statistics_methods', None)
    return state


def _is_local(filename: str, file_client_args: Optional[dict],
              backend_args: Optional[dict]) -> bool:
    if file_client_args is not None or filename.startswith('pavi://'):
        return False
    return isinstance(
        get_file_backend(filename, backend_args=backend_args), LocalBackend)


def _fsync_dir(dirname: str) -> None:
    try:
        fd = os.open(dirname, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save_checkpoint(checkpoint: dict,
                           filename: str,
                           file_client_args: Optional[dict] = None,
                           backend_args: Optional[dict] = None) -> None:
    """Drop-in replacement of ``mmengine.runner.save_checkpoint``.

    Local files are written to ``.{name}.{unique}.tmp`` in the target's
    directory, flushed and fsynced, then ``os.replace``-d over the target,
    so readers only ever see a complete file. Other backends (pavi, petrel,
    ...) fall back to mmengine's implementation.

    Args:
        checkpoint (dict): The checkpoint to save.
        filename (str): Target path.
        file_client_args (dict, optional): Deprecated mmengine argument.
        backend_args (dict, optional): mmengine file backend arguments.
    """
    filename = os.fspath(filename)
    if not _is_local(filename, file_client_args, backend_args):
        _original_save(checkpoint, filename, file_client_args, backend_args)
        return
    dirname = osp.dirname(osp.abspath(filename))
    os.makedirs(dirname, exist_ok=True)
    tmp = osp.join(dirname,
                   f'.{osp.basename(filename)}.{uuid.uuid4().hex[:8]}.tmp')
    try:
        with open(tmp, 'xb') as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filename)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_dir(dirname)


atomic_save_checkpoint._cen_mm_atomic = True  # type: ignore[attr-defined]


def install_safe_checkpointing() -> None:
    """Allow-list mmengine's checkpoint types and make saving atomic.

    Registers :func:`checkpoint_safe_globals` with
    ``torch.serialization.add_safe_globals`` (``weights_only`` loading stays
    on), makes ``HistoryBuffer`` pickle without its class-level statistics
    functions, and replaces ``save_checkpoint`` in ``mmengine.runner``,
    ``mmengine.runner.checkpoint`` and ``mmengine.runner.runner`` by
    :func:`atomic_save_checkpoint`. Idempotent; called when
    ``cen_mm.engine`` is imported.
    """
    global _installed, _original_save
    if _installed:
        return
    if hasattr(torch.serialization, 'add_safe_globals'):
        torch.serialization.add_safe_globals(checkpoint_safe_globals())
    HistoryBuffer.__getstate__ = _history_buffer_getstate
    current = mme_checkpoint.save_checkpoint
    if not getattr(current, '_cen_mm_atomic', False):
        _original_save = current
    for module in (mmengine.runner, mme_checkpoint, mme_runner):
        module.save_checkpoint = atomic_save_checkpoint
    _installed = True
