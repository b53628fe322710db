"""The rest of torch.optim against PyTorch: signatures and defaults, argument errors, state_dict round trips through
torch for Adadelta, Adamax, NAdam, RAdam, ASGD and Rprop (their trajectories are in test_optimizers.py), and
LBFGS (with and without the strong-Wolfe line search) and SparseAdam, which need their own drivers."""

import copy
import inspect

import numpy as np
import pytest
import torch

import dtorch
import dtorch.nn
from dtorch import optim
from dtorch.tensor import Tensor

from test_optimizers import STEPS, make_param, quadratic_grad, run_dtorch, run_torch  # noqa: E402

NEW = ["Adadelta", "Adamax", "NAdam", "RAdam", "ASGD", "Rprop", "SparseAdam", "LBFGS"]


# ---- constructors ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NEW)
def test_signature_and_defaults_are_torch(name):
    """Same argument names, order, kinds and defaults; the same param_group entries and repr."""
    ours, theirs = inspect.signature(getattr(optim, name)), inspect.signature(getattr(torch.optim, name))
    assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == \
        [(p.name, p.kind, p.default) for p in theirs.parameters.values()]
    opt = getattr(optim, name)([make_param(np.ones(2, np.float32))])
    topt = getattr(torch.optim, name)([torch.nn.Parameter(torch.ones(2))])
    assert opt.defaults == topt.defaults
    assert opt.param_groups[0].keys() == topt.param_groups[0].keys()
    assert repr(opt) == repr(topt)


@pytest.mark.parametrize("name,kwargs", [
    ("Adadelta", dict(lr=-1)), ("Adadelta", dict(rho=1.5)), ("Adadelta", dict(eps=-1)),
    ("Adadelta", dict(weight_decay=-0.1)),
    ("Adamax", dict(lr=-0.5)), ("Adamax", dict(betas=(1.0, 0.9))), ("Adamax", dict(betas=(0.9, -0.1))),
    ("Adamax", dict(eps=-1e-8)),
    ("NAdam", dict(momentum_decay=-1)), ("NAdam", dict(betas=(0.9, 1.0))), ("NAdam", dict(weight_decay=-1)),
    ("RAdam", dict(lr=-1)), ("RAdam", dict(eps=-1)), ("RAdam", dict(betas=(-0.1, 0.9))),
    ("ASGD", dict(lr=-1)), ("ASGD", dict(weight_decay=-1)),
    ("Rprop", dict(lr=-1)), ("Rprop", dict(etas=(1.5, 1.2))), ("Rprop", dict(etas=(0.5, 0.9))),
    ("SparseAdam", dict(lr=0.0)), ("SparseAdam", dict(eps=0.0)), ("SparseAdam", dict(betas=(1.0, 0.9))),
    ("LBFGS", dict(lr=-1)),
])
def test_argument_errors_are_torch_s(name, kwargs):
    with pytest.raises(Exception) as theirs:
        getattr(torch.optim, name)([torch.nn.Parameter(torch.ones(2))], **kwargs)
    with pytest.raises(type(theirs.value)) as ours:
        getattr(optim, name)([make_param(np.ones(2, np.float32))], **kwargs)
    assert str(ours.value) == str(theirs.value)


def test_tensor_lr_must_have_one_element():
    with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
        optim.NAdam([make_param(np.ones(2))], lr=dtorch.tensor([0.1, 0.2]))


@pytest.mark.parametrize("name", ["Adadelta", "Adamax", "NAdam", "RAdam", "ASGD", "Rprop"])
def test_flags_are_accepted_and_differentiable_is_refused_at_step(name):
    p = make_param(np.ones(2))
    opt = getattr(optim, name)([p], foreach=True, maximize=True, capturable=True)
    p.grad = Tensor._from_array(np.ones(2), None)
    opt.step()
    assert (p._array > 1).all(), "maximize ascends"
    opt = getattr(optim, name)([p], differentiable=True)
    with pytest.raises(RuntimeError, match="differentiable=True is not supported"):
        opt.step()


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


# ---- state_dict through torch and back ---------------------------------------------------------------------------

def to_torch(value):
    """dtorch state (Tensors, lists of them, numbers) -> the same structure with torch tensors."""
    if isinstance(value, Tensor):
        return torch.from_numpy(np.array(value._array))
    if isinstance(value, list):
        return [to_torch(v) for v in value]
    if isinstance(value, dict):
        return {k: to_torch(v) for k, v in value.items()}
    return value


def to_dtorch(value):
    if isinstance(value, torch.Tensor):
        return Tensor._from_array(value.detach().numpy().copy(), None)
    if isinstance(value, list):
        return [to_dtorch(v) for v in value]
    if isinstance(value, dict):
        return {k: to_dtorch(v) for k, v in value.items()}
    return value


def convert(state_dict, fn):
    return {"state": {k: fn(s) for k, s in state_dict["state"].items()},
            "param_groups": copy.deepcopy(state_dict["param_groups"])}


def assert_same_state(ours, theirs, exact=True):
    """Two state values (dtorch / torch) are equal in structure, type and value."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, Tensor), (type(ours), theirs)
        assert tuple(ours.shape) == tuple(theirs.shape)
        a, b = np.asarray(ours._array), theirs.detach().numpy()
        assert a.dtype == b.dtype
        if exact:
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    elif isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs)
        for x, y in zip(ours, theirs):
            assert_same_state(x, y, exact)
    elif isinstance(theirs, dict):
        assert list(ours) == list(theirs), "state entries and their order"
        for key in theirs:
            assert_same_state(ours[key], theirs[key], exact)
    elif theirs is None or exact or not isinstance(theirs, float):
        assert type(ours) is type(theirs) and ours == theirs, (ours, theirs)
    else:
        assert type(ours) is float and np.isclose(ours, theirs, rtol=1e-9), (ours, theirs)


@pytest.mark.parametrize("name,kwargs", [
    ("Adadelta", dict(lr=0.5, weight_decay=0.01)), ("Adamax", dict(lr=0.05, betas=(0.8, 0.95))),
    ("NAdam", dict(lr=0.05, decoupled_weight_decay=True, weight_decay=0.01)),
    ("RAdam", dict(lr=0.05, betas=(0.8, 0.95))),
    ("ASGD", dict(lr=0.05, t0=5, lambd=0.01)), ("Rprop", dict(lr=0.02)),
])
def test_state_dict_goes_into_torch_and_back(name, kwargs):
    """torch resumed from dtorch's state_dict continues exactly as torch resumed from its own (PyTorch casts the
    float32 scalars NAdam and ASGD keep to the parameter's dtype on loading; so do both here); and dtorch loads
    torch's state_dict into the same state."""
    half = STEPS // 2

    def continue_torch(params, state_dict):
        tparams = [torch.nn.Parameter(torch.from_numpy(np.array(p))) for p in params]
        topt = getattr(torch.optim, name)(tparams, foreach=False, **kwargs)
        topt.load_state_dict(state_dict)
        for step in range(half, STEPS):
            for i, p in enumerate(tparams):
                p.grad = torch.from_numpy(quadratic_grad(p.detach().numpy(), step, i))
            topt.step()
        return [p.detach().numpy() for p in tparams], topt

    tp, topt, _ = run_torch(getattr(torch.optim, name), kwargs, np.float64, steps=half)
    reference, _ = continue_torch([p.detach().numpy() for p in tp], copy.deepcopy(topt.state_dict()))
    params, opt, _ = run_dtorch(getattr(optim, name), kwargs, np.float64, None, steps=half)
    ours, topt2 = continue_torch([p._array for p in params], convert(opt.state_dict(), to_torch))
    for a, b in zip(ours, reference):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)

    back = [make_param(p.copy()) for p in ours]
    opt3 = getattr(optim, name)(back, **kwargs)
    tsd = topt2.state_dict()
    opt3.load_state_dict(convert(tsd, to_dtorch))
    assert_same_state(opt3.state_dict()["state"], tsd["state"])


# ---- LBFGS -----------------------------------------------------------------------------------------------------------

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


# ---- SparseAdam ------------------------------------------------------------------------------------------------------

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
