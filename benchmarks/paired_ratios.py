# Copyright (c) cen_mm contributors. All rights reserved.
"""Ratios of interleaved timings, repetition by repetition.

The benchmarks run every compared model once per repetition, back to back.
On a shared machine the speed drifts by 10-20 % over a run, which moves the
medians of each model's times; the ratio of two models' times *within* one
repetition is far steadier, so the scripts also report the median and
quartiles of those per-repetition ratios.
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
