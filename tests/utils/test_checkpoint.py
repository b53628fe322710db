"""Activation checkpointing gives the gradients of the plain run (and of PyTorch's checkpoint), dropout included."""

import numpy as np
import pytest
import torch
import torch.utils.checkpoint

import dtorch
from dtorch.utils.checkpoint import checkpoint, checkpoint_sequential


def block(lib, seed=0):
    lib.manual_seed(seed)
    return lib.nn.Sequential(lib.nn.Linear(4, 8), lib.nn.Tanh(), lib.nn.Linear(8, 4))


def copy_weights(ours, theirs):
    ours.load_state_dict({k: dtorch.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_checkpoint_matches_the_plain_run_and_torch(use_reentrant):
    theirs = block(torch)
    ours = block(dtorch)
    copy_weights(ours, theirs)
    values = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    x, tx = dtorch.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
    h = checkpoint(ours, x * 2, use_reentrant=use_reentrant)
    (h * h).sum().backward()
    th = torch.utils.checkpoint.checkpoint(theirs, tx * 2, use_reentrant=use_reentrant)
    (th * th).sum().backward()
    np.testing.assert_allclose(h.detach().numpy(), th.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-6)
    for (name, p), tp in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


def test_dropout_mask_is_the_same_in_the_recomputation():
    layer = dtorch.nn.Sequential(dtorch.nn.Linear(6, 6), dtorch.nn.Dropout(0.5))
    x = dtorch.randn(5, 6, requires_grad=True)
    dtorch.manual_seed(7)
    plain = layer(x * 1)
    plain.sum().backward()
    plain_grad = x.grad.clone()
    weight_grad = layer[0].weight.grad.clone()
    x.grad = None
    layer.zero_grad()
    dtorch.manual_seed(7)
    checked = checkpoint(layer, x * 1, use_reentrant=False)
    checked.sum().backward()
    np.testing.assert_array_equal(checked.detach().numpy(), plain.detach().numpy())
    np.testing.assert_allclose(x.grad.numpy(), plain_grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(layer[0].weight.grad.numpy(), weight_grad.numpy(), rtol=1e-6)


def test_inputs_without_grad_still_train_the_parameters():
    layer = dtorch.nn.Linear(3, 2)
    checkpoint(layer, dtorch.ones(4, 3), use_reentrant=False).sum().backward()
    np.testing.assert_allclose(layer.weight.grad.numpy(), np.full((2, 3), 4.0))


def test_checkpoint_sequential_matches_the_plain_run():
    model = dtorch.nn.Sequential(*[dtorch.nn.Linear(4, 4) for _ in range(5)])
    x = dtorch.randn(2, 4, requires_grad=True)
    model(x).pow(2).sum().backward()
    expected = [p.grad.clone() for p in model.parameters()] + [x.grad.clone()]
    model.zero_grad()
    x.grad = None
    checkpoint_sequential(model, 2, x, use_reentrant=False).pow(2).sum().backward()
    for got, want in zip([p.grad for p in model.parameters()] + [x.grad], expected):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
