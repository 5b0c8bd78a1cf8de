# Copyright (c) cen_mm contributors. All rights reserved.
"""Ratios of interleaved timings, repetition by repetition.

The benchmarks run every compared model once per repetition, back to back,
so a ratio within one repetition cancels slow drifts of the machine's speed
(not its step-to-step noise, which the quartiles show); the scripts report
the median and quartiles of those per-repetition ratios next to the ratio of
the medians.
"""
import statistics
from typing import Dict, List, Sequence

__all__ = ['paired_ratios']


def paired_ratios(times: Dict[str, Sequence[float]], base: str,
                  names: List[str] = None) -> str:
    """``name/base = median [q1, q3]`` of the per-repetition ratios.

    Args:
        times (dict): Per model, its times, one per repetition (same
            repetitions for every model).
        base (str): The model the others are divided by.
        names (list[str], optional): The models to report; default every
            model but ``base``.

    Returns:
        str: One comma-separated line.
    """
    parts = []
    for name in names or [n for n in times if n != base]:
        ratios = [t / b for t, b in zip(times[name], times[base])]
        q1, q2, q3 = statistics.quantiles(ratios, n=4)
        parts.append(f'{name}/{base} = {q2:.3f} [{q1:.3f}, {q3:.3f}]')
    return ', '.join(parts)
