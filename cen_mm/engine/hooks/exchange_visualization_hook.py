# Copyright (c) cen_mm contributors. All rights reserved.
"""Per-site exchange statistics over training, for the visualisation
backends (TensorBoard, W&B, local JSON)."""
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from cen_mm.cnn import ExchangeNorm, exchange_norms
from ..sparsity import unwrap_model

__all__ = ['ExchangeVisualizationHook', 'exchange_site_statistics']


def exchange_site_statistics(
        layers: Sequence[Tuple[str, ExchangeNorm]],
        stream_names: Sequence[str]) -> Dict[str, float]:
    """Per exchange site and stream: exchanged fraction and fraction of the
    penalised γ below θ.

    Args:
        layers: ``(name, layer)`` pairs, e.g. from
            :func:`cen_mm.cnn.exchange_norms`; layers with
            ``exchange=False`` are skipped.
        stream_names: One name per stream.

    Returns:
        dict[str, float]: ``exchange/{layer}/exchanged_{stream}`` (share of
        the layer's channels that stream takes from the others) and
        ``exchange/{layer}/gamma_below_thr_{stream}`` (share of the stream's
        penalised γ with ``|γ| < θ``; absent when nothing is penalised).
    """
    stats: Dict[str, float] = {}
    for name, layer in layers:
        if not layer.exchange:
            continue
        exchanged = layer.exchange_mask().float().mean(dim=1).tolist()
        below = (layer.gamma.detach().abs() < layer.threshold)
        for m, stream in enumerate(stream_names):
            stats[f'exchange/{name}/exchanged_{stream}'] = exchanged[m]
            penalised = layer.sparsity_mask[m]
            total = int(penalised.sum())
            if total:
                stats[f'exchange/{name}/gamma_below_thr_{stream}'] = \
                    int((below[m] & penalised).sum()) / total
    return stats


@HOOKS.register_module()
class ExchangeVisualizationHook(Hook):
    """Log, per exchange site and per stream, the exchanged fraction and the
    fraction of penalised γ below θ to the visualizer's backends.

    Every ``interval`` training iterations (and at the last one) the values
    of :func:`exchange_site_statistics` go to
    ``runner.visualizer.add_scalars`` at step ``iter + 1``, so they land in
    every configured backend (e.g. ``TensorboardVisBackend``, which works
    offline) as curves named ``exchange/{layer}/exchanged_{stream}`` and
    ``exchange/{layer}/gamma_below_thr_{stream}``. They bypass the text
    log, which keeps its two overall scalars from
    :class:`GammaSparsityHook`.

    Stream names are read from the model (``stream_names``, declared once
    there); a model without them gets ``0, 1, ...``.

    Args:
        interval (int): Logging interval in iterations. Default: 50.

    Example:
        >>> custom_hooks = [dict(type='ExchangeVisualizationHook',
        ...                      interval=100)]
        >>> visualizer = dict(type='Visualizer', vis_backends=[
        ...     dict(type='LocalVisBackend'),
        ...     dict(type='TensorboardVisBackend')])
    """

    priority = 'LOW'

    def __init__(self, interval: int = 50) -> None:
        if not (isinstance(interval, int) and interval > 0):
            raise ValueError('ExchangeVisualizationHook: interval must be a '
                             f'positive integer, got {interval!r}')
        self.interval = interval
        self.layers: List[Tuple[str, ExchangeNorm]] = []
        self.stream_names: List[str] = []

    def before_train(self, runner) -> None:
        """Find the exchange sites and the stream names."""
        model = unwrap_model(runner.model)
        self.layers = [(n, m) for n, m in exchange_norms(model) if m.exchange]
        if not self.layers:
            raise RuntimeError(
                'ExchangeVisualizationHook: the model has no exchanging norm '
                'with exchange=True; remove the hook from `custom_hooks`')
        num_streams = self.layers[0][1].num_streams
        names = getattr(model, 'stream_names', None)
        self.stream_names = [str(n) for n in names] if names is not None \
            and len(names) == num_streams else [
                str(m) for m in range(num_streams)]

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        """Send the statistics to the visualizer every ``interval``."""
        if self.every_n_train_iters(runner, self.interval) or \
                self.is_last_train_iter(runner):
            runner.visualizer.add_scalars(
                exchange_site_statistics(self.layers, self.stream_names),
                step=runner.iter + 1)
