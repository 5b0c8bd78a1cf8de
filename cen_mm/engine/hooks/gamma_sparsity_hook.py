# Copyright (c) cen_mm contributors. All rights reserved.
"""L1 sparsity on the exchanging norms' γ, applied at every optimizer step."""
from collections import defaultdict
from functools import partial
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.registry import HOOKS
from torch.optim import Optimizer

from cen_mm.cnn import ExchangeNorm, exchange_norms
from ..combination_checks import check_stream_host
from ..sparsity import unwrap_model

__all__ = ['GammaSparsityHook']

DATA_BATCH = Optional[Union[dict, tuple, list]]


@HOOKS.register_module()
class GammaSparsityHook(Hook):
    """Add ``λ · sign(γ)`` to the gradient of the penalised γ of every
    exchanging norm right before each optimizer step, and log exchange
    statistics.

    This is the network-slimming form of CEN's sparsity constraint
    (``λ · Σ |γ_masked|`` in the loss, Eq. 5 of the paper). It is installed
    as a step pre-hook on every optimizer of ``runner.optim_wrapper``
    (``torch.optim.Optimizer.register_step_pre_hook``), which makes it:

    - correct under AMP: ``GradScaler.step`` unscales the gradients before it
      calls ``optimizer.step()``, so λ is not divided by the loss scale, and a
      step skipped for inf/NaN gradients adds nothing;
    - applied once per real update under gradient accumulation;
    - identical on every DDP rank (it runs after the gradient all-reduce, and
      ``sign(γ)`` is the same everywhere);
    - wrapper-agnostic: plain ``OptimWrapper``, ``AmpOptimWrapper`` and
      ``OptimWrapperDict`` (mmagic's generator/discriminator optimizers) all
      work; each optimizer only touches the γ parameters it owns.

    With plain SGD one step equals one step with ``λ * sparsity_loss(model)``
    added to the loss; unlike the loss term, the L1 part is not affected by
    gradient clipping. Where ``γ = 0`` the update is 0, as for ``|γ|``.

    Every ``interval`` training iterations it writes to the message hub (so
    the logger and visualizer backends show them):

    - ``train/gamma_below_thr``: fraction of the penalised γ entries whose
      magnitude is below the exchange threshold θ (over all layers);
    - ``train/exchanged_{stream}``: fraction of channels that stream takes
      from the other streams, over the channels of all exchanging or
      penalised layers (plain per-stream norms, e.g. in the decoder, are
      left out);
    - with ``log_per_layer``, the same two values per layer as
      ``train/gamma_below_thr/{layer}`` and
      ``train/exchanged_{stream}/{layer}``.

    Args:
        lam (float): The L1 weight λ. The official segmentation code's
            effective value is 6e-4 (2e-4 counted three times), the paper
            states 5e-3; image translation uses 1e-3.
        interval (int): Logging interval in training iterations. Default: 50.
        log_per_layer (bool): Also log per-layer statistics. Default: False.
        stream_names (Sequence[str], optional): Names used in the logged keys
            for the streams. Default: None, i.e. the model's
            ``stream_names`` (declared once, on the model), else the
            indices ``0, 1, ...``. Names given here must equal the model's;
            a mismatch is an error before training starts.

    Example:
        >>> custom_hooks = [dict(type='GammaSparsityHook', lam=6e-4)]
    """

    priority = 'NORMAL'

    def __init__(self,
                 lam: float,
                 interval: int = 50,
                 log_per_layer: bool = False,
                 stream_names: Optional[Sequence[str]] = None) -> None:
        if not (isinstance(lam, (int, float)) and lam >= 0):
            raise ValueError(
                f'GammaSparsityHook: lam must be a number >= 0, got {lam!r}')
        if not (isinstance(interval, int) and interval > 0):
            raise ValueError('GammaSparsityHook: interval must be a positive '
                             f'integer, got {interval!r}')
        self.lam = float(lam)
        self.interval = interval
        self.log_per_layer = log_per_layer
        self.stream_names = None if stream_names is None else list(
            stream_names)
        self.layers: List[Tuple[str, ExchangeNorm]] = []
        # Number of penalised steps per optimizer name (for inspection).
        self.num_steps: Dict[str, int] = defaultdict(int)
        self._handles: list = []

    # -- installation ------------------------------------------------------
    def before_train(self, runner) -> None:
        """Find the exchanging norms and hook every optimizer."""
        model = unwrap_model(runner.model)
        check_stream_host(model)
        weight = getattr(model, 'slim_loss_weight', 0)
        if isinstance(weight, (int, float)) and weight > 0:
            raise ValueError(
                f'GammaSparsityHook (lam={self.lam}) and '
                f'model.slim_loss_weight={weight} both add the L1 penalty on '
                'γ, so it would be applied twice: remove the hook from '
                '`custom_hooks` or set model.slim_loss_weight=0')
        model_names = getattr(model, 'stream_names', None)
        if not isinstance(model_names, (list, tuple)):
            model_names = None  # e.g. a method of a multi-flow model
        if model_names is not None:
            model_names = list(model_names)
            if self.stream_names is not None and \
                    self.stream_names != model_names:
                raise ValueError(
                    f'GammaSparsityHook: stream_names {self.stream_names} do '
                    f'not match the model\'s stream_names {model_names}; '
                    'leave them out of the hook config (they are read from '
                    'the model)')
            self.stream_names = model_names
        self.layers = exchange_norms(model)
        if not self.layers:
            raise RuntimeError(
                'GammaSparsityHook: the model has no exchanging norm '
                '(ExchangeBN / ExchangeIN); remove the hook from '
                '`custom_hooks` or use exchanging norms in the model')
        self.remove()
        owned_any = False
        for name, optimizer in self._optimizers(runner.optim_wrapper):
            owned = {
                id(p)
                for group in optimizer.param_groups for p in group['params']
            }
            targets = [(layer, m) for _, layer in self.layers
                       for m in range(layer.num_streams)
                       if id(layer.streams[m].weight) in owned]
            if not targets:
                continue
            owned_any = True
            self._handles.append(
                optimizer.register_step_pre_hook(
                    partial(self._add_l1_grad, name, targets)))
        if not owned_any:
            runner.logger.warning(
                'GammaSparsityHook: no optimizer owns any γ of the '
                f'{len(self.layers)} exchanging norms (frozen?); the L1 '
                'penalty has no effect')

    def after_train(self, runner) -> None:
        """Remove the optimizer hooks."""
        self.remove()

    def remove(self) -> None:
        """Remove every optimizer hook installed by this object."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @staticmethod
    def _optimizers(optim_wrapper) -> List[Tuple[str, Optimizer]]:
        if isinstance(optim_wrapper, OptimWrapperDict):
            return [(name, wrapper.optimizer)
                    for name, wrapper in optim_wrapper.items()]
        if isinstance(optim_wrapper, OptimWrapper):
            return [('optimizer', optim_wrapper.optimizer)]
        if isinstance(optim_wrapper, Optimizer):
            return [('optimizer', optim_wrapper)]
        raise TypeError('GammaSparsityHook: runner.optim_wrapper must be an '
                        'OptimWrapper or OptimWrapperDict, got '
                        f'{type(optim_wrapper).__name__}')

    @torch.no_grad()
    def _add_l1_grad(self, name: str, targets: List[Tuple[ExchangeNorm,
                                                           int]],
                     optimizer: Optimizer, args, kwargs) -> None:
        # Runs inside optimizer.step(): after GradScaler unscaling and
        # after the DDP all-reduce, once per real update.
        self.num_steps[name] += 1
        if self.lam == 0:
            return
        for layer, m in targets:
            gamma = layer.streams[m].weight
            if not gamma.requires_grad:
                continue
            mask = layer.sparsity_mask[m].to(gamma.dtype)
            l1_grad = torch.sign(gamma) * mask * self.lam
            if gamma.grad is None:
                gamma.grad = l1_grad
            else:
                gamma.grad.add_(l1_grad)

    # -- logging -----------------------------------------------------------
    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: DATA_BATCH = None,
                         outputs: Optional[dict] = None) -> None:
        """Log the exchange statistics every ``interval`` iterations."""
        if self.every_n_train_iters(runner, self.interval) or \
                self.is_last_train_iter(runner):
            for key, value in self.statistics().items():
                runner.message_hub.update_scalar(f'train/{key}', value)

    def statistics(self) -> Dict[str, float]:
        """Compute the logged statistics (keys without the ``train/``).

        Returns:
            dict[str, float]: See the class docstring.
        """
        stats: Dict[str, float] = {}
        below_sum = penalised_sum = 0
        exchanged = defaultdict(int)
        channels = defaultdict(int)
        for layer_name, layer in self.layers:
            below, total = layer.penalised_below_threshold()
            if total == 0 and not layer.exchange:
                continue  # never exchanges, never penalised: nothing to log
            below_sum += below
            penalised_sum += total
            counts = layer.exchange_mask().sum(dim=1).tolist()
            if self.log_per_layer:
                stats[f'gamma_below_thr/{layer_name}'] = \
                    below / total if total else 0.0
            for m, count in enumerate(counts):
                stream = self._stream_name(m)
                exchanged[stream] += int(count)
                channels[stream] += layer.num_features
                if self.log_per_layer:
                    stats[f'exchanged_{stream}/{layer_name}'] = \
                        count / layer.num_features
        stats['gamma_below_thr'] = \
            below_sum / penalised_sum if penalised_sum else 0.0
        for stream in exchanged:
            stats[f'exchanged_{stream}'] = exchanged[stream] / channels[stream]
        return stats

    def _stream_name(self, m: int) -> str:
        if self.stream_names is not None and m < len(self.stream_names):
            return self.stream_names[m]
        return str(m)
