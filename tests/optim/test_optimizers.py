"""Optimizers against PyTorch: 20-step trajectories on a deterministic quadratic, every option that matters,
float64 and float32, the per-parameter loop and the flat-buffer path; plus state_dict round trips and checks."""

import copy
import inspect
import itertools

import numpy as np
import pytest
import torch

import dtorch
import dtorch.nn
from dtorch import optim
from dtorch.tensor import Tensor

STEPS = 20
SHAPES = [(3, 4), (5,), (2, 2, 3), (1,)]


def make_param(array):
    return dtorch.nn.Parameter(Tensor._from_array(array, None))


def initial_arrays(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]


def quadratic_grad(values, step, index, maximize=False):
    """A deterministic gradient of 0.5·c·|p − t|² plus a step-dependent drift, computed in float64 (of its negative
    for ``maximize``, so that both directions converge instead of amplifying rounding)."""
    if maximize:
        return -quadratic_grad(values, step, index)
    rng = np.random.default_rng(1000 * step + index)
    target = rng.standard_normal(values.shape)
    scale = 0.5 + index
    return scale * (values.astype(np.float64) - target) + 0.1 * np.sin(step + np.arange(values.size)).reshape(values.shape)


def run_dtorch(cls, kwargs, dtype, foreach, steps=STEPS, groups=None):
    params = [make_param(a.copy()) for a in initial_arrays(dtype)]
    opt = cls(_grouped(params, groups), foreach=foreach, **kwargs)
    history = []
    for step in range(steps):
        for i, p in enumerate(params):
            g = quadratic_grad(p._array, step, i, kwargs.get("maximize", False)).astype(dtype)
            p.grad = Tensor._from_array(g, None)
        opt.step()
        history.append([p._array.copy() for p in params])
    return params, opt, history


def run_torch(cls, kwargs, dtype, steps=STEPS, groups=None):
    params = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in initial_arrays(dtype)]
    opt = cls(_grouped(params, groups), foreach=False, **kwargs)
    history = []
    for step in range(steps):
        for i, p in enumerate(params):
            g = quadratic_grad(p.detach().numpy(), step, i, kwargs.get("maximize", False)).astype(dtype)
            p.grad = torch.from_numpy(g)
        opt.step()
        history.append([p.detach().numpy().copy() for p in params])
    return params, opt, history


def _grouped(params, groups):
    if groups is None:
        return params
    return [dict(params=params[:2], **groups[0]), dict(params=params[2:], **groups[1])]


def check_optimizer(name, kwargs, dtype, foreach, groups=None):
    """dtorch's trajectory and final state equal torch's within 1e-6 at every step."""
    _, dt_opt, dt_hist = run_dtorch(getattr(optim, name), kwargs, dtype, foreach, groups=groups)
    _, th_opt, th_hist = run_torch(getattr(torch.optim, name), kwargs, dtype, groups=groups)
    for step, (ours, theirs) in enumerate(zip(dt_hist, th_hist)):
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert a.dtype == b.dtype
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, err_msg=f"{name} {kwargs} step {step} param {i}")
    ours, theirs = dt_opt.state_dict(), th_opt.state_dict()
    assert set(ours["state"]) == set(theirs["state"])
    for key, state in theirs["state"].items():
        assert list(ours["state"][key]) == list(state), "state entries and their order match torch's"
        for entry, value in state.items():
            np.testing.assert_allclose(np.asarray(ours["state"][key][entry]._array), value.numpy(), rtol=1e-6, atol=1e-6)
    for ours_group, theirs_group in zip(ours["param_groups"], theirs["param_groups"]):
        assert ours_group == {k: v for k, v in theirs_group.items() if k != "foreach"} | {"foreach": ours_group["foreach"]}


def _cases():
    cases = []
    for momentum, dampening, nesterov, wd, maximize in itertools.product(
        [0, 0.9], [0, 0.25], [False, True], [0, 0.05], [False, True]
    ):
        if nesterov and (momentum == 0 or dampening != 0):
            continue
        if momentum == 0 and dampening != 0:
            continue
        cases.append(("SGD", dict(lr=0.05, momentum=momentum, dampening=dampening, nesterov=nesterov,
                                  weight_decay=wd, maximize=maximize)))
    for name in ("Adam", "AdamW"):
        for amsgrad, wd, maximize in itertools.product([False, True], [0, 0.1], [False, True]):
            cases.append((name, dict(lr=0.05, betas=(0.8, 0.95), amsgrad=amsgrad, weight_decay=wd, maximize=maximize)))
    for momentum, centered, wd, maximize in itertools.product([0, 0.5], [False, True], [0, 0.05], [False, True]):
        cases.append(("RMSprop", dict(lr=0.01, alpha=0.9, momentum=momentum, centered=centered, weight_decay=wd,
                                      maximize=maximize)))
    for lr_decay, wd, init, maximize in itertools.product([0, 0.05], [0, 0.05], [0, 0.1], [False, True]):
        cases.append(("Adagrad", dict(lr=0.1, lr_decay=lr_decay, weight_decay=wd, initial_accumulator_value=init,
                                      maximize=maximize)))
    for rho, wd, maximize in itertools.product([0.9, 0.5], [0, 0.05], [False, True]):
        cases.append(("Adadelta", dict(lr=0.5, rho=rho, weight_decay=wd, maximize=maximize)))
    for betas, wd, maximize in itertools.product([(0.8, 0.95), (0.3, 0.9)], [0, 0.05], [False, True]):
        cases.append(("Adamax", dict(lr=0.05, betas=betas, weight_decay=wd, maximize=maximize)))
    for wd, decoupled, momentum_decay, maximize in itertools.product([0, 0.05], [False, True], [4e-3, 0.1],
                                                                    [False, True]):
        cases.append(("NAdam", dict(lr=0.05, betas=(0.8, 0.95), weight_decay=wd, decoupled_weight_decay=decoupled,
                                    momentum_decay=momentum_decay, maximize=maximize)))
    for wd, decoupled, maximize in itertools.product([0, 0.05], [False, True], [False, True]):
        # betas[1] = 0.95: the rectification switches on after a few steps, so both branches run
        cases.append(("RAdam", dict(lr=0.05, betas=(0.8, 0.95), weight_decay=wd, decoupled_weight_decay=decoupled,
                                    maximize=maximize)))
    for lambd, t0, wd, maximize in itertools.product([1e-4, 0.1], [1e6, 5], [0, 0.05], [False, True]):
        cases.append(("ASGD", dict(lr=0.05, lambd=lambd, alpha=0.75, t0=t0, weight_decay=wd, maximize=maximize)))
    for etas, step_sizes, maximize in itertools.product([(0.5, 1.2), (0.3, 1.5)], [(1e-6, 50), (1e-3, 0.05)],
                                                        [False, True]):
        cases.append(("Rprop", dict(lr=0.02, etas=etas, step_sizes=step_sizes, maximize=maximize)))
    return cases


CASES = _cases()


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("foreach", [False, None], ids=["loop", "flat"])
@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_trajectory_matches_torch(name, kwargs, dtype, foreach):
    check_optimizer(name, kwargs, dtype, foreach)


@pytest.mark.parametrize("name,kwargs", [
    ("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.01)), ("AdamW", dict(lr=0.01, amsgrad=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)), ("Adagrad", dict(lr=0.1)),
    ("Adadelta", dict(lr=0.5)), ("Adamax", dict(lr=0.05)), ("NAdam", dict(lr=0.05, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=0.05, betas=(0.8, 0.95))), ("ASGD", dict(lr=0.05, t0=5)), ("Rprop", dict(lr=0.02)),
])
def test_param_groups_with_own_hyperparameters(name, kwargs):
    groups = [dict(lr=kwargs["lr"] * 2), dict(weight_decay=0.01)]
    check_optimizer(name, kwargs, np.float64, None, groups=groups)
    check_optimizer(name, kwargs, np.float64, False, groups=groups)


@pytest.mark.parametrize("name,kwargs", [
    (n, k) for n, k in CASES
    if k.get("maximize") is False and k.get("weight_decay", 0) == 0.05 or n in ("AdamW", "Rprop")
])
def test_flat_path_equals_loop_bitwise(name, kwargs):
    """The flat-buffer fast path gives the same bits as the per-parameter reference loop."""
    for dtype in (np.float32, np.float64):
        flat_params, _, flat_hist = run_dtorch(getattr(optim, name), kwargs, dtype, None)
        loop_params, _, loop_hist = run_dtorch(getattr(optim, name), kwargs, dtype, False)
        for flat_step, loop_step in zip(flat_hist, loop_hist):
            for a, b in zip(flat_step, loop_step):
                np.testing.assert_array_equal(a, b)


def test_flat_path_keeps_parameter_and_state_identity():
    params = [make_param(a.copy()) for a in initial_arrays(np.float32)]
    opt = optim.Adam(params, lr=0.1)
    for p in params:
        p.grad = Tensor._from_array(np.ones_like(p._array), None)
    opt.step()
    arrays = [p._array for p in params]
    views = [p._array.reshape(-1)[:1] for p in params]
    bucket = opt._flat[id(opt.param_groups[0])][0]
    assert all(np.shares_memory(p._array, bucket.param) for p in params)
    assert all(np.shares_memory(opt.state[p]["exp_avg"]._array, bucket.arrays[0]) for p in params)
    opt.step()
    assert all(p._array is a for p, a in zip(params, arrays)), "after the first flat step p._array is updated in place"
    assert all(v[0] == p._array.reshape(-1)[0] for v, p in zip(views, params))
    assert float(opt.state[params[0]]["step"]._array) == 2.0
    assert opt.state[params[0]]["step"]._array.dtype == np.float32


def test_flat_path_falls_back_when_a_grad_is_missing_and_matches_torch():
    def run(lib, make, foreach):
        params = [make(a.copy()) for a in initial_arrays(np.float64)]
        opt = (optim if lib == "d" else torch.optim).Adam(params, lr=0.05, foreach=foreach)
        for step in range(6):
            for i, p in enumerate(params):
                if step == 2 and i == 1:
                    p.grad = None
                    continue
                value = p._array if lib == "d" else p.detach().numpy()
                g = quadratic_grad(value, step, i)
                p.grad = Tensor._from_array(g, None) if lib == "d" else torch.from_numpy(g)
            opt.step()
        return [np.array(p._array if lib == "d" else p.detach().numpy()) for p in params], opt

    ours, opt = run("d", make_param, None)
    theirs, th_opt = run("t", lambda a: torch.nn.Parameter(torch.from_numpy(a)), False)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert float(opt.state[opt.param_groups[0]["params"][1]]["step"]._array) == 5.0


def test_mixed_dtypes_make_one_bucket_each():
    params = [make_param(np.ones(3, np.float32)), make_param(np.ones(2, np.float64)), make_param(np.ones(4, np.float32))]
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    for _ in range(2):
        for p in params:
            p.grad = Tensor._from_array(np.ones_like(p._array), None)
        opt.step()
    buckets = opt._flat[id(opt.param_groups[0])]
    assert sorted(b.param.size for b in buckets) == [2, 7]
    np.testing.assert_allclose(params[1]._array, 1 - 0.1 - 0.1 * 1.9)


def test_rebinding_parameter_data_rebuilds_the_flat_buffer():
    params = [make_param(np.ones(3)), make_param(np.ones(2))]
    opt = optim.SGD(params, lr=0.5)
    for p in params:
        p.grad = Tensor._from_array(np.ones_like(p._array), None)
    opt.step()
    params[0]._array = np.full(3, 10.0)  # e.g. a module's load_state_dict assigning new arrays
    opt.step()
    np.testing.assert_allclose(params[0]._array, 9.5)
    np.testing.assert_allclose(params[1]._array, 0.0)


def test_zero_grad():
    p = make_param(np.ones(2))
    opt = optim.SGD([p], lr=0.1)
    p.grad = Tensor._from_array(np.ones(2), None)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad._array, 0)
    opt.zero_grad()
    assert p.grad is None


def test_argument_checks():
    p = [make_param(np.ones(2))]
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        optim.SGD(p, lr=-1)
    with pytest.raises(ValueError, match="Invalid momentum value: -0.5"):
        optim.SGD(p, momentum=-0.5)
    with pytest.raises(ValueError, match="Nesterov momentum requires a momentum and zero dampening"):
        optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 0: 1.0"):
        optim.Adam(p, betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="Invalid epsilon value: -1"):
        optim.AdamW(p, eps=-1)
    with pytest.raises(ValueError, match="Invalid alpha value: -0.1"):
        optim.RMSprop(p, alpha=-0.1)
    with pytest.raises(ValueError, match="Invalid lr_decay value: -1"):
        optim.Adagrad(p, lr_decay=-1)
    with pytest.raises(ValueError, match="optimizer got an empty parameter list"):
        optim.Adam([])
    with pytest.raises(TypeError, match="iterable of Tensors or dicts"):
        optim.Adam(p[0])
    with pytest.raises(TypeError, match="ordered collections"):
        optim.Adam([{"params": set(p)}])
    opt = optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": p})


def test_add_param_group_and_repr_match_torch():
    a, b = make_param(np.ones(2)), make_param(np.ones(3))
    opt = optim.SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": b, "lr": 0.01})
    assert opt.param_groups[1]["momentum"] == 0.9 and opt.param_groups[1]["lr"] == 0.01
    ta, tb = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(3))
    topt = torch.optim.SGD([ta], lr=0.1, momentum=0.9)
    topt.add_param_group({"params": tb, "lr": 0.01})
    assert repr(opt) == repr(topt)


def test_named_parameters():
    a = make_param(np.ones(2))
    opt = optim.Adam([("weight", a)])
    assert opt.param_groups[0]["param_names"] == ["weight"]


@pytest.mark.parametrize("name,kwargs", [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)), ("Adam", dict(lr=0.05, amsgrad=True)),
    ("AdamW", dict(lr=0.05)), ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01)), ("Adadelta", dict(lr=0.5, weight_decay=0.01)),
    ("Adamax", dict(lr=0.05)), ("NAdam", dict(lr=0.05, weight_decay=0.01)), ("RAdam", dict(lr=0.05, betas=(0.8, 0.95))),
    ("ASGD", dict(lr=0.05, t0=5)), ("Rprop", dict(lr=0.02)),
])
@pytest.mark.parametrize("foreach", [False, None], ids=["loop", "flat"])
def test_resume_from_state_dict_continues_exactly(name, kwargs, foreach):
    """10 steps, state_dict, a fresh optimizer loads it, 10 more steps == 20 uninterrupted steps (bitwise)."""
    cls = getattr(optim, name)
    _, _, full = run_dtorch(cls, kwargs, np.float32, foreach)
    params, opt, _ = run_dtorch(cls, kwargs, np.float32, foreach, steps=10)
    saved = copy.deepcopy(opt.state_dict())
    resumed = [make_param(p._array.copy()) for p in params]
    opt2 = cls(resumed, foreach=foreach, **kwargs)
    opt2.load_state_dict(saved)
    for step in range(10, STEPS):
        for i, p in enumerate(resumed):
            p.grad = Tensor._from_array(quadratic_grad(p._array, step, i).astype(np.float32), None)
        opt2.step()
    for a, b in zip(resumed, full[-1]):
        np.testing.assert_array_equal(a._array, b)


@pytest.mark.parametrize("name,kwargs", [
    ("SGD", dict(lr=0.05, momentum=0.9)), ("Adam", dict(lr=0.05, amsgrad=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)), ("Adagrad", dict(lr=0.1)),
])
def test_state_dict_moves_between_dtorch_and_torch(name, kwargs):
    """A torch optimizer loads dtorch's state_dict (converted tensor by tensor) and continues on the same track."""
    _, _, full = run_torch(getattr(torch.optim, name), kwargs, np.float64)
    params, opt, _ = run_dtorch(getattr(optim, name), kwargs, np.float64, None, steps=10)
    sd = opt.state_dict()
    converted = {
        "state": {k: {n: torch.from_numpy(np.array(v._array)) for n, v in s.items()} for k, s in sd["state"].items()},
        "param_groups": sd["param_groups"],
    }
    tparams = [torch.nn.Parameter(torch.from_numpy(p._array.copy())) for p in params]
    topt = getattr(torch.optim, name)(tparams, foreach=False, **kwargs)
    topt.load_state_dict(converted)
    for step in range(10, STEPS):
        for i, p in enumerate(tparams):
            p.grad = torch.from_numpy(quadratic_grad(p.detach().numpy(), step, i))
        topt.step()
    for a, b in zip(tparams, full[-1]):
        np.testing.assert_allclose(a.detach().numpy(), b, rtol=1e-12, atol=1e-12)
    # and back: dtorch loads torch's state_dict
    back = [make_param(p.detach().numpy().copy()) for p in tparams]
    opt3 = getattr(optim, name)(back, **kwargs)
    tsd = topt.state_dict()
    opt3.load_state_dict({
        "state": {k: {n: Tensor._from_array(v.numpy().copy(), None) for n, v in s.items()} for k, s in tsd["state"].items()},
        "param_groups": tsd["param_groups"],
    })
    for key, state in tsd["state"].items():
        for entry, value in state.items():
            np.testing.assert_array_equal(np.asarray(opt3.state[back[key]][entry]._array), value.numpy())


def test_closure_is_called_and_its_loss_returned():
    p = make_param(np.ones(2))
    opt = optim.SGD([p], lr=0.1)

    def closure():
        p.grad = Tensor._from_array(np.ones(2), None)
        return 3.0

    assert opt.step(closure) == 3.0
    np.testing.assert_allclose(p._array, 0.9)


@pytest.mark.parametrize("chunk", [1, 5, 13, 1000])
@pytest.mark.parametrize("name,kwargs", [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05)),
    ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.05)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01)),
    ("Adadelta", dict(lr=0.5, weight_decay=0.01)), ("Adamax", dict(lr=0.05, betas=(0.3, 0.9))),
    ("RAdam", dict(lr=0.05, betas=(0.8, 0.95), decoupled_weight_decay=True, weight_decay=0.1)),
    ("Rprop", dict(lr=0.02, maximize=True)),
])
def test_flat_path_in_cache_sized_pieces_equals_loop(monkeypatch, name, kwargs, chunk):
    """Segments (small parameters gathered together) and pieces (a big parameter split) give the loop's bits."""
    from dtorch.optim import optimizer as optimizer_module

    monkeypatch.setattr(optimizer_module, "CPU_CHUNK", chunk)
    _, flat_opt, flat_hist = run_dtorch(getattr(optim, name), kwargs, np.float32, None)
    _, _, loop_hist = run_dtorch(getattr(optim, name), kwargs, np.float32, False)
    bucket = flat_opt._flat[id(flat_opt.param_groups[0])][0]
    assert bucket.chunk == chunk
    for flat_step, loop_step in zip(flat_hist, loop_hist):
        for a, b in zip(flat_step, loop_step):
            np.testing.assert_array_equal(a, b)


@pytest.mark.gpu
@pytest.mark.parametrize("name,kwargs", [("Adam", dict(lr=0.05, amsgrad=True)), ("SGD", dict(lr=0.05, momentum=0.9)),
                                         ("RMSprop", dict(lr=0.01, centered=True)), ("Adagrad", dict(lr=0.1)),
                                         ("Adadelta", dict(lr=0.5)), ("Adamax", dict(lr=0.05)),
                                         ("NAdam", dict(lr=0.05)), ("RAdam", dict(lr=0.05, betas=(0.8, 0.95))),
                                         ("ASGD", dict(lr=0.05, t0=5)), ("Rprop", dict(lr=0.02))])
@pytest.mark.parametrize("foreach", [False, None], ids=["loop", "flat"])
def test_cuda_parameters_follow_the_cpu_trajectory(name, kwargs, foreach):
    cp = dtorch._backend.cupy()
    _, _, cpu_hist = run_dtorch(getattr(optim, name), kwargs, np.float64, False)
    params = [dtorch.nn.Parameter(Tensor._from_array(cp.asarray(a), None)) for a in initial_arrays(np.float64)]
    opt = getattr(optim, name)(params, foreach=foreach, **kwargs)
    for step in range(STEPS):
        for i, p in enumerate(params):
            p.grad = Tensor._from_array(cp.asarray(quadratic_grad(p._array.get(), step, i)), None)
        opt.step()
    for p, expected in zip(params, cpu_hist[-1]):
        assert dtorch._backend.is_cupy_array(p._array)
        np.testing.assert_allclose(p._array.get(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name,kwargs", [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.05)),
                                         ("AdamW", dict(lr=0.05, amsgrad=True)), ("RMSprop", dict(lr=0.01)),
                                         ("Adagrad", dict(lr=0.1))])
def test_training_with_autograd_gradients_matches_torch(name, kwargs):
    """Gradients from dtorch's autograd (a linear model's MSE loss), stepped 20 times, follow torch's run."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 4)).astype(np.float32), rng.standard_normal((16, 2)).astype(np.float32)
    w0, b0 = rng.standard_normal((4, 2)).astype(np.float32), np.zeros(2, np.float32)

    w, b = make_param(w0.copy()), make_param(b0.copy())
    opt = getattr(optim, name)([w, b], **kwargs)
    xd, yd = dtorch.tensor(x), dtorch.tensor(y)
    tw, tb = torch.nn.Parameter(torch.from_numpy(w0.copy())), torch.nn.Parameter(torch.from_numpy(b0.copy()))
    topt = getattr(torch.optim, name)([tw, tb], foreach=False, **kwargs)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = ((xd @ w + b - yd) ** 2).mean()
        loss.backward()
        opt.step()
        topt.zero_grad()
        tloss = ((xt @ tw + tb - yt) ** 2).mean()
        tloss.backward()
        topt.step()
        losses.append(float(loss.item()))
        np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5)
    np.testing.assert_allclose(w._array, tw.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b._array, tb.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert losses[-1] < losses[0]


def _user_optimizer(lib):
    """A user's optimizer written against PyTorch's documented subclassing API, for either library."""

    class HeavyBall(lib.optim.Optimizer):
        def __init__(self, params, lr=0.1, momentum=0.9):
            super().__init__(params, dict(lr=lr, momentum=momentum))

        @lib.no_grad()
        def step(self, closure=None):
            loss = None
            if closure is not None:
                with lib.enable_grad():
                    loss = closure()
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = 0
                        state["buf"] = lib.zeros_like(p)
                    state["step"] += 1
                    state["buf"].mul_(group["momentum"]).add_(p.grad)
                    p.add_(state["buf"], alpha=-group["lr"])
            return loss

    return HeavyBall


def test_user_subclass_of_optimizer_runs_like_torch(tmp_path):
    """A subclass with its own step(), driven by a closure and a scheduler, follows torch's run; its state (an int
    step, a tensor buffer) survives state_dict -> dtorch.save -> load unchanged in type."""
    rng = np.random.default_rng(0)
    w0, x, y = rng.standard_normal((3, 1)), rng.standard_normal((16, 3)), rng.standard_normal((16, 1))

    def run(lib, steps, path=None, resume=None):
        w = lib.nn.Parameter(lib.tensor(w0.copy()))
        opt = _user_optimizer(lib)([w], lr=0.05)
        sched = lib.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
        if resume is not None:
            saved = lib.load(resume)
            with lib.no_grad():
                w.copy_(saved["w"])
            opt.load_state_dict(saved["opt"])
            sched.load_state_dict(saved["sched"])
        xt, yt = lib.tensor(x), lib.tensor(y)
        losses = []
        for _ in range(steps):
            def closure():
                opt.zero_grad()
                loss = ((xt @ w - yt) ** 2).mean()
                loss.backward()
                return loss
            losses.append(opt.step(closure).item())
            sched.step()
        if path is not None:
            lib.save({"w": w.detach(), "opt": opt.state_dict(), "sched": sched.state_dict()}, path)
        return losses, opt

    theirs, _ = run(torch, 10)
    ours, opt = run(dtorch, 5, path=tmp_path / "ckpt.pt")
    assert opt.state_dict()["state"][0]["step"] == 5 and type(opt.state_dict()["state"][0]["step"]) is int
    resumed, opt = run(dtorch, 5, resume=tmp_path / "ckpt.pt")
    assert type(opt.state_dict()["state"][0]["step"]) is int
    np.testing.assert_allclose(ours + resumed, theirs, rtol=1e-10)


# ---- constructors of the other optimizers, and state_dicts through torch and back ---------------------------------

# the optimizers beyond SGD/Adam/AdamW/RMSprop/Adagrad, whose constructors are checked here
OTHER_OPTIMIZERS = ["Adadelta", "Adamax", "NAdam", "RAdam", "ASGD", "Rprop", "SparseAdam", "LBFGS"]


@pytest.mark.parametrize("name", OTHER_OPTIMIZERS)
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


@pytest.mark.parametrize("name", ["Adam", "AdamW", "Adamax", "NAdam", "RAdam", "SGD", "RMSprop", "Adagrad",
                                  "Adadelta", "ASGD", "Rprop"])
def test_tensor_lr_must_have_one_element(name):
    with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
        getattr(optim, name)([make_param(np.ones(2))], lr=dtorch.tensor([0.1, 0.2]))


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
