# Copyright (c) cen_mm contributors. All rights reserved.
"""Translation flows ``dict(sources=[...], target=...)``: declared once in a
config and checked the same way by the dataset and the model."""
from typing import Dict, List, Sequence

__all__ = ['parse_flows']


def parse_flows(flows: Sequence[Dict], owner: str) -> List[Dict]:
    """Check translation flows and normalise their sources to lists.

    Args:
        flows (Sequence[dict]): ``dict(sources=[...], target='...')`` each.
        owner (str): Name used in the error messages.

    Returns:
        list[dict]: The flows, ``sources`` as lists.

    Raises:
        ValueError: If a flow has no or repeated sources, its target is among
            its sources, or two flows share a target.
    """
    if isinstance(flows, (dict, str)) or not flows:
        raise ValueError(f'{owner}: flows must be a non-empty list of '
                         f"dict(sources=[...], target='...'), got {flows!r}")
    parsed = []
    for i, flow in enumerate(flows):
        if not isinstance(flow, dict) or set(flow) != {'sources', 'target'}:
            raise ValueError(f'{owner}: flow {i} must be dict(sources=[...], '
                             f"target='...'), got {flow!r}")
        sources = flow['sources']
        sources = [sources] if isinstance(sources, str) else list(sources)
        target = flow['target']
        if not sources or len(set(sources)) != len(sources):
            raise ValueError(f'{owner}: flow {i} needs unique sources, got '
                             f'{sources}')
        if target in sources:
            raise ValueError(
                f'{owner}: flow {i} ({"+".join(sources)} -> {target}) has '
                f'its target "{target}" among its sources')
        parsed.append(dict(sources=sources, target=target))
    targets = [f['target'] for f in parsed]
    if len(set(targets)) != len(targets):
        raise ValueError(f'{owner}: two flows have the same target: '
                         f'{targets}; each output modality is one flow')
    return parsed
