# Copyright (c) cen_mm contributors. All rights reserved.
import copy

import pytest
import torch
from cen_engine_toy import CENToyExchangeNet, CENToyGAN, fake_runner
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.registry import HOOKS

from cen_mm.cnn import exchange_norms
from cen_mm.engine import GammaSparsityHook, sparsity_loss, unwrap_model

LAM = 0.05
LR = 0.1


def make_model(seed: int = 0, **kwargs) -> CENToyExchangeNet:
    """Toy model with signed, partly tiny γ (so sign and exchange matter)."""
    torch.manual_seed(seed)
    model = CENToyExchangeNet(**kwargs)
    gen = torch.Generator().manual_seed(seed + 1)
    for _, layer in exchange_norms(model):
        for norm in layer.streams:
            gamma = torch.randn(norm.weight.shape, generator=gen)
            gamma[0] = 0.0  # |γ|' = 0 at 0: no L1 update there
            gamma[1] = 0.01  # below θ: exchanged
            norm.weight.data.copy_(gamma)
    return model


def make_batch(n: int = 4, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    return dict(
        inputs=torch.randn(n, 6, 8, 8, generator=gen),
        data_samples=torch.randn(n, 3, generator=gen))


def install(model, optim_wrapper, **kwargs) -> GammaSparsityHook:
    hook = GammaSparsityHook(lam=kwargs.pop('lam', LAM), **kwargs)
    hook.before_train(fake_runner(model, optim_wrapper))
    return hook


def loss_term_step(model, optim_wrapper, batch, lam=LAM) -> None:
    losses = model(**model.data_preprocessor(batch, True), mode='loss')
    loss, _ = model.parse_losses(losses)
    optim_wrapper.update_params(loss + lam * sparsity_loss(model))


def l1_expected(model) -> dict:
    """-lr·λ·sign(γ)·mask for every γ, keyed by parameter name."""
    out = {}
    for name, layer in exchange_norms(model):
        for m, norm in enumerate(layer.streams):
            out[f'{name}.streams.{m}.weight'] = -LR * LAM * torch.sign(
                norm.weight.detach()) * layer.sparsity_mask[m]
    return out


def test_registered_in_root_hooks():
    hook = HOOKS.build(dict(type='GammaSparsityHook', lam=6e-4))
    assert isinstance(hook, GammaSparsityHook) and hook.lam == 6e-4


@pytest.mark.parametrize('scope', ['mmseg', 'mmagic'])
def test_built_from_host_scopes(scope):
    registry = pytest.importorskip(f'{scope}.registry')
    hook = registry.HOOKS.build(dict(type='GammaSparsityHook', lam=1e-3))
    assert isinstance(hook, GammaSparsityHook) and hook.lam == 1e-3


def test_bad_arguments_and_no_exchange_norm():
    with pytest.raises(ValueError, match='lam'):
        GammaSparsityHook(lam=-1)
    with pytest.raises(ValueError, match='interval'):
        GammaSparsityHook(lam=1e-3, interval=0)
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1),
                                torch.nn.BatchNorm2d(3))
    wrapper = OptimWrapper(torch.optim.SGD(plain.parameters(), lr=0.1))
    with pytest.raises(RuntimeError, match='no exchanging norm'):
        install(plain, wrapper)


def test_sparsity_loss_value_and_ddp_style_wrapper():
    model = make_model()
    expected = sum(
        (norm.weight.abs() * layer.sparsity_mask[m]).sum()
        for _, layer in exchange_norms(model)
        for m, norm in enumerate(layer.streams))
    assert torch.allclose(sparsity_loss(model), expected)
    # Wrappers registered in mmengine MODEL_WRAPPERS are unwrapped.
    wrapped = torch.nn.DataParallel(model)
    assert unwrap_model(wrapped) is model
    assert torch.allclose(sparsity_loss(wrapped), expected)
    assert float(sparsity_loss(torch.nn.Linear(2, 2))) == 0.0


def test_hook_equals_loss_term_with_sgd():
    model_hook = make_model()
    model_loss = copy.deepcopy(model_hook)
    model_plain = copy.deepcopy(model_hook)
    batch = make_batch()
    wrappers = [
        OptimWrapper(torch.optim.SGD(m.parameters(), lr=LR))
        for m in (model_hook, model_loss, model_plain)
    ]
    expected_l1 = l1_expected(model_hook)
    hook = install(model_hook, wrappers[0])

    model_hook.train_step(batch, wrappers[0])
    loss_term_step(model_loss, wrappers[1], batch)
    model_plain.train_step(batch, wrappers[2])
    assert hook.num_steps['optimizer'] == 1

    hook_params = dict(model_hook.named_parameters())
    loss_params = dict(model_loss.named_parameters())
    plain_params = dict(model_plain.named_parameters())
    for name, param in hook_params.items():
        torch.testing.assert_close(
            param, loss_params[name], atol=1e-6, rtol=0)
        delta = param.detach() - plain_params[name].detach()
        if name in expected_l1:
            # L1 moved exactly the masked entries by lr·λ·sign(γ) (0 at γ=0).
            torch.testing.assert_close(
                delta, expected_l1[name], atol=1e-6, rtol=0)
            assert bool((delta[~expected_l1[name].ne(0)] == 0).all())
        else:
            assert bool((delta == 0).all()), name
    # At least one entry of each kind was exercised.
    masks = torch.cat([v.flatten() for v in expected_l1.values()])
    assert bool((masks > 0).any() and (masks < 0).any() and
                (masks == 0).any())

    hook.after_train(None)
    before = {k: v.detach().clone() for k, v in hook_params.items()}
    for p in model_hook.parameters():
        p.grad = torch.zeros_like(p)
    wrappers[0].step()
    for name, param in model_hook.named_parameters():
        assert torch.equal(param, before[name]), 'hook not removed'


def test_grad_created_when_none():
    model = make_model()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=LR))
    install(model, wrapper)
    expected = l1_expected(model)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    wrapper.step()  # no backward: every grad is None
    for name, param in model.named_parameters():
        delta = param.detach() - before[name]
        target = expected.get(name, torch.zeros_like(delta))
        torch.testing.assert_close(delta, target, atol=1e-7, rtol=0)


def _amp_step(model, optimizer, scaler, batch, lam_in_loss=0.0, scale=1.0):
    losses = model(**batch, mode='loss')
    loss, _ = model.parse_losses(losses)
    loss = loss * scale + lam_in_loss * sparsity_loss(model)
    optimizer.zero_grad()
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


def test_amp_grad_scaler_is_unscaled_before_l1():
    batch = make_batch()
    model = make_model()
    reference = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=LR)
    hook = install(model, OptimWrapper(opt))
    expected = l1_expected(model)
    scaler = torch.amp.GradScaler('cpu', init_scale=1024)
    ref_scaler = torch.amp.GradScaler('cpu', init_scale=1024)

    # Zero data loss: the update is the L1 part alone, λ (not λ / 1024).
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    _amp_step(model, opt, scaler, batch, scale=0.0)
    for name, param in model.named_parameters():
        delta = param.detach() - before[name]
        target = expected.get(name, torch.zeros_like(delta))
        torch.testing.assert_close(delta, target, atol=1e-7, rtol=0)
    assert hook.num_steps['optimizer'] == 1

    # With a real loss it equals the loss term run through a GradScaler.
    _amp_step(reference, ref_opt, ref_scaler, batch, scale=0.0,
              lam_in_loss=LAM)
    _amp_step(model, opt, scaler, batch)
    _amp_step(reference, ref_opt, ref_scaler, batch, lam_in_loss=LAM)
    for (name, p), q in zip(model.named_parameters(),
                            reference.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=0, msg=name)

    # A step skipped for inf gradients adds nothing.
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    _amp_step(model, opt, scaler, batch, scale=float('inf'))
    assert hook.num_steps['optimizer'] == 2
    for name, param in model.named_parameters():
        assert torch.equal(param, before[name]), name


def test_gradient_accumulation_fires_once_per_update():
    model_hook = make_model()
    model_loss = copy.deepcopy(model_hook)
    wrap_hook = OptimWrapper(
        torch.optim.SGD(model_hook.parameters(), lr=LR),
        accumulative_counts=2)
    wrap_loss = OptimWrapper(
        torch.optim.SGD(model_loss.parameters(), lr=LR),
        accumulative_counts=2)
    wrap_hook.initialize_count_status(model_hook, 0, 4)
    wrap_loss.initialize_count_status(model_loss, 0, 4)
    hook = install(model_hook, wrap_hook)
    for i in range(4):
        batch = make_batch(seed=i)
        model_hook.train_step(batch, wrap_hook)
        loss_term_step(model_loss, wrap_loss, batch)
    assert hook.num_steps['optimizer'] == 2
    for (name, p), q in zip(model_hook.named_parameters(),
                            model_loss.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=0, msg=name)


def test_optim_wrapper_dict_penalises_only_owned_gamma():
    model = CENToyGAN()
    wrappers = OptimWrapperDict(
        generators=OptimWrapper(
            torch.optim.SGD(model.generator.parameters(), lr=LR)),
        discriminators=OptimWrapper(
            torch.optim.SGD(model.discriminator.parameters(), lr=LR)))
    hook = install(model, wrappers)

    def gammas(module):
        return torch.cat([
            layer.gamma.detach().flatten()
            for _, layer in exchange_norms(module)
        ])

    def l1_step(module):
        out = torch.cat([
            (-LR * LAM * torch.sign(layer.gamma.detach()) *
             layer.sparsity_mask).flatten()
            for _, layer in exchange_norms(module)
        ])
        return out

    g0, d0 = gammas(model.generator), gammas(model.discriminator)
    d_expected = l1_step(model.discriminator)
    wrappers['discriminators'].step()  # grads None: pure L1 update
    torch.testing.assert_close(gammas(model.generator), g0)
    torch.testing.assert_close(
        gammas(model.discriminator) - d0, d_expected, atol=1e-7, rtol=0)

    d1 = gammas(model.discriminator)
    g_expected = l1_step(model.generator)
    wrappers['generators'].step()
    torch.testing.assert_close(gammas(model.discriminator), d1)
    torch.testing.assert_close(
        gammas(model.generator) - g0, g_expected, atol=1e-7, rtol=0)
    assert hook.num_steps == {'generators': 1, 'discriminators': 1}


def test_logged_statistics():
    model = make_model(threshold=0.5)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=LR))
    runner = fake_runner(model, wrapper, max_iters=10)
    hook = GammaSparsityHook(
        lam=LAM, interval=3, log_per_layer=True, stream_names=['rgb', 'd'])
    hook.before_train(runner)

    below = total = 0
    exchanged = torch.zeros(2)
    channels = 0
    for _, layer in exchange_norms(model):
        small = layer.gamma.detach().abs() < 0.5
        below += int((small & layer.sparsity_mask).sum())
        total += int(layer.sparsity_mask.sum())
        exchanged += small.sum(dim=1).float()  # exchange_scope='any'
        channels += layer.num_features

    runner.iter = 0  # (iter + 1) % 3 != 0: nothing logged
    hook.after_train_iter(runner, 0)
    assert 'train/gamma_below_thr' not in runner.message_hub.log_scalars
    runner.iter = 2
    hook.after_train_iter(runner, 2)
    scalars = runner.message_hub.log_scalars
    assert scalars['train/gamma_below_thr'].current() == pytest.approx(
        below / total)
    assert 0 < below < total
    assert scalars['train/exchanged_rgb'].current() == pytest.approx(
        float(exchanged[0]) / channels)
    assert scalars['train/exchanged_d'].current() == pytest.approx(
        float(exchanged[1]) / channels)
    for key in ('gamma_below_thr/norm1', 'gamma_below_thr/norm2',
                'exchanged_rgb/norm1', 'exchanged_d/norm2'):
        assert f'train/{key}' in scalars
