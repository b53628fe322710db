"""The fused recurrent layer op (``dtorch.ops.rnn.RNNLayer``) held equal to its step-by-step reference and to PyTorch.

``RNNLayer`` runs a whole layer (one direction) on raw arrays with a hand-written backward through time; its
``composite`` builds the same recurrence from differentiable ops. Each case runs the fused op, the composite (both
differentiated by dtorch's autograd) and PyTorch's single-layer ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (a reversed
direction is PyTorch's layer on the time-reversed sequence) on the same inputs, and compares the packed output and
the gradients of every input, in float32 and float64. (Named for the op: ``tests/nn/modules/test_rnn.py`` holds the
modules, and the two test directories share one module namespace.)
"""

import warnings

import numpy as np
import pytest
import torch

import dtorch
from dtorch.ops.rnn import GATES, RNNLayer

TOLERANCES = {
    # the fused LSTM takes sigmoid as 1 / (1 + exp(-a)), the composite and PyTorch their own formulas: a few ulp
    # per step, summed over the steps in the gradients
    "float32": dict(rtol=1e-4, atol=1e-5),
    "float64": dict(rtol=1e-9, atol=1e-11),
}

CASES = [
    ("RNN_TANH", 0), ("RNN_RELU", 0), ("LSTM", 0), ("LSTM", 2), ("GRU", 0),
]


def _arrays(mode, proj, steps, batch, inputs, hidden, dtype, bias, scale, seed):
    """Random x, h0, c0 (None unless LSTM), w_ih, w_hh, b_ih, b_hh (None without bias), w_hr (None without proj)."""
    rng = np.random.default_rng(seed)
    gates = GATES[mode] * hidden
    width = proj or hidden
    bound = 1 / np.sqrt(hidden)

    def uniform(*shape):
        return rng.uniform(-bound, bound, shape).astype(dtype)

    x = (scale * rng.standard_normal((steps, batch, inputs))).astype(dtype)
    h0 = rng.standard_normal((batch, width)).astype(dtype)
    c0 = rng.standard_normal((batch, hidden)).astype(dtype) if mode == "LSTM" else None
    b_ih, b_hh = (uniform(gates), uniform(gates)) if bias else (None, None)
    w_hr = uniform(width, hidden) if proj else None
    return [x, h0, c0, uniform(gates, inputs), uniform(gates, width), b_ih, b_hh, w_hr]


def _dtorch_run(arrays, grad, state_grad, run):
    """Output and gradients of ``run(*tensors)`` (None for absent inputs and inputs without a gradient)."""
    tensors = []
    for index, array in enumerate(arrays):
        if array is None:
            tensors.append(None)
            continue
        wants = state_grad or index not in (1, 2)
        tensors.append(dtorch.tensor(array, requires_grad=wants))
    output = run(*tensors)
    output.backward(dtorch.tensor(grad))
    grads = [None if t is None or t.grad is None else t.grad.numpy() for t in tensors]
    return output.detach().numpy(), grads


def _torch_run(mode, reverse, arrays, grad):
    """PyTorch's single-layer module on the same weights: the packed output ``Y`` and the gradients."""
    x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr = arrays
    steps, batch, inputs = x.shape
    hidden = w_hh.shape[0] // GATES[mode]
    bias = b_ih is not None
    if mode == "LSTM":
        module = torch.nn.LSTM(inputs, hidden, bias=bias, proj_size=0 if w_hr is None else w_hr.shape[0])
    elif mode == "GRU":
        module = torch.nn.GRU(inputs, hidden, bias=bias)
    else:
        module = torch.nn.RNN(inputs, hidden, bias=bias, nonlinearity="tanh" if mode == "RNN_TANH" else "relu")
    module = module.to(torch.float64 if x.dtype == np.float64 else torch.float32)
    values = {"weight_ih_l0": w_ih, "weight_hh_l0": w_hh, "bias_ih_l0": b_ih, "bias_hh_l0": b_hh, "weight_hr_l0": w_hr}
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            parameter.copy_(torch.from_numpy(values[name]))
    x_t = torch.tensor(x, requires_grad=True)
    h0_t = torch.tensor(h0, requires_grad=True)
    c0_t = None if c0 is None else torch.tensor(c0, requires_grad=True)
    sequence = x_t.flip(0) if reverse else x_t
    if mode == "LSTM":
        output, (_, c_n) = module(sequence, (h0_t.unsqueeze(0), c0_t.unsqueeze(0)))
    else:
        output, _ = module(sequence, h0_t.unsqueeze(0))
    hidden_states = output.flip(0) if reverse else output
    if mode != "LSTM":
        packed = hidden_states
    elif w_hr is None:
        packed = torch.cat([hidden_states, c_n])
    else:
        packed = torch.cat([hidden_states.reshape(-1), c_n.reshape(-1)])
    packed.backward(torch.from_numpy(grad))
    by_name = dict(module.named_parameters())
    grads = [x_t.grad, h0_t.grad, None if c0_t is None else c0_t.grad]
    grads += [None if by_name.get(name) is None else by_name[name].grad
              for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_hr_l0")]
    return packed.detach().numpy(), [None if g is None else g.numpy() for g in grads]


def _compare(ours, theirs, tolerance, what):
    (out_a, grads_a), (out_b, grads_b) = ours, theirs
    np.testing.assert_allclose(out_a, out_b, **tolerance, err_msg=f"{what}: output")
    names = ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh", "w_hr")
    for name, a, b in zip(names, grads_a, grads_b):
        if a is None or b is None:
            continue
        np.testing.assert_allclose(a, b, **tolerance, err_msg=f"{what}: gradient of {name}")


@pytest.mark.parametrize("mode,proj", CASES, ids=["rnn_tanh", "rnn_relu", "lstm", "lstm_proj", "gru"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("state_grad", [True, False], ids=["state_grad", "no_state_grad"])
def test_fused_equals_composite_and_torch(mode, proj, reverse, dtype, bias, state_grad):
    arrays = _arrays(mode, proj, steps=6, batch=3, inputs=5, hidden=4, dtype=dtype, bias=bias, scale=1.0, seed=7)
    steps, batch = arrays[0].shape[:2]
    hidden = arrays[4].shape[0] // GATES[mode]
    width = proj or hidden
    if mode != "LSTM":
        shape = (steps, batch, hidden)
    elif proj:
        shape = (steps * batch * width + batch * hidden,)
    else:
        shape = (steps + 1, batch, hidden)
    grad = np.random.default_rng(8).standard_normal(shape).astype(dtype)
    layer = RNNLayer(mode=mode, reverse=reverse)
    fused = _dtorch_run(arrays, grad, state_grad,
                        lambda *t: RNNLayer.apply(*t[:7], mode=mode, reverse=reverse) if t[7] is None
                        else RNNLayer.apply(*t, mode=mode, reverse=reverse))
    reference = _dtorch_run(arrays, grad, state_grad, lambda *t: layer.composite(*t))
    tolerance = TOLERANCES[dtype]
    _compare(fused, reference, tolerance, "fused vs composite")
    _compare(fused, _torch_run(mode, reverse, arrays, grad), tolerance, "fused vs PyTorch")
    # without a gradient wanted for the initial states, none is produced (and the loop skips that work)
    if not state_grad:
        assert fused[1][1] is None and fused[1][2] is None


@pytest.mark.parametrize("mode,proj", [("LSTM", 0), ("LSTM", 2), ("GRU", 0)], ids=["lstm", "lstm_proj", "gru"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_saturated_gates_match_torch(mode, proj, dtype):
    # pre-activations of hundreds: exp(-a) overflows to inf for the sigmoid gates, whose value is then exactly 0,
    # silently (no NumPy overflow warning reaches the caller)
    arrays = _arrays(mode, proj, steps=4, batch=2, inputs=3, hidden=5, dtype=dtype, bias=True, scale=400.0, seed=11)
    steps, batch = arrays[0].shape[:2]
    if mode == "GRU":
        shape = (steps, batch, 5)
    else:
        shape = (steps * batch * proj + batch * 5,) if proj else (steps + 1, batch, 5)
    grad = np.random.default_rng(12).standard_normal(shape).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fused = _dtorch_run(arrays, grad, True, lambda *t: RNNLayer.apply(*t, mode=mode, reverse=False)
                            if t[7] is not None else RNNLayer.apply(*t[:7], mode=mode, reverse=False))
    assert np.isfinite(fused[0]).all()
    assert all(g is None or np.isfinite(g).all() for g in fused[1])
    theirs = _torch_run(mode, False, arrays, grad)
    if dtype == "float64":
        _compare(fused, theirs, TOLERANCES[dtype], "saturated gates vs PyTorch")
    else:
        # float32 gradients through gates saturated to within a few ulp of 0 or 1 are rounding noise (times
        # inputs of hundreds) in both libraries: the values only
        np.testing.assert_allclose(fused[0], theirs[0], **TOLERANCES[dtype])


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH"])
def test_backward_twice_with_retained_graph_gives_the_same_gradients(mode):
    # the backward reads the forward's saved arrays and must not change them
    arrays = _arrays(mode, 0, steps=5, batch=2, inputs=3, hidden=4, dtype="float64", bias=True, scale=1.0, seed=3)
    tensors = [None if a is None else dtorch.tensor(a, requires_grad=True) for a in arrays[:7]]
    output = RNNLayer.apply(*tensors, mode=mode, reverse=False)
    upstream = dtorch.tensor(np.random.default_rng(4).standard_normal(tuple(output.shape)))
    first = dtorch.autograd.grad(output, [t for t in tensors if t is not None], upstream, retain_graph=True)
    second = dtorch.autograd.grad(output, [t for t in tensors if t is not None], upstream)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_single_step_and_empty_batch():
    for steps, batch in ((1, 3), (4, 0)):
        arrays = _arrays("LSTM", 0, steps=steps, batch=batch, inputs=3, hidden=4, dtype="float64", bias=True,
                         scale=1.0, seed=5)
        grad = np.random.default_rng(6).standard_normal((steps + 1, batch, 4))
        fused = _dtorch_run(arrays, grad, True, lambda *t: RNNLayer.apply(*t[:7], mode="LSTM", reverse=False))
        _compare(fused, _torch_run("LSTM", False, arrays, grad), TOLERANCES["float64"], f"T={steps} B={batch}")


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_module_float32_two_layers_batch_first_matches_torch(kind):
    # the module's float32 path (the benchmarks' dtype) through both layers, batch_first, with given states
    rng = np.random.default_rng(9)
    torch.manual_seed(0)
    theirs = getattr(torch.nn, kind)(6, 8, num_layers=2, batch_first=True)
    ours = getattr(dtorch.nn, kind)(6, 8, num_layers=2, batch_first=True)
    ours.load_state_dict({k: dtorch.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    x = rng.standard_normal((3, 7, 6)).astype(np.float32)
    states = [rng.standard_normal((2, 3, 8)).astype(np.float32) for _ in range(2 if kind == "LSTM" else 1)]
    upstream = rng.standard_normal((3, 7, 8)).astype(np.float32)
    results = []
    for library, module in ((dtorch, ours), (torch, theirs)):
        inputs = library.tensor(x, requires_grad=True)
        given = [library.tensor(s, requires_grad=True) for s in states]
        output, final = module(inputs, tuple(given) if kind == "LSTM" else given[0])
        finals = final if kind == "LSTM" else (final,)
        loss = (output * library.tensor(upstream)).sum() + sum((f * f).sum() for f in finals)
        loss.backward()
        results.append([output.detach().numpy(), inputs.grad.numpy()] + [s.grad.numpy() for s in given]
                       + [p.grad.numpy() for p in module.parameters()])
    for ours_value, theirs_value in zip(*results):
        np.testing.assert_allclose(ours_value, theirs_value, **TOLERANCES["float32"])
