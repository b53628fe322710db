"""A NumPy array passed where a Tensor is expected: dtorch raises PyTorch's TypeError
("exp(): argument 'input' (position 1) must be Tensor, not numpy.ndarray") exactly where PyTorch does, and never an
AttributeError from inside dtorch; where PyTorch accepts the array (a Tensor's operators), dtorch does too.

Each case is run on PyTorch first, which decides what dtorch must do.
"""

import re

import numpy as np
import pytest
import torch

import dtorch

_RNG = np.random.default_rng(0)
X = _RNG.standard_normal((2, 3)).astype(np.float32)  # the user's array, passed by mistake
IMAGE = _RNG.standard_normal((1, 1, 4, 4)).astype(np.float32)
SEQUENCE = _RNG.standard_normal((1, 1, 5)).astype(np.float32)


def _t(lib, array):
    return lib.tensor(array)


# (id, call(lib, F, x)): lib is torch or dtorch, F its nn.functional, x a NumPy array
CASES = [
    # top-level math, elementwise
    ("exp", lambda lib, F, x: lib.exp(x)),
    ("log", lambda lib, F, x: lib.log(x)),
    ("sqrt", lambda lib, F, x: lib.sqrt(x)),
    ("sin", lambda lib, F, x: lib.sin(x)),
    ("tanh", lambda lib, F, x: lib.tanh(x)),
    ("sigmoid", lambda lib, F, x: lib.sigmoid(x)),
    ("abs", lambda lib, F, x: lib.abs(x)),
    ("neg", lambda lib, F, x: lib.neg(x)),
    ("relu", lambda lib, F, x: lib.relu(x)),
    ("square", lambda lib, F, x: lib.square(x)),
    ("floor", lambda lib, F, x: lib.floor(x)),
    ("round", lambda lib, F, x: lib.round(x)),
    ("sign", lambda lib, F, x: lib.sign(x)),
    ("clamp", lambda lib, F, x: lib.clamp(x, 0, 1)),
    ("isnan", lambda lib, F, x: lib.isnan(x)),
    ("add_array_scalar", lambda lib, F, x: lib.add(x, 1)),
    ("mul_array_scalar", lambda lib, F, x: lib.mul(x, 2.0)),
    ("sub_array_scalar", lambda lib, F, x: lib.sub(x, 1)),
    ("div_array_scalar", lambda lib, F, x: lib.div(x, 2)),
    ("pow_array_scalar", lambda lib, F, x: lib.pow(x, 2)),
    ("maximum_tensor_array", lambda lib, F, x: lib.maximum(_t(lib, X), x)),
    ("minimum_array_tensor", lambda lib, F, x: lib.minimum(x, _t(lib, X))),
    ("atan2_tensor_array", lambda lib, F, x: lib.atan2(_t(lib, X), x)),
    ("where_input", lambda lib, F, x: lib.where(_t(lib, X) > 0, x, _t(lib, X))),
    # reductions
    ("sum", lambda lib, F, x: lib.sum(x)),
    ("sum_dim", lambda lib, F, x: lib.sum(x, dim=0)),
    ("mean", lambda lib, F, x: lib.mean(x)),
    ("prod", lambda lib, F, x: lib.prod(x)),
    ("max", lambda lib, F, x: lib.max(x)),
    ("max_dim", lambda lib, F, x: lib.max(x, 1)),
    ("min", lambda lib, F, x: lib.min(x)),
    ("argmax", lambda lib, F, x: lib.argmax(x, dim=1)),
    ("std", lambda lib, F, x: lib.std(x)),
    ("var", lambda lib, F, x: lib.var(x)),
    ("norm", lambda lib, F, x: lib.norm(x)),
    ("cumsum", lambda lib, F, x: lib.cumsum(x, 0)),
    ("logsumexp", lambda lib, F, x: lib.logsumexp(x, 1)),
    ("all", lambda lib, F, x: lib.all(x)),
    ("softmax", lambda lib, F, x: lib.softmax(x, 0)),
    ("log_softmax", lambda lib, F, x: lib.log_softmax(x, 1)),
    # shapes
    ("reshape", lambda lib, F, x: lib.reshape(x, (6,))),
    ("flatten", lambda lib, F, x: lib.flatten(x)),
    ("squeeze", lambda lib, F, x: lib.squeeze(x)),
    ("unsqueeze", lambda lib, F, x: lib.unsqueeze(x, 0)),
    ("transpose", lambda lib, F, x: lib.transpose(x, 0, 1)),
    ("permute", lambda lib, F, x: lib.permute(x, (1, 0))),
    ("t", lambda lib, F, x: lib.t(x)),
    ("cat", lambda lib, F, x: lib.cat([x, x])),
    ("cat_second", lambda lib, F, x: lib.cat((_t(lib, X), x))),
    ("stack", lambda lib, F, x: lib.stack([x, x])),
    ("split", lambda lib, F, x: lib.split(x, 1)),
    ("chunk", lambda lib, F, x: lib.chunk(x, 2)),
    ("flip", lambda lib, F, x: lib.flip(x, (0,))),
    ("roll", lambda lib, F, x: lib.roll(x, 1, 0)),
    ("tril", lambda lib, F, x: lib.tril(x)),
    ("gather", lambda lib, F, x: lib.gather(x, 1, lib.zeros(2, 1, dtype=lib.int64))),
    ("index_select", lambda lib, F, x: lib.index_select(x, 0, lib.tensor([0]))),
    ("masked_fill", lambda lib, F, x: lib.masked_fill(x, lib.ones(2, 3, dtype=lib.bool), 0.0)),
    ("hstack", lambda lib, F, x: lib.hstack([x, x])),
    ("meshgrid", lambda lib, F, x: lib.meshgrid(x[0], x[1], indexing="ij")),
    ("broadcast_tensors", lambda lib, F, x: lib.broadcast_tensors(x, _t(lib, X))),
    ("diagonal", lambda lib, F, x: lib.diagonal(x)),
    ("diff", lambda lib, F, x: lib.diff(x)),
    ("nan_to_num", lambda lib, F, x: lib.nan_to_num(x)),
    ("unique", lambda lib, F, x: lib.unique(x)),
    ("repeat_interleave", lambda lib, F, x: lib.repeat_interleave(x, 2)),
    ("is_complex", lambda lib, F, x: lib.is_complex(x)),
    # products
    ("mm", lambda lib, F, x: lib.mm(x, _t(lib, X.T))),
    ("bmm", lambda lib, F, x: lib.bmm(x[None], _t(lib, X.T[None]))),
    ("outer", lambda lib, F, x: lib.outer(x[0], _t(lib, X[0]))),
    ("einsum", lambda lib, F, x: lib.einsum("ij->i", x)),
    ("sort", lambda lib, F, x: lib.sort(x)),
    ("topk", lambda lib, F, x: lib.topk(x, 2)),
    ("equal", lambda lib, F, x: lib.equal(_t(lib, X), x)),
    ("allclose", lambda lib, F, x: lib.allclose(_t(lib, X), x)),
    ("isclose", lambda lib, F, x: lib.isclose(_t(lib, X), x)),
    ("Tensor.isclose", lambda lib, F, x: _t(lib, X).isclose(x)),
    ("dist", lambda lib, F, x: lib.dist(_t(lib, X), x)),
    ("Tensor.dist", lambda lib, F, x: _t(lib, X).dist(x)),
    # nn.functional
    ("F.relu", lambda lib, F, x: F.relu(x)),
    ("F.gelu", lambda lib, F, x: F.gelu(x)),
    ("F.leaky_relu", lambda lib, F, x: F.leaky_relu(x)),
    ("F.silu", lambda lib, F, x: F.silu(x)),
    ("F.softmax", lambda lib, F, x: F.softmax(x, dim=1)),
    ("F.log_softmax", lambda lib, F, x: F.log_softmax(x, dim=1)),
    ("F.dropout", lambda lib, F, x: F.dropout(x, 0.5, training=False)),
    ("F.linear", lambda lib, F, x: F.linear(x, lib.ones(2, 3))),
    ("F.linear_weight", lambda lib, F, x: F.linear(_t(lib, X), x)),
    ("F.conv2d", lambda lib, F, x: F.conv2d(IMAGE, lib.ones(1, 1, 3, 3))),
    ("F.max_pool2d", lambda lib, F, x: F.max_pool2d(IMAGE, 2)),
    ("F.avg_pool2d", lambda lib, F, x: F.avg_pool2d(IMAGE, 2)),
    ("F.layer_norm", lambda lib, F, x: F.layer_norm(x, (3,))),
    ("F.normalize", lambda lib, F, x: F.normalize(x)),
    ("F.pad", lambda lib, F, x: F.pad(x, (1, 1))),
    ("F.embedding", lambda lib, F, x: F.embedding(lib.tensor([0, 1]), x)),
    ("F.one_hot", lambda lib, F, x: F.one_hot(np.array([0, 1]), 3)),
    ("F.selu", lambda lib, F, x: F.selu(x)),
    ("F.celu", lambda lib, F, x: F.celu(x)),
    ("F.dropout2d_eval", lambda lib, F, x: F.dropout2d(IMAGE, training=False)),
    ("F.softplus", lambda lib, F, x: F.softplus(x)),
    ("F.hardswish", lambda lib, F, x: F.hardswish(x)),
    ("F.glu", lambda lib, F, x: F.glu(x[:, :2])),
    ("F.adaptive_avg_pool2d", lambda lib, F, x: F.adaptive_avg_pool2d(IMAGE, 1)),
    ("F.interpolate", lambda lib, F, x: F.interpolate(IMAGE, scale_factor=2)),
    ("F.cosine_similarity", lambda lib, F, x: F.cosine_similarity(x, _t(lib, X))),
    # losses
    ("F.mse_loss_input", lambda lib, F, x: F.mse_loss(x, _t(lib, X))),
    ("F.l1_loss_input", lambda lib, F, x: F.l1_loss(x, _t(lib, X))),
    ("F.cross_entropy", lambda lib, F, x: F.cross_entropy(x, lib.tensor([0, 1]))),
    ("F.nll_loss", lambda lib, F, x: F.nll_loss(x, lib.tensor([0, 1]))),
    ("F.binary_cross_entropy_with_logits", lambda lib, F, x: F.binary_cross_entropy_with_logits(x, _t(lib, X))),
    ("F.binary_cross_entropy", lambda lib, F, x: F.binary_cross_entropy(x.clip(0.1, 0.9), _t(lib, X.clip(0, 1)))),
    ("F.smooth_l1_loss", lambda lib, F, x: F.smooth_l1_loss(x, _t(lib, X))),
    ("F.kl_div", lambda lib, F, x: F.kl_div(x, _t(lib, X), reduction="batchmean")),
    # nn modules' forward
    ("nn.Linear", lambda lib, F, x: lib.nn.Linear(3, 2)(x)),
    ("nn.Conv1d", lambda lib, F, x: lib.nn.Conv1d(1, 1, 1)(SEQUENCE)),
    ("nn.Conv2d", lambda lib, F, x: lib.nn.Conv2d(1, 1, 3)(IMAGE)),
    ("nn.ReLU", lambda lib, F, x: lib.nn.ReLU()(x)),
    ("nn.Sigmoid", lambda lib, F, x: lib.nn.Sigmoid()(x)),
    ("nn.Softmax", lambda lib, F, x: lib.nn.Softmax(dim=1)(x)),
    ("nn.Dropout_eval", lambda lib, F, x: lib.nn.Dropout().eval()(x)),
    ("nn.LayerNorm", lambda lib, F, x: lib.nn.LayerNorm(3)(x)),
    ("nn.BatchNorm1d", lambda lib, F, x: lib.nn.BatchNorm1d(3)(x)),
    ("nn.MaxPool2d", lambda lib, F, x: lib.nn.MaxPool2d(2)(IMAGE)),
    ("nn.Flatten", lambda lib, F, x: lib.nn.Flatten()(x)),
    ("nn.Sequential", lambda lib, F, x: lib.nn.Sequential(lib.nn.Linear(3, 2), lib.nn.ReLU())(x)),
    ("nn.MSELoss", lambda lib, F, x: lib.nn.MSELoss()(x, _t(lib, X))),
    ("nn.CrossEntropyLoss", lambda lib, F, x: lib.nn.CrossEntropyLoss()(x, lib.tensor([0, 1]))),
    ("nn.BCEWithLogitsLoss", lambda lib, F, x: lib.nn.BCEWithLogitsLoss()(x, _t(lib, X))),
    ("nn.Softmax2d", lambda lib, F, x: lib.nn.Softmax2d()(IMAGE)),
    ("nn.InstanceNorm1d", lambda lib, F, x: lib.nn.InstanceNorm1d(1)(SEQUENCE)),
    ("nn.GroupNorm", lambda lib, F, x: lib.nn.GroupNorm(1, 1)(IMAGE)),
    ("nn.RMSNorm", lambda lib, F, x: lib.nn.RMSNorm(3)(x)),
    ("nn.LSTM", lambda lib, F, x: lib.nn.LSTM(3, 4)(x[None])),
    ("nn.GRUCell", lambda lib, F, x: lib.nn.GRUCell(3, 4)(x)),
    ("nn.MultiheadAttention", lambda lib, F, x: lib.nn.MultiheadAttention(3, 1)(x[None], x[None], x[None])),
    ("nn.TransformerEncoderLayer", lambda lib, F, x: lib.nn.TransformerEncoderLayer(3, 1)(x[None])),
    ("nn.Unflatten", lambda lib, F, x: lib.nn.Unflatten(1, (3, 1))(x)),
    ("nn.TripletMarginLoss", lambda lib, F, x: lib.nn.TripletMarginLoss()(x, _t(lib, X), _t(lib, -X))),
    ("nn.Embedding_indices", lambda lib, F, x: lib.nn.Embedding(3, 2)(np.array([0, 1]))),
    # optimizers given an array among the params
    ("optim.SGD", lambda lib, F, x: lib.optim.SGD([x], lr=0.1)),
    ("optim.Adam", lambda lib, F, x: lib.optim.Adam([x])),
    ("optim.AdamW_group", lambda lib, F, x: lib.optim.AdamW([{"params": [x]}])),
    ("optim.SGD_mixed", lambda lib, F, x: lib.optim.SGD([lib.zeros(2, requires_grad=True), x], lr=0.1)),
    # a Tensor's operators take an array operand in PyTorch; dtorch's too
    ("operator_add", lambda lib, F, x: _t(lib, X) + x),
    ("operator_sub", lambda lib, F, x: _t(lib, X) - x),
    ("operator_mul", lambda lib, F, x: _t(lib, X) * x),
    ("operator_truediv", lambda lib, F, x: _t(lib, X) / x),
    ("operator_rtruediv", lambda lib, F, x: x / _t(lib, X)),
    ("operator_pow", lambda lib, F, x: _t(lib, X).abs() ** x),
    ("operator_matmul", lambda lib, F, x: _t(lib, X) @ x.T),
    # and conversions take arrays, of course
    ("tensor", lambda lib, F, x: lib.tensor(x)),
    ("as_tensor", lambda lib, F, x: lib.as_tensor(x)),
    ("from_numpy", lambda lib, F, x: lib.from_numpy(x)),
    # factories, linalg, fft and the top-level predicates (type checks at their top: none is on a hot path)
    ("zeros_like", lambda lib, F, x: lib.zeros_like(x)),
    ("ones_like", lambda lib, F, x: lib.ones_like(x)),
    ("empty_like", lambda lib, F, x: lib.empty_like(x)),
    ("full_like", lambda lib, F, x: lib.full_like(x, 2.0)),
    ("rand_like", lambda lib, F, x: lib.rand_like(x)),
    ("randn_like", lambda lib, F, x: lib.randn_like(x)),
    ("linalg.det", lambda lib, F, x: lib.linalg.det(x.reshape(-1)[:4].reshape(2, 2))),
    ("linalg.inv", lambda lib, F, x: lib.linalg.inv(x.reshape(-1)[:4].reshape(2, 2))),
    ("linalg.matrix_exp", lambda lib, F, x: lib.linalg.matrix_exp(x.reshape(-1)[:4].reshape(2, 2))),
    ("linalg.matrix_norm", lambda lib, F, x: lib.linalg.matrix_norm(x.reshape(-1)[:4].reshape(2, 2))),
    ("linalg.norm", lambda lib, F, x: lib.linalg.norm(x)),
    ("fft.fftshift", lambda lib, F, x: lib.fft.fftshift(x)),
    ("fft.ifftshift", lambda lib, F, x: lib.fft.ifftshift(x)),
    ("numel", lambda lib, F, x: lib.numel(x)),
    ("is_floating_point", lambda lib, F, x: lib.is_floating_point(x)),
]

# Deliberate differences: the reflected operators (``array @ t``, ``array - t``, ``array * t``) call the same
# functions as ``dtorch.matmul``/``dtorch.sub``/``dtorch.mul`` with the array first, and dtorch accepts them
# (tests/ops/test_linalg.py relies on ``array @ t``), where PyTorch raises TypeError for both forms. A Tensor with an
# array second (``dtorch.add(t, array)``) is accepted for the same reason: it is ``t + array``, which PyTorch takes.
ACCEPTED_BY_DTORCH_ONLY = [
    ("matmul_array_first", lambda lib, F, x: lib.matmul(x, _t(lib, X.T))),
    ("sub_array_tensor", lambda lib, F, x: lib.sub(x, _t(lib, X))),
    ("mul_array_tensor", lambda lib, F, x: lib.mul(x, _t(lib, X))),
    ("add_tensor_array", lambda lib, F, x: lib.add(_t(lib, X), x)),
    ("Tensor.add_array", lambda lib, F, x: _t(lib, X).add(x)),
    # a mask array as where's condition: the create_graph backward formulas pass NumPy masks to dtorch.where
    ("where_condition", lambda lib, F, x: lib.where(x > 0, _t(lib, X), _t(lib, -X))),
]

# PyTorch names an internal overload here; dtorch the public function
_INTERNAL_NAMES = {"_unique2": "unique"}
_MUST_BE_TENSOR = re.compile(r"(\w+)\(\): argument '(\w+)'(?: \(position \d+\))? must be Tensor, not numpy\.ndarray")


def _outcome(lib, call):
    try:
        return call(lib, lib.nn.functional, X.copy()), None
    except Exception as error:  # noqa: BLE001 - the oracle's outcome, whatever it is
        return None, error


def _as_numpy(value):
    if isinstance(value, (tuple, list)):
        return [_as_numpy(v) for v in value]
    if hasattr(value, "detach"):
        return value.detach().numpy()
    return value


@pytest.mark.parametrize("call", [case[1] for case in CASES], ids=[case[0] for case in CASES])
def test_array_where_a_tensor_belongs(call):
    expected, torch_error = _outcome(torch, call)
    result, error = _outcome(dtorch, call)
    if torch_error is None:
        assert error is None, f"PyTorch accepts the array, dtorch raises {type(error).__name__}: {error}"
        if isinstance(expected, torch.Tensor) or isinstance(expected, (tuple, list)):
            expected_values, values = _as_numpy(expected), _as_numpy(result)
            np.testing.assert_allclose(np.asarray(values, dtype=float), np.asarray(expected_values, dtype=float),
                                       rtol=1e-5, atol=1e-6)
        return
    if isinstance(torch_error, AttributeError):
        # PyTorch's Python-level front ends (torch.norm, torch.split, F.softmax, nn.BatchNorm1d) call a Tensor
        # method on the array; dtorch gives the TypeError the issue asks for instead
        assert type(error) is TypeError and "numpy.ndarray" in str(error), (torch_error, error)
        return
    assert isinstance(torch_error, TypeError), f"the oracle itself: {torch_error!r}"
    assert isinstance(error, TypeError), (
        f"PyTorch raises TypeError({torch_error}); dtorch {'accepts' if error is None else repr(error)}"
    )
    torch_message, message = str(torch_error).splitlines()[0], str(error)
    found = _MUST_BE_TENSOR.search(torch_message)
    if found:  # the key part: the function, the argument, and the type
        function, argument = found.groups()
        function = _INTERNAL_NAMES.get(function, function)
        assert f"{function}(): argument '{argument}'" in message, (torch_message, message)
        assert "must be Tensor, not numpy.ndarray" in message, (torch_message, message)
    elif torch_message.startswith(("expected Tensor as element", "optimizer can only optimize")):
        assert message == torch_message
    else:  # PyTorch's "received an invalid combination of arguments - got (numpy.ndarray, ...)" and the like
        assert "numpy.ndarray" in message or message == torch_message, (torch_message, message)


@pytest.mark.parametrize("call", [case[1] for case in ACCEPTED_BY_DTORCH_ONLY],
                         ids=[case[0] for case in ACCEPTED_BY_DTORCH_ONLY])
def test_array_operand_of_an_operator_function(call):
    # the documented difference: PyTorch raises TypeError, dtorch computes what the Tensor form computes
    _, torch_error = _outcome(torch, call)
    assert isinstance(torch_error, TypeError), torch_error
    result, error = _outcome(dtorch, call)
    assert error is None, error
    tensor_form = call(dtorch, dtorch.nn.functional, dtorch.tensor(X))
    np.testing.assert_allclose(result.numpy(), tensor_form.numpy())


def test_case_count():
    # the issue asks for at least 50 everyday calls
    assert len(CASES) >= 50
    assert len({case[0] for case in CASES}) == len(CASES)


def test_real_attribute_errors_are_not_masked(monkeypatch):
    # an AttributeError inside dtorch that is not about an argument (here: an op's forward reading ``_array`` of
    # an internal object) passes through unchanged instead of becoming the TypeError
    from dtorch.ops import elementwise, reduction

    def broken(self, *arrays):
        return object()._array

    monkeypatch.setattr(elementwise.Exp, "forward", broken)
    monkeypatch.setattr(reduction.Sum, "forward", broken)
    with pytest.raises(AttributeError, match="'object' object has no attribute '_array'"):
        dtorch.exp(dtorch.ones(2))
    with pytest.raises(AttributeError, match="'object' object has no attribute '_array'"):
        dtorch.sum(dtorch.ones(2, requires_grad=True))  # (recorded: the op's forward runs, not the no-grad shortcut)


def test_a_users_own_module_keeps_its_attribute_error():
    # a module of the user's may take arrays: its own AttributeError is not turned into "must be Tensor"
    class Mine(dtorch.nn.Module):
        def forward(self, x):
            return x.no_such_method()

    with pytest.raises(AttributeError, match="no_such_method"):
        Mine()(X)
    with pytest.raises(TypeError, match=r"Softmax2d.forward\(\): argument 'input' \(position 1\) must be Tensor"):
        dtorch.nn.Softmax2d()(IMAGE)


def test_the_error_reads_like_pytorchs():
    with pytest.raises(TypeError) as caught:
        dtorch.exp(X)
    assert str(caught.value) == "exp(): argument 'input' (position 1) must be Tensor, not numpy.ndarray"
    assert type(caught.value) is TypeError
    assert caught.value.__context__ is None or caught.value.__suppress_context__  # no chained AttributeError
    with pytest.raises(TypeError) as caught:
        dtorch.nn.Linear(3, 2)(X)
    assert str(caught.value).startswith("linear(): argument 'input' (position 1)")
