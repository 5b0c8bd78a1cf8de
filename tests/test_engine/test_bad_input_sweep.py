# Copyright (c) cen_mm contributors. All rights reserved.
"""Issue 12's sweep of bad inputs and wrong combinations, one case each.

Every case feeds one bad input through the path a user takes (the file
loader, mmseg's ``inference_model`` on an RGB-D array, ``init_model``, the
tools' ``build_runner``, ``GammaSparsityHook``) and asserts the error type
and that the message names the file, array, key or option and what was
expected. docs/engine.md counts the verdicts. The checkpoint and training
faults (kill while saving, resume, NaN loss, work-dir lock) are reproduced
in test_checkpoint_safety.py.
"""
import copy
import random
from pathlib import Path
from typing import Callable, List, NamedTuple, Tuple

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope

import cen_mm.gen  # noqa: F401 (registers the translation models)
from cen_mm.engine import (GammaSparsityHook, check_num_classes,
                           check_stream_host)
from cen_mm.engine.launch import build_runner
from cen_mm.seg.apis import init_model, load_rgbd, rgbd_inference_pipeline
from cen_mm.seg.datasets.transforms import (LoadRGBDAnnotations,
                                            LoadRGBDFromFile,
                                            LoadRGBDFromNDArray)

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / 'configs' / 'cen' / 'cen-refinenet_r50_synthetic-rgbd.py'
MULTI_FLOW = REPO / 'configs' / 'cen_gen' / (
    'cen-dec-pix2pix_unet64-in_1xb4-1kiters_synthetic-rgb2semseg-depth.py')
H, W = 8, 10
RGB = np.arange(H * W * 3, dtype=np.uint8).reshape(H, W, 3)
DEPTH = np.full((H, W), 5000, np.uint16)


@pytest.fixture(autouse=True)
def isolated_state():
    """init_model sets mmseg's default scope, a Runner seeds every RNG and
    sets OpenCV's threads: keep all of it inside the test."""
    rng = torch.get_rng_state(), np.random.get_state(), random.getstate()
    threads, benchmark = cv2.getNumThreads(), torch.backends.cudnn.benchmark
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield
    torch.set_rng_state(rng[0])
    np.random.set_state(rng[1])
    random.setstate(rng[2])
    cv2.setNumThreads(threads)
    torch.backends.cudnn.benchmark = benchmark


@pytest.fixture(scope='module')
def model():
    with DefaultScope.overwrite_default_scope('mmseg'):
        torch.manual_seed(0)
        return init_model(CONFIG, device='cpu')


def _with_non_finite(array: np.ndarray, value: float) -> np.ndarray:
    array = array.astype(np.float32)
    array[2, 3] = value
    return array


def _rgbd(rgb=RGB, depth=DEPTH, dtype=np.float32) -> np.ndarray:
    return np.dstack([rgb.astype(dtype), depth.astype(dtype)])


class Case(NamedTuple):
    """``run(tmp_path, model)`` triggers the error; the message must hold
    every string of ``names(tmp_path)``."""
    error: type
    run: Callable
    names: Callable[[Path], List[str]]


# -- files -----------------------------------------------------------------
def _depth_file(tmp_path: Path, depth: np.ndarray, name: str) -> Tuple:
    cv2.imwrite(str(tmp_path / 'rgb.png'), RGB)
    assert cv2.imwrite(str(tmp_path / name), depth)
    return dict(img_path=str(tmp_path / 'rgb.png'),
                depth_path=str(tmp_path / name))


def _truncated_png(path: Path, image: np.ndarray) -> str:
    cv2.imwrite(str(path), image)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return str(path)


def _label_sample(tmp_path: Path) -> dict:
    return dict(seg_map_path=_truncated_png(
        tmp_path / 'label.png',
        (np.arange(64 * 64) % 5).astype(np.uint8).reshape(64, 64)),
                reduce_zero_label=False, seg_fields=[])


def _label_file(tmp_path: Path, label: np.ndarray, **results) -> dict:
    assert cv2.imwrite(str(tmp_path / 'label.png'), label)
    return dict(seg_map_path=str(tmp_path / 'label.png'),
                reduce_zero_label=False, seg_fields=[], **results)


def _load_labels(tmp_path: Path, label: np.ndarray, **results) -> dict:
    return LoadRGBDAnnotations(num_classes=5)(
        _label_file(tmp_path, label, **results))


LABEL = np.zeros((H, W), np.uint8)

FILE_CASES = {
    'RGB file missing': Case(
        FileNotFoundError, lambda t, m: LoadRGBDFromFile()(dict(
            img_path=str(t / 'none.png'), depth_path=str(t / 'd.png'))),
        lambda t: [str(t / 'none.png'), 'does not exist']),
    'depth file missing': Case(
        FileNotFoundError, lambda t, m: LoadRGBDFromFile()(dict(
            _depth_file(t, DEPTH, 'd.png'), depth_path=str(t / 'no.png'))),
        lambda t: [str(t / 'no.png'), 'does not exist']),
    'sample without depth_path': Case(
        KeyError, lambda t, m: LoadRGBDFromFile()(dict(
            img_path=str(t / 'a.png'))),
        lambda t: ['no depth_path', str(t / 'a.png')]),
    'RGB and depth sizes differ': Case(
        ValueError, lambda t, m: LoadRGBDFromFile()(_depth_file(
            t, DEPTH[:, :7], 'd.png')),
        lambda t: [str(t / 'd.png'), str(t / 'rgb.png'), '(8, 7)',
                   '(8, 10)']),
    'RGBA file': Case(
        ValueError, lambda t, m: load_rgbd(
            _depth_file(t, np.dstack([RGB, RGB[..., :1]]), 'rgba.png')[
                'depth_path'], t / 'rgb.png'),
        lambda t: [str(t / 'rgba.png'), '3 colour channels']),
    'grayscale RGB file': Case(
        ValueError, lambda t, m: load_rgbd(
            _depth_file(t, RGB[..., 0], 'gray.png')['depth_path'],
            t / 'rgb.png'),
        lambda t: [str(t / 'gray.png'), '3 colour channels']),
    'colourised depth file': Case(
        ValueError, lambda t, m: LoadRGBDFromFile()(_depth_file(
            t, np.dstack([DEPTH] * 3), 'd.png')),
        lambda t: [str(t / 'd.png'), 'single-channel']),
    'label values outside num_classes': Case(
        ValueError, lambda t, m: _load_labels(t, LABEL + 7),
        lambda t: [str(t / 'label.png'), '[7]', '[0, 5)']),
    'colour label map': Case(
        ValueError, lambda t, m: _load_labels(t, RGB),
        lambda t: [str(t / 'label.png'), 'single-channel class ids']),
    '16-bit label map with ids > 255': Case(
        ValueError, lambda t, m: _load_labels(
            t, LABEL.astype(np.uint16) + 300),
        lambda t: [str(t / 'label.png'), 'integer ids in 0..255', '300']),
    'label map size differs from the image': Case(
        ValueError, lambda t, m: _load_labels(
            t, LABEL[:, :7], ori_shape=(H, W), img_path='img.png'),
        lambda t: [str(t / 'label.png'), 'img.png', '(8, 7)', '(8, 10)']),
    'depth file with NaN': Case(
        ValueError, lambda t, m: LoadRGBDFromFile()(_depth_file(
            t, _with_non_finite(DEPTH, np.nan), 'd.tiff')),
        lambda t: [str(t / 'd.tiff'), '1 non-finite value', 'finite depth']),
    'depth file with inf': Case(
        ValueError, lambda t, m: LoadRGBDFromFile()(_depth_file(
            t, _with_non_finite(DEPTH, np.inf), 'd.tiff')),
        lambda t: [str(t / 'd.tiff'), 'non-finite', 'finite depth']),
    'depth file 8-bit': Case(
        ValueError, lambda t, m: LoadRGBDFromFile()(_depth_file(
            t, DEPTH.astype(np.uint8), 'd.png')),
        lambda t: [str(t / 'd.png'), '8-bit', '16-bit depth']),
    'RGB file 16-bit': Case(
        ValueError, lambda t, m: load_rgbd(
            _depth_file(t, RGB.astype(np.uint16) * 200, 'rgb16.png')[
                'depth_path'], t / 'rgb.png'),
        lambda t: [str(t / 'rgb16.png'), 'uint8']),
    'truncated RGB file': Case(
        ValueError, lambda t, m: load_rgbd(
            _truncated_png(t / 'rgb.png', np.tile(RGB, (8, 8, 1))),
            t / 'rgb.png'),
        lambda t: [str(t / 'rgb.png'), 'could not be decoded']),
    'truncated label PNG (pillow)': Case(
        ValueError, lambda t, m: LoadRGBDAnnotations(
            num_classes=5, imdecode_backend='pillow')(_label_sample(t)),
        lambda t: [str(t / 'label.png'), 'could not be decoded']),
    'truncated label PNG (cv2)': Case(
        ValueError, lambda t, m: LoadRGBDAnnotations(
            num_classes=5, imdecode_backend='cv2')(_label_sample(t)),
        lambda t: [str(t / 'label.png'), 'could not be decoded']),
    'sample without seg_map_path': Case(
        KeyError, lambda t, m: LoadRGBDAnnotations(num_classes=5)(dict(
            img_path=str(t / 'a.png'), reduce_zero_label=False,
            seg_fields=[])),
        lambda t: [str(t / 'a.png'), 'no seg_map_path', 'needs label maps']),
}

# -- arrays through mmseg's inference_model --------------------------------
_COLOUR = 'RGB-D array colour channels'
_DEPTH_CH = 'RGB-D array depth channel'


def _infer(array: np.ndarray) -> Callable:
    from mmseg.apis import inference_model
    return lambda t, m: inference_model(m, array)


ARRAY_CASES = {
    'RGB-D float colours in 0..1': Case(
        ValueError, _infer(_rgbd(RGB / 255.)),
        lambda t: [_COLOUR, '0..255 integers']),
    'RGB-D uint16 colours above 255': Case(
        ValueError, _infer(_rgbd(RGB.astype(np.uint16) * 200,
                                 dtype=np.uint16)),
        lambda t: [_COLOUR, '0..255 integers']),
    'RGB-D NaN colour': Case(
        ValueError, _infer(_rgbd(_with_non_finite(RGB, np.nan))),
        lambda t: [_COLOUR, '0..255 integers']),
    'RGB-D all uint8 (8-bit depth)': Case(
        ValueError, _infer(_rgbd(dtype=np.uint8)),
        lambda t: [_DEPTH_CH, '8-bit', '16-bit depth']),
    'RGB-D bool': Case(ValueError, _infer(_rgbd(dtype=bool)),
                       lambda t: ['RGB-D array', 'dtype bool', 'numbers']),
    'RGB-D object': Case(ValueError, _infer(_rgbd(dtype=object)),
                         lambda t: ['RGB-D array', 'dtype object']),
    'RGB-D string': Case(ValueError, _infer(_rgbd(dtype=str)),
                         lambda t: ['RGB-D array', 'dtype <U']),
    'RGB-D NaN depth': Case(
        ValueError, _infer(_rgbd(depth=_with_non_finite(DEPTH, np.nan))),
        lambda t: [_DEPTH_CH, '1 non-finite value']),
    'RGB-D inf depth': Case(
        ValueError, _infer(_rgbd(depth=_with_non_finite(DEPTH, -np.inf))),
        lambda t: [_DEPTH_CH, 'non-finite']),
    'RGB-D three channels': Case(
        ValueError, _infer(RGB.astype(np.float32)),
        lambda t: ['RGB-D array', '(H, W, 4)']),
}

# -- arrays through LoadRGBDFromNDArray (colour and depth given apart) ------
_RGB_ARR = 'RGB array (results["img"])'
_DEPTH_ARR = 'depth array (results["depth"])'


def _load(rgb: np.ndarray, depth: np.ndarray, **kwargs) -> Callable:
    return lambda t, m: LoadRGBDFromNDArray(**kwargs)(dict(img=rgb,
                                                           depth=depth))


PAIR_CASES = {
    'RGB float': Case(ValueError, _load(RGB / 255., DEPTH),
                      lambda t: [_RGB_ARR, 'uint8', 'float64']),
    'RGB uint16': Case(ValueError, _load(RGB.astype(np.uint16), DEPTH),
                       lambda t: [_RGB_ARR, 'uint8', 'uint16']),
    'depth uint8': Case(ValueError, _load(RGB, DEPTH.astype(np.uint8)),
                        lambda t: [_DEPTH_ARR, '8-bit', '16-bit depth']),
    'depth bool': Case(ValueError, _load(RGB, DEPTH > 0),
                       lambda t: [_DEPTH_ARR, 'dtype bool', 'integers']),
    'depth object': Case(ValueError, _load(RGB, DEPTH.astype(object)),
                         lambda t: [_DEPTH_ARR, 'dtype object']),
    'depth string': Case(ValueError, _load(RGB, DEPTH.astype(str)),
                         lambda t: [_DEPTH_ARR, 'dtype <U']),
    'depth NaN': Case(ValueError,
                      _load(RGB, _with_non_finite(DEPTH, np.nan)),
                      lambda t: [_DEPTH_ARR, 'non-finite']),
    'depth two channels': Case(ValueError,
                               _load(RGB, np.dstack([DEPTH, DEPTH])),
                               lambda t: [_DEPTH_ARR, 'single-channel']),
}

# -- channel_order on every path -------------------------------------------
ORDER_CASES = {
    'channel_order of init_model': Case(
        ValueError, lambda t, m: init_model(CONFIG, channel_order='RGB'),
        lambda t: ['channel_order', "('bgr', 'rgb')", "'RGB'"]),
    'channel_order of load_rgbd (files)': Case(
        ValueError, lambda t, m: load_rgbd('a.png', 'b.png',
                                           channel_order='xyz'),
        lambda t: ['channel_order', "('bgr', 'rgb')", "'xyz'"]),
    'channel_order of LoadRGBDFromNDArray': Case(
        ValueError, lambda t, m: LoadRGBDFromNDArray(channel_order='BGR'),
        lambda t: ['LoadRGBDFromNDArray: channel_order', "'BGR'"]),
    'channel_order of rgbd_inference_pipeline': Case(
        ValueError, lambda t, m: rgbd_inference_pipeline(m.cfg, 'bgra'),
        lambda t: ['channel_order', "'bgra'"]),
}


# -- checkpoints -----------------------------------------------------------
def _foreign_checkpoint(tmp_path: Path) -> str:
    path = str(tmp_path / 'other_arch.pth')
    torch.save(dict(state_dict={'backbone.conv1.weight': torch.zeros(1),
                                'head.fc.weight': torch.zeros(3)}), path)
    return path


CHECKPOINT_CASES = {
    'init_model with another architecture': Case(
        RuntimeError,
        lambda t, m: init_model(CONFIG, _foreign_checkpoint(t)),
        lambda t: [str(t / 'other_arch.pth'), 'does not fit',
                   'missing', 'shape mismatch', 'strict=False']),
}


# -- combinations ----------------------------------------------------------
def _config() -> Config:
    return Config.fromfile(str(CONFIG))


def _plain_encoder_decoder(backbone: dict) -> dict:
    return dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor'),
        backbone=backbone,
        decode_head=dict(
            type='FCNHead', in_channels=32, channels=8, num_convs=1,
            num_classes=5, in_index=3))


_EXCHANGE_RESNET = dict(
    type='ResNetV1c', depth=18, stem_channels=8, base_channels=4,
    norm_cfg=dict(type='ExchangeBN', num_streams=2))
_CEN_RESNET = dict(type='CENResNet', depth=50, num_streams=2,
                   stem_channels=8, base_channels=2)


def _build_runner(tmp_path: Path, **model_changes):
    cfg = _config()
    cfg.model = _plain_encoder_decoder(**model_changes)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = f'sweep_{tmp_path.name}'
    cfg.custom_hooks = []
    return build_runner(cfg)


def _hook_runner(model_cfg: dict, scope: str = 'mmseg'):
    from cen_engine_toy import fake_runner
    from mmengine.registry import MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(model_cfg)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    return fake_runner(model, wrapper)


def _cen_model_cfg(**changes) -> dict:
    cfg = copy.deepcopy(_config().model.to_dict())
    cfg.update(changes)
    return cfg


def _multi_flow_cfg(**changes) -> dict:
    cfg = Config.fromfile(str(MULTI_FLOW)).model.to_dict()
    cfg['generator'].update(num_down=5, base_channels=4)
    cfg['discriminator']['base_channels'] = 4
    cfg.update(changes)
    return cfg


def _pix2pix_cfg(**changes) -> dict:
    cfg = dict(
        type='CENPix2Pix', source_domains=['rgb', 'normal'],
        target_domain='shade',
        data_preprocessor=dict(type='DataPreprocessor', data_keys=None),
        generator=dict(type='CENUnetGenerator', num_down=5, base_channels=4),
        discriminator=dict(type='PatchDiscriminator', in_channels=6,
                           base_channels=4, num_conv=2))
    cfg.update(changes)
    return cfg


def _plain_pix2pix() -> dict:
    return dict(
        type='Pix2Pix',
        data_preprocessor=dict(type='DataPreprocessor'),
        generator=dict(type='CENUnetGenerator', num_streams=2, num_down=5,
                       base_channels=4),
        discriminator=dict(type='PatchDiscriminator', in_channels=6,
                           base_channels=4, num_conv=2),
        default_domain='shade', reachable_domains=['shade'],
        related_domains=['shade', 'rgb'])


def _num_classes_cfg(key: str, value: int) -> Config:
    cfg = _config()
    if key == 'auxiliary_head':
        cfg.model.auxiliary_head = dict(copy.deepcopy(cfg.model.decode_head),
                                        num_classes=value)
    else:
        cfg.model.decode_head.num_classes = value
    return cfg


def _build_model(model_cfg: dict):
    from mmseg.registry import MODELS
    return MODELS.build(model_cfg)


COMBINATION_CASES = {
    'ExchangeBN in a plain EncoderDecoder (tools)': Case(
        TypeError, lambda t, m: _build_runner(t, backbone=_EXCHANGE_RESNET),
        lambda t: ['EncoderDecoder does not fold streams', 'backbone.stem.1',
                   'ExchangeBN', "type='CENEncoderDecoder'"]),
    'CEN backbone in a plain EncoderDecoder (tools)': Case(
        TypeError, lambda t, m: _build_runner(t, backbone=_CEN_RESNET),
        lambda t: ['EncoderDecoder does not fold streams', 'backbone (',
                   'CENResNet', 'num_streams=2']),
    'ExchangeBN in a plain EncoderDecoder (GammaSparsityHook)': Case(
        TypeError, lambda t, m: GammaSparsityHook(lam=1e-3).before_train(
            _hook_runner(_plain_encoder_decoder(_EXCHANGE_RESNET))),
        lambda t: ['EncoderDecoder does not fold streams', 'ExchangeBN']),
    'CEN generator in a plain Pix2Pix (GammaSparsityHook)': Case(
        TypeError, lambda t, m: GammaSparsityHook(lam=1e-3).before_train(
            _hook_runner(_plain_pix2pix(), 'mmagic')),
        lambda t: ['Pix2Pix does not fold streams', 'generators.shade (',
                   'CENUnetGenerator, num_streams=2', 'CENPix2Pix']),
    'norm type unknown to the scope (tools)': Case(
        KeyError, lambda t, m: _build_runner(t, backbone=dict(
            _EXCHANGE_RESNET, norm_cfg=dict(type='ExchangBN'))),
        lambda t: ["model.backbone.norm_cfg.type='ExchangBN'", "'mmseg'",
                   'custom_imports']),
    'plain SegDataPreProcessor in CENEncoderDecoder': Case(
        TypeError, lambda t, m: _build_model(_cen_model_cfg(
            data_preprocessor=dict(type='SegDataPreProcessor',
                                   mean=[0, 0, 0], std=[1, 1, 1]))),
        lambda t: ['model.data_preprocessor is SegDataPreProcessor',
                   "type='CENSegDataPreProcessor'"]),
    'backbone in_channels = the stacked channels': Case(
        ValueError, lambda t, m: _build_model(_cen_model_cfg(
            backbone=dict(_config().model.backbone, in_channels=6))),
        lambda t: ['backbone in_channels=6', 'stream_channels (3, 3)',
                   'backbone.in_channels=3']),
    'removed option fold_inputs': Case(
        TypeError, lambda t, m: _build_model(_cen_model_cfg(
            fold_inputs=False)),
        lambda t: ['fold_inputs']),
    'GammaSparsityHook + slim_loss_weight (segmentor)': Case(
        ValueError, lambda t, m: GammaSparsityHook(lam=6e-4).before_train(
            _hook_runner(_cen_model_cfg(slim_loss_weight=6e-4))),
        lambda t: ['model.slim_loss_weight=0.0006', 'GammaSparsityHook',
                   'applied twice']),
    'GammaSparsityHook + slim_loss_weight (translation)': Case(
        ValueError, lambda t, m: GammaSparsityHook(lam=1e-3).before_train(
            _hook_runner(_pix2pix_cfg(slim_loss_weight=1e-3), 'mmagic')),
        lambda t: ['model.slim_loss_weight=0.001', 'applied twice']),
    'GammaSparsityHook + slim_loss_weight (multi-flow translation)': Case(
        ValueError, lambda t, m: GammaSparsityHook(lam=1e-3).before_train(
            _hook_runner(_multi_flow_cfg(slim_loss_weight=1e-3), 'mmagic')),
        lambda t: ['model.slim_loss_weight=0.001', 'applied twice']),
    'decode_head.num_classes below the dataset classes': Case(
        ValueError, lambda t, m: check_num_classes(
            _num_classes_cfg('decode_head', 3)),
        lambda t: ['model.decode_head.num_classes=3',
                   'train_dataloader.dataset (SyntheticRGBDDataset) has 5 '
                   'classes', 'num_classes=5']),
    'decode_head.num_classes above the dataset classes': Case(
        ValueError, lambda t, m: check_num_classes(
            _num_classes_cfg('decode_head', 7)),
        lambda t: ['model.decode_head.num_classes=7', 'has 5 classes']),
    'auxiliary_head.num_classes differs': Case(
        ValueError, lambda t, m: check_num_classes(
            _num_classes_cfg('auxiliary_head', 4)),
        lambda t: ['model.auxiliary_head.num_classes=4', 'has 5 classes']),
}

CASES = {
    **FILE_CASES,
    **ARRAY_CASES,
    **PAIR_CASES,
    **ORDER_CASES,
    **CHECKPOINT_CASES,
    **COMBINATION_CASES
}


@pytest.mark.parametrize('name', list(CASES))
def test_bad_input_is_a_clear_error(name, tmp_path, model):
    case = CASES[name]
    with pytest.raises(case.error) as info:
        case.run(tmp_path, model)
    message = str(info.value)
    for expected in case.names(tmp_path):
        assert expected in message, (expected, message)


# -- the good paths still work ---------------------------------------------
def test_sweep_counts():
    """docs/engine.md's sweep table counts these cases."""
    assert len(CASES) == 56


def test_finite_float_depth_file_loads(tmp_path):
    out = LoadRGBDFromFile()(_depth_file(tmp_path, DEPTH.astype(np.float32),
                                         'ok.tiff'))
    assert out['img'].shape == (H, W, 6)
    np.testing.assert_array_equal(out['img'][..., 3:], 5000)
    np.testing.assert_array_equal(out['img'][..., :3], RGB)


def test_channel_order_rgb_equals_bgr_flipped(tmp_path):
    """The same pair given as R, G, B with channel_order='rgb' stacks to
    exactly what the B, G, R pair gives (files, arrays, RGB-D arrays)."""
    bgr = LoadRGBDFromNDArray()(dict(img=RGB, depth=DEPTH))['img']
    rgb = LoadRGBDFromNDArray(channel_order='rgb')(
        dict(img=RGB[..., ::-1], depth=DEPTH))['img']
    np.testing.assert_array_equal(rgb, bgr)
    rgbd = LoadRGBDFromNDArray(channel_order='rgb')(
        dict(img=_rgbd(RGB[..., ::-1])))['img']
    np.testing.assert_array_equal(rgbd, bgr)
    files = _depth_file(tmp_path, DEPTH, 'd.png')
    from_files = load_rgbd(files['img_path'], files['depth_path'],
                           channel_order='rgb')
    np.testing.assert_array_equal(from_files[..., :3], RGB[..., ::-1])
    np.testing.assert_array_equal(from_files[..., 3], DEPTH)


def test_init_model_loads_strictly_or_partially_on_request(tmp_path, model):
    # A checkpoint of the model itself loads strictly, every weight equal.
    path = str(tmp_path / 'own.pth')
    state = {k: v + 1 if v.is_floating_point() else v
             for k, v in model.state_dict().items()}
    torch.save(dict(state_dict=state, meta=dict(dataset_meta=dict(
        classes=tuple('abcde'), palette=[[i, i, i] for i in range(5)]))),
               path)
    loaded = init_model(CONFIG, path)
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert loaded.dataset_meta['classes'] == tuple('abcde')
    # A foreign one loads only with strict=False (partial on purpose).
    partial = init_model(CONFIG, _foreign_checkpoint(tmp_path), strict=False)
    assert not partial.training
    assert len(partial.dataset_meta['classes']) == 5


def test_stream_declaring_models_pass_the_host_check(model):
    check_stream_host(model)
    # multi-flow translation: stream_names is a method there
    runner = _hook_runner(_multi_flow_cfg(slim_loss_weight=0.), 'mmagic')
    hook = GammaSparsityHook(lam=1e-3)
    hook.before_train(runner)
    assert hook.layers and hook.stream_names is None
    hook.remove()
    # a plain model with stock norms is fine
    check_stream_host(_build_model(_plain_encoder_decoder(
        dict(_EXCHANGE_RESNET, norm_cfg=dict(type='BN')))))


def test_shipped_seg_configs_pass_the_num_classes_check():
    for path in sorted((REPO / 'configs' / 'cen').glob('*.py')):
        check_num_classes(Config.fromfile(str(path)))


def test_tools_import_the_scope_plugin_despite_custom_imports(monkeypatch):
    """A config with custom_imports of its own still gets cen_mm's modules
    for its scope (it used to fail with "Cannot find None in registry")."""
    from cen_mm.engine import launch
    imported = []
    monkeypatch.setattr(launch.importlib, 'import_module', imported.append)
    launch._import_scope_plugin(Config(dict(
        default_scope='mmseg', custom_imports=dict(imports=['my_module']))))
    launch._import_scope_plugin(Config(dict(default_scope='mmagic')))
    assert imported == ['cen_mm.seg', 'cen_mm.gen']
