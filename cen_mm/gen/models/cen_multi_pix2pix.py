# Copyright (c) cen_mm contributors. All rights reserved.
"""Multitask, multimodal-multitask and cycle CEN translation in MMagic."""
import random
from copy import deepcopy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmagic.models.utils import set_requires_grad
from mmagic.registry import MODELS
from mmagic.structures import DataSample
from mmagic.utils.typing import SampleList
from mmengine import MessageHub
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapperDict
from torch import Tensor

from cen_mm.engine.sparsity import sparsity_loss
from ..flows import parse_flows

__all__ = ['CENMultiPix2Pix']

UNIT_LAYOUTS = ('joint', 'per_flow')
FLOW_SAMPLING = ('all', 'random')
# The generator keys the model derives from `flows` and `units`.
_DERIVED = ('units', 'combine', 'ensemble')


@MODELS.register_module()
class CENMultiPix2Pix(BaseModel):
    """Pix2pix-style CEN for several translation flows at once.

    A flow maps source domains to a target domain. One
    :class:`CENMultiUnetGenerator` serves every flow; the flows become its
    units in one of two layouts:

    - ``units='joint'`` (multitask Eq. 7, multimodal multitask Eq. 8): all
      flows share their sources; one unit with an encoder stream per source
      and a decoder stream per flow, combined by a per-decoder softmax α
      (``combine='softmax'``); one output per flow.
    - ``units='per_flow'`` (cycle Eq. 6, independent CENs, Indiv with one
      encoder per task): a unit per flow with an encoder and a decoder
      stream per source of the flow (``combine='identity'``) and the flow's
      ensemble (``ensemble=True``); the flow outputs the ensemble.

    Conv sharing and exchange are the generator's (``encoder_weights``,
    ``decoder_weights``, ``encoder_exchange``, ``decoder_exchange``), so
    every row of Tables 6-9 is a config of this class.

    One PatchGAN discriminator per flow (i.e. per output modality), built
    from ``discriminator`` with ``in_channels`` set here: ``joint`` flows
    condition on ``cat(all sources, output)``; ``per_flow`` streams on
    ``cat(source_m, output_m)`` (as :class:`CENPix2Pix`; the ensemble is
    never shown to D).

    Losses per flow t (summed over the trained flows): D
    ``0.5 · Σ_streams [BCE(D_t(c, y_t), 1) + BCE(D_t(c, G), 0)]``; G
    ``Σ_streams BCE(D_t(c, G), 1)`` + ``pixel_loss_weight · L1`` per stream
    and on the ensemble. Logged as ``loss_gan_d_real/{t}``,
    ``loss_gan_g/{t}``, ``loss_pixel/{t}`` (joint),
    ``loss_pixel/{t}/{source}`` and ``loss_pixel/{t}/ens`` (per flow).

    ``flow_sampling='random'`` (CEN-random, ``per_flow`` only) trains one
    uniformly drawn flow per step: only its unit runs, so only its private
    INs, α, decoder weights (if unshared) and discriminator are updated.

    Args:
        generator (dict): :class:`CENMultiUnetGenerator` config;
            ``units``, ``combine`` and ``ensemble`` are derived (and checked
            if given).
        discriminator (dict, optional): Discriminator config (one per flow).
        flows (Sequence[dict]): ``dict(sources=[...], target='...')``.
        units (str): ``'joint'`` or ``'per_flow'``. Default: 'joint'.
        flow_sampling (str): ``'all'`` or ``'random'``. Default: 'all'.
        data_preprocessor (dict, optional): mmagic ``DataPreprocessor``.
        loss_config (dict, optional): ``pixel_loss_weight`` (default 100).
        slim_loss_weight (float): Weight of the optional ``loss_slim``
            (official loss-term L1 on γ). Default: 0.
        discriminator_steps (int): D steps per G step. Default: 1.
        disc_init_steps (int): D-only steps at the start. Default: 0.
        test_mode_train (bool): Run G in train mode at val/test (official).
            Default: True.
        init_cfg (dict, optional): Unused; weights come from the modules'
            ``init_weights``.
    """

    def __init__(self,
                 generator: Dict,
                 discriminator: Optional[Dict],
                 flows: Sequence[Dict],
                 units: str = 'joint',
                 flow_sampling: str = 'all',
                 data_preprocessor: Optional[Dict] = None,
                 loss_config: Optional[Dict] = None,
                 slim_loss_weight: float = 0.,
                 discriminator_steps: int = 1,
                 disc_init_steps: int = 0,
                 test_mode_train: bool = True,
                 init_cfg: Optional[Dict] = None) -> None:
        name = type(self).__name__
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.flows = parse_flows(flows, name)
        if units not in UNIT_LAYOUTS:
            raise ValueError(f'{name}: units must be one of {UNIT_LAYOUTS}, '
                             f'got {units!r}')
        if flow_sampling not in FLOW_SAMPLING:
            raise ValueError(f'{name}: flow_sampling must be one of '
                             f'{FLOW_SAMPLING}, got {flow_sampling!r}')
        if flow_sampling == 'random' and (units != 'per_flow'
                                          or len(self.flows) < 2):
            raise ValueError(f"{name}: flow_sampling='random' (CEN-random) "
                             "samples a flow's unit; it needs "
                             "units='per_flow' and >= 2 flows")
        self.unit_layout = units
        self.flow_sampling = flow_sampling
        self.targets = [f['target'] for f in self.flows]
        if units == 'joint':
            self.sources = self.flows[0]['sources']
            for i, flow in enumerate(self.flows):
                if flow['sources'] != self.sources:
                    raise ValueError(
                        f"{name}: units='joint' (multitask) needs the same "
                        f'sources for every flow; flow 0 has {self.sources}, '
                        f"flow {i} has {flow['sources']} (use "
                        "units='per_flow' for cycle flows)")
            derived = dict(units=[(len(self.sources), len(self.flows))],
                           combine='softmax', ensemble=False)
        else:
            # an ensemble only where a flow has several streams
            derived = dict(
                units=[(len(f['sources']), ) * 2 for f in self.flows],
                combine='identity',
                ensemble=any(len(f['sources']) > 1 for f in self.flows))
        generator = deepcopy(generator)
        for key in _DERIVED:
            given = generator.get(key)
            if given is not None and _normalise(given) != _normalise(
                    derived[key]):
                raise ValueError(
                    f'{name}: generator {key}={given!r} disagrees with the '
                    f"{len(self.flows)} flows {self.flow_names} and "
                    f"units='{units}', which give {key}={derived[key]!r} "
                    '(one decoder stream per target; leave it unset)')
            generator[key] = derived[key]
        self.generators = MODELS.build(generator)
        self.discriminators = None
        if discriminator is not None:
            self.discriminators = nn.ModuleDict()
            for flow in self.flows:
                cfg = deepcopy(discriminator)
                cond = len(flow['sources']) if units == 'joint' else 1
                cfg['in_channels'] = (cond * self.generators.in_channels +
                                      self.generators.out_channels)
                self.discriminators[flow['target']] = MODELS.build(cfg)
        loss_config = dict(loss_config or {})
        self.pixel_loss_weight = float(
            loss_config.pop('pixel_loss_weight', 100.))
        if loss_config:
            raise ValueError(f'{name}: unknown loss_config keys '
                             f'{sorted(loss_config)}')
        self.slim_loss_weight = float(slim_loss_weight)
        self.discriminator_steps = discriminator_steps
        self.disc_init_steps = disc_init_steps
        self.test_mode_train = test_mode_train

    # ------------------------------------------------------------------
    @property
    def flow_names(self) -> List[str]:
        """list[str]: ``'src+src->target'`` per flow."""
        return [f"{'+'.join(f['sources'])}->{f['target']}" for f in self.flows]

    @property
    def domains(self) -> List[str]:
        """list[str]: Every source and target domain, in flow order."""
        seen = []
        for flow in self.flows:
            for d in flow['sources'] + [flow['target']]:
                if d not in seen:
                    seen.append(d)
        return seen

    def stream_names(self, side: str = 'encoder') -> List[str]:
        """Names of the generator's streams, unit-major.

        Args:
            side (str): ``'encoder'`` or ``'decoder'``.

        Returns:
            list[str]: ``joint``: encoder streams are the sources, decoder
            streams the targets; ``per_flow``: ``'{target}/{source}'``.
        """
        if self.unit_layout == 'joint':
            return list(self.sources if side == 'encoder' else self.targets)
        return [f"{f['target']}/{s}" for f in self.flows for s in f['sources']]

    def fold_inputs(self, inputs: Dict[str, Tensor],
                    flows: Sequence[int]) -> Tensor:
        """Fold the encoder inputs of the active flows, unit-major.

        Raises:
            KeyError: Naming the flow and the domain the batch lacks.
        """
        needed = (self.sources if self.unit_layout == 'joint' else
                  [s for i in flows for s in self.flows[i]['sources']])
        needed_targets = [self.flows[i]['target'] for i in flows]
        for domain in needed + needed_targets:
            if f'img_{domain}' not in inputs:
                raise KeyError(
                    f'{type(self).__name__}: the flows {self.flow_names} need '
                    f'"img_{domain}", but the batch holds {sorted(inputs)}; '
                    'the dataset must declare the same domains (its flows / '
                    'source_domains / target_domains) as the model')
        return torch.cat([inputs[f'img_{d}'] for d in needed])

    def generate(self, inputs: Dict[str, Tensor],
                 flows: Sequence[int]) -> Dict[str, Dict[str, Tensor]]:
        """Run the generator for the active flows.

        Returns:
            dict: Per flow target: ``cond`` (the D condition per stream,
            folded), ``fake`` (the stream outputs, folded), ``final`` (the
            flow's output: ensemble or single stream), ``real``.
        """
        x = self.fold_inputs(inputs, flows)
        units = [0] if self.unit_layout == 'joint' else list(flows)
        out = self.generators(x, units=units)
        n = next(iter(inputs.values())).size(0)
        results = {}
        if self.unit_layout == 'joint':
            cond = torch.cat([inputs[f'img_{s}'] for s in self.sources], 1)
            for flow, fake in zip(flows, out['streams'].split(n)):
                target = self.targets[flow]
                results[target] = dict(cond=cond, fake=fake, final=fake,
                                       real=inputs[f'img_{target}'],
                                       sources=[])
            return results
        sizes = [len(self.flows[i]['sources']) for i in flows]
        streams = out['streams'].split([s * n for s in sizes])
        ensembles = (out['ensembles'].split(n) if 'ensembles' in out else
                     streams)
        for flow, fake, ens in zip(flows, streams, ensembles):
            target = self.targets[flow]
            sources = self.flows[flow]['sources']
            results[target] = dict(
                cond=torch.cat([inputs[f'img_{s}'] for s in sources]),
                fake=fake,
                final=ens,
                real=inputs[f'img_{target}'],
                # per-stream outputs only where a flow has several streams
                sources=sources if 'ensembles' in out else [])
        return results

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        """``mode='tensor'``: the generator outputs per flow target
        (preprocessed inputs); ``'predict'``: as :meth:`test_step`."""
        if mode == 'predict':
            return self._predict(dict(inputs=inputs,
                                      data_samples=data_samples))
        flows = list(range(len(self.flows)))
        return {t: r['final'] for t, r in self.generate(inputs, flows).items()}

    # ------------------------------------------------------------------
    def _stream_bce(self, pred: Tensor, target: float,
                    num_streams: int) -> Tensor:
        loss = F.binary_cross_entropy_with_logits(
            pred, torch.full_like(pred, target), reduction='none')
        return loss.reshape(num_streams, -1).mean(dim=1).sum()

    @staticmethod
    def _num_streams(result: Dict) -> int:
        return max(len(result['sources']), 1)

    def _disc_loss(self, results: Dict) -> Tuple[Tensor, Dict]:
        losses = {}
        for target, r in results.items():
            disc = self.discriminators[target]
            m = self._num_streams(r)
            real = r['real'].repeat(m, 1, 1, 1)
            losses[f'loss_gan_d_fake/{target}'] = self._stream_bce(
                disc(torch.cat([r['cond'], r['fake'].detach()], 1)), 0., m)
            losses[f'loss_gan_d_real/{target}'] = self._stream_bce(
                disc(torch.cat([r['cond'], real], 1)), 1., m)
        loss, log_vars = self.parse_losses(losses)
        return loss * 0.5, log_vars

    def _gen_loss(self, results: Dict) -> Tuple[Tensor, Dict]:
        losses = {}
        w = self.pixel_loss_weight
        for target, r in results.items():
            m = self._num_streams(r)
            if self.discriminators is not None:
                disc = self.discriminators[target]
                losses[f'loss_gan_g/{target}'] = self._stream_bce(
                    disc(torch.cat([r['cond'], r['fake']], 1)), 1., m)
            if not r['sources']:
                losses[f'loss_pixel/{target}'] = w * F.l1_loss(
                    r['fake'], r['real'])
                continue
            for source, fake in zip(r['sources'], r['fake'].chunk(m)):
                losses[f'loss_pixel/{target}/{source}'] = w * F.l1_loss(
                    fake, r['real'])
            losses[f'loss_pixel/{target}/ens'] = w * F.l1_loss(
                r['final'], r['real'])
        if self.slim_loss_weight > 0:
            losses['loss_slim'] = self.slim_loss_weight * sparsity_loss(
                self.generators)
        return self.parse_losses(losses)

    def sample_flows(self) -> List[int]:
        """The flows trained this step: all, or one drawn uniformly
        (Python's ``random``, seeded by the runner)."""
        if self.flow_sampling == 'random':
            return [random.randrange(len(self.flows))]
        return list(range(len(self.flows)))

    def train_step(self, data: Dict,
                   optim_wrapper: OptimWrapperDict) -> Dict[str, Tensor]:
        """One D update then (every ``discriminator_steps``) one G update
        on the sampled flows; G's loss reuses the D step's forward pass (as
        mmagic's Pix2Pix)."""
        curr_iter = MessageHub.get_current_instance().get_info('iter') or 0
        data = self.data_preprocessor(data, True)
        flows = self.sample_flows()
        disc_wrapper = optim_wrapper['discriminators']
        with disc_wrapper.optim_context(self.discriminators):
            results = self.generate(data['inputs'], flows)
            set_requires_grad(self.discriminators, True)
            loss_d, log_vars = self._disc_loss(results)
            disc_wrapper.update_params(loss_d)
        accu = disc_wrapper._accumulative_counts
        if ((curr_iter + 1) % (self.discriminator_steps * accu) == 0
                and curr_iter >= self.disc_init_steps):
            gen_wrapper = optim_wrapper['generators']
            set_requires_grad(self.discriminators, False)
            with gen_wrapper.optim_context(self.generators):
                loss_g, log_vars_g = self._gen_loss(results)
                gen_wrapper.update_params(loss_g)
            set_requires_grad(self.discriminators, True)
            log_vars.update(log_vars_g)
        return log_vars

    # ------------------------------------------------------------------
    def _predict(self, data: Dict) -> SampleList:
        data = self.data_preprocessor(data)
        inputs, data_samples = data['inputs'], data['data_samples']
        was_training = self.generators.training
        self.generators.train(self.test_mode_train)
        try:
            with torch.no_grad():
                results = self.generate(inputs,
                                        list(range(len(self.flows))))
        finally:
            self.generators.train(was_training)
        if data_samples is not None and hasattr(data_samples, 'split'):
            data_samples = data_samples.split()
        n = next(iter(inputs.values())).size(0)
        outputs = []
        for idx in range(n):
            meta = data_samples[idx] if data_samples else None
            tensors = {}
            for target, r in results.items():
                key = f'img_{target}'
                images = {f'pred_img_{target}': r['final'][idx]}
                for s, fake in zip(r['sources'],
                                   r['fake'].view(-1, n, *r['fake'].shape[1:])
                                   if r['sources'] else []):
                    images[f'pred_img_{target}_{s}'] = fake[idx]
                images[f'gt_img_{target}'] = r['real'][idx]
                for name, img in images.items():
                    tensors[name] = self.data_preprocessor.destruct(
                        img, meta, key)
            sample = DataSample()
            if meta is not None:
                sample.update(meta)
            # the flows, declared here only, for the metrics
            sample.set_metainfo(dict(flows=deepcopy(self.flows)))
            sample.set_tensor_data(tensors)
            output = DataSample()
            output.set_tensor_data(
                {k: v for k, v in tensors.items() if k.startswith('pred')})
            sample.output = output
            outputs.append(sample)
        return outputs

    def val_step(self, data: Dict) -> SampleList:
        """Translate every flow; each sample stores, de-normalised to
        [0, 255], ``pred_img_{target}`` (the flow's output),
        ``pred_img_{target}_{source}`` per stream of ``per_flow`` units and
        ``gt_img_{target}``; the metainfo ``flows`` names them for
        :class:`CENTranslationMetrics`."""
        return self._predict(data)

    def test_step(self, data: Dict) -> SampleList:
        """Same as :meth:`val_step`."""
        return self._predict(data)

    def init_weights(self) -> None:
        """Initialise G and every D by their own ``init_weights``."""
        self.generators.init_weights()
        if self.discriminators is not None:
            for disc in self.discriminators.values():
                disc.init_weights()


def _normalise(value):
    if isinstance(value, (list, tuple)):
        return tuple(_normalise(v) for v in value)
    return value
