"""``nn.init`` and the layers' default initialisation: the distributions are PyTorch's (bounds, mean, std), the
numbers come from dtorch's RNG (seeded by ``dtorch.manual_seed`` or a ``generator``)."""

import math

import numpy as np
import pytest
import torch

import dtorch
from dtorch import nn
from dtorch.nn import init


def _stats(tensor):
    values = np.asarray(tensor.detach().numpy(), dtype=np.float64)
    return values.mean(), values.std(), values.min(), values.max()


def _assert_uniform(tensor, bound):
    mean, std, low, high = _stats(tensor)
    n = tensor.numel()
    assert -bound <= low and high <= bound
    assert high > bound * 0.98 and low < -bound * 0.98
    assert abs(mean) < 5 * bound / math.sqrt(3 * n)
    assert abs(std - bound / math.sqrt(3)) < 0.02 * bound


def _assert_normal(tensor, std_expected, mean_expected=0.0):
    mean, std, _, _ = _stats(tensor)
    assert abs(mean - mean_expected) < 5 * std_expected / math.sqrt(tensor.numel())
    assert abs(std - std_expected) < 0.02 * std_expected


@pytest.mark.parametrize("nonlinearity,param", [
    ("linear", None), ("conv2d", None), ("conv_transpose2d", None), ("sigmoid", None), ("tanh", None),
    ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", 1), ("selu", None),
])
def test_calculate_gain_matches_torch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(torch.nn.init.calculate_gain(nonlinearity, param))


def test_calculate_gain_errors_match_torch():
    for args in (("leaky_relu", "x"), ("leaky_relu", True), ("swish", None)):
        with pytest.raises(ValueError) as expected:
            torch.nn.init.calculate_gain(*args)
        with pytest.raises(ValueError) as actual:
            init.calculate_gain(*args)
        assert str(actual.value) == str(expected.value)


@pytest.mark.parametrize("shape", [(30, 40), (8, 3, 5, 5), (6, 4, 7)])
def test_fans_match_torch(shape):
    assert init._calculate_fan_in_and_fan_out(dtorch.empty(shape)) == \
        torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


def test_fan_and_mode_errors_match_torch():
    for call_torch, call_dtorch in [
        (lambda: torch.nn.init.xavier_uniform_(torch.empty(5)), lambda: init.xavier_uniform_(dtorch.empty(5))),
        (lambda: torch.nn.init.kaiming_normal_(torch.empty(3, 4), mode="fan_avg"),
         lambda: init.kaiming_normal_(dtorch.empty(3, 4), mode="fan_avg")),
        (lambda: torch.nn.init.eye_(torch.empty(2, 2, 2)), lambda: init.eye_(dtorch.empty(2, 2, 2))),
        (lambda: torch.nn.init.orthogonal_(torch.empty(4)), lambda: init.orthogonal_(dtorch.empty(4))),
    ]:
        with pytest.raises(ValueError) as expected:
            call_torch()
        with pytest.raises(ValueError) as actual:
            call_dtorch()
        assert str(actual.value) == str(expected.value)


def test_uniform_normal_constant():
    _assert_uniform(init.uniform_(dtorch.empty(200, 300), -0.5, 0.5), 0.5)
    low, high = _stats(init.uniform_(dtorch.empty(10000), 2.0, 3.0))[2:]
    assert 2.0 <= low and high <= 3.0
    _assert_normal(init.normal_(dtorch.empty(200, 300), 1.5, 0.3), 0.3, 1.5)
    assert np.all(init.constant_(dtorch.empty(3, 2), 0.7).numpy() == np.float32(0.7))
    assert np.all(init.ones_(dtorch.empty(4)).numpy() == 1)
    assert np.all(init.zeros_(dtorch.empty(4)).numpy() == 0)
    np.testing.assert_array_equal(init.eye_(dtorch.empty(3, 5)).numpy(), torch.nn.init.eye_(torch.empty(3, 5)))


def test_trunc_normal():
    w = init.trunc_normal_(dtorch.empty(300, 300), mean=0.1, std=1.0, a=-1.0, b=2.0)
    reference = torch.nn.init.trunc_normal_(torch.empty(300, 300, dtype=torch.float64), 0.1, 1.0, -1.0, 2.0)
    mean, std, low, high = _stats(w)
    assert -1.0 <= low and high <= 2.0
    assert abs(mean - reference.mean().item()) < 0.01
    assert abs(std - reference.std().item()) < 0.01


@pytest.mark.parametrize("shape", [(256, 512), (64, 32, 3, 3)])
def test_xavier_and_kaiming_follow_torch_formulas(shape):
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(dtorch.empty(shape))
    _assert_uniform(init.xavier_uniform_(dtorch.empty(shape), gain=2.0), 2.0 * math.sqrt(6.0 / (fan_in + fan_out)))
    _assert_normal(init.xavier_normal_(dtorch.empty(shape)), math.sqrt(2.0 / (fan_in + fan_out)))
    _assert_uniform(init.kaiming_uniform_(dtorch.empty(shape), a=math.sqrt(5)), 1 / math.sqrt(fan_in))
    _assert_uniform(init.kaiming_uniform_(dtorch.empty(shape), mode="fan_out", nonlinearity="relu"),
                    math.sqrt(6.0 / fan_out))
    _assert_normal(init.kaiming_normal_(dtorch.empty(shape), nonlinearity="relu"), math.sqrt(2.0 / fan_in))
    _assert_normal(init.kaiming_normal_(dtorch.empty(shape), a=0.2, mode="fan_out"),
                   math.sqrt(2.0 / (1 + 0.04)) / math.sqrt(fan_out))
    for name in ("xavier_uniform_", "kaiming_uniform_", "kaiming_normal_", "xavier_normal_"):
        ours = getattr(init, name)(dtorch.empty(shape)).detach().numpy().std()
        theirs = getattr(torch.nn.init, name)(torch.empty(shape)).numpy().std()
        assert abs(ours - theirs) < 0.03 * theirs, name


def test_kaiming_on_empty_tensor_warns():
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        init.kaiming_uniform_(dtorch.empty(0, 3))


@pytest.mark.parametrize("shape", [(5, 9), (9, 5), (4, 3, 2, 2)])
def test_orthogonal(shape):
    w = init.orthogonal_(dtorch.empty(shape), gain=2.0).detach().numpy().astype(np.float64)
    flat = w.reshape(shape[0], -1)
    product = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
    np.testing.assert_allclose(product, 4.0 * np.eye(product.shape[0]), atol=1e-5)


def test_dirac_matches_torch():
    np.testing.assert_array_equal(init.dirac_(dtorch.empty(6, 3, 3, 3), groups=2).numpy(),
                                  torch.nn.init.dirac_(torch.empty(6, 3, 3, 3), groups=2).numpy())


def test_init_is_seeded_and_unrecorded():
    dtorch.manual_seed(7)
    a = init.normal_(dtorch.empty(5)).numpy().copy()
    dtorch.manual_seed(7)
    b = init.normal_(dtorch.empty(5)).numpy().copy()
    np.testing.assert_array_equal(a, b)
    g = dtorch.Generator().manual_seed(3)
    c = init.uniform_(dtorch.empty(5), generator=g).numpy().copy()
    g.manual_seed(3)
    np.testing.assert_array_equal(c, init.uniform_(dtorch.empty(5), generator=g).numpy())
    p = nn.Parameter(dtorch.empty(3, 4))
    version = p._version
    assert init.xavier_uniform_(p) is p
    assert p.grad_fn is None and p.requires_grad and p._version > version
    dtorch.manual_seed(11)
    first = nn.Linear(4, 3).weight.detach().numpy().copy()
    dtorch.manual_seed(11)
    np.testing.assert_array_equal(nn.Linear(4, 3).weight.detach().numpy(), first)


def test_layer_default_initialisation_follows_torch():
    fc = nn.Linear(400, 300)
    _assert_uniform(fc.weight, 1 / math.sqrt(400))
    mean, std, low, high = _stats(fc.bias)
    assert -1 / 20 <= low and high <= 1 / 20

    conv = nn.Conv2d(16, 64, 3)
    _assert_uniform(conv.weight, 1 / math.sqrt(16 * 9))
    assert np.abs(conv.bias.detach().numpy()).max() <= 1 / math.sqrt(16 * 9)

    up = nn.ConvTranspose2d(64, 16, 3, groups=2)  # fan_in from weight.size(1) = out / groups
    _assert_uniform(up.weight, 1 / math.sqrt(8 * 9))

    bil = nn.Bilinear(50, 30, 40)
    _assert_uniform(bil.weight, 1 / math.sqrt(50))

    emb = nn.Embedding(1000, 64, padding_idx=3)
    values = emb.weight.detach().numpy()
    assert np.all(values[3] == 0)
    _assert_normal(nn.Embedding(1000, 64).weight, 1.0)

    for norm in (nn.BatchNorm2d(5), nn.LayerNorm(5), nn.GroupNorm(1, 5)):
        assert np.all(norm.weight.detach().numpy() == 1) and np.all(norm.bias.detach().numpy() == 0)
    bn = nn.BatchNorm1d(5)
    bn.running_mean._array[...] = 3
    bn.num_batches_tracked._array[...] = 9
    bn.reset_running_stats()
    assert np.all(bn.running_mean.numpy() == 0) and np.all(bn.running_var.numpy() == 1)
    assert bn.num_batches_tracked.item() == 0


def test_deprecated_aliases_warn():
    with pytest.warns(FutureWarning, match="nn.init.normal is now deprecated in favor of nn.init.normal_"):
        init.normal(dtorch.empty(2))


DEFAULT_INIT_LAYERS = [
    ("Linear", (300, 200)),
    ("Conv1d", (32, 48, 5)),
    ("Conv2d", (24, 64, 3), {"groups": 4}),
    ("ConvTranspose2d", (40, 24, 3), {"groups": 2}),
    ("Bilinear", (30, 20, 40)),
    ("Embedding", (500, 16)),
    ("BatchNorm2d", (64,)),
    ("LayerNorm", (64,)),
    ("GroupNorm", (4, 64)),
    ("RNN", (16, 64)),
    ("LSTM", (16, 48), {"num_layers": 2, "bidirectional": True, "proj_size": 24}),
    ("GRU", (16, 48)),
    ("LSTMCell", (16, 48)),
    ("GRUCell", (16, 48)),
    ("MultiheadAttention", (64, 4)),
    ("MultiheadAttention", (64, 4), {"kdim": 32, "vdim": 48, "add_bias_kv": True}),
    ("TransformerEncoderLayer", (64, 4, 128)),
    ("TransformerDecoderLayer", (64, 4, 128)),
]


@pytest.mark.parametrize("spec", DEFAULT_INIT_LAYERS, ids=[f"{s[0]}{i}" for i, s in enumerate(DEFAULT_INIT_LAYERS)])
def test_default_initialisation_statistics_match_torch(spec):
    """Each parameter of a fresh layer has torch's distribution: constants exactly, otherwise the same mean, std
    and shape (the share of values within one std: 0.577 for a uniform, 0.683 for a normal)."""
    name, args, kwargs = (spec + ({},))[:3]
    torch.manual_seed(0)
    dtorch.manual_seed(0)
    ours = dict(getattr(nn, name)(*args, **kwargs).named_parameters())
    theirs = dict(getattr(torch.nn, name)(*args, **kwargs).named_parameters())
    assert list(ours) == list(theirs)
    for key, reference in theirs.items():
        a = np.asarray(ours[key].detach().numpy(), dtype=np.float64).ravel()
        b = reference.detach().numpy().astype(np.float64).ravel()
        assert a.shape == b.shape, key
        if b.std() == 0:
            np.testing.assert_array_equal(a, b, err_msg=key)
            continue
        n = a.size
        assert abs(a.mean() - b.mean()) < 6 * b.std() / math.sqrt(n), key
        assert abs(a.std() - b.std()) < 6 * b.std() / math.sqrt(2 * n), key
        assert np.abs(a).max() <= np.abs(b).max() * (1 + 8 / math.sqrt(n)), key
        if n >= 2000:
            share = lambda v: np.mean(np.abs(v - v.mean()) < v.std())  # noqa: E731
            assert abs(share(a) - share(b)) < 0.04, key
