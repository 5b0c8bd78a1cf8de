# Copyright (c) cen_mm contributors. All rights reserved.
"""Convert a trained CEN segmentor or generator into its inference network
(frozen exchange, BN folded) and export it to ONNX.

Segmentation configs (mmseg scope) export the segmentor: input ``inputs``
``(N, sum(C_m), H, W)``, the normalised channel-stacked modalities; outputs
``logits_{stream}`` for every stream and ``logits_ens``, ``(N, K, H, W)``.
Translation configs (mmagic scope) export the generator: input ``inputs``
``(N, M * C, H, W)`` in [-1, 1]; outputs ``out_{m}`` and ``out_ens``.
See ``docs/deployment.md``.

Example::

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT \\
        --shape 480 640 --out cen.onnx --verify
"""
import argparse
import os.path as osp
import sys

# Run this checkout's cen_mm, whatever else is installed or on the path.
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

import torch  # noqa: E402

from cen_mm.deploy import (GeneratorExporter, SegmentorExporter,  # noqa: E402
                           deploy_model, export_onnx)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='model config')
    parser.add_argument('checkpoint', help='trained checkpoint')
    parser.add_argument('--shape', type=int, nargs=2, default=(480, 640),
                        metavar=('H', 'W'), help='input size of the graph')
    parser.add_argument('--batch', type=int, default=1,
                        help='batch size N of the graph')
    parser.add_argument('--out', required=True, help='the .onnx file')
    parser.add_argument('--save-pth', help='also save the converted PyTorch '
                        'module (torch.save of the whole module)')
    parser.add_argument('--no-fold', action='store_true',
                        help='keep batch norms unfolded')
    parser.add_argument('--verify', action='store_true',
                        help='run the ONNX graph under onnxruntime and '
                        'compare to PyTorch (atol 1e-4)')
    return parser.parse_args(argv)


def build(config: str, checkpoint: str):
    """Build the config's model, load the checkpoint, and return the module
    to deploy, its exporter class and its input channels."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.runner import load_checkpoint
    from mmengine.utils import import_modules_from_strings

    import cen_mm.engine  # noqa: F401  (loadable mmengine checkpoints)
    cfg = Config.fromfile(config)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    scope = cfg.get('default_scope', 'mmseg')
    if scope == 'mmseg':
        import cen_mm.seg  # noqa: F401
    elif scope == 'mmagic':
        import cen_mm.gen  # noqa: F401
    else:
        raise ValueError(f'{config}: default_scope must be mmseg or mmagic, '
                         f'got {scope!r}')
    init_default_scope(scope)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    if scope == 'mmseg':
        channels = getattr(model.backbone, 'stream_channels', None) or \
            model.stream_channels
        return model.eval(), SegmentorExporter, sum(channels)
    generator = model.generator
    return generator.eval(), GeneratorExporter, \
        generator.in_channels * generator.num_streams


def main(argv=None) -> dict:
    """Run the tool; returns the output names and the max |ONNX - PyTorch|
    (None without ``--verify``)."""
    args = parse_args(argv)
    model, exporter_cls, channels = build(args.config, args.checkpoint)
    example = torch.randn(args.batch, channels, *args.shape)
    if exporter_cls is GeneratorExporter:
        example = example.clamp(-1, 1)
        m = model.num_streams
        folded = torch.cat(example.chunk(m, dim=1))
        deployed = deploy_model(model, (folded, ), fold_bn=not args.no_fold)
    else:
        deployed = deploy_model(model, (example, ),
                                fold_bn=not args.no_fold)
    exporter = exporter_cls(deployed).eval()
    if args.save_pth:
        torch.save(exporter, args.save_pth)
    names = export_onnx(exporter, example, args.out)
    worst = None
    if args.verify:
        import onnxruntime as ort
        session = ort.InferenceSession(args.out,
                                       providers=['CPUExecutionProvider'])
        got = session.run(None, {'inputs': example.numpy()})
        with torch.no_grad():
            expected = exporter(example)
        worst = max(float((torch.from_numpy(g) - e).abs().max())
                    for g, e in zip(got, expected))
        if worst > 1e-4:
            raise RuntimeError(f'ONNX and PyTorch outputs differ by {worst:.3g}'
                               ' > 1e-4')
    print(f'exported {args.out}: input inputs {tuple(example.shape)}, '
          f'outputs {names}' + ('' if worst is None else
                                f'; onnxruntime max |diff| {worst:.2e}'))
    return dict(outputs=names, max_abs_diff=worst)


if __name__ == '__main__':
    main()
