# Copyright (c) cen_mm contributors. All rights reserved.
"""Read the official CEN checkpoints safely and rename their keys.

The official segmentation checkpoints (``github.com/yikaiw/CEN``) are
``torch.save`` of ``{'segmenter': state_dict, 'epoch_start': int,
'best_val': numpy.float64}``; the translation checkpoints are plain state
dicts. A plain ``torch.load`` of the first unpickles arbitrary objects;
modern ``torch.load`` (``weights_only=True``) refuses the numpy scalar.
:func:`load_official_checkpoint` keeps ``weights_only=True`` and allow-lists,
for the duration of the call only, exactly what a numpy float scalar needs
(:func:`official_safe_globals`); anything else in the file is refused.

Conversion is rule based (:class:`KeyRule`): every source key must match a
rule that either renames it (optionally transforming the tensor) or declares
it unused with a reason, and the result must fill every key of the target
model with the right shape (:func:`check_converted`). Unknown keys,
missing keys and shape mismatches raise, naming the keys.
"""
import re
from dataclasses import dataclass
from typing import (Any, Callable, Dict, List, Mapping, Optional, Sequence,
                    Tuple, Union)

import numpy as np
import torch
from torch import Tensor

__all__ = [
    'official_safe_globals', 'load_official_checkpoint', 'extract_state_dict',
    'KeyRule', 'ConversionResult', 'convert_state_dict', 'check_converted',
    'NORM_STATE'
]

# The tensors of a torch norm layer's state dict.
NORM_STATE = r'(weight|bias|running_mean|running_var|num_batches_tracked)'


def official_safe_globals() -> List[Tuple[Any, str]]:
    """The globals a numpy float scalar (``best_val``) needs to unpickle.

    ``numpy.float64(x)`` pickles as ``numpy.core.multiarray.scalar(
    numpy.dtype('f8'), bytes)`` plus a ``__setstate__`` of the dtype; the
    names are given explicitly because files written with numpy 1.x say
    ``numpy.core`` where numpy 2 says ``numpy._core``.

    Returns:
        list[tuple]: ``(object, qualified name)`` pairs for
        ``torch.serialization.safe_globals``.
    """
    scalar = (np.core if int(np.__version__.split('.')[0]) < 2 else
              np._core).multiarray.scalar  # noqa: SLF001
    pairs = [(scalar, f'{prefix}.multiarray.scalar')
             for prefix in ('numpy.core', 'numpy._core')]
    pairs.append((np.dtype, 'numpy.dtype'))
    for name in ('float16', 'float32', 'float64', 'int32', 'int64', 'bool'):
        cls = type(np.dtype(name))
        pairs.append((cls, f'{cls.__module__}.{cls.__qualname__}'))
    return pairs


def load_official_checkpoint(path: str) -> Any:
    """``torch.load`` an official CEN checkpoint with ``weights_only=True``.

    Only tensors, plain containers and numpy float/int scalars are accepted
    (the allow-list is active for this call only, nothing global changes).

    Args:
        path (str): The ``.pth.tar`` / ``.pkl`` file.

    Returns:
        The unpickled object (a dict).

    Raises:
        RuntimeError: The file holds other pickled objects (the message names
            the file and the refused global).
    """
    with torch.serialization.safe_globals(official_safe_globals()):
        try:
            return torch.load(path, map_location='cpu', weights_only=True)
        except Exception as e:  # UnpicklingError and friends
            raise RuntimeError(
                f'{path}: refused to load; an official CEN checkpoint holds '
                'only tensors, ints and numpy scalars (weights_only=True with '
                f'a numpy-scalar allow-list). Loader said: {e}') from e


def extract_state_dict(
    checkpoint: Any,
    path: str,
    containers: Sequence[str] = ('segmenter', 'state_dict', 'model')
) -> Tuple[Dict[str, Tensor], Dict[str, Any]]:
    """Find the model state in an official checkpoint.

    Args:
        checkpoint: What :func:`load_official_checkpoint` returned.
        path (str): File name, for messages.
        containers (Sequence[str]): Keys that may hold the state dict, in
            order of preference.

    Returns:
        tuple: ``(state_dict, extras)``; ``extras`` holds the other top-level
        entries converted to plain Python values (e.g. ``epoch_start``,
        ``best_val``), empty for a bare state dict.

    Raises:
        ValueError: No state dict found (names the top-level keys).
    """
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f'{path}: expected a dict, got '
                         f'{type(checkpoint).__name__}')
    if checkpoint and all(isinstance(v, Tensor) for v in checkpoint.values()):
        return dict(checkpoint), {}
    for key in containers:
        state = checkpoint.get(key)
        if isinstance(state, Mapping) and state and all(
                isinstance(v, Tensor) for v in state.values()):
            extras = {}
            for k, v in checkpoint.items():
                if k == key:
                    continue
                extras[k] = v.item() if isinstance(
                    v, (np.generic, np.ndarray)) and np.size(v) == 1 else (
                        v if isinstance(v, (int, float, str)) else
                        f'<{type(v).__name__}, ignored>')
            return dict(state), extras
    raise ValueError(
        f'{path}: unknown checkpoint layout; expected a state dict or a dict '
        f'holding one under {list(containers)}, got top-level keys '
        f'{sorted(map(str, checkpoint))[:20]}')


@dataclass
class KeyRule:
    """One renaming rule of a converter.

    Args:
        pattern (str): Regular expression matched (``fullmatch``) against the
            source key.
        target (str | callable | None): ``re.Match.expand`` template, or a
            function of the match returning the new key; None declares the
            key unused.
        reason (str): Why the key is unused (for ``target=None``).
        transform (callable, optional): ``f(match, tensor) -> tensor``
            applied to the value (e.g. a channel reorder).
    """
    pattern: str
    target: Union[str, Callable[[re.Match], Optional[str]], None]
    reason: str = ''
    transform: Optional[Callable[[re.Match, Tensor], Tensor]] = None


@dataclass
class ConversionResult:
    """Outcome of :func:`convert_state_dict`.

    Attributes:
        state_dict: The converted tensors.
        mapped: ``(source key, target key, transformed)`` per converted key.
        unused: ``(source key, reason)`` per key that is not used.
    """
    state_dict: Dict[str, Tensor]
    mapped: List[Tuple[str, str, bool]]
    unused: List[Tuple[str, str]]


def convert_state_dict(
    state_dict: Mapping[str, Tensor],
    rules: Sequence[KeyRule],
    source: str,
    strip_prefixes: Sequence[str] = ()) -> ConversionResult:
    """Rename (and transform) every key of ``state_dict`` by ``rules``.

    A rule's ``target`` function may return None to declare a key unused;
    it then gives the reason through the rule's ``reason``.

    Args:
        state_dict (Mapping[str, Tensor]): Source state dict.
        rules (Sequence[KeyRule]): Tried in order; the first match wins.
        source (str): Name of the source, for messages.
        strip_prefixes (Sequence[str]): Prefixes removed (once, if present)
            before matching, e.g. DataParallel's ``'module.'``.

    Returns:
        ConversionResult: Converted tensors, the mapping and unused keys.

    Raises:
        KeyError: Some keys match no rule (an unknown layout), or two source
            keys map to the same target.
    """
    compiled = [(re.compile(rule.pattern), rule) for rule in rules]
    out: Dict[str, Tensor] = {}
    mapped, unused, unknown = [], [], []
    origin: Dict[str, str] = {}
    for key, value in state_dict.items():
        name = key
        for prefix in strip_prefixes:
            if name.startswith(prefix):
                name = name[len(prefix):]
                break
        for regex, rule in compiled:
            match = regex.fullmatch(name)
            if match is None:
                continue
            target = rule.target(match) if callable(rule.target) else (
                None if rule.target is None else match.expand(rule.target))
            if target is None:
                unused.append((key, rule.reason))
            else:
                if target in origin:
                    raise KeyError(f'{source}: {origin[target]!r} and {key!r} '
                                   f'both map to {target!r}')
                origin[target] = key
                if rule.transform is not None:
                    value = rule.transform(match, value)
                out[target] = value
                mapped.append((key, target, rule.transform is not None))
            break
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(
            f'{source}: unknown checkpoint layout, {len(unknown)} of '
            f'{len(state_dict)} keys match no known official name, e.g. '
            f'{unknown[:8]}')
    return ConversionResult(out, mapped, unused)


def check_converted(state_dict: Mapping[str, Tensor],
                    expected: Mapping[str, Union[torch.Size, Sequence[int]]],
                    source: str) -> None:
    """Check that a converted state dict fills exactly the target's keys.

    Args:
        state_dict (Mapping[str, Tensor]): Converted tensors.
        expected (Mapping[str, Size]): Target key -> shape (e.g. from a
            model built on the ``meta`` device).
        source (str): Name of the source, for messages.

    Raises:
        KeyError: Missing or unexpected keys (listed).
        ValueError: Shape mismatches (listed).
    """
    missing = [k for k in expected if k not in state_dict]
    extra = [k for k in state_dict if k not in expected]
    if missing or extra:
        raise KeyError(
            f'{source}: the converted checkpoint does not fill the cen_mm '
            f'model: {len(missing)} missing keys {missing[:8]}, '
            f'{len(extra)} unexpected keys {extra[:8]}')
    bad = [(k, tuple(state_dict[k].shape), tuple(shape))
           for k, shape in expected.items()
           if tuple(state_dict[k].shape) != tuple(shape)]
    if bad:
        raise ValueError(f'{source}: {len(bad)} tensors have the wrong shape '
                         f'(key, got, expected): {bad[:8]}')
