"""bfloat16 on the CPU (ml_dtypes' NumPy type) against PyTorch's CPU bfloat16: the dtype and its limits, factories
and casts (the same values after rounding), promotion, elementwise math, reductions accumulated in float32, matmul,
linear and convolution forward and backward, printing, NumPy interop, save/load in PyTorch's format both ways, and the
refusal to put bfloat16 on a CUDA device (checked without a GPU)."""

import io
import pickle

import ml_dtypes
import numpy as np
import pytest
import torch

import dtorch

BF16 = np.dtype(ml_dtypes.bfloat16)
RTOL = 1.6e-2  # PyTorch's default for bfloat16 in assert_close: one unit in the 8th bit, with room for one rounding


def to_torch(t):
    """A torch tensor with exactly ``t``'s values and dtype (bfloat16 goes through float32, which holds it exactly)."""
    array = t.detach()._array
    if array.dtype == BF16:
        return torch.from_numpy(array.astype(np.float32)).to(torch.bfloat16)
    return torch.from_numpy(array.copy())


def same(ours, theirs, rtol=RTOL, atol=1e-5, exact=False):
    """Same dtype name, shape and (rounded) values."""
    assert repr(ours.dtype).replace("dtorch.", "") == repr(theirs.dtype).replace("torch.", ""), \
        (ours.dtype, theirs.dtype)
    assert tuple(ours.shape) == tuple(theirs.shape)
    a = ours.detach().float()._array
    b = theirs.detach().float().numpy()
    if exact:
        np.testing.assert_array_equal(a, b)
    else:
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def pair(shape, seed=0, scale=1.0, requires_grad=False):
    """The same random bfloat16 tensor in dtorch and torch."""
    values = (np.random.RandomState(seed).randn(*shape) * scale).astype(np.float32)
    ours = dtorch.from_numpy(values).to(dtorch.bfloat16)
    theirs = torch.from_numpy(values).to(torch.bfloat16)
    if requires_grad:
        ours.requires_grad_()
        theirs.requires_grad_()
    return ours, theirs


# ---- the dtype -----------------------------------------------------------------------------------------------------


def test_dtype_attributes_and_finfo():
    bf = dtorch.bfloat16
    assert repr(bf) == repr(torch.bfloat16).replace("torch.", "dtorch.")
    assert bf.is_floating_point and bf.is_signed and not bf.is_complex
    assert bf.itemsize == torch.bfloat16.itemsize == 2
    assert pickle.loads(pickle.dumps(bf)) is bf
    ours, theirs = dtorch.finfo(bf), torch.finfo(torch.bfloat16)
    for name in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert repr(ours) == repr(theirs)
    assert dtorch.ones(2, dtype=bf).is_floating_point() and dtorch.is_floating_point(dtorch.ones(2, dtype=bf))
    assert dtorch.ones(2, dtype=bf).type() == torch.ones(2, dtype=torch.bfloat16).type().replace("torch.", "dtorch.")
    assert dtorch.ones(2).type("torch.BFloat16Tensor").dtype is bf
    assert repr(dtorch.BFloat16Tensor([1.5])) == repr(torch.BFloat16Tensor([1.5])).replace("torch.", "dtorch.")


def test_promotion_follows_pytorch():
    names = ["bfloat16", "float16", "float32", "float64", "int64", "int32", "uint8", "bool", "complex64"]
    for name in names:
        ours = dtorch.promote_types(dtorch.bfloat16, getattr(dtorch, name))
        theirs = torch.promote_types(torch.bfloat16, getattr(torch, name))
        assert repr(ours).replace("dtorch.", "") == repr(theirs).replace("torch.", ""), name
    x, tx = pair((3,))
    for other in ("float16", "float32", "float64", "int64", "uint8", "bool"):
        ours = x + dtorch.ones(3, dtype=getattr(dtorch, other))
        theirs = tx + torch.ones(3, dtype=getattr(torch, other))
        same(ours, theirs, exact=True)
    same(x + dtorch.tensor(1.5), tx + torch.tensor(1.5), exact=True)  # a 0-dim float32 does not widen bfloat16
    same(dtorch.arange(3) * dtorch.tensor(1.5, dtype=dtorch.bfloat16),
         torch.arange(3) * torch.tensor(1.5, dtype=torch.bfloat16), exact=True)
    same(x * 2.5, tx * 2.5, exact=True)
    same(x * 3, tx * 3, exact=True)


# ---- factories and casts: the same values after rounding -----------------------------------------------------------


def test_factories_round_as_pytorch():
    values = [1.0, 2.5, 1 / 3, -7.123456, 1e-3, 3.0e38, 65504.0, 1.00390625]
    same(dtorch.tensor(values, dtype=dtorch.bfloat16), torch.tensor(values, dtype=torch.bfloat16), exact=True)
    same(dtorch.zeros(2, 3, dtype=dtorch.bfloat16), torch.zeros(2, 3, dtype=torch.bfloat16), exact=True)
    same(dtorch.ones(4, dtype=dtorch.bfloat16), torch.ones(4, dtype=torch.bfloat16), exact=True)
    same(dtorch.full((3,), 0.1, dtype=dtorch.bfloat16), torch.full((3,), 0.1, dtype=torch.bfloat16), exact=True)
    same(dtorch.arange(0, 5, 0.5, dtype=dtorch.bfloat16), torch.arange(0, 5, 0.5, dtype=torch.bfloat16), exact=True)
    same(dtorch.eye(3, dtype=dtorch.bfloat16), torch.eye(3, dtype=torch.bfloat16), exact=True)
    same(dtorch.linspace(0, 1, 7, dtype=dtorch.bfloat16), torch.linspace(0, 1, 7, dtype=torch.bfloat16))
    for factory in (dtorch.randn, dtorch.rand, dtorch.empty):
        assert factory(2, 3, dtype=dtorch.bfloat16).dtype == dtorch.bfloat16
    x = dtorch.randn(3, dtype=dtorch.bfloat16, requires_grad=True)
    assert x.requires_grad and dtorch.zeros_like(x).dtype == dtorch.bfloat16


def test_bfloat16_as_the_default_dtype():
    seen = []
    for lib in (dtorch, torch):
        lib.set_default_dtype(lib.bfloat16)
        try:
            seen.append([repr(t.dtype).split(".")[1] for t in (lib.tensor([1.5]), lib.randn(2), lib.arange(0.0, 2.0),
                                                               lib.arange(3) / 2, lib.nn.Linear(2, 2).weight)]
                        + [lib.tensor([0.1]).item()])
        finally:
            lib.set_default_dtype(lib.float32)
    assert seen[0] == seen[1] and seen[0][0] == "bfloat16"


def test_casts_round_as_pytorch():
    values = np.random.RandomState(3).randn(50).astype(np.float32) * 100
    theirs = torch.from_numpy(values)
    ours = dtorch.from_numpy(values)
    same(ours.to(dtorch.bfloat16), theirs.to(torch.bfloat16), exact=True)
    same(ours.bfloat16(), theirs.bfloat16(), exact=True)
    same(ours.double().bfloat16(), theirs.double().bfloat16(), exact=True)
    same(ours.bfloat16().half(), theirs.bfloat16().half(), exact=True)
    same(ours.bfloat16().long(), theirs.bfloat16().long(), exact=True)
    same(dtorch.arange(300).bfloat16(), torch.arange(300).bfloat16(), exact=True)


def test_module_casts():
    dtorch.manual_seed(0)
    net = dtorch.nn.Sequential(dtorch.nn.Linear(4, 3), dtorch.nn.BatchNorm1d(3))
    weight = net[0].weight
    assert net.bfloat16() is net and weight.dtype == dtorch.bfloat16 and net[0].weight is weight
    assert net[1].num_batches_tracked.dtype == dtorch.int64  # integer buffers keep their dtype
    net.to(dtorch.float32)
    assert weight.dtype == dtorch.float32
    net.to(dtype=dtorch.bfloat16)
    assert net[1].running_mean.dtype == dtorch.bfloat16
    with pytest.raises(TypeError, match="floating point"):
        net.to(dtorch.int32)


# ---- math ----------------------------------------------------------------------------------------------------------

ELEMENTWISE = {
    "add": lambda lib, a, b: a + b, "sub": lambda lib, a, b: a - b, "mul": lambda lib, a, b: a * b,
    "div": lambda lib, a, b: a / b, "exp": lambda lib, a, b: a.exp(), "log": lambda lib, a, b: a.abs().log(),
    "sqrt": lambda lib, a, b: a.abs().sqrt(), "tanh": lambda lib, a, b: a.tanh(),
    "sigmoid": lambda lib, a, b: a.sigmoid(), "relu": lambda lib, a, b: a.relu(), "sin": lambda lib, a, b: a.sin(),
    "pow": lambda lib, a, b: a.abs() ** 1.5, "neg": lambda lib, a, b: -a,
    "maximum": lambda lib, a, b: lib.maximum(a, b),
    "gelu": lambda lib, a, b: lib.nn.functional.gelu(a), "silu": lambda lib, a, b: lib.nn.functional.silu(a),
    "clamp": lambda lib, a, b: a.clamp(-0.5, 0.5), "where": lambda lib, a, b: lib.where(a > 0, a, b),
    "gt": lambda lib, a, b: a > b, "elu": lambda lib, a, b: lib.nn.functional.elu(a),
    "selu": lambda lib, a, b: lib.nn.functional.selu(a), "erf": lambda lib, a, b: a.erf(),
    "hardswish": lambda lib, a, b: lib.nn.functional.hardswish(a),
    "relu6": lambda lib, a, b: lib.nn.functional.relu6(a),
    "softplus": lambda lib, a, b: lib.nn.functional.softplus(a), "mish": lambda lib, a, b: lib.nn.functional.mish(a),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise(name):
    (a, ta), (b, tb) = pair((40, 50), seed=1, scale=2.0), pair((40, 50), seed=2)
    same(ELEMENTWISE[name](dtorch, a, b), ELEMENTWISE[name](torch, ta, tb))


REDUCTIONS = {
    "sum": lambda lib, a: a.sum(), "sum_dim": lambda lib, a: a.sum(1), "mean": lambda lib, a: a.mean(),
    "mean_dim": lambda lib, a: a.mean(0, keepdim=True), "var": lambda lib, a: a.var(), "std": lambda lib, a: a.std(1),
    "norm": lambda lib, a: a.norm(), "amax": lambda lib, a: a.amax(0), "max_dim": lambda lib, a: a.max(1).values,
    "argmax": lambda lib, a: a.argmax(1), "prod": lambda lib, a: (a[:, :8] * 0.1 + 1).prod(1),
    "cumsum": lambda lib, a: a.cumsum(1), "logsumexp": lambda lib, a: a.logsumexp(1),
    "softmax": lambda lib, a: a.softmax(1), "log_softmax": lambda lib, a: lib.nn.functional.log_softmax(a, 1),
    "layer_norm": lambda lib, a: lib.nn.functional.layer_norm(a, (a.shape[1],)),
    "cross_entropy": lambda lib, a: lib.nn.functional.cross_entropy(a, lib.arange(a.shape[0]) % a.shape[1]),
    "mse_loss": lambda lib, a: lib.nn.functional.mse_loss(a, a * 0.5),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reductions_accumulate_in_float32(name):
    # 1000-long rows: a bfloat16 accumulator (NumPy's own) would be off by several percent; PyTorch's is float32
    a, ta = pair((6, 1000), seed=4)
    same(REDUCTIONS[name](dtorch, a), REDUCTIONS[name](torch, ta))


def test_reduction_backward():
    a, ta = pair((3, 200), seed=5, requires_grad=True)
    (a.softmax(1) * a).sum().backward()
    (ta.softmax(1) * ta).sum().backward()
    assert a.grad.dtype == dtorch.bfloat16
    same(a.grad, ta.grad, atol=1e-2)


PRODUCTS = {
    "matmul": (lambda lib, x, w, b: x @ w.T, ((5, 7), (6, 7), (6,))),
    "bmm": (lambda lib, x, w, b: lib.bmm(x, w.transpose(1, 2)), ((2, 5, 7), (2, 6, 7), (6,))),
    "addmm": (lambda lib, x, w, b: lib.addmm(b, x, w.T, alpha=0.5), ((5, 7), (6, 7), (6,))),
    "linear": (lambda lib, x, w, b: lib.nn.functional.linear(x, w, b), ((3, 5, 7), (6, 7), (6,))),
    "conv1d": (lambda lib, x, w, b: lib.nn.functional.conv1d(x, w, b, padding=1), ((2, 3, 9), (4, 3, 3), (4,))),
    "conv2d": (lambda lib, x, w, b: lib.nn.functional.conv2d(x, w, b, stride=2), ((2, 3, 9, 9), (4, 3, 3, 3), (4,))),
    "conv_transpose2d": (lambda lib, x, w, b: lib.nn.functional.conv_transpose2d(x, w, b),
                         ((2, 3, 5, 5), (3, 4, 3, 3), (4,))),
    "conv3d": (lambda lib, x, w, b: lib.nn.functional.conv3d(x, w, b), ((1, 2, 4, 5, 5), (3, 2, 2, 3, 3), (3,))),
    "einsum": (lambda lib, x, w, b: lib.einsum("bij,kj->bik", x, w) + b, ((2, 5, 7), (6, 7), (6,))),
    "sdpa": (lambda lib, x, w, b: lib.nn.functional.scaled_dot_product_attention(x, w, w),
             ((2, 5, 7), (2, 6, 7), (1,))),
}


@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_products_forward_and_backward(name):
    function, shapes = PRODUCTS[name]
    (x, tx), (w, tw), (b, tb) = (pair(shape, seed=i, requires_grad=True) for i, shape in enumerate(shapes))
    ours, theirs = function(dtorch, x, w, b), function(torch, tx, tw, tb)
    same(ours, theirs, atol=2e-2)
    upstream = np.random.RandomState(9).randn(*theirs.shape).astype(np.float32)
    ours.backward(dtorch.from_numpy(upstream).bfloat16())
    theirs.backward(torch.from_numpy(upstream).bfloat16())
    for leaf, their_leaf in ((x, tx), (w, tw), (b, tb)):
        if their_leaf.grad is None:
            continue
        assert leaf.grad.dtype == dtorch.bfloat16
        same(leaf.grad, their_leaf.grad, atol=5e-2)


@pytest.mark.parametrize("name", ["LSTM", "GRU", "RNN", "LSTMCell"])
def test_recurrent_layers(name):
    dtorch.manual_seed(0)
    ours, theirs = getattr(dtorch.nn, name)(4, 6), getattr(torch.nn, name)(4, 6)
    theirs.load_state_dict({k: torch.from_numpy(v._array.copy()) for k, v in ours.state_dict().items()})
    ours.bfloat16()
    theirs.bfloat16()
    x, tx = pair((3, 4) if "Cell" in name else (5, 2, 4), seed=6)
    out, their_out = ours(x), theirs(tx)
    out, their_out = (out[0], their_out[0]) if isinstance(out, tuple) else (out, their_out)
    same(out, their_out, atol=2e-2)
    out.float().sum().backward()
    their_out.float().sum().backward()
    for p, tp in zip(ours.parameters(), theirs.parameters()):
        assert p.grad.dtype == dtorch.bfloat16
        # PyTorch rounds every step's state to bfloat16, dtorch the layer's output once: compare in the norm
        difference = np.linalg.norm(p.grad.float()._array - tp.grad.float().numpy())
        assert difference <= 0.03 * np.linalg.norm(tp.grad.float().numpy()) + 1e-2


def test_batch_norm_training_and_eval():
    dtorch.manual_seed(0)
    ours, theirs = dtorch.nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    ours.bfloat16()
    theirs.bfloat16()
    x, tx = pair((4, 3, 5, 5), seed=8, scale=3.0, requires_grad=True)
    for mode in ("train", "eval"):
        getattr(ours, mode)()
        getattr(theirs, mode)()
        out, their_out = ours(x), theirs(tx)
        same(out, their_out, atol=2e-2)
        same(ours.running_mean, theirs.running_mean, atol=1e-3)
        same(ours.running_var, theirs.running_var, atol=1e-3)
    (out * out).sum().backward()
    (their_out * their_out).sum().backward()
    same(x.grad, tx.grad, atol=0.5)
    same(ours.weight.grad, theirs.weight.grad, atol=0.5)


def test_mixed_dtypes_in_a_product_are_refused():
    x = dtorch.ones(2, 3, dtype=dtorch.bfloat16)
    with pytest.raises(RuntimeError, match="dtype"):
        x @ dtorch.ones(3, 2)
    with pytest.raises(RuntimeError, match="dtype"):
        dtorch.nn.functional.linear(x, dtorch.ones(2, 3))


def test_training_a_bfloat16_model_follows_pytorch():
    def run(lib):
        lib.manual_seed(0)
        net = lib.nn.Sequential(lib.nn.Linear(6, 8), lib.nn.Tanh(), lib.nn.Linear(8, 3))
        return net

    ours, theirs = run(dtorch), run(torch)
    theirs.load_state_dict({k: torch.from_numpy(v._array.copy()) for k, v in ours.state_dict().items()})
    ours.bfloat16()
    theirs.bfloat16()
    x = np.random.RandomState(1).randn(16, 6).astype(np.float32)
    y = np.random.RandomState(2).randint(0, 3, 16)
    opt, topt = dtorch.optim.SGD(ours.parameters(), lr=0.1), torch.optim.SGD(theirs.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        topt.zero_grad()
        loss = dtorch.nn.functional.cross_entropy(ours(dtorch.from_numpy(x).bfloat16()), dtorch.from_numpy(y))
        tloss = torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x).bfloat16()), torch.from_numpy(y))
        same(loss, tloss)
        loss.backward()
        tloss.backward()
        opt.step()
        topt.step()
    for p, tp in zip(ours.parameters(), theirs.parameters()):
        assert p.dtype == dtorch.bfloat16
        same(p, tp, atol=2e-2)


# ---- printing, NumPy, files, devices -------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [[1.0, 2.5, 1 / 3], [[1e-5, 3.0], [1e5, -2.0]], [0.0], [1.0, 2.0], [1e20, 1.0]])
def test_repr_matches_pytorch(values):
    ours = dtorch.tensor(values, dtype=dtorch.bfloat16)
    theirs = torch.tensor(values, dtype=torch.bfloat16)
    assert repr(ours) == repr(theirs).replace("torch.", "dtorch.")
    x = dtorch.tensor(values, dtype=dtorch.bfloat16, requires_grad=True)
    assert repr(x * 2).startswith("tensor(") and "dtype=dtorch.bfloat16" in repr(x * 2)


def test_numpy_is_refused_as_in_pytorch_and_from_numpy_takes_ml_dtypes():
    x = dtorch.ones(3, dtype=dtorch.bfloat16)
    with pytest.raises(TypeError, match="Got unsupported ScalarType BFloat16"):
        torch.ones(3, dtype=torch.bfloat16).numpy()  # the behaviour matched
    with pytest.raises(TypeError, match="Got unsupported ScalarType BFloat16"):
        x.numpy()
    with pytest.raises(TypeError, match="Got unsupported ScalarType BFloat16"):
        np.asarray(x)
    assert x.float().numpy().dtype == np.float32
    array = np.array([1.5, -2.0, 3.25], dtype=ml_dtypes.bfloat16)
    t = dtorch.from_numpy(array)
    assert t.dtype == dtorch.bfloat16 and t.tolist() == [1.5, -2.0, 3.25]
    array[0] = 7.0  # shares memory
    assert t[0].item() == 7.0
    dtorch.testing.assert_close(t, dtorch.tensor([7.0, -2.0, 3.25], dtype=dtorch.bfloat16))


def test_save_load_in_pytorchs_format_both_ways():
    x, tx = pair((3, 4), seed=7)
    buffer = io.BytesIO()
    dtorch.save({"x": x, "half_view": x[1:, ::2], "n": 3}, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer)
    assert loaded["x"].dtype == torch.bfloat16 and torch.equal(loaded["x"], tx)
    assert torch.equal(loaded["half_view"], tx[1:, ::2]) and loaded["n"] == 3
    buffer = io.BytesIO()
    torch.save({"x": tx, "t": tx.t()}, buffer)
    buffer.seek(0)
    back = dtorch.load(buffer)
    same(back["x"], tx, exact=True)
    same(back["t"], tx.t(), exact=True)
    net = dtorch.nn.Linear(3, 2).bfloat16()
    buffer = io.BytesIO()
    dtorch.save(net.state_dict(), buffer)
    buffer.seek(0)
    theirs = torch.nn.Linear(3, 2).bfloat16()
    theirs.load_state_dict(torch.load(buffer))
    same(net.weight, theirs.weight, exact=True)


def test_cuda_is_refused_before_cupy_is_needed():
    x = dtorch.ones(2, dtype=dtorch.bfloat16)
    for move in (lambda: x.cuda(), lambda: x.to("cuda"), lambda: x.to("cuda:0"),
                 lambda: dtorch.zeros(2, dtype=dtorch.bfloat16, device="cuda"),
                 lambda: dtorch.nn.Linear(2, 2).bfloat16().cuda()):
        with pytest.raises(TypeError, match="bfloat16.*CuPy"):
            move()
    with pytest.raises(TypeError, match="bfloat16.*CuPy"):
        dtorch._backend.check_cuda_dtype(BF16)
