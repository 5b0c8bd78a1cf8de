# Copyright (c) cen_mm contributors. All rights reserved.
"""Convert official CEN image-translation checkpoints to cen_mm (MMagic).

Source: ``github.com/yikaiw/CEN`` (``image2image_translation/``), the plain
state dicts ``checkpoint-gen-{epoch}.pkl`` (U-Net-256 generator, 2 streams)
and optionally ``checkpoint-dis-{epoch}.pkl`` (PatchGAN discriminator). They
are read with ``torch.load(weights_only=True)`` (see
:mod:`cen_mm.engine.official_checkpoint`).

Generator (``k`` = 1..N, N = 8 for U-Net-256; ``m`` = stream):

==========================================  ==================================
official                                    cen_mm (``CENUnetGenerator``)
==========================================  ==================================
``conv{k}.conv.module.*``                   ``encoder.{k-1}.conv.*``
``conv{k}.insnorm_conv.insnorm_{m}.*``      ``encoder.{k-1}.in.streams.{m}.*`` (k = 2..N-1)
``deconv{k}.deconv.module.*``               ``decoder.{k-1}.conv.*``
``deconv{k}.insnorm_deconv.insnorm_{m}.*``  ``decoder.{k-1}.in.streams.{m}.*`` (k = 1..N-1)
``alpha``                                   ``ensemble.alpha``
==========================================  ==================================

- The official decoder feeds ``cat(decoder, skip)`` to ``deconv2..N``,
  cen_mm feeds ``cat(skip, decoder)`` (mmagic's order): the two halves of
  the input-channel dimension (dim 0 of a ``ConvTranspose2d`` weight) of
  those weights are swapped. A plain rename would load with
  ``strict=True`` and compute something else.
- Unused official keys (built but never used by the official forward pass):
  the IN of ``conv1`` (bare conv), ``conv{N}`` (innermost, 1x1) and
  ``deconv{N}`` (followed by tanh only). They are reported, not converted.
- cen_mm must use ``decoder_norm='stream'`` (the official per-stream decoder
  INs), the default.

Discriminator (optional, shared by the streams): ``conv1.conv`` ->
``model.0.conv``, ``conv{2,3,4}.conv`` / ``.insnorm.module`` ->
``model.{1,2,3}.conv`` / ``.in``, ``conv5.conv`` -> ``model.4``; the INs of
``conv1`` and ``conv5`` are unused officially (reported).

The output is an mmengine checkpoint whose keys are those of ``CENPix2Pix``
(``generators.{target}.*``, ``discriminators.{target}.*``), checked key by
key and shape by shape against the model of ``--config`` built on the
``meta`` device.

Example::

    python tools/model_converters/cen2mmagic.py checkpoint-gen-300.pkl \\
        checkpoints/cen_pix2pix_shade-texture2rgb.pth \\
        --discriminator checkpoint-dis-300.pkl
"""
import argparse
import os.path as osp
import re
import sys
from typing import Dict, Optional

import torch

# Run this checkout's cen_mm, whatever else is installed or on the path.
sys.path.insert(0,
                osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from cen_mm.engine.official_checkpoint import (  # noqa: E402
    NORM_STATE, ConversionResult, KeyRule, check_converted, convert_state_dict,
    extract_state_dict, load_official_checkpoint)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIG = osp.join(
    REPO, 'configs', 'cen_gen',
    'cen-pix2pix_unet256-in_1xb1-300kiters_taskonomy-shade-texture2rgb.py')


def swap_input_halves(_, weight: torch.Tensor) -> torch.Tensor:
    """Reorder a ``ConvTranspose2d`` weight from input ``cat(a, b)`` to
    ``cat(b, a)`` (input channels are dim 0)."""
    if weight.size(0) % 2:
        raise ValueError(f'cannot split {weight.size(0)} input channels into '
                         'the (decoder, skip) halves')
    first, second = weight.chunk(2, dim=0)
    return torch.cat([second, first], dim=0)


def generator_rules(num_down: int):
    """Rules for an official generator with ``num_down`` encoder convs."""
    n = num_down

    def encoder_norm(m: re.Match) -> Optional[str]:
        k = int(m.group(1))
        return f'encoder.{k - 1}.in.streams.{m.group(2)}.{m.group(3)}' \
            if 1 < k < n else None

    def decoder_norm(m: re.Match) -> Optional[str]:
        k = int(m.group(1))
        return f'decoder.{k - 1}.in.streams.{m.group(2)}.{m.group(3)}' \
            if k < n else None

    return (
        KeyRule(r'conv(\d+)\.conv\.module\.(weight|bias)',
                lambda m: f'encoder.{int(m.group(1)) - 1}.conv.{m.group(2)}'),
        KeyRule(rf'conv(\d+)\.insnorm_conv\.insnorm_(\d+)\.{NORM_STATE}',
                encoder_norm,
                reason=f'official conv1 and conv{n} build an IN that their '
                'forward pass never uses'),
        KeyRule(r'deconv1\.deconv\.module\.(weight|bias)',
                r'decoder.0.conv.\1'),
        KeyRule(r'deconv(\d+)\.deconv\.module\.weight',
                lambda m: f'decoder.{int(m.group(1)) - 1}.conv.weight',
                transform=swap_input_halves),
        KeyRule(r'deconv(\d+)\.deconv\.module\.bias',
                lambda m: f'decoder.{int(m.group(1)) - 1}.conv.bias'),
        KeyRule(
            rf'deconv(\d+)\.insnorm_deconv\.insnorm_(\d+)\.{NORM_STATE}',
            decoder_norm,
            reason=f'official deconv{n} builds an IN that its forward pass '
            'never uses (deconv -> tanh)'),
        KeyRule(r'alpha', 'ensemble.alpha'),
    )


DISCRIMINATOR_RULES = (
    KeyRule(r'conv1\.conv\.module\.(weight|bias)', r'model.0.conv.\1'),
    KeyRule(r'conv([234])\.conv\.module\.(weight|bias)',
            lambda m: f'model.{int(m.group(1)) - 1}.conv.{m.group(2)}'),
    KeyRule(rf'conv([234])\.insnorm\.module\.{NORM_STATE}',
            lambda m: f'model.{int(m.group(1)) - 1}.in.{m.group(2)}'),
    KeyRule(r'conv5\.conv\.module\.(weight|bias)', r'model.4.\1'),
    KeyRule(rf'conv[15]\.insnorm\.module\.{NORM_STATE}',
            None,
            reason='official conv1 and conv5 build an IN that their forward '
            'pass never uses'),
)


def detect_num_down(state_dict: Dict[str, torch.Tensor], source: str) -> int:
    """Number of encoder convs ``conv1..convN`` of an official generator."""
    ks = sorted({
        int(m.group(1))
        for m in (re.fullmatch(r'conv(\d+)\.conv\.module\.weight', k)
                  for k in state_dict) if m
    })
    if not ks or ks != list(range(1, len(ks) + 1)) or len(ks) < 5:
        raise ValueError(f'{source}: not an official CEN generator; encoder '
                         f'convs conv1..convN (N >= 5) expected, found {ks}')
    return len(ks)


def convert_official_generator(state_dict: Dict[str, torch.Tensor],
                               source: str = 'generator') -> ConversionResult:
    """Convert an official generator state dict (see the module doc)."""
    return convert_state_dict(
        state_dict, generator_rules(detect_num_down(state_dict, source)),
        source)


def convert_official_discriminator(
        state_dict: Dict[str, torch.Tensor],
        source: str = 'discriminator') -> ConversionResult:
    """Convert an official PatchGAN state dict to mmagic's
    ``PatchDiscriminator(num_conv=3)``."""
    return convert_state_dict(state_dict, DISCRIMINATOR_RULES, source)


def model_shapes(config: str) -> Dict[str, torch.Size]:
    """Key -> shape of the ``CENPix2Pix`` of ``config`` (built on meta)."""
    from mmagic.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    import cen_mm.gen  # noqa: F401
    cfg = Config.fromfile(config)
    with DefaultScope.overwrite_default_scope('mmagic'), \
            torch.device('meta'):
        model = MODELS.build(cfg.model)
    return {k: v.shape for k, v in model.state_dict().items()}


def convert_files(generator: str,
                  dst: str,
                  discriminator: Optional[str] = None,
                  config: Optional[str] = None) -> Dict:
    """Convert the official generator (and discriminator) into ``dst``.

    Returns:
        dict: A report with the mapped count and the unused keys.
    """
    from mmengine.config import Config
    config = config or DEFAULT_CONFIG
    target = Config.fromfile(config).model.target_domain
    results = {}
    state, _ = extract_state_dict(load_official_checkpoint(generator),
                                  generator)
    results['generators'] = convert_official_generator(state, generator)
    if discriminator is not None:
        state, _ = extract_state_dict(load_official_checkpoint(discriminator),
                                      discriminator)
        results['discriminators'] = convert_official_discriminator(
            state, discriminator)
    converted, unused, mapped = {}, [], 0
    for part, result in results.items():
        converted.update({
            f'{part}.{target}.{k}': v
            for k, v in result.state_dict.items()
        })
        unused += [[f'{part}: {k}', why] for k, why in result.unused]
        mapped += len(result.mapped)
    expected = {
        k: v
        for k, v in model_shapes(config).items()
        if k.split('.', 1)[0] in results
    }
    check_converted(converted, expected, f'{generator} -> {config}')
    report = dict(
        source=[osp.basename(p) for p in (generator, discriminator) if p],
        converter='tools/model_converters/cen2mmagic.py',
        mapped=mapped,
        unused=unused)
    torch.save(dict(meta=dict(cen_mm_conversion=report), state_dict=converted),
               dst)
    return report


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert official CEN image-translation checkpoints '
        '(github.com/yikaiw/CEN) to a cen_mm (mmagic) checkpoint.')
    parser.add_argument('generator', help='official checkpoint-gen-*.pkl')
    parser.add_argument('dst', help='output .pth')
    parser.add_argument('--discriminator',
                        help='official checkpoint-dis-*.pkl (optional)')
    parser.add_argument(
        '--config',
        help='cen_mm config whose model the result must fill (default: the '
        'Shade + Texture -> RGB config; its target_domain names the keys)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    report = convert_files(args.generator, args.dst, args.discriminator,
                           args.config)
    print(f'{report["mapped"]} keys mapped, {len(report["unused"])} unused:')
    for key, reason in report['unused']:
        print(f'  unused {key}: {reason}')
    print(f'wrote {args.dst}')


if __name__ == '__main__':
    main()
