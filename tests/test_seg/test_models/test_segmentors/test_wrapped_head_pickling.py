# Copyright (c) cen_mm contributors. All rights reserved.
"""Models whose heads were made multi-stream by ``multi_stream_head`` pickle,
deep-copy and load (also where the generated class does not exist yet) with
equal outputs; the generated classes have stable qualified names."""
import copy
import importlib
import pickle

import pytest
import torch
from mmengine.registry import DefaultScope
from mmseg.models.decode_heads import DepthwiseSeparableASPPHead, FCNHead
from mmseg.registry import MODELS

import cen_mm.seg  # noqa: F401
from cen_mm.seg.models.decode_heads import multi_stream_head

# The module (the package attribute of that name is the function).
MSH = 'cen_mm.seg.models.decode_heads.multi_stream_head'
msh_module = importlib.import_module(MSH)
BN = dict(type='SyncBN', requires_grad=True)


def _model():
    cfg = dict(
        type='CENEncoderDecoder',
        data_preprocessor=dict(
            type='CENSegDataPreProcessor', stream_channels=(3, 1),
            mean=[120., 110., 100., 0.], std=[60., 60., 60., 5000.]),
        stream_names=('rgb', 'depth'),
        backbone=dict(type='CENResNet', depth=50, stem_channels=8,
                      base_channels=4, out_indices=(0, 1, 2, 3)),
        # DeepLabV3+ with its FCN auxiliary head, the two generated classes.
        decode_head=dict(
            type='DepthwiseSeparableASPPHead', in_channels=128, in_index=3,
            channels=8, dilations=(1, 2), c1_in_channels=16, c1_channels=4,
            dropout_ratio=0.1, num_classes=5, norm_cfg=BN),
        auxiliary_head=dict(
            type='FCNHead', in_channels=64, in_index=2, channels=8,
            num_convs=1, concat_input=False, dropout_ratio=0.1,
            num_classes=5, norm_cfg=BN, loss_decode=dict(
                type='CrossEntropyLoss', loss_weight=0.4)),
        test_cfg=dict(mode='whole'))
    with DefaultScope.overwrite_default_scope('mmseg'):
        torch.manual_seed(0)
        model = MODELS.build(cfg)
        model.init_weights()
    # Non-trivial per-stream norm states and ensemble weights.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if 'ensemble' in name or '.streams.' in name:
                p.uniform_(-1., 1.)
        for name, buf in model.named_buffers():
            if name.endswith('running_var'):
                buf.uniform_(0.5, 2.)
            elif name.endswith('running_mean'):
                buf.normal_()
    return model.eval()


def _predict(model):
    x = torch.rand(2, 4, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model(x, mode='tensor')


def _assert_same_model(copied, model):
    assert type(copied.decode_head) is type(model.decode_head)
    assert type(copied.auxiliary_head) is type(model.auxiliary_head)
    state, copied_state = model.state_dict(), copied.state_dict()
    assert list(copied_state) == list(state)
    for key, value in state.items():
        assert torch.equal(copied_state[key], value), key
    out = _predict(model)
    assert out.shape == (3 * 2, 5, 8, 8)  # rgb, depth, ens blocks (1/4)
    torch.testing.assert_close(_predict(copied), out, atol=1e-6, rtol=0)
    # Training still works on the copy (gradients reach the shared convs).
    copied.train()
    copied.decode_head.conv_seg.weight.grad = None
    copied(torch.rand(2, 4, 32, 32), mode='tensor').sum().backward()
    assert copied.decode_head.conv_seg.weight.grad.abs().sum() > 0


def test_generated_heads_have_stable_qualified_names():
    for head in (FCNHead, DepthwiseSeparableASPPHead):
        cls = multi_stream_head(head)
        assert cls.__module__ == MSH
        assert cls.__qualname__ == f'CEN{head.__name__}'
        assert getattr(msh_module, cls.__qualname__) is cls
        assert pickle.loads(pickle.dumps(cls)) is cls
    # Resolved on first use, before any model asked for it.
    from cen_mm.seg.models.decode_heads.multi_stream_head import \
        CENSegformerHead
    assert CENSegformerHead is multi_stream_head(MODELS.get('SegformerHead'))
    # Hand-written heads keep their own module; unknown names fail.
    for name in ('CENPSPHead', 'CENNoSuchHead', 'FCNHead'):
        with pytest.raises(AttributeError, match=name):
            getattr(msh_module, name)


@pytest.mark.parametrize('how', ['pickle', 'deepcopy', 'torch.save'])
def test_model_with_generated_heads_round_trip(how, tmp_path):
    model = _model()
    assert type(model.decode_head).__qualname__ == \
        'CENDepthwiseSeparableASPPHead'
    if how == 'pickle':
        copied = pickle.loads(pickle.dumps(model))
    elif how == 'deepcopy':
        copied = copy.deepcopy(model)
    else:
        torch.save(model, tmp_path / 'model.pth')
        copied = torch.load(tmp_path / 'model.pth', weights_only=False)
    _assert_same_model(copied, model)


def test_unpickled_in_a_process_without_the_generated_class(monkeypatch):
    """A fresh process has not generated ``CENFCNHead``: unpickling makes
    it from the stock head named in the pickle."""
    model = _model()
    data = pickle.dumps(model)
    assert b'_new_multi_stream_head' in data
    monkeypatch.setattr(msh_module, '_MULTI_STREAM_HEADS', {})
    copied = pickle.loads(data)
    fresh = type(copied.auxiliary_head)
    assert fresh is not type(model.auxiliary_head)
    assert fresh is multi_stream_head(FCNHead)
    assert fresh.__qualname__ == 'CENFCNHead'
    torch.testing.assert_close(_predict(copied), _predict(model), atol=1e-6,
                               rtol=0)


def test_subclass_of_generated_head_pickles_as_itself():
    head = _Subclassed(in_channels=8, channels=4, num_convs=1,
                       num_classes=3, norm_cfg=BN)
    copied = pickle.loads(pickle.dumps(head))
    assert type(copied) is _Subclassed
    x = [torch.rand(4, 8, 6, 6)]
    head.eval(), copied.eval()
    with torch.no_grad():
        torch.testing.assert_close(copied(x), head(x), atol=0, rtol=0)


class _Subclassed(multi_stream_head(FCNHead)):
    """A user's subclass of a generated class (module-level, picklable)."""
