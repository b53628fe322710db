"""The older hook-based ``nn.utils.weight_norm`` and ``nn.utils.spectral_norm`` against PyTorch."""

import numpy as np
import pytest
import torch

import dtorch


def _state(module):
    return {k: dtorch.from_numpy(v.detach().numpy().copy()) for k, v in module.state_dict().items()}


def _run(module, library, x):
    module.zero_grad()
    out = module(library.tensor(x))
    (out ** 2).sum().backward()
    return out.detach().numpy(), {n: p.grad.numpy() for n, p in module.named_parameters()}


@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_hook_matches_torch(dim):
    x = np.random.default_rng(0).standard_normal((2, 4))
    with pytest.warns(FutureWarning, match="deprecated in favor of"):
        theirs = torch.nn.utils.weight_norm(torch.nn.Linear(4, 3).double(), dim=dim)
    with pytest.warns(FutureWarning, match="deprecated in favor of"):
        ours = dtorch.nn.utils.weight_norm(dtorch.nn.Linear(4, 3).double(), dim=dim)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    ours.load_state_dict(_state(theirs))
    (out_ours, grads_ours), (out_theirs, grads_theirs) = _run(ours, dtorch, x), _run(theirs, torch, x)
    np.testing.assert_allclose(out_ours, out_theirs, rtol=1e-10)
    for name, grad in grads_theirs.items():
        np.testing.assert_allclose(grads_ours[name], grad, rtol=1e-9, err_msg=name)
    dtorch.nn.utils.remove_weight_norm(ours)
    torch.nn.utils.remove_weight_norm(theirs)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict()) == ["bias", "weight"]
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=1e-10)
    with pytest.raises(ValueError, match="weight_norm of 'weight' not found"):
        dtorch.nn.utils.remove_weight_norm(ours)


def test_weight_norm_twice_is_an_error():
    with pytest.warns(FutureWarning):
        m = dtorch.nn.utils.weight_norm(dtorch.nn.Linear(2, 2))
        with pytest.raises(RuntimeError, match="Cannot register two weight_norm hooks"):
            dtorch.nn.utils.weight_norm(m)


@pytest.mark.parametrize("make", [lambda L: L.nn.Linear(5, 3).double(), lambda L: L.nn.Conv2d(2, 3, 3).double(),
                                  lambda L: L.nn.ConvTranspose2d(2, 3, 2).double()])
def test_spectral_norm_hook_matches_torch(make):
    theirs = torch.nn.utils.spectral_norm(make(torch), n_power_iterations=2)
    ours = dtorch.nn.utils.spectral_norm(make(dtorch), n_power_iterations=2)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    ours.load_state_dict(_state(theirs))
    x_shape = (2, 5) if isinstance(theirs, torch.nn.Linear) else (1, 2, 5, 5)
    x = np.random.default_rng(1).standard_normal(x_shape)
    for step in range(2):
        (out_ours, grads_ours), (out_theirs, grads_theirs) = _run(ours, dtorch, x), _run(theirs, torch, x)
        np.testing.assert_allclose(out_ours, out_theirs, rtol=1e-8, err_msg=f"step {step}")
        for name, grad in grads_theirs.items():
            np.testing.assert_allclose(grads_ours[name], grad, rtol=1e-7, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(ours.weight_u.numpy(), theirs.weight_u.numpy(), rtol=1e-8)
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(_run(ours, dtorch, x)[0], _run(theirs, torch, x)[0], rtol=1e-8)
    dtorch.nn.utils.remove_spectral_norm(ours)
    torch.nn.utils.remove_spectral_norm(theirs)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=1e-8)
