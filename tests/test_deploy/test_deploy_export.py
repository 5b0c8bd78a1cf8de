# Copyright (c) cen_mm contributors. All rights reserved.
"""Converted CEN segmentor and generator: equal to the eval-mode original,
exported to ONNX and run under onnxruntime."""
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope

from cen_mm.cnn import ExchangeNorm, exchange_norms
from cen_mm.deploy import (GeneratorExporter, SegmentorExporter,
                           StreamAffineMix, deploy_model, export_onnx)

K = 5


def _train_like(model, seed):
    """Distinct per-stream statistics and γ, some γ below θ (exchanged)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, layer in exchange_norms(model):
            for m, norm in enumerate(layer.streams):
                c = norm.num_features
                norm.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                norm.bias.copy_(torch.randn(c, generator=gen) * 0.1)
                norm.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                norm.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
                own = layer.parts[m].nonzero().flatten()
                norm.weight[own[:max(1, len(own) // 3)]] = 1e-3
    return model.eval()


SEG_MODEL = dict(
    type='CENEncoderDecoder',
    data_preprocessor=dict(type='CENSegDataPreProcessor',
                           stream_channels=(3, 3)),
    num_streams=2,
    stream_names=('rgb', 'depth'),
    backbone=dict(type='CENResNet', depth=50, num_streams=2,
                  stem_channels=8, base_channels=4, out_indices=(0, 1, 2, 3)),
    decode_head=dict(type='CENPSPHead', in_channels=128, in_index=3,
                     channels=16, pool_scales=(1, 2), dropout_ratio=0.,
                     num_classes=K, num_streams=2,
                     stream_names=('rgb', 'depth')),
    test_cfg=dict(mode='whole'))


def _segmentor():
    import cen_mm.seg  # noqa: F401
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(SEG_MODEL))
    model.init_weights()
    model.decode_head.ensemble.alpha.data = torch.tensor([0.3, -0.4])
    return _train_like(model, 1)


def _generator():
    from cen_mm.gen.models import CENUnetGenerator
    torch.manual_seed(0)
    gen = CENUnetGenerator(num_streams=2, num_down=5, base_channels=8)
    gen.init_weights()
    return _train_like(gen, 2)


def _run_tool(name, *args):
    """Run tools/deployment/<name>.py's main in this process."""
    import runpy
    from pathlib import Path
    tool = Path(__file__).resolve().parents[2] / 'tools' / 'deployment'
    return runpy.run_path(str(tool / f'{name}.py'),
                          run_name=name)['main'](list(args))


def _onnx_outputs(path, x):
    ort = pytest.importorskip('onnxruntime')
    session = ort.InferenceSession(str(path),
                                   providers=['CPUExecutionProvider'])
    assert [i.name for i in session.get_inputs()] == ['inputs']
    names = [o.name for o in session.get_outputs()]
    return names, [torch.from_numpy(o) for o in
                   session.run(None, {'inputs': x.numpy()})]


def test_segmentor_deploy_and_onnx(tmp_path):
    from mmseg.structures import SegDataSample
    model = _segmentor()
    x = torch.randn(2, 6, 32, 32)
    deployed = deploy_model(model, (x, ))
    assert not any(isinstance(m, ExchangeNorm) for m in deployed.modules())
    assert sum(isinstance(m, StreamAffineMix) and m.mixed
               for m in deployed.modules()) == 16  # every bottleneck bn2
    exporter = SegmentorExporter(deployed)
    with torch.no_grad():
        outs = exporter(x)
    assert exporter.output_names == ['logits_rgb', 'logits_depth',
                                     'logits_ens']
    # Equal to the eval-mode original's predictions, stream by stream.
    metas = [dict(img_shape=(32, 32), ori_shape=(32, 32), pad_shape=(32, 32),
                  padding_size=[0, 0, 0, 0]) for _ in range(2)]
    with torch.no_grad():
        samples = model.predict(x, [SegDataSample(metainfo=m) for m in metas])
    for i, sample in enumerate(samples):
        for name, out in zip(('rgb', 'depth', None), outs):
            key = 'seg_logits' if name is None else f'seg_logits_{name}'
            torch.testing.assert_close(out[i], sample.get(key).data,
                                       rtol=0, atol=1e-5)

    # The deployment tool: config + checkpoint -> verified ONNX graph.
    (tmp_path / 'seg_cfg.py').write_text(
        f"default_scope = 'mmseg'\nmodel = {SEG_MODEL!r}\n")
    torch.save(dict(state_dict=model.state_dict()), tmp_path / 'seg.pth')
    path = tmp_path / 'cen_seg.onnx'
    result = _run_tool('export_onnx', str(tmp_path / 'seg_cfg.py'),
                       str(tmp_path / 'seg.pth'), '--shape', '32', '32',
                       '--batch', '2', '--out', str(path), '--verify')
    assert result['max_abs_diff'] <= 1e-4
    names, got = _onnx_outputs(path, x)
    assert names == exporter.output_names
    for a, b in zip(got, outs):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-4)


def test_generator_deploy_and_onnx(tmp_path):
    gen = _generator()
    x = torch.rand(2, 6, 32, 32) * 2 - 1  # 2 streams of 3 channels, N = 2
    folded = torch.cat([x[:, :3], x[:, 3:]])
    deployed = deploy_model(gen, (folded, ))
    exporter = GeneratorExporter(deployed)
    with torch.no_grad():
        outs = exporter(x)
        expected = gen(folded).chunk(3)
    assert exporter.output_names == ['out_0', 'out_1', 'out_ens']
    for a, b in zip(outs, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    path = tmp_path / 'cen_gen.onnx'
    export_onnx(exporter, x, path)
    names, got = _onnx_outputs(path, x)
    assert names == exporter.output_names
    for a, b in zip(got, outs):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-4)
