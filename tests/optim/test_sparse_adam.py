"""SparseAdam against PyTorch, which needs sparse gradients: dtorch's dense gradients against torch's sparse
form, untouched rows, state_dict round trips, and training an embedding."""

import numpy as np
import pytest
import torch

import dtorch
import dtorch.nn
from dtorch import optim
from dtorch.tensor import Tensor
# tests/optim is on sys.path under pytest
from test_optimizers import assert_same_state, convert, make_param, to_dtorch, to_torch


SPARSE_SHAPES = [(6, 3), (5,), (4, 2, 2)]


def sparse_grad(shape, step, index):
    """A gradient whose rows are zero except a step-dependent few (as an embedding's after a lookup)."""
    rng = np.random.default_rng(100 * step + index)
    grad = rng.standard_normal(shape)
    keep = rng.random(shape[0]) < 0.5
    grad[~keep] = 0
    if step == 3 and index == 0:
        grad[:] = 0  # a step with no touched rows at all
    return grad


def run_sparse(lib, kwargs, dtype, groups=None, steps=8):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(dtype) for s in SPARSE_SHAPES]
    if lib is torch:
        params = [torch.nn.Parameter(torch.from_numpy(a)) for a in arrays]
    else:
        params = [make_param(a) for a in arrays]
    spec = params if groups is None else [dict(params=params[:1], **groups[0]), dict(params=params[1:], **groups[1])]
    opt = (torch.optim if lib is torch else optim).SparseAdam(spec, **kwargs)
    history = []
    for step in range(steps):
        for i, p in enumerate(params):
            g = sparse_grad(p.shape, step, i).astype(dtype)
            if kwargs.get("maximize"):
                g = -g
            # torch's SparseAdam needs sparse gradients: the dense one's nonzero rows, as an embedding produces
            p.grad = torch.from_numpy(g).to_sparse(1) if lib is torch else Tensor._from_array(g, None)
        opt.step()
        history.append([np.array(p.detach().numpy()) for p in params])
    return history, opt


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kwargs,groups", [
    (dict(), None), (dict(lr=0.05, betas=(0.8, 0.95)), None), (dict(lr=0.05, maximize=True), None),
    (dict(lr=0.05), [dict(lr=0.1), dict(betas=(0.5, 0.9), eps=1e-3)]),
])
def test_sparse_adam_on_dense_grads_matches_torch_on_their_sparse_form(kwargs, groups, dtype):
    ours, opt = run_sparse(dtorch, kwargs, dtype, groups)
    theirs, topt = run_sparse(torch, kwargs, dtype, groups)
    for step, (a_step, b_step) in enumerate(zip(ours, theirs)):
        for a, b in zip(a_step, b_step):
            assert a.dtype == b.dtype
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=f"step {step}")
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sd["param_groups"] == tsd["param_groups"]
    if dtype == np.float64:
        assert_same_state(sd["state"], tsd["state"], exact=False)
    assert type(sd["state"][0]["step"]) is int and sd["state"][0]["step"] == 8


def test_sparse_adam_leaves_untouched_rows_and_their_moments_alone():
    p = make_param(np.ones((3, 2)))
    opt = optim.SparseAdam([p], lr=0.1)
    p.grad = Tensor._from_array(np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]), None)
    opt.step()
    np.testing.assert_array_equal(p._array[[0, 2]], 1)
    moved = p._array[1].copy()
    p.grad = Tensor._from_array(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]), None)
    opt.step()
    assert (p._array[1] != moved).all(), "a touched row moves as a whole, its zero-gradient entry included"
    np.testing.assert_array_equal(p._array[[0, 2]], 1)
    np.testing.assert_array_equal(opt.state[p]["exp_avg"]._array[[0, 2]], 0)


def test_sparse_adam_state_dict_goes_into_torch_and_back():
    ours, opt = run_sparse(dtorch, dict(lr=0.05), np.float64, steps=4)
    tparams = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in ours[-1]]
    topt = torch.optim.SparseAdam(tparams, lr=0.05)
    topt.load_state_dict(convert(opt.state_dict(), to_torch))
    params = opt.param_groups[0]["params"]
    for step in range(4, 8):
        for i, (p, tp) in enumerate(zip(params, tparams)):
            g = sparse_grad(tuple(tp.shape), step, i)
            p.grad = Tensor._from_array(g, None)
            tp.grad = torch.from_numpy(g).to_sparse(1)
        opt.step()
        topt.step()
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p._array, tp.detach().numpy(), rtol=1e-12, atol=1e-12)
    back = optim.SparseAdam([make_param(tp.detach().numpy().copy()) for tp in tparams], lr=0.05)
    back.load_state_dict(convert(topt.state_dict(), to_dtorch))
    assert_same_state(back.state_dict()["state"], topt.state_dict()["state"])


def test_sparse_adam_trains_an_embedding():
    dtorch.manual_seed(0)
    emb = dtorch.nn.Embedding(10, 4)
    opt = optim.SparseAdam(list(emb.parameters()), lr=0.1)
    ids = dtorch.tensor([1, 3, 3, 7])
    before = emb.weight.detach().numpy().copy()
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = (emb(ids) ** 2).sum()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    after = emb.weight.detach().numpy()
    assert losses[-1] < losses[0]
    untouched = [0, 2, 4, 5, 6, 8, 9]
    np.testing.assert_array_equal(after[untouched], before[untouched])
