"""dtorch.distributions against torch.distributions: values and gradients of densities, entropies and moments on
the same parameters, KL divergences, sample shapes and statistics, reparameterised samples, validation errors."""

import math

import numpy as np
import pytest
import torch

import dtorch

DD = dtorch.distributions
TD = torch.distributions
RNG = np.random.default_rng(0)


def _positive(*shape):
    return RNG.uniform(0.5, 2.0, size=shape)


def _real(*shape):
    return RNG.normal(size=shape)


def _spd(n, *batch):
    a = RNG.normal(size=batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def _tril(n, *batch):
    lower = np.tril(RNG.normal(size=batch + (n, n)), -1)
    return lower + np.eye(n) * RNG.uniform(0.5, 1.5, size=batch + (n,))[..., None, :]


def _probs(*shape):
    p = RNG.uniform(0.1, 1.0, size=shape)
    return p / p.sum(-1, keepdims=True)


def _one_hot(index, n):
    return np.eye(n)[index]


_low = _real(3)
_cat_values = RNG.integers(0, 4, size=(5, 2))

# name: (class name, parameters as NumPy arrays (float ones get requires_grad), extra constructor arguments,
#        a value inside the support, quantities to compare)
CASES = {
    "normal": ("Normal", {"loc": _real(3, 1), "scale": _positive(4)}, {}, _real(2, 3, 4),
               ["log_prob", "entropy", "mean", "mode", "variance", "stddev", "cdf", "icdf"]),
    "lognormal": ("LogNormal", {"loc": _real(3), "scale": _positive(3)}, {}, _positive(2, 3),
                  ["log_prob", "entropy", "mean", "mode", "variance", "stddev", "cdf"]),
    "laplace": ("Laplace", {"loc": _real(3, 1), "scale": _positive(4)}, {}, _real(3, 4),
                ["log_prob", "entropy", "mean", "mode", "variance", "stddev", "cdf", "icdf"]),
    "exponential": ("Exponential", {"rate": _positive(3)}, {}, _positive(2, 3),
                    ["log_prob", "entropy", "mean", "mode", "variance", "stddev", "cdf", "icdf"]),
    "uniform": ("Uniform", {"low": _low, "high": _low + _positive(3)}, {}, _low + 0.3,
                ["log_prob", "entropy", "mean", "mode", "variance", "stddev", "cdf", "icdf"]),
    "bernoulli_probs": ("Bernoulli", {"probs": RNG.uniform(0.1, 0.9, size=(2, 3))}, {},
                        (RNG.random((4, 2, 3)) < 0.5).astype(float),
                        ["log_prob", "entropy", "mean", "mode", "variance", "stddev"]),
    "bernoulli_logits": ("Bernoulli", {"logits": _real(3)}, {}, np.array([0.0, 1.0, 1.0]),
                         ["log_prob", "entropy", "mean", "variance", "logits", "probs"]),
    "categorical_probs": ("Categorical", {"probs": _probs(2, 4) * 3}, {}, _cat_values,
                          ["log_prob", "entropy", "mode", "probs", "logits"]),
    "categorical_logits": ("Categorical", {"logits": _real(2, 4)}, {}, _cat_values,
                           ["log_prob", "entropy", "mode", "probs", "logits"]),
    "onehot": ("OneHotCategorical", {"logits": _real(2, 4)}, {}, _one_hot(_cat_values, 4),
               ["log_prob", "entropy", "mean", "mode", "variance"]),
    "mvn_cov": ("MultivariateNormal", {"loc": _real(2, 3), "covariance_matrix": _spd(3)}, {}, _real(4, 2, 3),
                ["log_prob", "entropy", "mean", "mode", "variance", "scale_tril", "precision_matrix"]),
    "mvn_tril": ("MultivariateNormal", {"loc": _real(3), "scale_tril": _tril(3, 2)}, {}, _real(2, 3),
                 ["log_prob", "entropy", "variance", "covariance_matrix"]),
    "mvn_precision": ("MultivariateNormal", {"loc": _real(3), "precision_matrix": _spd(3)}, {}, _real(3),
                      ["log_prob", "entropy", "variance", "scale_tril"]),
}


def _make(library, case, dtype="float64"):
    """The distribution of ``case`` built by ``library`` (dtorch or torch), and its float parameters."""
    cls_name, params, extra, _, _ = CASES[case]
    tensors = {}
    for name, array in params.items():
        tensors[name] = library.tensor(array.astype(dtype), requires_grad=True)
    return getattr(library.distributions, cls_name)(**tensors, **extra), tensors


def _to_numpy(tensor):
    return tensor.detach().cpu().numpy() if hasattr(tensor, "cpu") else np.asarray(tensor.detach().numpy())


def _value(library, case):
    array = CASES[case][3]
    return library.tensor(array) if array.dtype.kind == "i" else library.tensor(array.astype("float64"))


def _quantity(dist, library, case, name):
    if name in ("log_prob", "cdf"):
        return getattr(dist, name)(_value(library, case))
    if name == "icdf":
        batch = tuple(dist.batch_shape)
        levels = np.linspace(1e-6, 1 - 1e-6, int(np.prod(batch))).reshape(batch)
        return dist.icdf(library.tensor(levels, requires_grad=True))
    if name == "entropy":
        return dist.entropy()
    return getattr(dist, name)


def _compare_with_grads(ours, theirs, our_params, their_params, what):
    assert tuple(ours.shape) == tuple(theirs.shape), what
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1], what
    np.testing.assert_allclose(_to_numpy(ours), _to_numpy(theirs), rtol=1e-7, atol=1e-9, err_msg=what)
    if not theirs.requires_grad:
        return
    assert ours.requires_grad, what
    upstream = np.random.default_rng(1).normal(size=tuple(theirs.shape))
    finite = np.isfinite(_to_numpy(theirs))
    upstream = np.where(finite, upstream, 0.0)
    their_grads = torch.autograd.grad((theirs * torch.tensor(upstream)).sum(), list(their_params.values()),
                                      allow_unused=True)
    our_grads = dtorch.autograd.grad((ours * dtorch.tensor(upstream)).sum(), list(our_params.values()),
                                     allow_unused=True, retain_graph=True)
    for name, g_ours, g_theirs in zip(their_params, our_grads, their_grads):
        if g_theirs is None:
            assert g_ours is None or not np.any(_to_numpy(g_ours)), f"{what}: grad of {name}"
            continue
        assert g_ours is not None, f"{what}: grad of {name} missing"
        np.testing.assert_allclose(_to_numpy(g_ours), _to_numpy(g_theirs), rtol=1e-6, atol=1e-8,
                                   err_msg=f"{what}: grad of {name}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_quantities_and_gradients_match_torch(case):
    for name in CASES[case][4]:
        ours, our_params = _make(dtorch, case)
        theirs, their_params = _make(torch, case)
        assert ours.batch_shape == theirs.batch_shape and ours.event_shape == theirs.event_shape
        _compare_with_grads(_quantity(ours, dtorch, case, name), _quantity(theirs, torch, case, name),
                            our_params, their_params, f"{case}.{name}")


def test_independent_matches_torch():
    loc, scale = _real(3, 4), _positive(3, 4)
    value = _real(2, 3, 4)
    for ndims in (0, 1, 2):
        ours_p = {"loc": dtorch.tensor(loc, requires_grad=True), "scale": dtorch.tensor(scale, requires_grad=True)}
        theirs_p = {"loc": torch.tensor(loc, requires_grad=True), "scale": torch.tensor(scale, requires_grad=True)}
        ours = DD.Independent(DD.Normal(**ours_p), ndims)
        theirs = TD.Independent(TD.Normal(**theirs_p), ndims)
        assert ours.batch_shape == theirs.batch_shape and ours.event_shape == theirs.event_shape
        _compare_with_grads(ours.log_prob(dtorch.tensor(value)), theirs.log_prob(torch.tensor(value)), ours_p,
                            theirs_p, f"independent{ndims}.log_prob")
        _compare_with_grads(ours.entropy(), theirs.entropy(), ours_p, theirs_p, f"independent{ndims}.entropy")
        _compare_with_grads(ours.mean, theirs.mean, ours_p, theirs_p, "independent.mean")
        assert ours.sample((5,)).shape == theirs.sample((5,)).shape
        assert ours.has_rsample and repr(ours.support) == repr(theirs.support)


def test_float32_defaults():
    d = DD.Normal(0.0, 1.0)
    assert d.loc.dtype == dtorch.float32 and d.sample((2,)).dtype == dtorch.float32
    assert DD.Normal(dtorch.zeros(2, dtype=dtorch.float64), 1.0).scale.dtype == dtorch.float64
    assert DD.Categorical(logits=dtorch.zeros(3)).sample().dtype == dtorch.int64
    assert DD.Bernoulli(0.3).sample().dtype == dtorch.float32


# ---- KL divergences ---------------------------------------------------------------------------------------------

KL_CASES = [("normal", "normal"), ("lognormal", "lognormal"), ("laplace", "laplace"),
            ("exponential", "exponential"), ("bernoulli_probs", "bernoulli_probs"),
            ("bernoulli_logits", "bernoulli_logits"), ("categorical_probs", "categorical_logits"),
            ("onehot", "onehot"), ("mvn_cov", "mvn_tril"), ("mvn_tril", "mvn_precision")]


def _make_shifted(library, case, seed):
    """``case``'s distribution with its parameters perturbed (so p and q differ)."""
    cls_name, params, extra, _, _ = CASES[case]
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, array in params.items():
        if name in ("covariance_matrix", "precision_matrix"):
            array = array + np.eye(array.shape[-1]) * seed
        elif name == "scale_tril":
            array = array * (1 + 0.1 * seed)
        elif name in ("probs",):
            array = array * rng.uniform(0.5, 1.0, size=array.shape)
        elif name in ("scale", "rate"):
            array = array * rng.uniform(0.5, 2.0, size=array.shape)
        else:
            array = array + rng.normal(size=array.shape)
        tensors[name] = library.tensor(array.astype("float64"), requires_grad=True)
    return getattr(library.distributions, cls_name)(**tensors, **extra), tensors


@pytest.mark.parametrize("p_case,q_case", KL_CASES)
def test_kl_divergence_matches_torch(p_case, q_case):
    ours_p, ours_pp = _make_shifted(dtorch, p_case, 1)
    ours_q, ours_qp = _make_shifted(dtorch, q_case, 2)
    theirs_p, theirs_pp = _make_shifted(torch, p_case, 1)
    theirs_q, theirs_qp = _make_shifted(torch, q_case, 2)
    ours = DD.kl_divergence(ours_p, ours_q)
    theirs = TD.kl_divergence(theirs_p, theirs_q)
    params_ours = {**{"p_" + k: v for k, v in ours_pp.items()}, **{"q_" + k: v for k, v in ours_qp.items()}}
    params_theirs = {**{"p_" + k: v for k, v in theirs_pp.items()}, **{"q_" + k: v for k, v in theirs_qp.items()}}
    _compare_with_grads(ours, theirs, params_ours, params_theirs, f"kl({p_case}, {q_case})")


def test_kl_edge_cases_match_torch():
    def both(build):
        ours, theirs = build(dtorch), build(torch)
        np.testing.assert_allclose(_to_numpy(ours), _to_numpy(theirs), rtol=1e-6, atol=1e-6)

    # support of q inside / outside p's: finite, inf
    both(lambda lib: lib.distributions.kl_divergence(
        lib.distributions.Uniform(lib.tensor([0.0, -1.0]), lib.tensor([1.0, 1.0])),
        lib.distributions.Uniform(lib.tensor([-1.0, 0.0]), lib.tensor([2.0, 3.0]))))
    # a zero probability in p contributes 0; one in q only makes the KL infinite
    both(lambda lib: lib.distributions.kl_divergence(
        lib.distributions.Categorical(probs=lib.tensor([[0.0, 0.5, 0.5], [0.2, 0.3, 0.5]])),
        lib.distributions.Categorical(probs=lib.tensor([[0.1, 0.4, 0.5], [0.0, 0.5, 0.5]]))))
    both(lambda lib: lib.distributions.kl_divergence(
        lib.distributions.Bernoulli(lib.tensor([0.0, 1.0, 0.3])), lib.distributions.Bernoulli(lib.tensor(0.6))))
    with np.errstate(invalid="ignore"):  # 0 * inf in the discarded branch
        both(lambda lib: lib.distributions.kl_divergence(
            lib.distributions.Bernoulli(logits=lib.tensor([math.inf, -math.inf, 0.3])),
            lib.distributions.Bernoulli(lib.tensor(0.6))))
    # Independent over Independent sums the base KL over the reinterpreted dims
    both(lambda lib: lib.distributions.kl_divergence(
        lib.distributions.Independent(lib.distributions.Normal(lib.zeros(2, 3), lib.ones(2, 3)), 1),
        lib.distributions.Independent(lib.distributions.Normal(lib.ones(2, 3), 2 * lib.ones(2, 3)), 1)))
    # Uniform KL gradient
    lows = [lib.tensor([0.0, 0.5], dtype=lib.float64, requires_grad=True) for lib in (dtorch, torch)]
    values = [lib.distributions.kl_divergence(lib.distributions.Uniform(low, 2.0),
                                              lib.distributions.Uniform(-1.0, 3.0)).sum()
              for lib, low in zip((dtorch, torch), lows)]
    for value in values:
        value.backward()
    np.testing.assert_allclose(_to_numpy(lows[0].grad), _to_numpy(lows[1].grad))


def test_kl_registry():
    with pytest.raises(NotImplementedError, match="No KL"):
        DD.kl_divergence(DD.Normal(0.0, 1.0), DD.Categorical(logits=dtorch.zeros(3)))

    class Special(DD.Normal):
        pass

    # a subclass falls back to its parent's formula until it registers its own
    assert float(DD.kl_divergence(Special(0.0, 1.0), DD.Normal(1.0, 1.0))) == pytest.approx(0.5)

    @DD.register_kl(Special, DD.Normal)
    def _kl_special(p, q):
        return dtorch.tensor(42.0)

    assert float(DD.kl_divergence(Special(0.0, 1.0), DD.Normal(1.0, 1.0))) == 42.0
    assert float(DD.kl_divergence(DD.Normal(0.0, 1.0), DD.Normal(1.0, 1.0))) == pytest.approx(0.5)
    with pytest.raises(TypeError):
        DD.register_kl(1, DD.Normal)


# ---- sampling ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(CASES))
def test_sample_shapes_match_torch(case):
    ours, _ = _make(dtorch, case)
    theirs, _ = _make(torch, case)
    for sample_shape in [(), (5,), (2, 3)]:
        ours_sample = ours.sample(sample_shape)
        theirs_sample = theirs.sample(sample_shape)
        assert tuple(ours_sample.shape) == tuple(theirs_sample.shape), sample_shape
        assert not ours_sample.requires_grad
        assert str(ours_sample.dtype).split(".")[-1] == str(theirs_sample.dtype).split(".")[-1]
        assert bool(ours.support.check(ours_sample).all())
        if theirs.has_rsample:
            assert ours.has_rsample
            drawn = ours.rsample(sample_shape)
            assert tuple(drawn.shape) == tuple(theirs_sample.shape) and drawn.requires_grad
    for batch_shape in [(7,) + tuple(theirs.batch_shape), (2, 1) + tuple(theirs.batch_shape)]:
        expanded = ours.expand(batch_shape)
        assert expanded.batch_shape == theirs.expand(batch_shape).batch_shape
        assert tuple(expanded.sample((3,)).shape) == (3,) + batch_shape + tuple(theirs.event_shape)
        value = expanded.sample()
        np.testing.assert_allclose(_to_numpy(expanded.log_prob(value)),
                                   _to_numpy(theirs.expand(batch_shape).log_prob(torch.tensor(_to_numpy(value)))),
                                   rtol=1e-7)


STAT_CASES = ["normal", "lognormal", "laplace", "exponential", "uniform", "bernoulli_probs", "onehot", "mvn_cov"]


@pytest.mark.parametrize("case", STAT_CASES)
def test_sample_statistics(case):
    dtorch.manual_seed(0)
    dist, _ = _make(dtorch, case)
    samples = _to_numpy(dist.sample((20000,)))
    mean, variance = _to_numpy(dist.mean), _to_numpy(dist.variance)
    tolerance = 0.15 if case == "lognormal" else 0.04
    np.testing.assert_allclose(samples.mean(0), mean, rtol=tolerance, atol=tolerance * np.sqrt(variance).max())
    np.testing.assert_allclose(samples.var(0), variance, rtol=3 * tolerance, atol=0.01)
    if case == "mvn_cov":
        centred = samples - samples.mean(0)
        covariance = np.einsum("sbi,sbj->bij", centred, centred) / len(samples)
        np.testing.assert_allclose(covariance, _to_numpy(dist.covariance_matrix), atol=0.15)


def test_categorical_sample_frequencies():
    dtorch.manual_seed(0)
    probs = np.array([[0.1, 0.0, 0.6, 0.3], [0.25, 0.25, 0.25, 0.25]])
    dist = DD.Categorical(probs=dtorch.tensor(probs))
    samples = _to_numpy(dist.sample((20000,)))
    frequencies = np.stack([(samples == k).mean(0) for k in range(4)], -1)
    np.testing.assert_allclose(frequencies, probs, atol=0.015)
    assert not (samples[:, 0] == 1).any()  # a zero-probability category is never drawn


def test_sampling_follows_manual_seed():
    for case in sorted(CASES):
        dist, _ = _make(dtorch, case)
        dtorch.manual_seed(3)
        first = _to_numpy(dist.sample((4,)))
        dtorch.manual_seed(3)
        np.testing.assert_array_equal(_to_numpy(dist.sample((4,))), first, err_msg=case)


def _reseeded(draw, seed=5):
    dtorch.manual_seed(seed)
    return draw()


@pytest.mark.parametrize("case", ["normal", "laplace", "exponential", "uniform", "lognormal", "mvn_cov", "mvn_tril"])
def test_rsample_is_reparameterised(case):
    """``rsample`` equals the parameter-side transform of the same noise; its gradients match torch's on it."""
    ours, our_params = _make(dtorch, case)
    theirs, their_params = _make(torch, case)
    shape = (6,) + tuple(theirs.batch_shape) + tuple(theirs.event_shape)
    drawn = _reseeded(lambda: ours.rsample((6,)))
    eps_gauss = torch.tensor(_to_numpy(_reseeded(lambda: dtorch.randn(shape, dtype=dtorch.float64))))
    uniform = torch.tensor(_to_numpy(_reseeded(lambda: dtorch.rand(shape, dtype=dtorch.float64))))
    p = their_params
    if case == "normal":
        expected = p["loc"] + p["scale"] * eps_gauss
    elif case == "lognormal":
        expected = torch.exp(p["loc"] + p["scale"] * eps_gauss)
    elif case == "uniform":
        expected = p["low"] + (p["high"] - p["low"]) * uniform
    elif case == "exponential":
        expected = -torch.log1p(-uniform) / p["rate"]
    elif case == "laplace":
        eps = torch.finfo(torch.float64).eps
        u = uniform * (2 - eps) + (eps - 1)
        expected = p["loc"] - p["scale"] * u.sign() * torch.log1p(-u.abs())
    else:
        expected = theirs.loc + (theirs.scale_tril @ eps_gauss.unsqueeze(-1)).squeeze(-1)
    _compare_with_grads(drawn, expected, our_params, their_params, f"{case}.rsample")
    if case == "normal":  # d sum(x) / d loc = number of draws, d sum(x) / d scale = sum of the noise
        loc_grad, scale_grad = dtorch.autograd.grad(drawn.sum(), [our_params["loc"], our_params["scale"]])
        np.testing.assert_allclose(_to_numpy(loc_grad), np.full((3, 1), 6 * 4.0))
        np.testing.assert_allclose(_to_numpy(scale_grad), eps_gauss.numpy().sum((0, 1)), rtol=1e-7)


def test_enumerate_support_matches_torch():
    for build in (lambda lib: lib.distributions.Bernoulli(lib.tensor([[0.3, 0.5, 0.9]])),
                  lambda lib: lib.distributions.Categorical(logits=lib.zeros(2, 3)),
                  lambda lib: lib.distributions.OneHotCategorical(logits=lib.zeros(2, 3))):
        ours, theirs = build(dtorch), build(torch)
        assert ours.has_enumerate_support
        for expand in (True, False):
            a, b = ours.enumerate_support(expand), theirs.enumerate_support(expand)
            assert tuple(a.shape) == tuple(b.shape)
            np.testing.assert_array_equal(_to_numpy(a), _to_numpy(b))
            assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1]


# ---- validation -------------------------------------------------------------------------------------------------

INVALID = [
    lambda D, lib: D.Normal(0.0, -1.0),
    lambda D, lib: D.Normal(lib.tensor([0.0, float("nan")]), 1.0),
    lambda D, lib: D.Normal(lib.zeros(2), lib.ones(2)).log_prob(lib.zeros(3)),
    lambda D, lib: D.Normal(0.0, 1.0).log_prob(1.0),
    lambda D, lib: D.Uniform(1.0, 0.0),
    lambda D, lib: D.Exponential(lib.tensor([1.0])).log_prob(lib.tensor([-1.0])),
    lambda D, lib: D.Laplace(0.0, 0.0),
    lambda D, lib: D.LogNormal(0.0, 1.0).log_prob(lib.tensor(-1.0)),
    lambda D, lib: D.Bernoulli(),
    lambda D, lib: D.Bernoulli(lib.tensor([0.5]), logits=lib.tensor([0.0])),
    lambda D, lib: D.Bernoulli(lib.tensor([1.5])),
    lambda D, lib: D.Bernoulli(lib.tensor([0.5])).log_prob(lib.tensor([0.3])),
    lambda D, lib: D.Categorical(),
    lambda D, lib: D.Categorical(lib.tensor([-0.2, 0.3])),
    lambda D, lib: D.Categorical(logits=lib.zeros(3)).log_prob(lib.tensor(3)),
    lambda D, lib: D.OneHotCategorical(logits=lib.zeros(3)).log_prob(lib.tensor([1.0, 1.0, 0.0])),
    lambda D, lib: D.MultivariateNormal(lib.zeros(2)),
    lambda D, lib: D.MultivariateNormal(lib.zeros(2), -lib.eye(2)),
    lambda D, lib: D.MultivariateNormal(lib.zeros(2), scale_tril=lib.ones(2, 2)),
    lambda D, lib: D.MultivariateNormal(lib.zeros(2), lib.eye(2)).log_prob(lib.zeros(3)),
    lambda D, lib: D.Independent(D.Normal(0.0, 1.0), 1),
    lambda D, lib: D.Distribution.set_default_validate_args(3),
]


def _error(build, D, lib):
    try:
        build(D, lib)
    except Exception as error:  # noqa: BLE001 - the type is what is compared
        return type(error), str(error).replace("dtorch.", "torch.")
    return None, ""


@pytest.mark.parametrize("index", range(len(INVALID)))
def test_validation_errors_match_torch(index):
    our_type, our_message = _error(INVALID[index], DD, dtorch)
    their_type, their_message = _error(INVALID[index], TD, torch)
    assert their_type is not None
    assert our_type is their_type, our_message
    # the message up to the parameters' repr (tensor printing differs a little)
    prefix = their_message.split(" (")[0].split("tensor(")[0][:60]
    assert our_message.startswith(prefix), (our_message, their_message)
    assert our_message.split("\n")[0][:40] == their_message.split("\n")[0][:40]


def test_validate_args_switches():
    DD.Normal(0.0, -1.0, validate_args=False)  # no check when asked not to
    with pytest.raises(ValueError, match="Expected parameter scale"):
        DD.Normal(0.0, -1.0, validate_args=True)
    DD.Normal(0.0, 1.0, validate_args=False).log_prob(dtorch.tensor(float("nan")))
    try:
        DD.Distribution.set_default_validate_args(False)
        DD.Normal(0.0, -1.0)
        DD.Bernoulli(dtorch.tensor([0.5])).log_prob(dtorch.tensor([0.3]))
        DD.set_default_validate_args(True)
        with pytest.raises(ValueError):
            DD.Normal(0.0, -1.0)
    finally:
        DD.Distribution.set_default_validate_args(True)


def test_constraints_and_reprs_match_torch():
    for name in ("Normal", "Laplace", "LogNormal"):
        ours, theirs = getattr(DD, name)(0.0, 1.0), getattr(TD, name)(0.0, 1.0)
        assert name == "LogNormal" or repr(ours) == repr(theirs)
        assert repr(ours.support) == repr(theirs.support)
        for key, constraint in theirs.arg_constraints.items():
            assert repr(ours.arg_constraints[key]) == repr(constraint)
    assert repr(DD.Categorical(logits=dtorch.zeros(3)).support) == repr(TD.Categorical(logits=torch.zeros(3)).support)
    assert repr(DD.Bernoulli(0.5).support) == repr(TD.Bernoulli(0.5).support)
    assert repr(DD.OneHotCategorical(logits=dtorch.zeros(3)).support) == repr(
        TD.OneHotCategorical(logits=torch.zeros(3)).support)
    assert repr(DD.MultivariateNormal(dtorch.zeros(2), dtorch.eye(2)).support) == repr(
        TD.MultivariateNormal(torch.zeros(2), torch.eye(2)).support)
    positive = DD.constraints.positive.check(dtorch.tensor([1.0, 0.0, -1.0]))
    assert positive.tolist() == [True, False, False]
    assert DD.constraints.simplex.check(dtorch.tensor([[0.5, 0.5], [0.5, 0.6]])).tolist() == [True, False]
    assert DD.constraints.positive_definite.check(dtorch.stack([dtorch.eye(2), -dtorch.eye(2)])).tolist() == [
        True, False]
    assert math.isnan(float(DD.Uniform(0.0, 1.0).mode))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_icdf_gradient_in_the_value_matches_torch(dtype):
    # the far tails only in float64: there 2p - 1 rounds to within a few float32 ulps of -1 or 1
    levels = np.array([1e-7, 1e-3, 0.2, 0.5, 0.77, 0.999, 1 - 1e-7] if dtype == "float64" else
                      [1e-3, 0.2, 0.5, 0.77, 0.999])
    tolerance = 1e-7 if dtype == "float64" else 2e-4
    for name, args in [("Normal", (0.3, 2.0)), ("Laplace", (0.3, 2.0)), ("Exponential", (2.0,)),
                       ("Uniform", (-1.0, 3.0))]:
        if dtype == "float32" and name != "Normal":
            continue
        results = []
        for lib in (dtorch, torch):
            value = lib.tensor(levels.astype(dtype), requires_grad=True)
            quantile = getattr(lib.distributions, name)(*args).icdf(value)
            (grad,) = lib.autograd.grad(quantile.sum(), [value])
            results.append((_to_numpy(quantile), _to_numpy(grad)))
        np.testing.assert_allclose(results[0][0], results[1][0], rtol=tolerance, atol=tolerance, err_msg=name)
        np.testing.assert_allclose(results[0][1], results[1][1], rtol=tolerance * 10, err_msg=name)
