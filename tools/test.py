# Copyright (c) cen_mm contributors. All rights reserved.
"""Test (evaluate) a checkpoint with an mmseg or mmagic config.

Example::

    python tools/test.py configs/cen/<config>.py work_dirs/x/iter_1000.pth
    python tools/test.py CONFIG CKPT --tta      # multi-scale + flip (mmseg)
    bash tools/dist_test.sh CONFIG CKPT 2       # CPU: gloo
"""
import argparse
import os.path as osp
import sys

# Run this checkout's cen_mm, whatever else is installed or on the path.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import cen_mm  # noqa: E402,F401
from cen_mm.engine import safe_checkpoint_loading  # noqa: E402
from cen_mm.engine.launch import (add_common_args, build_runner,  # noqa: E402
                                  enable_safe_checkpointing, load_config)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out',
        help='a .pkl/.pickle file to dump every prediction to, or a '
        'directory where the evaluator saves its formatted results '
        '(mmseg IoUMetric `output_dir`, `keep_results=True`)')
    parser.add_argument(
        '--tta', action='store_true', help='test time augmentation')
    parser.add_argument(
        '--show-dir',
        help='directory where drawn predictions are saved (segmentation: '
        'input, ground truth, every stream and the ensemble as labelled '
        'overlays with a class legend; translation: every stream, the '
        'ensemble and the target side by side)')
    parser.add_argument(
        '--partial-load',
        action='store_true',
        help='test even if the checkpoint leaves model weights unfilled '
        '(by default that is an error)')
    add_common_args(parser)
    return parser.parse_args()


def setup_tta(cfg) -> None:
    """Wrap the model in ``cfg.tta_model`` and test with ``tta_pipeline``
    (as mmseg's ``tools/test.py --tta``)."""
    missing = [k for k in ('tta_model', 'tta_pipeline') if k not in cfg]
    if missing:
        raise KeyError(f'--tta needs {missing} in the config')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


def setup_out(cfg, out: str) -> None:
    """Dump predictions to a pickle, or let the evaluator write formatted
    results into a directory."""
    if out.endswith(('.pkl', '.pickle')):
        dump = dict(type='DumpResults', out_file_path=out)
        evaluator = cfg.test_evaluator
        if isinstance(evaluator, dict) and 'metrics' in evaluator:
            # An evaluator with its own metric list (mmagic's): add the dump
            # metric in the form that evaluator expects.
            dump['type'] = 'DumpGenResults'
            metrics = evaluator['metrics']
            metrics = metrics if isinstance(metrics, list) else [metrics]
            evaluator['metrics'] = [*metrics, dump]
        else:
            metrics = evaluator if isinstance(evaluator, list) else [
                evaluator]
            cfg.test_evaluator = [*metrics, dump]
        return
    evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator,
                                                  list) else [
                                                      cfg.test_evaluator]
    for evaluator in evaluators:
        evaluator['output_dir'] = out
        evaluator['keep_results'] = True


def setup_show_dir(cfg, show_dir: str) -> None:
    """Draw every test sample into ``show_dir``.

    Segmentation (mmseg's ``--show-dir``): the visualisation hook draws each
    prediction (with cen_mm's visualiser: input, ground truth, every stream
    and the ensemble, labelled, with a class legend) and the visualiser's
    backends write it under ``show_dir``. Translation (mmagic's convention):
    ``BasicVisualizationHook`` + ``ConcatImageVisualizer`` write, per
    sample, each source stream's output, the ensemble and the target side
    by side (``show_dir/<timestamp>/vis_data/vis_image/``).
    """
    if cfg.get('default_scope') == 'mmagic':
        model = cfg.model
        sources = model.get('source_domains')
        target = model.get('target_domain')
        if not sources or not target:
            raise KeyError('--show-dir for translation needs '
                           'model.source_domains and model.target_domain')
        cfg.default_hooks['visualization'] = dict(
            type='BasicVisualizationHook', interval=1)
        cfg.visualizer = dict(
            type='ConcatImageVisualizer',
            fn_key=f'img_{target}_path',
            img_keys=[f'pred_img_{s}' for s in sources] +
            ['pred_img', 'gt_img'],
            bgr2rgb=True,  # mmagic's outputs are BGR, like cv2 images
            vis_backends=[dict(type='LocalVisBackend')],
            save_dir=show_dir)
        return
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise KeyError('--show-dir needs default_hooks.visualization in the '
                       'config (e.g. SegVisualizationHook)')
    hook['draw'] = True
    hook['interval'] = 1
    if 'visualizer' not in cfg:
        raise KeyError('--show-dir needs a `visualizer` in the config')
    cfg.visualizer['save_dir'] = show_dir
    # A fixed name would reuse an existing visualiser (and its save_dir).
    cfg.visualizer.pop('name', None)


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg = load_config(args)
    enable_safe_checkpointing(cfg, strict_load=not args.partial_load)
    cfg.load_from = args.checkpoint
    if args.tta:
        setup_tta(cfg)
    if args.out is not None:
        setup_out(cfg, args.out)
    if args.show_dir is not None:
        setup_show_dir(cfg, args.show_dir)
    with safe_checkpoint_loading():
        runner = build_runner(cfg)
        runner.test()


if __name__ == '__main__':
    main()
