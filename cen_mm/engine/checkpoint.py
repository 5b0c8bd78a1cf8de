# Copyright (c) cen_mm contributors. All rights reserved.
"""Safe (``weights_only``) and atomic checkpoint IO, switched on explicitly.

Nothing here runs at import. A run asks for it through
:class:`~cen_mm.engine.hooks.SafeCheckpointHook` (a config's
``default_hooks.checkpoint``; ``tools/train.py`` and ``tools/test.py`` switch
a config's ``CheckpointHook`` to it) and :func:`safe_checkpoint_loading`
(a context the tools wrap their Runner calls in).

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``, which
refuses the numpy arrays/scalars and the mmengine ``HistoryBuffer`` objects
that mmengine 0.10.7 writes into every Runner checkpoint. Inside
:func:`safe_checkpoint_loading` exactly those plain-data types are
allow-listed (:func:`checkpoint_safe_globals`); a checkpoint holding any other
pickled object is still refused.
"""
import contextlib
import os
import os.path as osp
import re
import uuid
import zipfile
from typing import Any, Callable, Iterator, List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

__all__ = [
    'checkpoint_safe_globals', 'safe_checkpoint_loading',
    'portable_message_hub', 'atomic_write', 'atomic_write_text',
    'temporary_name', 'remove_stray_temporaries', 'is_intact_checkpoint',
    'find_resume_checkpoint', 'check_resumable', 'check_state_dict',
    'load_model_checkpoint'
]

# Numeric numpy dtypes whose arrays and scalars mmengine stores (metrics,
# history buffers); the object dtype is deliberately absent.
_NUMPY_DTYPES = ('bool', 'int8', 'int16', 'int32', 'int64', 'uint8',
                 'uint16', 'uint32', 'uint64', 'float16', 'float32',
                 'float64')

# `.{target name}.{8 hex}.tmp`, the name :func:`temporary_name` gives.
_TEMPORARY = re.compile(r'^\..+\.[0-9a-f]{8}\.tmp$')


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
        list: Objects for ``torch.serialization.safe_globals``.
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


@contextlib.contextmanager
def safe_checkpoint_loading() -> Iterator[None]:
    """Allow-list :func:`checkpoint_safe_globals` for ``weights_only`` loads
    inside the ``with`` block (``weights_only`` itself stays on); the
    previous allow-list is restored on exit."""
    with torch.serialization.safe_globals(checkpoint_safe_globals()):
        yield


class _PortableHistoryBuffer:
    """Pickles as the ``HistoryBuffer`` it wraps, minus the class-level
    statistics functions.

    mmengine's ``HistoryBuffer.__getstate__`` adds ``statistics_methods``
    (pickled as ``getattr(HistoryBuffer, 'min')`` etc.) to every buffer;
    loading that needs ``getattr`` allow-listed, which would let a
    checkpoint reach and mutate arbitrary attributes. The methods are
    class-level and mmengine's ``__setstate__`` restores the defaults, so
    the buffer's state is complete without them. It pickles as
    ``HistoryBuffer()`` followed by ``__setstate__(state)``, so it loads as
    a plain ``HistoryBuffer``.
    """

    def __init__(self, buffer: HistoryBuffer) -> None:
        self.state = {
            k: v
            for k, v in vars(buffer).items() if k != 'statistics_methods'
        }

    def __reduce_ex__(self, protocol: int) -> tuple:
        return HistoryBuffer, (), self.state


def portable_message_hub(checkpoint: dict) -> None:
    """Make the message hub state of a Runner checkpoint loadable with
    ``weights_only`` (in place; see :class:`_PortableHistoryBuffer`)."""
    hub = checkpoint.get('message_hub')
    if not isinstance(hub, dict) or not isinstance(
            hub.get('log_scalars'), dict):
        return
    hub['log_scalars'] = {
        key: _PortableHistoryBuffer(value)
        if isinstance(value, HistoryBuffer) else value
        for key, value in hub['log_scalars'].items()
    }


def temporary_name(filename: str) -> str:
    """``dir/.{name}.{8 random hex}.tmp`` next to ``filename``."""
    dirname, name = osp.split(osp.abspath(filename))
    return osp.join(dirname, f'.{name}.{uuid.uuid4().hex[:8]}.tmp')


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


def atomic_write(filename: str, write: Callable[[str], None]) -> None:
    """Create ``filename`` through a temporary file so that readers (and a
    run killed at any point) only ever see the old or the complete new file.

    ``write(tmp)`` writes the temporary file; it is then fsynced and
    ``os.replace``-d over ``filename`` and the directory is fsynced. On any
    error (including ``KeyboardInterrupt``) the temporary file is removed.

    Args:
        filename (str): Target path.
        write (Callable[[str], None]): Writes the content to the given path.
    """
    filename = os.fspath(filename)
    dirname = osp.dirname(osp.abspath(filename))
    os.makedirs(dirname, exist_ok=True)
    tmp = temporary_name(filename)
    try:
        write(tmp)
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.replace(tmp, filename)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_dir(dirname)


def atomic_write_text(filename: str, text: str) -> None:
    """Write ``text`` to ``filename`` atomically (see :func:`atomic_write`)."""

    def write(path: str) -> None:
        with open(path, 'w') as f:
            f.write(text)

    atomic_write(filename, write)


def remove_stray_temporaries(dirname: str) -> List[str]:
    """Remove the temporary files :func:`atomic_write` leaves when a process
    is killed mid-write.

    Returns:
        list[str]: The removed paths.
    """
    if not osp.isdir(dirname):
        return []
    removed = []
    for name in sorted(os.listdir(dirname)):
        path = osp.join(dirname, name)
        if _TEMPORARY.match(name) and osp.isfile(path):
            os.remove(path)
            removed.append(path)
    return removed


def is_intact_checkpoint(filename: str) -> bool:
    """Whether ``filename`` is a complete checkpoint in torch's zip format
    (exists, has its central directory, every record's CRC matches).

    A file cut short by a kill or a full disk, or garbage, gives False;
    legacy (non-zip) ``torch.save`` files are not recognised.
    """
    if not osp.isfile(filename):
        return False
    try:
        with zipfile.ZipFile(filename) as archive:
            return archive.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return False



def _step_of(filename: str) -> int:
    numbers = re.findall(r'\d+', osp.basename(filename))
    return int(numbers[-1]) if numbers else -1


def find_resume_checkpoint(work_dir: str) -> str:
    """The checkpoint ``--resume`` (without a file) continues from.

    ``last_checkpoint`` in ``work_dir`` when it points at an intact file;
    otherwise the newest intact ``epoch_*``/``iter_*`` checkpoint of the
    work dir, with a warning naming what was wrong.

    Args:
        work_dir (str): The run's work dir.

    Returns:
        str: Path of an intact checkpoint.

    Raises:
        FileNotFoundError: Nothing in ``work_dir`` to resume from.
    """
    from mmengine.logging import print_log
    pointer = osp.join(work_dir, 'last_checkpoint')
    last = None
    if osp.isfile(pointer):
        with open(pointer) as f:
            last = f.read().strip()
        if last and is_intact_checkpoint(last):
            return last
    candidates = sorted(
        (osp.join(work_dir, name) for name in os.listdir(work_dir)
         if re.fullmatch(r'(epoch|iter)_\d+\.pth', name)) if osp.isdir(
             work_dir) else (),
        key=lambda p: (_step_of(p), osp.getmtime(p)),
        reverse=True)
    intact = [p for p in candidates if is_intact_checkpoint(p)]
    if not intact:
        raise FileNotFoundError(
            f'--resume: nothing to resume in the work dir {work_dir} (' +
            (f'last_checkpoint points at {last!r}, which is missing or '
             'incomplete, and ' if last is not None else
             'no last_checkpoint file and ') +
            f'no intact epoch_*/iter_* checkpoint among {len(candidates)}). '
            'Start a new run without --resume, or pass --resume CHECKPOINT.')
    reason = ('no last_checkpoint file' if last is None else
              f'last_checkpoint points at {last!r}, which is missing or '
              'incomplete')
    print_log(
        f'--resume: {reason}; resuming from the newest intact checkpoint '
        f'{intact[0]} instead.',
        logger='current',
        level=30)
    return intact[0]


def check_resumable(filename: str, needs_scheduler: bool) -> None:
    """Refuse to resume from a checkpoint without training state.

    ``best_*`` checkpoints (and published ones) hold no optimizer and
    scheduler state: resuming from them would restart the optimizer
    (momentum) and the learning-rate schedule at step 0 while the epoch
    counter continues.

    Args:
        filename (str): The checkpoint.
        needs_scheduler (bool): The config has param schedulers.

    Raises:
        FileNotFoundError: The file is missing.
        ValueError: The file is incomplete or lacks the training state.
    """
    if not osp.isfile(filename):
        raise FileNotFoundError(f'--resume: checkpoint {filename} not found')
    if not is_intact_checkpoint(filename):
        raise ValueError(f'--resume: checkpoint {filename} is incomplete or '
                         'corrupt (not a complete torch zip file)')
    with safe_checkpoint_loading():
        checkpoint = torch.load(
            filename, map_location='cpu', weights_only=True, mmap=True)
    missing = [key for key in ('meta', 'optimizer') if key not in checkpoint]
    if needs_scheduler and 'param_schedulers' not in checkpoint:
        missing.append('param_schedulers')
    if missing:
        raise ValueError(
            f'--resume: checkpoint {filename} has no {missing} state (best_* '
            'and published checkpoints keep the weights only): resuming '
            'would restart the optimizer and the learning-rate schedule at '
            'step 0. Resume from an epoch_*/iter_* checkpoint, or start a '
            f'new schedule from these weights with --cfg-options '
            f'load_from={filename}.')


def check_state_dict(model: torch.nn.Module, state_dict: dict,
                     filename: str) -> None:
    """Raise if ``state_dict`` leaves weights of ``model`` unfilled.

    Every parameter and persistent buffer of the model must be in the
    checkpoint with its shape (a leading ``module.`` is ignored, as
    mmengine does). Keys the model does not have are allowed.

    Args:
        model (nn.Module): The model (wrappers and TTA models are unwrapped
            through ``.module``).
        state_dict (dict): The checkpoint's weights.
        filename (str): Named in the error.

    Raises:
        RuntimeError: Missing keys or shape mismatches, listed.
    """
    while hasattr(model, 'module') and isinstance(model.module,
                                                  torch.nn.Module):
        model = model.module
    given = {re.sub(r'^module\.', '', k): v for k, v in state_dict.items()}
    missing, mismatched = [], []
    for key, value in model.state_dict().items():
        if key not in given:
            missing.append(key)
        elif hasattr(given[key], 'shape') and \
                tuple(given[key].shape) != tuple(value.shape):
            mismatched.append(f'{key}: checkpoint {tuple(given[key].shape)}'
                              f' vs model {tuple(value.shape)}')
    if not (missing or mismatched):
        return
    total = len(model.state_dict())
    lines = [
        f'checkpoint {filename} does not fit {type(model).__name__}: '
        f'{len(missing)} of its {total} weights are missing and '
        f'{len(mismatched)} have another shape (another architecture, a '
        'changed config, or an official CEN checkpoint before conversion '
        'with tools/model_converters?).'
    ]
    if missing:
        lines.append(f'missing: {missing[:8]}' +
                     (' ...' if len(missing) > 8 else ''))
    if mismatched:
        lines.append(f'shape mismatch: {mismatched[:8]}' +
                     (' ...' if len(mismatched) > 8 else ''))
    lines.append('To load the matching part on purpose, ask for partial '
                 'loading (tools: --partial-load; API: strict=False; '
                 'SafeCheckpointHook(strict_load=False)).')
    raise RuntimeError('\n'.join(lines))


def load_model_checkpoint(model: torch.nn.Module,
                          filename: str,
                          strict: bool = True,
                          map_location: str = 'cpu') -> dict:
    """Load a checkpoint's weights into ``model``, strictly by default.

    Loads with ``weights_only`` inside :func:`safe_checkpoint_loading`;
    with ``strict`` a checkpoint that leaves model weights unfilled is an
    error (:func:`check_state_dict`), otherwise the matching part is loaded
    (mmengine logs what did not match).

    Args:
        model (nn.Module): The model to fill.
        filename (str): Checkpoint path or URL.
        strict (bool): Refuse partial loading. Default: True.
        map_location (str): Device to map the tensors to. Default: 'cpu'.

    Returns:
        dict: The loaded checkpoint.
    """
    from mmengine.runner.checkpoint import (_load_checkpoint,
                                            _load_checkpoint_to_model)
    with safe_checkpoint_loading():
        checkpoint = _load_checkpoint(filename, map_location=map_location)
    if not isinstance(checkpoint, dict):
        raise TypeError(f'checkpoint {filename} holds a '
                        f'{type(checkpoint).__name__}, not a dict of weights')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if strict:
        check_state_dict(model, state_dict, filename)
    _load_checkpoint_to_model(model, checkpoint, strict=False)
    return checkpoint
