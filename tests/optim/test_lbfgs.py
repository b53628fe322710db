"""LBFGS against PyTorch: trajectories with and without the strong-Wolfe line search, float32, state_dict
resumption in both libraries, argument errors, and fitting a module through a closure."""

import copy

import numpy as np
import pytest
import torch

import dtorch
from dtorch import optim
# tests/optim is on sys.path under pytest
from test_optimizers import assert_same_state, convert, make_param, to_torch


def test_lbfgs_refuses_parameter_groups_and_unknown_line_searches():
    a, b = make_param(np.ones(2)), make_param(np.ones(2))
    with pytest.raises(ValueError, match=r"LBFGS doesn't support per-parameter options \(parameter groups\)"):
        optim.LBFGS([{"params": [a]}, {"params": [b]}])
    opt = optim.LBFGS([a], line_search_fn="backtracking")

    def closure():
        opt.zero_grad()
        loss = (a * a).sum()
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        opt.step(closure)


def lbfgs_problem(lib, dtype):
    """A small nonlinear least-squares model with a quartic penalty: parameters w (4, 3), b (3,)."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 4)).astype(dtype), rng.standard_normal((16, 3)).astype(dtype)
    w0, b0 = (rng.standard_normal((4, 3)) * 0.5).astype(dtype), np.zeros(3, dtype)
    if lib is torch:
        params = [torch.nn.Parameter(torch.from_numpy(w0)), torch.nn.Parameter(torch.from_numpy(b0))]
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    else:
        params = [make_param(w0), make_param(b0)]
        xt, yt = dtorch.from_numpy(x), dtorch.from_numpy(y)

    def loss_fn():
        w, b = params
        return ((lib.tanh(xt @ w + b) - yt) ** 2).mean() + 0.01 * (w ** 4).sum()

    return params, loss_fn


def run_lbfgs(lib, kwargs, dtype, calls=4, optimizer_params=None, resume=None):
    params, loss_fn = lbfgs_problem(lib, dtype)
    opt = (torch.optim if lib is torch else optim).LBFGS(params, **kwargs)
    if resume is not None:
        values, state_dict = resume
        with lib.no_grad():
            for p, v in zip(params, values):
                p.copy_(lib.tensor(v))
        opt.load_state_dict(state_dict)
    history = []

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    for _ in range(calls):
        loss = opt.step(closure)
        history.append((float(loss.detach()), [np.array(p.detach().numpy()) for p in params]))
    return history, opt, params


LBFGS_CASES = [
    dict(), dict(line_search_fn="strong_wolfe"), dict(lr=0.5, max_iter=7, history_size=3),
    dict(line_search_fn="strong_wolfe", max_iter=6, history_size=2, max_eval=9),
    dict(line_search_fn="strong_wolfe", tolerance_change=1e-5, tolerance_grad=1e-4),
]


@pytest.mark.parametrize("kwargs", LBFGS_CASES)
def test_lbfgs_trajectory_matches_torch(kwargs):
    ours, opt, _ = run_lbfgs(dtorch, kwargs, np.float64)
    theirs, topt, _ = run_lbfgs(torch, kwargs, np.float64)
    for call, ((la, pa), (lb, pb)) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(la, lb, rtol=1e-9, err_msg=f"loss of call {call}")
        for a, b in zip(pa, pb):
            np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10, err_msg=f"call {call}")
    assert ours[-1][0] < ours[0][0]
    state, tstate = opt.state_dict()["state"][0], topt.state_dict()["state"][0]
    assert list(state) == list(tstate)
    assert state["func_evals"] == tstate["func_evals"] and state["n_iter"] == tstate["n_iter"]
    assert_same_state(state, tstate, exact=False)


@pytest.mark.parametrize("kwargs", [dict(), dict(line_search_fn="strong_wolfe")])
def test_lbfgs_float32_follows_torch(kwargs):
    """float32 rounds differently in the dot products, so after the first call (20 iterations, at the minimum to
    float32 precision) only the losses are held close: the minimiser itself is flat to float32 there."""
    ours, _, _ = run_lbfgs(dtorch, kwargs, np.float32, calls=3)
    theirs, _, _ = run_lbfgs(torch, kwargs, np.float32, calls=3)
    for (la, pa), (lb, pb) in zip(ours, theirs):
        assert all(a.dtype == np.float32 for a in pa)
        np.testing.assert_allclose(la, lb, rtol=1e-6)
    for a, b in zip(ours[0][1], theirs[0][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kwargs", [dict(history_size=3), dict(line_search_fn="strong_wolfe", history_size=3)])
def test_lbfgs_state_dict_resumes_in_dtorch_and_in_torch(kwargs):
    """Two calls, state_dict, then two more: in dtorch (from its own state_dict) and in torch (from dtorch's,
    converted) both equal four uninterrupted calls."""
    full, _, _ = run_lbfgs(dtorch, kwargs, np.float64, calls=4)
    first, opt, params = run_lbfgs(dtorch, kwargs, np.float64, calls=2)
    values = [np.array(p._array) for p in params]
    saved = copy.deepcopy(opt.state_dict())
    resumed, _, _ = run_lbfgs(dtorch, kwargs, np.float64, calls=2, resume=(values, saved))
    for (la, pa), (lb, pb) in zip(resumed, full[2:]):
        assert la == lb
        for a, b in zip(pa, pb):
            np.testing.assert_array_equal(a, b)
    in_torch, _, _ = run_lbfgs(torch, kwargs, np.float64, calls=2, resume=(values, convert(saved, to_torch)))
    for (la, pa), (lb, pb) in zip(in_torch, full[2:]):
        np.testing.assert_allclose(la, lb, rtol=1e-9)
        for a, b in zip(pa, pb):
            np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def test_lbfgs_stops_at_once_when_the_gradient_is_zero():
    p = make_param(np.ones(3))
    opt = optim.LBFGS([p])
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = (p * 0).sum()
        loss.backward()
        return loss

    opt.step(closure)
    assert len(calls) == 1 and opt.state[p]["func_evals"] == 1
    np.testing.assert_array_equal(p._array, 1)


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_fits_a_module_like_torch(line_search_fn):
    """The time-sequence-prediction idiom: a module, nn.MSELoss, a closure that zeroes, backprops and returns."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((32, 5)), rng.standard_normal((32, 1))
    results = []
    for lib in (dtorch, torch):
        lib.manual_seed(0)
        model = lib.nn.Sequential(lib.nn.Linear(5, 8), lib.nn.Tanh(), lib.nn.Linear(8, 1)).double()
        if lib is torch:  # the same weights in both
            model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
        else:
            weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
        opt = lib.optim.LBFGS(model.parameters(), lr=0.8, line_search_fn=line_search_fn)
        criterion = lib.nn.MSELoss()
        xt, yt = lib.tensor(x), lib.tensor(y)
        losses = []
        for _ in range(3):
            def closure():
                opt.zero_grad()
                loss = criterion(model(xt), yt)
                loss.backward()
                return loss
            losses.append(float(opt.step(closure).detach()))
        results.append((losses, [p.detach().numpy().copy() for p in model.parameters()]))
    (ours, ours_params), (theirs, theirs_params) = results
    np.testing.assert_allclose(ours, theirs, rtol=1e-8)
    assert ours[-1] < ours[0]
    for a, b in zip(ours_params, theirs_params):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
