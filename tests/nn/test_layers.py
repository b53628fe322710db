"""Every layer against PyTorch with the same weights: outputs, input and parameter gradients, buffers, repr.

One helper, ``check_module``, builds the module in both libraries with the same arguments, copies PyTorch's
``state_dict`` into dtorch's as NumPy arrays, and compares train- and eval-mode forward and backward passes.
"""

import numpy as np
import pytest
import torch

import dtorch
from dtorch import nn


class Grad:
    """An explicit input array that requires grad (a plain ndarray input does not; a shape tuple does)."""

    def __init__(self, array):
        self.array = array


def _torch_value(value):
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    return value


def _dtorch_value(value):
    if isinstance(value, np.ndarray):
        return dtorch.from_numpy(value.copy())
    return value


def _make_inputs(specs, rng):
    """``[(array, requires_grad)]`` from shape tuples (random normal, grad), ndarrays (no grad) and ``Grad``."""
    made = []
    for spec in specs:
        if isinstance(spec, tuple):
            made.append((rng.standard_normal(spec).astype(np.float32), True))
        elif isinstance(spec, Grad):
            made.append((spec.array, True))
        else:
            made.append((spec, False))
    return made


def _to_numpy(value):
    if isinstance(value, torch.Tensor):
        return value.detach().numpy()
    return np.asarray(value.detach().numpy())


def _assert_close(actual, expected, atol, rtol, what):
    actual, expected = _to_numpy(actual), _to_numpy(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    np.testing.assert_allclose(actual, expected, atol=atol, rtol=rtol, err_msg=what)


def copy_weights(torch_module, dtorch_module):
    """Load PyTorch's state_dict into the dtorch module through NumPy arrays (strict)."""
    state = {key: dtorch.from_numpy(value.detach().numpy().copy()) for key, value in torch_module.state_dict().items()}
    result = dtorch_module.load_state_dict(state)
    assert not result.missing_keys and not result.unexpected_keys


def check_module(name, args=(), kwargs=None, inputs=(), modes=("train", "eval"), atol=1e-5, rtol=1e-4, grad=True,
                 seed=0):
    """Compare ``dtorch.nn.<name>(*args, **kwargs)`` with ``torch.nn.<name>`` on the same weights and inputs.

    ``name`` may also be a builder ``f(nn_module) -> module`` called with ``torch.nn`` and ``dtorch.nn``.
    """
    kwargs = kwargs or {}
    if callable(name):
        torch_module, dtorch_module = name(torch.nn), name(nn)
        name = type(dtorch_module).__name__
    else:
        torch_module = getattr(torch.nn, name)(*args, **{k: _torch_value(v) for k, v in kwargs.items()})
        dtorch_module = getattr(nn, name)(*args, **{k: _dtorch_value(v) for k, v in kwargs.items()})
    assert repr(dtorch_module) == repr(torch_module).replace("torch.", "dtorch.")
    torch_state, dtorch_state = torch_module.state_dict(), dtorch_module.state_dict()
    assert list(dtorch_state) == list(torch_state)
    for key in torch_state:
        assert tuple(dtorch_state[key].shape) == tuple(torch_state[key].shape), key
        assert str(dtorch_state[key].dtype).replace("dtorch.", "") == str(torch_state[key].dtype).replace(
            "torch.", ""), key
    assert [n for n, _ in dtorch_module.named_parameters()] == [n for n, _ in torch_module.named_parameters()]
    assert [n for n, _ in dtorch_module.named_buffers()] == [n for n, _ in torch_module.named_buffers()]
    copy_weights(torch_module, dtorch_module)
    rng = np.random.default_rng(seed)
    for mode in modes:
        torch_module.train(mode == "train")
        dtorch_module.train(mode == "train")
        assert dtorch_module.training == (mode == "train")
        made = _make_inputs(inputs, rng)
        torch_inputs = [torch.from_numpy(a.copy()).requires_grad_(g) for a, g in made]
        dtorch_inputs = [dtorch.from_numpy(a.copy()).requires_grad_(g) for a, g in made]
        torch_out = torch_module(*torch_inputs)
        dtorch_out = dtorch_module(*dtorch_inputs)
        torch_outs = torch_out if isinstance(torch_out, tuple) else (torch_out,)
        dtorch_outs = dtorch_out if isinstance(dtorch_out, tuple) else (dtorch_out,)
        assert len(torch_outs) == len(dtorch_outs)
        for index, (d, t) in enumerate(zip(dtorch_outs, torch_outs)):
            _assert_close(d, t, atol, rtol, f"{name} {mode} output {index}")
        for (key, t), (_, d) in zip(torch_module.named_buffers(), dtorch_module.named_buffers()):
            _assert_close(d, t, atol, rtol, f"{name} {mode} buffer {key}")
        if not grad or not torch_outs[0].requires_grad:
            continue
        upstream = rng.standard_normal(tuple(torch_outs[0].shape)).astype(np.float32)
        torch_outs[0].backward(torch.from_numpy(upstream.copy()))
        dtorch_outs[0].backward(dtorch.from_numpy(upstream.copy()))
        for index, (t, d) in enumerate(zip(torch_inputs, dtorch_inputs)):
            if t.requires_grad:
                _assert_close(d.grad, t.grad, atol, rtol, f"{name} {mode} grad of input {index}")
        for (key, t), (_, d) in zip(torch_module.named_parameters(), dtorch_module.named_parameters()):
            if t.grad is None:
                assert d.grad is None or not np.any(_to_numpy(d.grad)), key
            else:
                _assert_close(d.grad, t.grad, atol, rtol, f"{name} {mode} grad of {key}")
        torch_module.zero_grad()
        dtorch_module.zero_grad()
    return torch_module, dtorch_module


_rng = np.random.default_rng(1234)
_labels = _rng.integers(0, 5, size=(6,))
_labels_ignored = _labels.copy()
_labels_ignored[2] = -100
_probabilities = _rng.dirichlet(np.ones(5), size=6).astype(np.float32)
_binary = _rng.integers(0, 2, size=(6, 3)).astype(np.float32)
_unit = Grad(_rng.uniform(0.05, 0.95, size=(6, 3)).astype(np.float32))
_class_weight = _rng.uniform(0.5, 2.0, size=(5,)).astype(np.float32)
_log_target = np.log(_rng.dirichlet(np.ones(5), size=6)).astype(np.float32)
_tokens = _rng.integers(0, 10, size=(4, 7))
_tokens_with_padding = _tokens.copy()
_tokens_with_padding[:, 0] = 0

CASES = [
    ("Linear", (5, 3), {}, [(4, 5)]),
    ("Linear", (5, 3), {"bias": False}, [(2, 4, 5)]),
    ("Linear", (5, 3), {}, [(5,)]),
    ("Bilinear", (3, 4, 2), {}, [(5, 3), (5, 4)]),
    ("Conv1d", (3, 4, 3), {"stride": 2, "padding": 1}, [(2, 3, 9)]),
    ("Conv1d", (4, 4, 3), {"groups": 2, "bias": False, "padding": "same"}, [(2, 4, 8)]),
    ("Conv2d", (3, 4, 3), {}, [(2, 3, 7, 6)]),
    ("Conv2d", (3, 6, (3, 2)), {"stride": (2, 1), "padding": (1, 2), "dilation": (1, 2)}, [(2, 3, 8, 7)]),
    ("Conv2d", (4, 6, 3), {"groups": 2, "padding": "same"}, [(2, 4, 5, 5)]),
    ("Conv2d", (2, 3, 3), {"padding": 1, "padding_mode": "reflect"}, [(1, 2, 5, 6)]),
    ("Conv2d", (2, 3, 3), {"padding": 1, "padding_mode": "circular", "bias": False}, [(1, 2, 5, 6)]),
    ("Conv2d", (2, 3, 3), {"padding": "valid"}, [(2, 5, 6)]),
    ("ConvTranspose2d", (4, 3, 3), {"stride": 2, "padding": 1, "output_padding": 1}, [(2, 4, 4, 5)]),
    ("ConvTranspose2d", (4, 6, 2), {"stride": 2, "groups": 2, "bias": False}, [(1, 4, 3, 3)]),
    ("ConvTranspose1d", (4, 2, 3), {"stride": 2, "padding": 1, "output_padding": 1, "dilation": 2}, [(2, 4, 5)]),
    ("ConvTranspose1d", (4, 2, 3), {"groups": 2}, [(4, 6)]),
    ("MaxPool1d", (3,), {"stride": 2}, [(2, 3, 9)]),
    ("AvgPool1d", (3,), {"stride": 2, "padding": 1}, [(2, 3, 9)]),
    ("AdaptiveAvgPool1d", (4,), {}, [(2, 3, 9)]),
    ("MaxPool2d", (2,), {}, [(2, 3, 6, 6)]),
    ("MaxPool2d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True}, [(2, 3, 7, 6)]),
    ("MaxPool2d", (2,), {"return_indices": True}, [(1, 2, 4, 4)]),
    ("MaxPool2d", (2,), {"stride": 1, "dilation": 2}, [(2, 2, 6, 5)]),
    ("AvgPool2d", (2,), {}, [(2, 3, 6, 6)]),
    ("AvgPool2d", (3,), {"stride": 2, "padding": 1, "count_include_pad": False}, [(2, 3, 7, 6)]),
    ("AdaptiveAvgPool2d", ((2, 3),), {}, [(2, 3, 7, 8)]),
    ("AdaptiveAvgPool2d", (1,), {}, [(2, 3, 5, 5)]),
    ("BatchNorm1d", (4,), {}, [(8, 4)]),
    ("BatchNorm1d", (4,), {"momentum": None}, [(8, 4, 5)]),
    ("BatchNorm1d", (4,), {"affine": False}, [(8, 4)]),
    ("BatchNorm2d", (3,), {}, [(4, 3, 5, 5)]),
    ("BatchNorm2d", (3,), {"track_running_stats": False, "momentum": 0.3}, [(4, 3, 5, 5)]),
    ("BatchNorm2d", (3,), {"eps": 1e-3, "bias": False}, [(4, 3, 2, 2)]),
    ("LayerNorm", (5,), {}, [(3, 4, 5)]),
    ("LayerNorm", ((4, 5),), {"elementwise_affine": False}, [(3, 4, 5)]),
    ("LayerNorm", (5,), {"bias": False, "eps": 1e-3}, [(3, 5)]),
    ("GroupNorm", (2, 4), {}, [(3, 4, 5, 5)]),
    ("GroupNorm", (3, 6), {"affine": False}, [(3, 6, 7)]),
    ("Embedding", (10, 3), {}, [_tokens]),
    ("Embedding", (10, 3), {"padding_idx": 0}, [_tokens_with_padding]),
    ("Embedding", (10, 3), {"padding_idx": -1}, [_tokens]),
    ("Embedding", (10, 3), {"max_norm": 1.0}, [_tokens]),
    ("Flatten", (), {}, [(2, 3, 4, 5)]),
    ("Flatten", (0, 2), {}, [(2, 3, 4, 5)]),
    ("Unflatten", (1, (2, 3)), {}, [(4, 6, 5)]),
    ("Identity", (3,), {"unused": True}, [(2, 3)]),
    ("ReLU", (), {}, [(3, 4)]),
    ("LeakyReLU", (0.2,), {}, [(3, 4)]),
    ("ELU", (), {"alpha": 0.5}, [(3, 4)]),
    ("GELU", (), {}, [(3, 4)]),
    ("GELU", (), {"approximate": "tanh"}, [(3, 4)]),
    ("SiLU", (), {}, [(3, 4)]),
    ("Sigmoid", (), {}, [(3, 4)]),
    ("Tanh", (), {}, [(3, 4)]),
    ("Softplus", (), {"beta": 2.0, "threshold": 1.0}, [(3, 4)]),
    ("Softmax", (), {"dim": 1}, [(3, 4, 2)]),
    ("LogSoftmax", (), {"dim": -1}, [(3, 4)]),
    ("Dropout", (0.3,), {}, [(3, 4)]),
    ("Dropout1d", (0.3,), {}, [(3, 4, 5)]),
    ("Dropout2d", (0.3,), {}, [(3, 4, 5, 5)]),
    ("Hardtanh", (-0.5, 0.7), {}, [(3, 4)]),
    ("ReLU6", (), {"inplace": False}, [(3, 4)]),
    ("Mish", (), {}, [(3, 4)]),
    ("SELU", (), {}, [(3, 4)]),
    ("CELU", (0.5,), {}, [(3, 4)]),
    ("Threshold", (0.1, 20.0), {}, [(3, 4)]),
    ("GLU", (), {"dim": 1}, [(3, 4, 2)]),
    ("Softmin", (), {"dim": 0}, [(3, 4)]),
    ("Hardsigmoid", (), {}, [(3, 4)]),
    ("Hardswish", (), {}, [(3, 4)]),
    ("LogSigmoid", (), {}, [(3, 4)]),
    ("Softsign", (), {}, [(3, 4)]),
    ("Tanhshrink", (), {}, [(3, 4)]),
    ("MSELoss", (), {}, [(6, 3), (6, 3)]),
    ("MSELoss", (), {"reduction": "none"}, [(6, 3), (6, 3)]),
    ("L1Loss", (), {"reduction": "sum"}, [(6, 3), (6, 3)]),
    ("SmoothL1Loss", (), {"beta": 0.5}, [(6, 3), (6, 3)]),
    ("HuberLoss", (), {"delta": 0.5}, [(6, 3), (6, 3)]),
    ("CrossEntropyLoss", (), {}, [(6, 5), _labels]),
    ("CrossEntropyLoss", (), {"weight": _class_weight, "label_smoothing": 0.1}, [(6, 5), _labels]),
    ("CrossEntropyLoss", (), {"ignore_index": -100, "reduction": "sum"}, [(6, 5), _labels_ignored]),
    ("CrossEntropyLoss", (), {}, [(6, 5), _probabilities]),
    ("CrossEntropyLoss", (), {"reduction": "none"}, [(2, 5, 3), _rng.integers(0, 5, size=(2, 3))]),
    ("NLLLoss", (), {"weight": _class_weight}, [(6, 5), _labels]),
    ("NLLLoss", (), {"reduction": "none", "ignore_index": 1}, [(6, 5), _labels]),
    ("CrossEntropyLoss", (), {"label_smoothing": 0.2, "reduction": "sum"}, [(6, 5), _probabilities]),
    ("BCELoss", (), {"weight": np.array([0.5, 1.0, 2.0], dtype=np.float32), "reduction": "none"}, [_unit, _binary]),
    ("HuberLoss", (), {"reduction": "none", "delta": 2.0}, [(6, 3), (6, 3)]),
    ("SmoothL1Loss", (), {"reduction": "sum", "beta": 0.0}, [(6, 3), (6, 3)]),
    ("BCELoss", (), {}, [_unit, _binary]),
    ("BCEWithLogitsLoss", (), {"pos_weight": np.array([1.0, 2.0, 0.5], dtype=np.float32)}, [(6, 3), _binary]),
    ("KLDivLoss", (), {"reduction": "batchmean"}, [(6, 5), _probabilities]),
    ("KLDivLoss", (), {"reduction": "sum", "log_target": True}, [(6, 5), _log_target]),
]


def _case_id(case):
    name, args, kwargs, _ = case
    return name + "-" + "-".join([str(a) for a in args] + [f"{k}={v}" for k, v in kwargs.items()
                                                           if not isinstance(v, np.ndarray)])


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_layer_matches_torch(case):
    name, args, kwargs, inputs = case
    modes = ("eval",) if name.startswith("Dropout") else ("train", "eval")
    check_module(name, args, kwargs, inputs, modes=modes)


def test_batchnorm_running_stats_over_steps():
    for momentum in (0.1, None):
        torch_bn, dtorch_bn = check_module("BatchNorm1d", (3,), {"momentum": momentum}, [(5, 3)], modes=())
        rng = np.random.default_rng(0)
        for _ in range(4):
            batch = rng.standard_normal((5, 3)).astype(np.float32) * 2 + 1
            torch_bn(torch.from_numpy(batch))
            dtorch_bn(dtorch.from_numpy(batch))
        for key, value in torch_bn.state_dict().items():
            _assert_close(dtorch_bn.state_dict()[key], value, 1e-5, 1e-5, key)
        assert dtorch_bn.num_batches_tracked.item() == 4
        torch_bn.eval()
        dtorch_bn.eval()
        batch = rng.standard_normal((5, 3)).astype(np.float32)
        _assert_close(dtorch_bn(dtorch.from_numpy(batch)), torch_bn(torch.from_numpy(batch)), 1e-5, 1e-4, "eval")


def test_batchnorm_rejects_wrong_rank():
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input\)"):
        nn.BatchNorm2d(3)(dtorch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input\)"):
        nn.BatchNorm1d(3)(dtorch.zeros(2, 3, 4, 4))


def test_batchnorm_loads_state_without_num_batches_tracked():
    bn = nn.BatchNorm1d(2)
    state = {k: v for k, v in nn.BatchNorm1d(2).state_dict().items() if k != "num_batches_tracked"}
    assert bn.load_state_dict(state).missing_keys == []


def test_dropout_statistics_and_modes():
    dtorch.manual_seed(0)
    drop = nn.Dropout(0.25)
    x = dtorch.ones(200, 100, requires_grad=True)
    y = drop(x)
    values = y.detach().numpy()
    kept = values != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(values[kept], 1 / 0.75, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept / 0.75, rtol=1e-6)
    drop.eval()
    assert drop(x) is x or bool((drop(x) == x).all())
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        nn.Dropout(1.5)
    assert repr(nn.Dropout2d(0.1)) == "Dropout2d(p=0.1, inplace=False)"


def test_embedding_padding_row_and_from_pretrained():
    emb = nn.Embedding(6, 3, padding_idx=2)
    assert np.all(emb.weight.detach().numpy()[2] == 0)
    out = emb(dtorch.tensor([[2, 1, 2]]))
    out.sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.numpy()[2], 0)
    np.testing.assert_array_equal(emb.weight.grad.numpy()[1], 1)

    weights = dtorch.tensor([[1.0, 2.3, 3.0], [4.0, 5.1, 6.3]])
    frozen = nn.Embedding.from_pretrained(weights)
    assert frozen.weight.requires_grad is False
    assert repr(frozen) == repr(torch.nn.Embedding.from_pretrained(torch.tensor(weights.numpy())))
    np.testing.assert_array_equal(frozen(dtorch.tensor([1])).numpy(), weights.numpy()[1:])
    trainable = nn.Embedding.from_pretrained(weights, freeze=False, padding_idx=0)
    assert trainable.weight.requires_grad and trainable.padding_idx == 0
    with pytest.raises(AssertionError, match="Padding_idx must be within num_embeddings"):
        nn.Embedding(3, 2, padding_idx=3)


def test_softmax_implicit_dim_warns_like_torch():
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    with pytest.warns(UserWarning, match="Implicit dimension choice"):
        out = nn.Softmax()(dtorch.from_numpy(x))
    with pytest.warns(UserWarning):
        expected = torch.nn.Softmax()(torch.from_numpy(x))
    _assert_close(out, expected, 1e-6, 1e-5, "implicit softmax")


def test_conv_argument_errors_match_torch():
    for kwargs in ({"groups": 0}, {"groups": 2}, {"padding": "same", "stride": 2}, {"padding": "full"},
                   {"padding_mode": "mirror"}):
        with pytest.raises(ValueError) as expected:
            torch.nn.Conv2d(3, 4, 3, **kwargs)
        with pytest.raises(ValueError) as actual:
            nn.Conv2d(3, 4, 3, **kwargs)
        # PyTorch prints the valid strings as a set (unordered): compare the text before it
        assert str(actual.value).split("{")[0].split("[")[0] == str(expected.value).split("{")[0]
    with pytest.raises(ValueError, match='Only "zeros" padding mode is supported for ConvTranspose2d'):
        nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect")


def test_conv_transpose_output_size():
    torch_up = torch.nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1)
    dtorch_up = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1)
    copy_weights(torch_up, dtorch_up)
    x = np.random.default_rng(0).standard_normal((1, 4, 5, 5)).astype(np.float32)
    for size in ([10, 10], [1, 2, 9, 10]):
        expected = torch_up(torch.from_numpy(x), output_size=size)
        _assert_close(dtorch_up(dtorch.from_numpy(x), output_size=size), expected, 1e-5, 1e-4, str(size))
    with pytest.raises(ValueError, match="requested an output size of"):
        dtorch_up(dtorch.from_numpy(x), output_size=[20, 20])


def test_layers_in_float64():
    torch_fc, dtorch_fc = torch.nn.Linear(4, 3).double(), nn.Linear(4, 3).double()
    assert dtorch_fc.weight.dtype == dtorch.float64
    copy_weights(torch_fc, dtorch_fc)
    x = np.random.default_rng(0).standard_normal((2, 4))
    _assert_close(dtorch_fc(dtorch.from_numpy(x)), torch_fc(torch.from_numpy(x)), 1e-12, 1e-12, "float64")


def test_layer_factory_kwargs():
    fc = nn.Linear(3, 2, dtype=dtorch.float64, device="cpu")
    assert fc.weight.dtype == dtorch.float64 and fc.bias.dtype == dtorch.float64
    bn = nn.BatchNorm1d(3, dtype=dtorch.float64)
    assert bn.running_mean.dtype == dtorch.float64 and bn.num_batches_tracked.dtype == dtorch.int64


def test_loss_legacy_reduction_arguments():
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        loss = nn.MSELoss(size_average=False)
    assert loss.reduction == "sum"
    with pytest.warns(UserWarning):
        assert nn.L1Loss(reduce=False).reduction == "none"


def test_loss_weight_buffers_in_state_dict():
    weight = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    assert list(nn.CrossEntropyLoss(weight=dtorch.from_numpy(weight)).state_dict()) == ["weight"]
    assert list(nn.CrossEntropyLoss().state_dict()) == []
    assert list(nn.BCEWithLogitsLoss(pos_weight=dtorch.from_numpy(weight)).state_dict()) == \
        list(torch.nn.BCEWithLogitsLoss(pos_weight=torch.from_numpy(weight)).state_dict())


def _lenet(lib):
    return lib.Sequential(
        lib.Conv2d(1, 6, 5, padding=2), lib.BatchNorm2d(6), lib.ReLU(), lib.MaxPool2d(2),
        lib.Conv2d(6, 16, 5), lib.GroupNorm(4, 16), lib.Tanh(), lib.AvgPool2d(2),
        lib.Flatten(), lib.Linear(16 * 5 * 5, 120), lib.LayerNorm(120), lib.GELU(),
        lib.Linear(120, 84), lib.SiLU(), lib.Linear(84, 10), lib.LogSoftmax(dim=1),
    )


def test_composite_lenet_matches_torch():
    check_module(_lenet, inputs=[(4, 1, 28, 28)], atol=1e-4)
