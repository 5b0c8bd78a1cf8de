# Copyright (c) cen_mm contributors. All rights reserved.
"""Tiny mmengine model/dataset/metric/hooks with exchanging norms, used by
the engine tests (imported directly and through ``custom_imports``)."""
import os
import os.path as osp
import signal
import uuid
from types import SimpleNamespace
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import get_rank
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.logging import MessageHub, MMLogger
from mmengine.model import BaseModel, BaseTTAModel
from mmengine.registry import DATASETS, HOOKS, METRICS, MODELS
from mmengine.runner import Runner
from torch.utils.data import Dataset

import cen_mm.engine  # noqa: F401  (SafeCheckpointHook, GammaSparsityHook)
from cen_mm.cnn import ExchangeBN, ExchangeIN, fold_channels

NORMS = {'ExchangeBN': ExchangeBN, 'ExchangeIN': ExchangeIN}


def fake_runner(model, optim_wrapper, max_iters: int = 100):
    """The Runner attributes GammaSparsityHook uses, without a Runner."""
    return SimpleNamespace(
        model=model,
        optim_wrapper=optim_wrapper,
        message_hub=MessageHub.get_instance(f'hook-{uuid.uuid4().hex}'),
        logger=MMLogger.get_current_instance(),
        iter=0,
        max_iters=max_iters)



def toy_runner(work_dir,
               max_iters: int,
               resume: bool = False,
               shuffle: bool = False,
               optimizer: Optional[dict] = None,
               param_scheduler: Union[dict, List[dict], None] = None,
               checkpoint: Optional[dict] = None,
               custom_hooks: Sequence = ()) -> Runner:
    """An iteration-based Runner over the toys: CENToyExchangeNet trained on
    CENToyDataset (batches of 2), validated by CENToyMetric every 2
    iterations, checkpointed by SafeCheckpointHook (best: lowest
    ``toy/mse``).

    Args:
        work_dir (str | Path): The run's work dir.
        max_iters (int): Training iterations.
        resume (bool): Resume from the newest checkpoint in ``work_dir``.
            Default: False.
        shuffle (bool): Shuffle the data. Default: False.
        optimizer (dict, optional): The optimizer config. Default: SGD with
            lr 0.1.
        param_scheduler (dict | list[dict], optional): Default: None.
        checkpoint (dict, optional): Arguments of the checkpoint hook that
            replace its defaults (``interval=2``). Default: None.
        custom_hooks (Sequence): Hook configs or instances. Default: ().

    Returns:
        Runner: The runner, not yet trained.
    """
    loader = dict(
        dataset=dict(type='CENToyDataset', length=8),
        sampler=dict(type='DefaultSampler', shuffle=shuffle),
        collate_fn=dict(type='default_collate'),
        batch_size=2,
        num_workers=0)
    return Runner(
        model=dict(type='CENToyExchangeNet'),
        work_dir=str(work_dir),
        experiment_name=f'toy-{uuid.uuid4().hex}',
        train_dataloader=loader,
        train_cfg=dict(
            type='IterBasedTrainLoop', max_iters=max_iters, val_interval=2),
        val_dataloader=loader,
        val_cfg=dict(type='ValLoop'),
        val_evaluator=dict(type='CENToyMetric'),
        optim_wrapper=dict(optimizer=optimizer or dict(type='SGD', lr=0.1)),
        param_scheduler=param_scheduler,
        default_hooks=dict(
            checkpoint={
                **dict(
                    type='SafeCheckpointHook',
                    interval=2,
                    by_epoch=False,
                    save_best='toy/mse',
                    rule='less'),
                **(checkpoint or {})
            },
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=list(custom_hooks),
        log_processor=dict(by_epoch=False),
        resume=resume,
        default_scope='mmengine',
        randomness=dict(seed=0))

@MODELS.register_module(force=True)
class CENToyExchangeNet(BaseModel):
    """conv -> exchanging norm -> relu -> conv -> exchanging norm -> pool ->
    linear, on M stream-folded RGB inputs; MSE of every stream's output and
    of their mean to the target."""

    def __init__(self,
                 channels: int = 8,
                 num_streams: int = 2,
                 num_outputs: int = 3,
                 norm: str = 'ExchangeBN',
                 threshold: float = 2e-2,
                 sparsity: str = 'own',
                 data_preprocessor: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        self.num_streams = num_streams
        kwargs = dict(num_streams=num_streams, threshold=threshold,
                      sparsity=sparsity)
        self.conv1 = nn.Conv2d(3, channels, 3, padding=1)
        self.norm1 = NORMS[norm](channels, **kwargs)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2 = NORMS[norm](channels, **kwargs)
        self.fc = nn.Linear(channels, num_outputs)

    def predict_streams(self, inputs: torch.Tensor) -> torch.Tensor:
        x = fold_channels(inputs, (3, ) * self.num_streams)
        x = F.relu(self.norm1(self.conv1(x)))
        x = F.relu(self.norm2(self.conv2(x)))
        out = self.fc(x.mean(dim=(2, 3)))
        return out.view(self.num_streams, -1, out.size(-1))  # (M, N, K)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.predict_streams(inputs)
        if mode == 'tensor':
            return out
        if mode == 'loss':
            losses = {f'loss_s{m}': F.mse_loss(out[m], data_samples)
                      for m in range(self.num_streams)}
            losses['loss_ens'] = F.mse_loss(out.mean(0), data_samples)
            return losses
        ens = out.mean(0)
        return [dict(pred=p, gt=g) for p, g in zip(ens, data_samples)]


@MODELS.register_module(force=True)
class CENToyGAN(BaseModel):
    """A generator and a discriminator, both with exchanging norms."""

    def __init__(self, data_preprocessor: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        self.generator = CENToyExchangeNet(norm='ExchangeIN')
        self.discriminator = CENToyExchangeNet(norm='ExchangeBN')

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return self.generator(inputs, data_samples, mode)


@DATASETS.register_module(force=True)
class CENToyDataset(Dataset):
    """Deterministic random (6, size, size) inputs and 3-d targets."""

    def __init__(self,
                 length: int = 16,
                 size: int = 8,
                 num_outputs: int = 3,
                 seed: int = 0,
                 pipeline=None) -> None:
        gen = torch.Generator().manual_seed(seed)
        # A pipeline containing dict(type='CENToyFlipTTA') yields two views
        # per sample (identity, horizontal flip), like mmcv's TestTimeAug.
        self.tta = any(
            t.get('type') == 'CENToyFlipTTA' for t in (pipeline or []))
        self.inputs = torch.randn(length, 6, size, size, generator=gen)
        self.targets = torch.randn(length, num_outputs, generator=gen)
        self.metainfo = dict(classes=('a', 'b', 'c'))

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, idx: int) -> dict:
        x, y = self.inputs[idx], self.targets[idx]
        if self.tta:
            return dict(inputs=[x, x.flip(-1)], data_samples=[y, y])
        return dict(inputs=x, data_samples=y)


@MODELS.register_module(force=True)
class CENToyTTAModel(BaseTTAModel):
    """Average the views' predictions; counts merged samples."""
    merged = 0

    def merge_preds(self, data_samples_list):
        CENToyTTAModel.merged += len(data_samples_list)
        return [
            dict(pred=torch.stack([v['pred'] for v in views]).mean(0),
                 gt=views[0]['gt']) for views in data_samples_list
        ]


@METRICS.register_module(force=True)
class CENToyMetric(BaseMetric):
    """Mean squared error of the ensemble prediction."""
    default_prefix = 'toy'

    def process(self, data_batch, data_samples: List[dict]) -> None:
        for sample in data_samples:
            self.results.append(
                float(((sample['pred'] - sample['gt'])**2).mean()))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        # A numpy scalar, as mmseg's IoUMetric returns.
        return dict(mse=np.float64(sum(results) / len(results)))


@HOOKS.register_module(force=True)
class CENToyRecordHook(Hook):
    """Save per-iteration losses and the final γ of every rank to
    ``{work_dir}/record_rank{rank}.pth``."""

    def __init__(self) -> None:
        self.losses: List[float] = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self.losses.append(float(outputs['loss'].detach()))

    def after_train(self, runner) -> None:
        from cen_mm.cnn import exchange_norms
        from cen_mm.engine import unwrap_model
        gammas = {
            name: layer.gamma.detach().clone()
            for name, layer in exchange_norms(unwrap_model(runner.model))
        }
        torch.save(
            dict(losses=torch.tensor(self.losses, dtype=torch.float64),
                 gammas=gammas,
                 world_size=runner.world_size),
            osp.join(runner.work_dir, f'record_rank{get_rank()}.pth'))


@HOOKS.register_module(force=True)
class CENToyKillHook(Hook):
    """Kill the process (no cleanup, like SIGKILL) after iteration
    ``at_iter`` (1-based)."""

    def __init__(self, at_iter: int) -> None:
        self.at_iter = at_iter

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if runner.iter + 1 == self.at_iter:
            os._exit(3)


@HOOKS.register_module(force=True)
class CENToyKillWhileSavingHook(Hook):
    """SIGKILL the process half-way through writing the checkpoint of
    iteration ``at_iter`` (half of its bytes on disk)."""

    def __init__(self, at_iter: int) -> None:
        self.at_iter = at_iter

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if checkpoint['meta'].get('iter') != self.at_iter:
            return
        from mmengine.fileio import LocalBackend

        def put(backend, obj: bytes, filepath) -> None:
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
                f.flush()
                os.fsync(f.fileno())
            os.kill(os.getpid(), signal.SIGKILL)

        LocalBackend.put = put
