"""dtorch.amp against torch.amp: GradScaler's scale schedule, skipped steps and parameters follow PyTorch's over a
run with injected inf/NaN gradients; autocast casts the ops PyTorch's autocast casts (MLP and CNN training steps,
the op policy, nesting and the decorator against torch.autocast on the CPU); backends settings are kept."""

import math

import numpy as np
import pytest
import torch

import dtorch


def run_scaled_training(lib, steps=12, bad_steps=(2, 3, 7), **scaler_options):
    """A tiny model trained under a GradScaler; on ``bad_steps`` the loss is multiplied by inf (or NaN)."""
    weight = lib.nn.Parameter(lib.tensor([[0.5, -1.0], [2.0, 0.25]]))
    bias = lib.nn.Parameter(lib.tensor([0.1, -0.2]))
    optimizer = lib.optim.SGD([weight, bias], lr=0.05, momentum=0.9)
    scaler = lib.amp.GradScaler("cpu", **scaler_options)
    x = lib.tensor([[1.0, 2.0], [-1.0, 0.5], [0.3, -0.7]])
    scales, losses = [], []
    for step in range(steps):
        optimizer.zero_grad()
        loss = ((x @ weight + bias) ** 2).mean()
        if step in bad_steps:
            loss = loss * (math.inf if step % 2 else math.nan)
        scaler.scale(loss).backward()
        if step == 5:
            scaler.unscale_(optimizer)  # as before gradient clipping
            lib.nn.utils.clip_grad_norm_([weight, bias], 1.0)
        scaler.step(optimizer)
        scaler.update()
        scales.append(scaler.get_scale())
        losses.append(loss.item())
    return scales, weight.detach().numpy().copy(), bias.detach().numpy().copy(), scaler.state_dict()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the injected inf/NaN losses make NumPy warn, on purpose
@pytest.mark.parametrize("options", [{}, {"init_scale": 8.0, "growth_interval": 2},
                                     {"init_scale": 2.0 ** 10, "growth_factor": 4.0, "backoff_factor": 0.25,
                                      "growth_interval": 3}])
def test_grad_scaler_follows_torch(options):
    ours = run_scaled_training(dtorch, **options)
    theirs = run_scaled_training(torch, **options)
    assert ours[0] == theirs[0]  # the scale after every step
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-6)
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-6)
    assert ours[3].keys() == theirs[3].keys()
    for key in ours[3]:
        assert float(ours[3][key]) == float(theirs[3][key]), key


def test_grad_scaler_state_round_trip_and_errors():
    scaler = dtorch.amp.GradScaler("cpu", init_scale=16.0, growth_interval=5)
    restored = dtorch.amp.GradScaler("cpu")
    restored.load_state_dict(scaler.state_dict())
    assert restored.get_scale() == 16.0 and restored.get_growth_interval() == 5
    w = dtorch.nn.Parameter(dtorch.ones(1))
    optimizer = dtorch.optim.SGD([w], lr=0.1)
    scaler.scale(w.sum()).backward()
    scaler.unscale_(optimizer)
    with pytest.raises(RuntimeError, match="already been called on this optimizer"):
        scaler.unscale_(optimizer)
    scaler.step(optimizer)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        scaler.step(optimizer)
    with pytest.raises(ValueError, match="growth factor"):
        dtorch.amp.GradScaler("cpu", growth_factor=1.0)


def test_disabled_and_cuda_without_gpu_pass_through():
    if dtorch.cuda.is_available():
        pytest.skip("a GPU is present: the CUDA scaler stays enabled")
    with pytest.warns(UserWarning, match="CUDA is not available"):
        scaler = dtorch.cuda.amp.GradScaler()
    assert not scaler.is_enabled() and scaler.get_scale() == 1.0 and scaler.state_dict() == {}
    w = dtorch.nn.Parameter(dtorch.ones(1))
    optimizer = dtorch.optim.SGD([w], lr=0.5)
    loss = scaler.scale((w * 2).sum())
    loss.backward()
    scaler.step(optimizer)
    scaler.update()
    assert w.item() == 0.0


def _copy_into_torch(ours, theirs):
    theirs.load_state_dict({k: torch.from_numpy(v._array.copy()) for k, v in ours.state_dict().items()})


def _close(ours, theirs, rtol=1.6e-2, atol=1e-2, what=""):
    assert repr(ours.dtype).replace("dtorch.", "") == repr(theirs.dtype).replace("torch.", ""), what
    np.testing.assert_allclose(ours.detach().float()._array, theirs.detach().float().numpy(), rtol=rtol, atol=atol)


def _mlp(lib):
    return lib.nn.Sequential(lib.nn.Linear(10, 32), lib.nn.ReLU(), lib.nn.Linear(32, 4))


def _cnn(lib):
    return lib.nn.Sequential(lib.nn.Conv2d(3, 6, 3, padding=1), lib.nn.ReLU(), lib.nn.MaxPool2d(2),
                             lib.nn.Flatten(), lib.nn.Linear(6 * 4 * 4, 5))


def _cnn_batchnorm(lib):  # BatchNorm's parameters stay float32 beside a bfloat16 input, as in PyTorch
    return lib.nn.Sequential(lib.nn.Conv2d(3, 6, 3, padding=1), lib.nn.BatchNorm2d(6), lib.nn.ReLU(),
                             lib.nn.AdaptiveAvgPool2d(1), lib.nn.Flatten(), lib.nn.Linear(6, 5))


@pytest.mark.parametrize("make, shape, classes", [(_mlp, (16, 10), 4), (_cnn, (4, 3, 8, 8), 5),
                                                  (_cnn_batchnorm, (4, 3, 8, 8), 5)])
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_autocast_cpu_training_step_matches_pytorch(make, shape, classes, dtype):
    """Under autocast('cpu'): the products run in the region's dtype, the loss in float32, and the parameters'
    gradients come back in float32 (differentiable casts), all as PyTorch's autocast."""
    dtorch.manual_seed(0)
    ours, theirs = make(dtorch), make(torch)
    _copy_into_torch(ours, theirs)
    x = np.random.RandomState(1).randn(*shape).astype(np.float32)
    y = np.random.RandomState(2).randint(0, classes, shape[0])
    results = []
    for lib, net in ((dtorch, ours), (torch, theirs)):
        with lib.autocast("cpu", dtype=getattr(lib, dtype)):
            logits = net(lib.from_numpy(x))
            loss = lib.nn.functional.cross_entropy(logits, lib.from_numpy(y))
        loss.backward()
        results.append((logits, loss))
    (logits, loss), (their_logits, their_loss) = results
    _close(logits, their_logits)
    _close(loss, their_loss)
    assert logits.dtype == getattr(dtorch, dtype) and loss.dtype == dtorch.float32
    for (name, p), tp in zip(ours.named_parameters(), theirs.parameters()):
        assert p.grad.dtype == dtorch.float32, name
        _close(p.grad, tp.grad, atol=2e-2)
    for (name, b), tb in zip(ours.named_buffers(), theirs.buffers()):  # BatchNorm's running statistics
        assert b.dtype == getattr(dtorch, repr(tb.dtype).split(".")[1]), name
        np.testing.assert_allclose(b._array.astype(np.float64), tb.numpy().astype(np.float64), rtol=1e-2, atol=1e-3)


def test_autocast_op_policy_matches_pytorch():
    x = np.random.RandomState(0).randn(4, 6).astype(np.float32)
    w = np.random.RandomState(1).randn(5, 6).astype(np.float32)
    cases = {
        "matmul": lambda lib, a, b: a @ b.T, "mm": lambda lib, a, b: lib.mm(a, b.T),
        "bmm": lambda lib, a, b: lib.bmm(a[None], b.T[None]), "addmm": lambda lib, a, b: lib.addmm(a[:, :5], a, b.T),
        "baddbmm": lambda lib, a, b: lib.baddbmm(a[None, :, :5], a[None], b.T[None]),
        "linear": lambda lib, a, b: lib.nn.functional.linear(a, b),
        "double_stays": lambda lib, a, b: a.double() @ b.double().T,
        "softmax_stays": lambda lib, a, b: (a @ b.T).softmax(1),
        "layer_norm_stays": lambda lib, a, b: lib.nn.functional.layer_norm(a @ b.T, (5,)),
        "relu_stays": lambda lib, a, b: (a @ b.T).relu(), "sum_stays": lambda lib, a, b: (a @ b.T).sum(),
        "float32_op_input": lambda lib, a, b: a + 1,
        "mse_loss": lambda lib, a, b: lib.nn.functional.mse_loss(a @ b.T, a[:, :5]),
        "l1_loss": lambda lib, a, b: lib.nn.functional.l1_loss(a @ b.T, a[:, :5]),
        "smooth_l1_loss": lambda lib, a, b: lib.nn.functional.smooth_l1_loss(a @ b.T, a[:, :5]),
        "nll_loss": lambda lib, a, b: lib.nn.functional.nll_loss((a @ b.T).log_softmax(1), lib.tensor([0, 1, 2, 3])),
        "bce_logits": lambda lib, a, b: lib.nn.functional.binary_cross_entropy_with_logits(a @ b.T, a[:, :5].sigmoid()),
        "kl_div": lambda lib, a, b: lib.nn.functional.kl_div((a @ b.T).log_softmax(1), a[:, :5].softmax(1),
                                                             reduction="batchmean"),
        "conv1d": lambda lib, a, b: lib.nn.functional.conv1d(a[None], b[:, :4, None]),
        "sdpa": lambda lib, a, b: lib.nn.functional.scaled_dot_product_attention(a[None], a[None], a[None]),
    }
    for name, case in cases.items():
        outs = []
        for lib in (dtorch, torch):
            with lib.autocast("cpu"):
                outs.append(case(lib, lib.from_numpy(x), lib.from_numpy(w)))
        _close(*outs, atol=3e-2, what=name)


def test_autocast_multihead_attention_matches_pytorch():
    dtorch.manual_seed(0)
    ours = dtorch.nn.MultiheadAttention(8, 2, batch_first=True)
    theirs = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    _copy_into_torch(ours, theirs)
    x = np.random.RandomState(3).randn(2, 5, 8).astype(np.float32)
    with dtorch.autocast("cpu"):
        out, weights = ours(*(dtorch.from_numpy(x),) * 3)
    with torch.autocast("cpu"):
        their_out, their_weights = theirs(*(torch.from_numpy(x),) * 3)
    _close(out, their_out, atol=3e-2)
    _close(weights, their_weights, atol=3e-2)


def test_autocast_nesting_state_and_decorator():
    def state(lib):
        return (lib.is_autocast_enabled("cpu"), lib.is_autocast_enabled(), repr(lib.get_autocast_dtype("cpu")),
                repr(lib.get_autocast_dtype("cuda")))

    def trace(lib):
        seen = [state(lib)]
        a = lib.ones(2, 3)
        with lib.autocast("cpu"):
            seen.append(state(lib) + (repr((a @ a.T).dtype),))
            with lib.autocast("cpu", enabled=False):
                seen.append(state(lib) + (repr((a @ a.T).dtype),))
            with lib.autocast("cpu", dtype=lib.float16):
                seen.append(state(lib) + (repr((a @ a.T).dtype),))
            seen.append(state(lib) + (repr((a @ a.T).dtype),))

        @lib.autocast("cpu")
        def product(u):
            return u @ u.T

        seen.append(repr(product(a).dtype))
        seen.append(state(lib) + (repr((a @ a.T).dtype),))
        try:
            with lib.autocast("cpu"):
                raise KeyError("inside")
        except KeyError:
            pass
        seen.append(state(lib))
        return [tuple(str(v).replace("dtorch.", "torch.") for v in item) if isinstance(item, tuple)
                else item.replace("dtorch.", "torch.") for item in seen]

    assert trace(dtorch) == trace(torch)


def test_autocast_disables_itself_where_pytorch_does():
    for dtype in ("float32", "float64"):
        with pytest.warns(UserWarning, match="CPU autocast, but the target dtype is not supported"):
            region = dtorch.autocast("cpu", dtype=getattr(dtorch, dtype))
        with region:
            assert not dtorch.is_autocast_enabled("cpu")
            assert (dtorch.ones(2, 2) @ dtorch.ones(2, 2)).dtype == dtorch.float32
    if not dtorch.cuda.is_available():
        with pytest.warns(UserWarning, match="CUDA is not available"):
            region = dtorch.autocast("cuda")
        with region:
            assert not dtorch.is_autocast_enabled("cuda")
    with pytest.raises(RuntimeError, match="unsupported autocast device_type"):
        dtorch.autocast("tpu")
    with pytest.raises(RuntimeError, match="unsupported autocast device_type"):
        dtorch.get_autocast_dtype("tpu")


def test_autocast_leaves_the_per_op_state_off_outside_regions():
    state = dtorch.autograd.grad_mode.autocast_state
    assert state.active is False and state.inner is False
    with dtorch.autocast("cpu"):
        assert state.active is True
        dtorch.nn.functional.linear(dtorch.ones(2, 3), dtorch.ones(4, 3))
        assert state.active is True and state.inner is False
    assert state.active is False


def test_backend_switches_are_kept():
    dtorch.backends.cudnn.benchmark = True
    dtorch.backends.cuda.matmul.allow_tf32 = True
    assert dtorch.backends.cudnn.benchmark and dtorch.backends.cuda.matmul.allow_tf32
    dtorch.set_float32_matmul_precision("high")
    assert dtorch.get_float32_matmul_precision() == "high"
    dtorch.set_float32_matmul_precision("highest")
    with pytest.raises(RuntimeError, match="Invalid precision"):
        dtorch.set_float32_matmul_precision("low")
    dtorch.use_deterministic_algorithms(True)
    assert dtorch.are_deterministic_algorithms_enabled()
    dtorch.use_deterministic_algorithms(False)
    assert dtorch.cuda.memory_allocated() == 0 or dtorch.cuda.is_available()
    dtorch.cuda.empty_cache()


def test_a_cuda_region_leaves_cpu_tensors_alone():
    """The casts follow the tensors' device type: with autocast on for 'cuda' only (set directly, as no GPU may be
    here), CPU products and losses keep their dtypes, as in PyTorch."""
    for lib in (dtorch, torch):
        lib.set_autocast_enabled("cuda", True)
        try:
            assert lib.is_autocast_enabled("cuda") and not lib.is_autocast_enabled("cpu")
            a = lib.ones(2, 3)
            assert (a @ a.T).dtype == lib.float32
            assert lib.nn.functional.linear(a, lib.ones(4, 3)).dtype == lib.float32
            logits = lib.ones(2, 3, dtype=lib.bfloat16)
            assert lib.nn.functional.softmax(logits, 1).dtype == lib.bfloat16
        finally:
            lib.set_autocast_enabled("cuda", False)
    assert not dtorch.is_autocast_enabled("cuda") and dtorch.autograd.grad_mode.autocast_state.active is False
