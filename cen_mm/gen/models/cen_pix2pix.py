# Copyright (c) cen_mm contributors. All rights reserved.
"""Pix2pix-style multimodal translation with Channel-Exchanging Networks."""
from copy import deepcopy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmagic.models.editors.pix2pix import Pix2Pix
from mmagic.models.utils import set_requires_grad
from mmagic.registry import MODELS
from mmagic.structures import DataSample
from mmagic.utils.typing import SampleList
from mmengine import MessageHub
from mmengine.optim import OptimWrapperDict
from torch import Tensor

from cen_mm.cnn import unfold_streams
from cen_mm.engine.sparsity import sparsity_loss

__all__ = ['CENPix2Pix']


@MODELS.register_module()
class CENPix2Pix(Pix2Pix):
    """CEN translation model: M source domains -> one target domain.

    A :class:`Pix2Pix` whose generator (keyed by the target domain in
    ``generators``, e.g. :class:`CENUnetGenerator`) takes the M source images
    stream-folded ``(M * N, 3, H, W)`` in ``source_domains`` order and
    returns ``((M + 1) * N, 3, H, W)``: one output per stream, then the
    ensemble. One PatchGAN discriminator (``discriminators[target]``) is
    shared by the streams and conditioned on ``cat(source_m, output_m)``;
    the M pairs go through it as one folded batch. The ensemble is never
    shown to D (as official).

    Losses (official CEN translation, ``main.py``):

    - D: ``0.5 * Σ_m [BCE(D(x_m, y), 1) + BCE(D(x_m, G_m), 0)]``, logged as
      ``loss_gan_d_real`` / ``loss_gan_d_fake`` (sums over streams; each
      stream's BCE is a mean, as mmagic's Pix2Pix). With M = 1 this is
      exactly mmagic's Pix2Pix.
    - G: ``loss_gan_g = Σ_m BCE(D(x_m, G_m), 1)``; ``loss_pixel_{source}``
      = ``pixel_loss_weight * |G_m - y|_1`` per stream and ``loss_pixel_ens``
      on the ensemble (which, on detached outputs, trains α only).
    - Optional ``loss_slim = slim_loss_weight * Σ |γ_penalised|`` (the
      official loss-term form of the L1 sparsity; λ = 1e-3). Off by
      default: the configs use ``GammaSparsityHook`` instead.
    - ``loss_fusion``: the fusion blocks' loss (the align MMD of a
      :class:`FusionUnetGenerator` with ``AlignFusion``), from the same
      forward pass as the other G losses; absent for other generators.

    Difference from official: like mmagic's Pix2Pix, G's loss reuses the
    forward pass of the D step (the official code runs G a second time with
    fresh dropout masks).

    Args:
        generator (dict): Generator config; ``num_streams`` defaults to
            ``len(source_domains)`` and must equal it.
        discriminator (dict, optional): Discriminator config (input channels
            = source channels + output channels).
        source_domains (Sequence[str]): Input domains, in stream order.
        target_domain (str): Output domain.
        data_preprocessor (dict, optional): mmagic ``DataPreprocessor``.
        default_domain, reachable_domains, related_domains: Optional; derived
            from ``target_domain`` / ``source_domains`` and checked if given.
        slim_loss_weight (float): Weight of ``loss_slim``; 0 disables it.
            Default: 0.
        pixel_loss_outputs (str): ``'all'``: an L1 loss on every stream and
            on the ensemble (official code); ``'ens'``: on the ensemble only,
            the paper's Eq. 5 objective (needs a generator with
            ``ensemble_detach=False``, so that the streams learn through
            it; the GAN loss stays per stream). Default: 'all'.
        test_mode_train (bool): Run the generator in train mode at val/test
            (dropout on, instance statistics), as the official code and
            mmagic's Pix2Pix do; False uses eval mode (running statistics,
            no dropout). Default: True.
        **kwargs: ``discriminator_steps``, ``disc_init_steps``,
            ``loss_config`` (``pixel_loss_weight``, default 100) etc. of
            :class:`BaseTranslationModel`.
    """

    def __init__(self,
                 generator: Dict,
                 discriminator: Optional[Dict],
                 source_domains: Sequence[str],
                 target_domain: str,
                 data_preprocessor: Optional[Dict] = None,
                 default_domain: Optional[str] = None,
                 reachable_domains: Optional[List[str]] = None,
                 related_domains: Optional[List[str]] = None,
                 slim_loss_weight: float = 0.,
                 pixel_loss_outputs: str = 'all',
                 test_mode_train: bool = True,
                 **kwargs) -> None:
        name = type(self).__name__
        source_domains = list(source_domains)
        if not source_domains or len(set(source_domains)) != len(
                source_domains) or target_domain in source_domains:
            raise ValueError(
                f'{name}: source_domains must be non-empty, unique and '
                f'exclude the target; got {source_domains} -> '
                f'{target_domain!r}')
        generator = deepcopy(generator)
        num_streams = generator.setdefault('num_streams', len(source_domains))
        if num_streams != len(source_domains):
            raise ValueError(
                f'{name}: generator num_streams={num_streams} but '
                f'{len(source_domains)} source_domains {source_domains}')
        for key, given, derived in (
                ('default_domain', default_domain, [target_domain]),
                ('reachable_domains', reachable_domains, [target_domain]),
                ('related_domains', related_domains,
                 [target_domain] + source_domains)):
            given = [given] if isinstance(given, str) else given
            if given is not None and set(given) != set(derived):
                raise ValueError(f'{name}: {key}={given!r} does not match '
                                 f'the source/target domains ({derived})')
        self.source_domains = source_domains
        self.target_domain = target_domain
        self.num_streams = len(source_domains)
        # the streams, named once (hooks log per stream under these names)
        self.stream_names = list(source_domains)
        self.slim_loss_weight = float(slim_loss_weight)
        self.test_mode_train = test_mode_train
        if pixel_loss_outputs not in ('all', 'ens'):
            raise ValueError(f"{name}: pixel_loss_outputs must be 'all' or "
                             f"'ens', got {pixel_loss_outputs!r}")
        self.pixel_loss_outputs = pixel_loss_outputs
        super().__init__(
            generator,
            discriminator,
            default_domain=target_domain,
            reachable_domains=[target_domain],
            related_domains=[target_domain] + source_domains,
            data_preprocessor=data_preprocessor,
            **kwargs)
        ensemble = getattr(self.generators[target_domain], 'ensemble', None)
        if pixel_loss_outputs == 'ens' and getattr(ensemble, 'detach', True):
            raise ValueError(
                f"{name}: pixel_loss_outputs='ens' (Eq. 5) with a detached "
                'ensemble trains nothing but α; set the generator\'s '
                'ensemble_detach=False')

    def init_weights(self) -> None:
        """Initialise every generator and discriminator by its own
        ``init_weights``.

        mmagic 1.2.0's ``BaseTranslationModel.init_weights`` attaches
        init-info tracking to G and D, which makes
        ``generation_init_weights`` raise ``UnboundLocalError`` for the
        PatchGAN discriminator when the Runner initialises the model
        (open-mmlab/mmagic#2109); the weights are the same without it.
        """
        for domain in self._reachable_domains:
            self.get_module(self.generators)[domain].init_weights()
            if self.discriminators is not None:
                self.get_module(self.discriminators)[domain].init_weights()

    def fold_sources(self, inputs: Dict[str, Tensor]) -> Tensor:
        """Stack the source images into one stream-folded batch.

        Args:
            inputs (dict): Preprocessed inputs with ``img_{domain}`` keys.

        Returns:
            Tensor: ``(M * N, C, H, W)``, stream-major in
            ``source_domains`` order.
        """
        missing = [
            f'img_{s}' for s in self.source_domains if f'img_{s}' not in inputs
        ]
        if missing:
            raise KeyError(f'{type(self).__name__}: inputs lack {missing}; '
                           f'got keys {sorted(inputs)}. Pack every source '
                           'domain with PackInputs(keys=[...]).')
        return torch.cat([inputs[f'img_{s}'] for s in self.source_domains])

    def _split_outputs(self, fake: Tensor) -> Tuple[Tensor, Tensor]:
        """Split ``((M + 1) * N, ...)`` into streams ``(M * N, ...)`` and
        the ensemble ``(N, ...)``."""
        n = fake.size(0) // (self.num_streams + 1)
        return fake[:self.num_streams * n], fake[self.num_streams * n:]

    def _stream_bce(self, pred: Tensor, target: float) -> Tensor:
        """Per-stream mean BCE-with-logits, summed over the M streams."""
        loss = F.binary_cross_entropy_with_logits(
            pred, torch.full_like(pred, target), reduction='none')
        return loss.reshape(self.num_streams, -1).mean(dim=1).sum()

    def _get_disc_loss(self, outputs: Dict[str, Tensor]
                       ) -> Tuple[Tensor, Dict]:
        """D loss on the M (source, output) and (source, target) pairs."""
        discriminator = self.get_module(
            self.discriminators)[self.target_domain]
        sources = outputs['real_sources']
        fakes, _ = self._split_outputs(outputs[f'fake_{self.target_domain}'])
        real = outputs[f'real_{self.target_domain}'].repeat(
            self.num_streams, 1, 1, 1)
        losses = dict(
            loss_gan_d_fake=self._stream_bce(
                discriminator(torch.cat([sources, fakes.detach()], 1)), 0.),
            loss_gan_d_real=self._stream_bce(
                discriminator(torch.cat([sources, real], 1)), 1.))
        loss_d, log_vars_d = self.parse_losses(losses)
        return loss_d * 0.5, log_vars_d

    def _get_gen_loss(self, outputs: Dict[str, Tensor]
                      ) -> Tuple[Tensor, Dict]:
        """G loss: GAN on each stream, L1 on each stream and the ensemble,
        plus the optional ``loss_slim`` and ``outputs['loss_fusion']``."""
        discriminator = self.get_module(
            self.discriminators)[self.target_domain]
        sources = outputs['real_sources']
        fakes, ensemble = self._split_outputs(
            outputs[f'fake_{self.target_domain}'])
        real = outputs[f'real_{self.target_domain}']
        losses = dict(
            loss_gan_g=self._stream_bce(
                discriminator(torch.cat([sources, fakes], 1)), 1.))
        for source, fake in zip(self.source_domains,
                                unfold_streams(fakes, self.num_streams)):
            if self.pixel_loss_outputs == 'ens':
                break
            losses[f'loss_pixel_{source}'] = self.pixel_loss_weight * \
                F.l1_loss(fake, real)
        # With one stream the ensemble is that stream (detached): log its
        # L1 without a `loss` prefix, so the logged total counts it once.
        ens_key = 'loss_pixel_ens' if self.num_streams > 1 else 'pixel_ens'
        losses[ens_key] = self.pixel_loss_weight * F.l1_loss(ensemble, real)
        if self.slim_loss_weight > 0:
            losses['loss_slim'] = self.slim_loss_weight * sparsity_loss(
                self.generators)
        if outputs.get('loss_fusion') is not None:
            losses['loss_fusion'] = outputs['loss_fusion']
        return self.parse_losses(losses)

    def _fusion_loss(self) -> Optional[Tensor]:
        """The generator's fusion loss from its latest training forward
        (consumed), or None for a generator without one."""
        generator = self.get_module(self.generators)[self.target_domain]
        read = getattr(generator, 'fusion_loss', None)
        return read() if callable(read) else None

    def train_step(self, data: Dict,
                   optim_wrapper: OptimWrapperDict) -> Dict[str, Tensor]:
        """One D update, then (every ``discriminator_steps``) one G update.

        Args:
            data (dict): Data batch from the dataloader.
            optim_wrapper (OptimWrapperDict): Wrappers keyed
                ``generators`` and ``discriminators``.

        Returns:
            dict: Log variables.
        """
        message_hub = MessageHub.get_current_instance()
        curr_iter = message_hub.get_info('iter')
        if curr_iter is None:
            curr_iter = 0
        data = self.data_preprocessor(data, True)
        inputs = data['inputs']
        target = self.target_domain
        disc_optim_wrapper = optim_wrapper['discriminators']
        disc_accu_iters = disc_optim_wrapper._accumulative_counts

        sources = self.fold_sources(inputs)
        with disc_optim_wrapper.optim_context(self.discriminators):
            results = self(sources, target_domain=target, test_mode=False)
            outputs = {
                'real_sources': sources,
                f'fake_{target}': results['target'],
                f'real_{target}': inputs[f'img_{target}'],
                # read right after the forward that G's loss reuses, also
                # when G skips this step, so no later step gets it stale
                'loss_fusion': self._fusion_loss(),
            }
            set_requires_grad(self.discriminators, True)
            loss_d, log_vars = self._get_disc_loss(outputs)
            disc_optim_wrapper.update_params(loss_d)

        gen_optim_wrapper = optim_wrapper['generators']
        if ((curr_iter + 1) % (self.discriminator_steps * disc_accu_iters)
                == 0 and curr_iter >= self.disc_init_steps):
            set_requires_grad(self.discriminators, False)
            with gen_optim_wrapper.optim_context(self.generators):
                loss_g, log_vars_g = self._get_gen_loss(outputs)
                gen_optim_wrapper.update_params(loss_g)
            set_requires_grad(self.discriminators, True)
            log_vars.update(log_vars_g)
        return log_vars

    def forward_test(self, img: Tensor, target_domain: str,
                     **kwargs) -> Dict[str, Tensor]:
        """Translate without gradients, with the generator in train mode
        (``test_mode_train``) or eval mode; its mode is restored after.

        Returns:
            dict: ``source`` (the folded input) and ``target`` (the
            generator's ``((M + 1) * N, ...)`` output).
        """
        generators = self.get_module(self.generators)
        was_training = generators.training
        generators.train(self.test_mode_train)
        try:
            with torch.no_grad():
                target = self.translation(
                    img, target_domain=target_domain, **kwargs)
        finally:
            generators.train(was_training)
        return dict(source=img, target=target)

    def _predict(self, data: Dict) -> SampleList:
        data = self.data_preprocessor(data)
        inputs, data_samples = data['inputs'], data['data_samples']
        target = self.target_domain
        outputs = self.forward_test(
            self.fold_sources(inputs), target_domain=target)
        per_stream = unfold_streams(outputs['target'], self.num_streams + 1)
        names = [f'pred_img_{s}' for s in self.source_domains] + ['pred_img']
        if data_samples is not None and hasattr(data_samples, 'split'):
            data_samples = data_samples.split()
        results = []
        for idx in range(per_stream.size(1)):
            meta = data_samples[idx] if data_samples else None
            sample = DataSample()
            if meta is not None:
                sample.update(meta)
            # the domains, declared here only, for the metrics
            sample.set_metainfo(
                dict(target_domain=target,
                     source_domains=list(self.source_domains)))
            tensors = {
                key: self.data_preprocessor.destruct(img, meta,
                                                     f'img_{target}')
                for key, img in zip(names, per_stream[:, idx])
            }
            # mmagic's pixel metrics read predictions from `output`
            output = DataSample()
            output.set_tensor_data(tensors)
            tensors[f'fake_{target}'] = tensors['pred_img']
            tensors['gt_img'] = self.data_preprocessor.destruct(
                inputs[f'img_{target}'][idx], meta, f'img_{target}')
            sample.set_tensor_data(tensors)
            sample.output = output
            results.append(sample)
        return results

    def val_step(self, data: Dict) -> SampleList:
        """Translate a batch; each sample stores ``pred_img`` and
        ``fake_{target}`` (the ensemble), ``pred_img_{source}`` per stream
        and ``gt_img`` (the target), all de-normalised to [0, 255]; the
        predictions are also stored in ``output`` for mmagic's metrics, and
        the metainfo ``target_domain`` / ``source_domains`` names them for
        :class:`CENTranslationMetrics`."""
        return self._predict(data)

    def test_step(self, data: Dict) -> SampleList:
        """Same as :meth:`val_step`."""
        return self._predict(data)
