# Copyright (c) cen_mm contributors. All rights reserved.
"""Official CEN checkpoints -> cen_mm (tools/model_converters).

The official state dicts are generated from the key/shape description in
the reference notes (official-cen.md §1.11 and §2.2-2.3), not from the
official code.
"""
import importlib.util
import os.path as osp
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

REPO = Path(__file__).parents[2]
NORM = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


def load_tool(name):
    spec = importlib.util.spec_from_file_location(
        name, REPO / 'tools/model_converters' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def norm_state(prefix, channels, gen, streams=2, fmt='bn_{}'):
    out = OrderedDict()
    for m in range(streams) if streams else [None]:
        name = prefix if m is None else f'{prefix}.{fmt.format(m)}'
        out[f'{name}.weight'] = torch.rand(channels, generator=gen) + 0.05
        out[f'{name}.bias'] = torch.randn(channels, generator=gen)
        out[f'{name}.running_mean'] = torch.randn(channels, generator=gen)
        out[f'{name}.running_var'] = torch.rand(channels, generator=gen) + .5
        out[f'{name}.num_batches_tracked'] = torch.tensor(0)
    return out


def official_refinenet(depth=101,
                       base=64,
                       width=256,
                       top=512,
                       classes=40,
                       seed=0):
    """The official ``segmenter`` state dict (DataParallel ``module.``)."""
    g = torch.Generator().manual_seed(seed)
    sd = OrderedDict()

    def conv(name, cout, cin, k=3, bias=False):
        sd[f'module.{name}.module.weight'] = torch.randn(cout,
                                                         cin,
                                                         k,
                                                         k,
                                                         generator=g)
        if bias:
            sd[f'module.{name}.module.bias'] = torch.randn(cout, generator=g)

    conv('conv1', base, 3, 7)
    sd.update(norm_state('module.bn1', base, g))
    cin = base
    for layer, blocks in enumerate(BLOCKS[depth], 1):
        planes = base * 2**(layer - 1)
        for b in range(blocks):
            p = f'layer{layer}.{b}'
            for k, (co, ci, ks) in enumerate([(planes, cin, 1),
                                              (planes, planes, 3),
                                              (4 * planes, planes, 1)], 1):
                conv(f'{p}.conv{k}', co, ci, ks)
                sd.update(norm_state(f'module.{p}.bn{k}', co, g))
            if b == 0:
                conv(f'{p}.downsample.0', 4 * planes, cin, 1)
                sd.update(norm_state(f'module.{p}.downsample.1', 4 * planes,
                                     g))
            cin = 4 * planes
    levels = [base * 4 * 2**i for i in range(4)][::-1]  # deepest first
    widths = [top, width, width, width]
    for i in range(1, 5):
        w = widths[i - 1]
        conv(f'p_ims1d2_outl{i}_dimred', w, levels[i - 1])
        for b in (1, 2):
            conv(f'adapt_stage{i}_b.0.{b}_conv', w, w, bias=True)
            conv(f'adapt_stage{i}_b.0.{b}_conv_relu_varout_dimred', w, w)
        if i > 1:
            conv(f'adapt_stage{i}_b2_joint_varout_dimred', w, w)
        for k in range(1, 5):
            conv(f'mflow_conv_g{i}_pool.0.{k}_outvar_dimred', w, w)
        for b in (1, 2, 3):
            conv(f'mflow_conv_g{i}_b.0.{b}_conv', w, w, bias=True)
            conv(f'mflow_conv_g{i}_b.0.{b}_conv_relu_varout_dimred', w, w)
        if i < 4:
            conv(f'mflow_conv_g{i}_b3_joint_varout_dimred', widths[i], w)
    conv('clf_conv', classes, width, bias=True)
    sd['module.alpha'] = torch.randn(2, generator=g)
    return sd


def official_generator(num_down=8, base=64, streams=2, seed=0):
    """The official U-Net generator state dict (no DataParallel)."""
    g = torch.Generator().manual_seed(seed)
    enc = [base * min(2**k, 8) for k in range(num_down)]
    sd = OrderedDict()
    for k in range(1, num_down + 1):
        cin = 3 if k == 1 else enc[k - 2]
        sd[f'conv{k}.conv.module.weight'] = torch.randn(
            enc[k - 1], cin, 4, 4, generator=g) * 0.1
        sd[f'conv{k}.conv.module.bias'] = torch.randn(enc[k - 1],
                                                      generator=g) * 0.1
        sd.update(
            norm_state(f'conv{k}.insnorm_conv', enc[k - 1], g, streams,
                       'insnorm_{}'))
    for k in range(1, num_down + 1):
        cin = enc[-1] if k == 1 else 2 * enc[num_down - k]
        cout = 3 if k == num_down else enc[num_down - k - 1]
        sd[f'deconv{k}.deconv.module.weight'] = torch.randn(
            cin, cout, 4, 4, generator=g) * 0.1
        sd[f'deconv{k}.deconv.module.bias'] = torch.randn(cout,
                                                          generator=g) * 0.1
        sd.update(
            norm_state(f'deconv{k}.insnorm_deconv', cout, g, streams,
                       'insnorm_{}'))
    sd['alpha'] = torch.randn(streams, generator=g)
    return sd


def official_discriminator(base=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    sd = OrderedDict()
    chans = [(base, 6), (2 * base, base), (4 * base, 2 * base),
             (8 * base, 4 * base), (1, 8 * base)]
    for k, (co, ci) in enumerate(chans, 1):
        sd[f'conv{k}.conv.module.weight'] = torch.randn(co,
                                                        ci,
                                                        4,
                                                        4,
                                                        generator=g)
        sd[f'conv{k}.conv.module.bias'] = torch.randn(co, generator=g)
        sd.update(norm_state(f'conv{k}.insnorm.module', co, g, streams=0))
    return sd


# ---------------------------------------------------------------- segmentation


def test_full_official_key_sets_match_reference_counts():
    # Reference notes: R101 has 1,233 keys and 118.202 M parameters, the
    # generator 193 keys and 54.432 M, the discriminator 35 keys / 2.770 M.
    def params(sd):
        return sum(v.numel() for k, v in sd.items()
                   if not k.endswith(('running_mean', 'running_var',
                                      'num_batches_tracked')))

    r101 = official_refinenet(101)
    assert len(r101) == 1233
    assert round(params(r101) / 1e6, 3) == 118.202
    gen = official_generator()
    assert len(gen) == 193
    assert params(gen) == 54_409_603 + 22_028 + 2
    dis = official_discriminator()
    assert len(dis) == 35
    assert round(params(dis) / 1e6, 2) == 2.77


@pytest.mark.parametrize('depth', [101, 152])
def test_full_refinenet_fills_the_real_model(depth):
    tool = load_tool('cen2mmseg')
    official = official_refinenet(depth)
    result = tool.convert_official_seg(official)
    assert result.unused == []
    assert len(result.mapped) == len(official)
    assert tool.detect_depth(official, 'x') == depth
    shapes = tool.model_shapes(tool.DEFAULT_CONFIGS[depth], 40)
    tool.check_converted(result.state_dict, shapes, 'x')  # raises if not
    for old, new, transformed in result.mapped:
        assert not transformed
        assert result.state_dict[new] is official[old]


def build_tiny_segmentor():
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS

    import cen_mm.seg  # noqa: F401
    cfg = Config.fromfile(
        str(REPO / 'configs/_base_/models/cen_resnet50_refinenet.py'))
    cfg.model.backbone.update(init_cfg=None, base_channels=8, stem_channels=8)
    cfg.model.decode_head.update(in_channels=(32, 64, 128, 256),
                                 channels=16,
                                 top_channels=24,
                                 num_classes=40)
    with DefaultScope.overwrite_default_scope('mmseg'):
        return cfg, MODELS.build(cfg.model)


def tiny_official_refinenet(seed=0):
    return official_refinenet(50, base=8, width=16, top=24, seed=seed)


def test_tiny_refinenet_loads_strict_with_identical_tensors():
    tool = load_tool('cen2mmseg')
    official = tiny_official_refinenet()
    result = tool.convert_official_seg(official)
    _, model = build_tiny_segmentor()
    model.load_state_dict(result.state_dict, strict=True)
    loaded = model.state_dict()
    assert len(result.mapped) == len(official) == len(loaded)
    for old, new, _ in result.mapped:
        assert torch.equal(loaded[new], official[old]), (old, new)
    # spot checks of the naming scheme against the reference notes
    pairs = dict((old, new) for old, new, _ in result.mapped)
    assert pairs['module.layer2.0.downsample.1.bn_1.running_var'] == \
        'backbone.layer2.0.downsample.1.streams.1.running_var'
    assert pairs['module.p_ims1d2_outl1_dimred.module.weight'] == \
        'decode_head.dimreds.0.weight'
    assert pairs['module.adapt_stage2_b.0.2_conv_relu_varout_dimred.module.'
                 'weight'] == 'decode_head.adapts.1.blocks.1.1.weight'
    assert pairs['module.adapt_stage4_b2_joint_varout_dimred.module.weight'] \
        == 'decode_head.adapt_outs.2.weight'
    assert pairs['module.mflow_conv_g3_pool.0.4_outvar_dimred.module.weight'] \
        == 'decode_head.crps.2.convs.3.weight'
    assert pairs['module.mflow_conv_g1_b.0.3_conv.module.bias'] == \
        'decode_head.fuses.0.blocks.2.0.bias'
    assert pairs['module.mflow_conv_g1_b3_joint_varout_dimred.module.'
                 'weight'] == 'decode_head.out_convs.0.weight'
    assert pairs['module.alpha'] == 'decode_head.ensemble.alpha'


class Payload:

    def __reduce__(self):
        return (print, ('unpickled arbitrary code', ))


def save_official(path, state, legacy=False, **extra):
    torch.save(dict(segmenter=state, **extra),
               path,
               _use_new_zipfile_serialization=not legacy)


@pytest.mark.parametrize('legacy', [False, True])
def test_convert_file_safe_load_meta_and_mmengine_round_trip(tmp_path, legacy):
    from mmengine.registry import DefaultScope
    from mmengine.runner import load_checkpoint, save_checkpoint
    from mmseg.apis import init_model

    tool = load_tool('cen2mmseg')
    cfg, model = build_tiny_segmentor()
    config = tmp_path / 'tiny.py'
    cfg.dump(str(config))
    official = tiny_official_refinenet()
    src = tmp_path / 'model-best.pth.tar'
    # official layout: state under 'segmenter', a numpy best_val
    save_official(src,
                  official,
                  legacy,
                  epoch_start=174,
                  best_val=np.float64(0.5158))
    dst = tmp_path / 'converted.pth'
    report = tool.convert_file(str(src), str(dst), config=str(config))
    assert report['official'] == dict(epoch_start=174, best_val=0.5158)
    assert report['mapped'] == len(official) and report['unused'] == []
    # random running statistics differ between the streams (a real
    # frozen-BN checkpoint has them equal): reported, not fatal
    assert 'differ between the streams' in report['notes'][0]

    ckpt = torch.load(dst, weights_only=True)  # plain data only
    meta = ckpt['meta']['dataset_meta']
    assert len(meta['classes']) == 40 and meta['classes'][0] == 'wall'
    load_checkpoint(model, str(dst), strict=True)
    for old, new, _ in tool.convert_official_seg(official).mapped:
        assert torch.equal(model.state_dict()[new], official[old])

    # mmseg's init_model reads the classes from meta.dataset_meta
    with DefaultScope.overwrite_default_scope('mmseg'):
        seg = init_model(str(config), str(dst), device='cpu')
    assert seg.dataset_meta['classes'] == meta['classes']

    # round trip through mmengine's own checkpoint writer
    again = tmp_path / 'mmengine.pth'
    save_checkpoint(
        dict(state_dict=model.state_dict(), meta=dict(dataset_meta=meta)),
        str(again))
    _, fresh = build_tiny_segmentor()
    load_checkpoint(fresh, str(again), strict=True)
    for key, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def test_unsafe_unknown_and_incomplete_checkpoints_fail(tmp_path):
    tool = load_tool('cen2mmseg')
    cfg, _ = build_tiny_segmentor()
    config = tmp_path / 'tiny.py'
    cfg.dump(str(config))
    official = tiny_official_refinenet()

    evil = tmp_path / 'evil.pth.tar'
    save_official(evil, official, best_val=Payload())
    with pytest.raises(RuntimeError, match='evil.pth.tar: refused'):
        tool.convert_file(str(evil), str(tmp_path / 'o.pth'), str(config))

    unknown = OrderedDict(official)
    unknown['module.aux_head.module.weight'] = torch.zeros(1)
    with pytest.raises(KeyError, match='unknown checkpoint layout.*aux_head'):
        tool.convert_official_seg(unknown)

    partial = tmp_path / 'partial.pth.tar'
    save_official(
        partial,
        OrderedDict((k, v) for k, v in official.items()
                    if 'clf_conv.module.weight' not in k))
    with pytest.raises(KeyError, match='1 missing keys.*conv_seg.weight'):
        tool.convert_file(str(partial), str(tmp_path / 'o.pth'), str(config))

    torch.save(dict(optimizer={'lr': 1.0}), tmp_path / 'odd.pth')
    with pytest.raises(ValueError, match='odd.pth: unknown checkpoint layout'):
        tool.convert_file(str(tmp_path / 'odd.pth'), str(tmp_path / 'o.pth'))

    shallow = OrderedDict((k, v) for k, v in official.items()
                          if not k.startswith('module.layer3.5.'))
    with pytest.raises(ValueError, match='5 blocks in layer3'):
        tool.detect_depth(shallow, 'ckpt')


# ----------------------------------------------------------------- translation


def official_generator_forward(sd, inputs, num_down, theta=1e-2):
    """The official U-Net generator in eval mode (IN running statistics, no
    dropout) computed from the official state dict, written from the
    reference notes: exchange after the IN of conv2..conv{N-1}, decoder
    input cat(decoder, skip)."""

    def inorm(x, prefix, m):
        return F.instance_norm(x,
                               sd[f'{prefix}.insnorm_{m}.running_mean'],
                               sd[f'{prefix}.insnorm_{m}.running_var'],
                               sd[f'{prefix}.insnorm_{m}.weight'],
                               sd[f'{prefix}.insnorm_{m}.bias'],
                               use_input_stats=False)

    xs = list(inputs)
    skips = []
    for k in range(1, num_down + 1):
        w, b = sd[f'conv{k}.conv.module.weight'], sd[
            f'conv{k}.conv.module.bias']
        xs = [
            F.conv2d(x if k == 1 else F.leaky_relu(x, 0.2), w, b, 2, 1)
            for x in xs
        ]
        if 1 < k < num_down:
            ys = [
                inorm(x, f'conv{k}.insnorm_conv', m) for m, x in enumerate(xs)
            ]
            keep = [
                sd[f'conv{k}.insnorm_conv.insnorm_{m}.weight'].abs() >= theta
                for m in range(2)
            ]
            xs = [
                torch.where(keep[m][None, :, None, None], ys[m], ys[1 - m])
                for m in range(2)
            ]
        skips.append(xs)
    xs = skips.pop()
    for k in range(1, num_down + 1):
        if k > 1:
            skip = skips.pop()
            xs = [torch.cat([x, s], 1) for x, s in zip(xs, skip)]
        w = sd[f'deconv{k}.deconv.module.weight']
        b = sd[f'deconv{k}.deconv.module.bias']
        xs = [F.conv_transpose2d(F.relu(x), w, b, 2, 1) for x in xs]
        if k < num_down:
            xs = [
                inorm(x, f'deconv{k}.insnorm_deconv', m)
                for m, x in enumerate(xs)
            ]
    outs = [torch.tanh(x) for x in xs]
    a = sd['alpha'].softmax(0)
    return outs + [a[0] * outs[0] + a[1] * outs[1]]


def build_generator(num_down, base):
    from mmagic.registry import MODELS
    from mmengine.registry import DefaultScope

    import cen_mm.gen  # noqa: F401
    with DefaultScope.overwrite_default_scope('mmagic'):
        return MODELS.build(
            dict(type='CENUnetGenerator',
                 num_streams=2,
                 num_down=num_down,
                 base_channels=base))


def test_generator_conversion_reorders_the_decoder_concat():
    tool = load_tool('cen2mmagic')
    num_down, base = 5, 4
    official = official_generator(num_down, base)
    # make the exchange happen at two encoder INs
    official['conv2.insnorm_conv.insnorm_0.weight'][:3] = 0.001
    official['conv4.insnorm_conv.insnorm_1.weight'][-2:] = -0.005
    result = tool.convert_official_generator(official)
    unused = sorted(k for k, _ in result.unused)
    assert unused == sorted(f'{p}.insnorm_{m}.{s}'
                            for p in ('conv1.insnorm_conv',
                                      'conv5.insnorm_conv',
                                      'deconv5.insnorm_deconv') for m in (0, 1)
                            for s in NORM)
    assert all('never uses' in why for _, why in result.unused)
    assert len(result.mapped) + len(result.unused) == len(official)

    gen = build_generator(num_down, base)
    gen.load_state_dict(result.state_dict, strict=True)
    loaded = gen.state_dict()
    reordered = set()
    for old, new, transformed in result.mapped:
        if transformed:
            reordered.add(old)
            half = official[old].size(0) // 2
            assert torch.equal(loaded[new][:half], official[old][half:])
            assert torch.equal(loaded[new][half:], official[old][:half])
        else:
            assert torch.equal(loaded[new], official[old]), old
    assert reordered == {
        f'deconv{k}.deconv.module.weight'
        for k in range(2, num_down + 1)
    }

    gen.eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    expected = official_generator_forward(official, x.chunk(2), num_down)
    out = gen(x)
    torch.testing.assert_close(out, torch.cat(expected), rtol=1e-5, atol=1e-5)

    # a plain rename loads strict=True too, and computes something else
    renamed = {new: official[old] for old, new, _ in result.mapped}
    gen.load_state_dict(renamed, strict=True)
    assert (gen(x) - torch.cat(expected)).abs().max() > 1e-2


def test_translation_files_fill_cen_pix2pix(tmp_path):
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint

    tool = load_tool('cen2mmagic')
    cfg = Config.fromfile(tool.DEFAULT_CONFIG)
    cfg.model.generator.update(num_down=5, base_channels=4)
    cfg.model.discriminator.update(base_channels=4)
    config = tmp_path / 'tiny.py'
    cfg.dump(str(config))
    gen_sd, dis_sd = official_generator(5, 4), official_discriminator(4)
    torch.save(gen_sd, tmp_path / 'checkpoint-gen-300.pkl')
    torch.save(dis_sd, tmp_path / 'checkpoint-dis-300.pkl')
    dst = tmp_path / 'converted.pth'
    report = tool.convert_files(str(tmp_path / 'checkpoint-gen-300.pkl'),
                                str(dst),
                                str(tmp_path / 'checkpoint-dis-300.pkl'),
                                str(config))
    assert report['mapped'] == len(gen_sd) - 30 + len(dis_sd) - 10
    assert len(report['unused']) == 40

    from mmagic.registry import MODELS
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmagic'):
        model = MODELS.build(cfg.model)
    load_checkpoint(model, str(dst), strict=True)
    sd = model.state_dict()
    assert torch.equal(sd['generators.rgb.ensemble.alpha'], gen_sd['alpha'])
    assert torch.equal(sd['discriminators.rgb.model.4.weight'],
                       dis_sd['conv5.conv.module.weight'])
    assert torch.equal(sd['discriminators.rgb.model.2.in.running_var'],
                       dis_sd['conv3.insnorm.module.running_var'])

    # the official discriminator (conv -> IN -> LeakyReLU chain, sigmoid)
    d = model.discriminators['rgb'].eval()
    x = torch.randn(1, 6, 64, 64)
    h = F.conv2d(x, dis_sd['conv1.conv.module.weight'],
                 dis_sd['conv1.conv.module.bias'], 2, 1)
    for k, stride in ((2, 2), (3, 2), (4, 1)):
        h = F.conv2d(F.leaky_relu(h,
                                  0.2), dis_sd[f'conv{k}.conv.module.weight'],
                     dis_sd[f'conv{k}.conv.module.bias'], stride, 1)
        p = f'conv{k}.insnorm.module.'
        h = F.instance_norm(h,
                            dis_sd[p + 'running_mean'],
                            dis_sd[p + 'running_var'],
                            dis_sd[p + 'weight'],
                            dis_sd[p + 'bias'],
                            use_input_stats=False)
    h = F.conv2d(F.leaky_relu(h, 0.2), dis_sd['conv5.conv.module.weight'],
                 dis_sd['conv5.conv.module.bias'], 1, 1)
    torch.testing.assert_close(d(x), h, rtol=1e-5, atol=1e-5)

    bad = OrderedDict(gen_sd)
    bad['conv3.extra.weight'] = torch.zeros(1)
    with pytest.raises(KeyError, match='conv3.extra.weight'):
        tool.convert_official_generator(bad)
    with pytest.raises(KeyError, match='unknown checkpoint layout.*insnorm'):
        tool.convert_official_generator(official_discriminator(4))
    with pytest.raises(ValueError, match='not an official CEN generator'):
        tool.convert_official_generator({
            k: v
            for k, v in gen_sd.items() if not k.startswith('conv3.')
        })
    assert osp.isfile(dst)
