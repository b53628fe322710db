"""``nn.utils.parametrize`` and ``nn.utils.parametrizations`` against PyTorch: registration, chaining, assignment,
caching, removal, state dicts, and weight_norm / spectral_norm / orthogonal (values and gradients)."""

import numpy as np
import pytest
import torch

import dtorch
from helpers import assert_close


def _linear(library, out_features=3, in_features=4, seed=0, dtype="float64"):
    module = library.nn.Linear(in_features, out_features).to(getattr(library, dtype))
    rng = np.random.default_rng(seed)
    with library.no_grad():
        module.weight.copy_(library.tensor(rng.standard_normal((out_features, in_features))))
        module.bias.copy_(library.tensor(rng.standard_normal(out_features)))
    return module


def _modules(library):
    class Symmetric(library.nn.Module):
        def forward(self, x):
            return x.triu() + x.triu(1).mT

        def right_inverse(self, a):
            return a.triu()

    class Scale(library.nn.Module):
        def __init__(self, factor):
            super().__init__()
            self.factor = factor

        def forward(self, x):
            return x * self.factor

        def right_inverse(self, a):
            return a / self.factor

    class Split(library.nn.Module):  # right_inverse returning two tensors: original0, original1
        def forward(self, a, b):
            return a + b

        def right_inverse(self, x):
            return x * 0.25, x * 0.75

    return Symmetric, Scale, Split


def _step_gradients(module, library, x):
    """Forward, backward of a fixed function; returns the named parameter gradients."""
    module.zero_grad()
    out = module(library.tensor(x))
    (out ** 2).sum().backward()
    return {name: p.grad for name, p in module.named_parameters()}


def test_register_chain_assign_and_remove_match_torch():
    x = np.random.default_rng(3).standard_normal((2, 4))
    results = {}
    for library in (torch, dtorch):
        Symmetric, Scale, _ = _modules(library)
        parametrize = library.nn.utils.parametrize
        m = _linear(library, 4, 4)
        parametrize.register_parametrization(m, "weight", Symmetric())
        parametrize.register_parametrization(m, "weight", Scale(2.0))
        assert type(m).__name__ == "ParametrizedLinear"
        assert parametrize.is_parametrized(m) and parametrize.is_parametrized(m, "weight")
        assert not parametrize.is_parametrized(m, "bias")
        assert parametrize.type_before_parametrizations(m) is library.nn.Linear
        state_keys = sorted(m.state_dict())
        grads = _step_gradients(m, library, x)
        weight_before = m.weight.detach().clone()
        m.weight = m.weight.detach() * 0.5  # stored through right_inverse
        assigned = m.weight.detach().clone()
        parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
        results[library] = (state_keys, grads, weight_before, assigned, m.weight.detach().clone(), type(m).__name__,
                            sorted(name for name, _ in m.named_parameters()))
    theirs, ours = results[torch], results[dtorch]
    assert ours[0] == theirs[0]
    for name in theirs[1]:
        assert_close(ours[1][name], theirs[1][name], 1e-12, 1e-10, f"gradient of {name}")
    for index in (2, 3, 4):
        assert_close(ours[index], theirs[index], 1e-12, 1e-10, f"weight {index}")
    assert ours[5:] == theirs[5:] == ("Linear", ["bias", "weight"])


def test_right_inverse_with_several_tensors_and_leave_unparametrized():
    results = {}
    for library in (torch, dtorch):
        _, Scale, Split = _modules(library)
        parametrize = library.nn.utils.parametrize
        m = _linear(library)
        original = m.weight
        parametrize.register_parametrization(m, "weight", Split())
        keys = sorted(m.state_dict())
        value = m.weight.detach().clone()
        with pytest.raises(ValueError, match="Cannot leave unparametrized"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
        m2 = _linear(library, seed=1)
        parametrize.register_parametrization(m2, "weight", Scale(3.0))
        assert m2.parametrizations.weight.original is not None
        parametrize.remove_parametrizations(m2, "weight", leave_parametrized=False)
        results[library] = (keys, value, m2.weight.detach().clone(), original.shape)
    assert results[dtorch][0] == results[torch][0] == ["bias", "parametrizations.weight.original0",
                                                       "parametrizations.weight.original1"]
    assert_close(results[dtorch][1], results[torch][1], 1e-12, 1e-10, "split")
    assert_close(results[dtorch][2], results[torch][2], 1e-12, 1e-10, "unparametrized")


def test_cached_reuses_the_parametrized_tensor():
    Symmetric, _, _ = _modules(dtorch)
    m = dtorch.nn.utils.parametrize.register_parametrization(_linear(dtorch, 4, 4), "weight", Symmetric())
    assert m.weight is not m.weight
    with dtorch.nn.utils.parametrize.cached():
        first = m.weight
        assert m.weight is first
    assert m.weight is not first


def test_shape_change_needs_unsafe_and_errors_match_torch():
    for library in (torch, dtorch):
        class Row(library.nn.Module):
            def forward(self, x):
                return x[:1]

        parametrize = library.nn.utils.parametrize
        with pytest.raises(ValueError, match="may not change the shape of the tensor"):
            parametrize.register_parametrization(_linear(library), "weight", Row())
        m = parametrize.register_parametrization(_linear(library), "weight", Row(), unsafe=True)
        assert tuple(m.weight.shape) == (1, 4)
        with pytest.raises(ValueError, match="does not have a parameter, a buffer, or a parametrized element"):
            parametrize.register_parametrization(_linear(library), "nothing", Row())
        with pytest.raises(ValueError, match="does not have a parametrization on bias"):
            parametrize.remove_parametrizations(_linear(library), "bias")


@pytest.mark.parametrize("dim", [0, 1, None])
def test_weight_norm_matches_torch(dim):
    x = np.random.default_rng(4).standard_normal((2, 4))
    results = {}
    for library in (torch, dtorch):
        m = library.nn.utils.parametrizations.weight_norm(_linear(library), dim=dim)
        grads = _step_gradients(m, library, x)
        results[library] = (sorted(m.state_dict()), m.weight.detach().clone(), grads,
                            {k: v.detach().clone() for k, v in m.state_dict().items()})
    assert results[dtorch][0] == results[torch][0]
    assert_close(results[dtorch][1], results[torch][1], 1e-12, 1e-10, "weight")
    for name, grad in results[torch][2].items():
        assert_close(results[dtorch][2][name], grad, 1e-12, 1e-10, f"gradient of {name}")
    for name, value in results[torch][3].items():
        assert_close(results[dtorch][3][name], value, 1e-12, 1e-10, f"state {name}")


def test_weight_norm_on_a_conv_round_trips_its_state_dict():
    theirs = torch.nn.utils.parametrizations.weight_norm(torch.nn.Conv2d(2, 3, 3).double())
    ours = dtorch.nn.utils.parametrizations.weight_norm(dtorch.nn.Conv2d(2, 3, 3).double())
    ours.load_state_dict({k: dtorch.from_numpy(v.detach().numpy().copy()) for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(5).standard_normal((1, 2, 5, 5))
    assert_close(ours(dtorch.tensor(x)), theirs(torch.tensor(x)), 1e-12, 1e-10, "conv output")


@pytest.mark.parametrize("make, dim", [(lambda L: _linear(L, 3, 5), None),
                                       (lambda L: L.nn.Conv2d(2, 4, 3).double(), None),
                                       (lambda L: L.nn.ConvTranspose2d(2, 4, 3).double(), None),
                                       (lambda L: _linear(L, 3, 5), 1)])
def test_spectral_norm_matches_torch_with_the_same_vectors(make, dim):
    x_shape = (2, 5) if "Linear" in str(make(torch)) else (1, 2, 5, 5)
    x = np.random.default_rng(6).standard_normal(x_shape)
    torch.manual_seed(0)
    theirs = torch.nn.utils.parametrizations.spectral_norm(make(torch), dim=dim)
    ours = make(dtorch)  # the same weights as torch's before registration, then torch's vectors
    ours.load_state_dict({k: dtorch.from_numpy(v.detach().numpy().copy()) for k, v in theirs.state_dict().items()
                          if not k.startswith("parametrizations")} | {
        "weight": dtorch.from_numpy(theirs.parametrizations.weight.original.detach().numpy().copy())})
    ours = dtorch.nn.utils.parametrizations.spectral_norm(ours, dim=dim)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    ours.load_state_dict({k: dtorch.from_numpy(v.detach().numpy().copy()) for k, v in theirs.state_dict().items()})
    for step in range(2):  # training mode: one power iteration per forward, buffers updated in place
        grads_theirs = _step_gradients(theirs, torch, x)
        grads_ours = _step_gradients(ours, dtorch, x)
        for name, grad in grads_theirs.items():
            assert_close(grads_ours[name], grad, 1e-12, 1e-8, f"step {step}: gradient of {name}")
        assert_close(ours.parametrizations.weight[0]._u, theirs.parametrizations.weight[0]._u, 1e-12, 1e-8, "u")
    ours.eval(), theirs.eval()
    assert_close(ours.weight, theirs.weight, 1e-12, 1e-8, "eval weight")


@pytest.mark.parametrize("shape, orthogonal_map", [((4, 4), None), ((4, 4), "cayley"), ((5, 3), None),
                                                   ((3, 5), None), ((4, 4), "householder"), ((5, 3), "matrix_exp")])
def test_orthogonal_matches_torch(shape, orthogonal_map):
    out_features, in_features = shape
    x = np.random.default_rng(7).standard_normal((2, in_features))
    theirs = torch.nn.utils.parametrizations.orthogonal(_linear(torch, out_features, in_features), "weight",
                                                         orthogonal_map)
    ours = dtorch.nn.utils.parametrizations.orthogonal(_linear(dtorch, out_features, in_features), "weight",
                                                       orthogonal_map)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    # the base of a non-square weight has random extra columns: take torch's
    ours.load_state_dict({k: dtorch.from_numpy(v.detach().numpy().copy()) for k, v in theirs.state_dict().items()})
    assert_close(ours.weight, theirs.weight, 1e-10, 1e-8, "weight")
    grads_theirs, grads_ours = _step_gradients(theirs, torch, x), _step_gradients(ours, dtorch, x)
    for name, grad in grads_theirs.items():
        assert_close(grads_ours[name], grad, 1e-10, 1e-7, f"gradient of {name}")
    weight = ours.weight.detach().numpy()
    gram = weight @ weight.T if out_features <= in_features else weight.T @ weight
    np.testing.assert_allclose(gram, np.eye(min(shape)), atol=1e-10)


def test_orthogonal_rejects_vectors():
    with pytest.raises(ValueError, match="Expected a matrix or batch of matrices"):
        dtorch.nn.utils.parametrizations.orthogonal(dtorch.nn.Linear(3, 3), "bias")


def test_matrix_exp_and_householder_product_match_torch():
    rng = np.random.default_rng(8)
    for scale in (0.1, 3.0):
        a = rng.standard_normal((2, 4, 4)) * scale
        ours = dtorch.tensor(a, requires_grad=True)
        theirs = torch.tensor(a, requires_grad=True)
        assert_close(dtorch.linalg.matrix_exp(ours), torch.linalg.matrix_exp(theirs), 1e-12, 1e-9, "matrix_exp")
        dtorch.linalg.matrix_exp(ours).sin().sum().backward()
        torch.linalg.matrix_exp(theirs).sin().sum().backward()
        assert_close(ours.grad, theirs.grad, 1e-10, 1e-8, "matrix_exp gradient")
    a, tau = rng.standard_normal((5, 3)), rng.uniform(0, 2, size=2)
    ours_a, ours_tau = dtorch.tensor(a, requires_grad=True), dtorch.tensor(tau, requires_grad=True)
    theirs_a, theirs_tau = torch.tensor(a, requires_grad=True), torch.tensor(tau, requires_grad=True)
    assert_close(dtorch.linalg.householder_product(ours_a, ours_tau),
                 torch.linalg.householder_product(theirs_a, theirs_tau), 1e-12, 1e-10, "hp")
    dtorch.linalg.householder_product(ours_a, ours_tau).pow(3).sum().backward()
    torch.linalg.householder_product(theirs_a, theirs_tau).pow(3).sum().backward()
    assert_close(ours_a.grad, theirs_a.grad, 1e-12, 1e-10, "householder gradient a")
    assert_close(ours_tau.grad, theirs_tau.grad, 1e-12, 1e-10, "householder gradient tau")
