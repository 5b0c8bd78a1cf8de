# Copyright (c) cen_mm contributors. All rights reserved.
"""Both CEN U-Net generators are built by UnetLayout: the same convs, layer
by layer, and checkpoint keys as the official-numbered layout (so
checkpoints and the converters' key maps stay valid)."""
import pytest
import torch.nn as nn

from cen_mm.gen.models import (CENMultiUnetGenerator, CENUnetGenerator,
                               FusionUnetGenerator, UnetLayout)

IN_KEYS = ('weight', 'bias', 'running_mean', 'running_var',
           'num_batches_tracked')


def _norm_keys(prefix, streams):
    return [f'{prefix}.streams.{m}.{key}' for m in range(streams)
            for key in IN_KEYS]


def test_fusion_generator_checkpoint_keys():
    gen = CENUnetGenerator(num_streams=2, num_down=5, base_channels=4)
    expected = []
    for side, normed in (('encoder', (1, 2, 3)), ('decoder', (0, 1, 2, 3))):
        for k in range(5):
            expected += [f'{side}.{k}.conv.weight', f'{side}.{k}.conv.bias']
            if k in normed:
                expected += _norm_keys(f'{side}.{k}.in', 2)
    expected.append('ensemble.alpha')
    assert list(gen.state_dict()) == expected


def test_family_checkpoint_keys():
    gen = CENMultiUnetGenerator(units=[(2, 2)], num_down=5, base_channels=4)
    expected = []
    for side in ('encoders', 'decoders'):
        for k in range(5):
            expected += [f'{side}.0.{k}.conv.weight', f'{side}.0.{k}.conv.bias']
    for k in (1, 2, 3):
        expected += _norm_keys(f'encoder_norms.{k}.0', 2)
    for k in range(4):
        expected += _norm_keys(f'decoder_norms.{k}.0', 2)
    expected.append('ensembles.0.alpha')
    assert list(gen.state_dict()) == expected


@pytest.mark.parametrize('num_down', [5, 8])
def test_same_convs_layer_by_layer(num_down):
    single = CENUnetGenerator(num_streams=2, num_down=num_down,
                              base_channels=8)
    family = CENMultiUnetGenerator(units=[(1, 2), (3, 3)], combine='softmax',
                                   decoder_weights='unit', num_down=num_down,
                                   base_channels=8)
    for gen in (single, family, FusionUnetGenerator(
            fusion=dict(type='ConcatFusion', positions='middle'),
            num_down=num_down,
            base_channels=8)):
        assert isinstance(gen, UnetLayout)
    # pix2pix channels: 8, 16, 32, 64, 64, ...; deconvs take cat(skip, x)
    assert single.channels == [8 * min(2**k, 8) for k in range(num_down)]
    for side, layers in (('encoders', single.encoder),
                         ('decoders', single.decoder)):
        for branch in getattr(family, side):
            for ref, layer in zip(layers, branch):
                assert type(layer.conv) is type(ref.conv)
                assert isinstance(ref.conv, (nn.Conv2d, nn.ConvTranspose2d))
                assert layer.conv.weight.shape == ref.conv.weight.shape
                assert (layer.conv.stride, layer.conv.padding) == (
                    ref.conv.stride, ref.conv.padding) == ((2, 2), (1, 1))
                assert layer.order == ref.order
                assert layer.with_activation == ref.with_activation
                if ref.with_activation:
                    assert type(layer.activate) is type(ref.activate)
                assert not layer.with_norm  # the family's norms are per unit
