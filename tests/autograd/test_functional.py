"""``dtorch.autograd.functional`` against ``torch.autograd.functional``: values, result structure, create_graph,
strict mode and argument errors."""

import numpy as np
import pytest
import torch

import dtorch


def _arrays(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, size=s) for s in shapes]


def _wrap(library, arrays):
    return tuple(library.tensor(a) for a in arrays)


def _assert_same(ours, theirs, what="result"):
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, tuple) and len(ours) == len(theirs), f"{what}: structure {ours!r} != {theirs!r}"
        for index, (a, b) in enumerate(zip(ours, theirs)):
            _assert_same(a, b, f"{what}[{index}]")
        return
    assert isinstance(ours, dtorch.Tensor), f"{what}: {type(ours)}"
    assert tuple(ours.shape) == tuple(theirs.shape), f"{what}: shape {tuple(ours.shape)} != {tuple(theirs.shape)}"
    assert ours.requires_grad == theirs.requires_grad, f"{what}: requires_grad"
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12,
                               err_msg=what)


def both(name, func_of, arrays, *, single=False, vectors=None, **kwargs):
    """Run ``autograd.functional.<name>`` with both libraries on the same inputs and compare."""
    results = []
    for library in (torch, dtorch):
        inputs = _wrap(library, arrays)
        args = [func_of(library), inputs[0] if single else inputs]
        if vectors is not None:
            v = _wrap(library, vectors)
            args.append(v[0] if single else v)
        results.append(getattr(library.autograd.functional, name)(*args, **kwargs))
    _assert_same(results[1], results[0])
    return results[1]


def cubic(library):
    return lambda x: x ** 3 * x.sum()


def two_in_two_out(library):
    return lambda x, y: ((x @ y).tanh(), (x.sin() * 2).sum(0))


def scalar_of_two(library):
    return lambda x, y: (x.exp() @ y).sum() + (x ** 2).sum() * y.sum()


def conv_scalar(library):
    w = library.tensor(_arrays((2, 1, 2, 2), seed=5)[0])
    return lambda x: library.nn.functional.conv2d(x, w).pow(2).softmax(-1).sum()


@pytest.mark.parametrize("create_graph", [False, True])
def test_jacobian_single_and_tuple_structures(create_graph):
    both("jacobian", cubic, _arrays((3,)), single=True, create_graph=create_graph)
    both("jacobian", cubic, _arrays((2, 2)), create_graph=create_graph)  # a tuple of one input
    both("jacobian", two_in_two_out, _arrays((2, 3), (3, 2)), create_graph=create_graph)


@pytest.mark.parametrize("create_graph", [False, True])
def test_hessian(create_graph):
    both("hessian", lambda library: lambda x: (x ** 3).sum() * x[0], _arrays((3,)), single=True,
         create_graph=create_graph)
    both("hessian", scalar_of_two, _arrays((2, 3), (3,)), create_graph=create_graph)
    both("hessian", conv_scalar, _arrays((1, 1, 3, 3)), single=True, create_graph=create_graph)


@pytest.mark.parametrize("name", ["vjp", "jvp"])
def test_vjp_and_jvp(name):
    both(name, cubic, _arrays((3,)), single=True, vectors=_arrays((3,), seed=1))
    x, y = _arrays((2, 3), (3, 2))
    if name == "vjp":
        vectors = _arrays((2, 2), (3,), seed=2)
    else:
        vectors = _arrays((2, 3), (3, 2), seed=2)
    both(name, two_in_two_out, [x, y], vectors=vectors)
    both(name, two_in_two_out, [x, y], vectors=vectors, create_graph=True)


@pytest.mark.parametrize("name", ["vhp", "hvp"])
def test_vhp_and_hvp(name):
    both(name, lambda library: lambda x: (x ** 3).sum() * x[0], _arrays((3,)), single=True,
         vectors=_arrays((3,), seed=1))
    both(name, scalar_of_two, _arrays((2, 3), (3,)), vectors=_arrays((2, 3), (3,), seed=3))
    both(name, conv_scalar, _arrays((1, 1, 3, 3)), single=True, vectors=_arrays((1, 1, 3, 3), seed=4),
         create_graph=True)


def test_vjp_of_a_scalar_needs_no_vector():
    both("vjp", lambda library: lambda x: (x ** 2).sum(), _arrays((3,)), single=True)
    with pytest.raises(RuntimeError, match="can only be None"):
        dtorch.autograd.functional.vjp(lambda x: x * 2, dtorch.ones(3))



@pytest.mark.parametrize("name", ["jvp", "vhp", "hvp"])
def test_a_vector_may_be_left_out_only_for_one_single_element_input(name):
    messages = []
    for library in (torch, dtorch):
        with pytest.raises(RuntimeError, match="can only be None") as error:
            getattr(library.autograd.functional, name)(lambda x: (x ** 2).sum(), library.ones(3))
        messages.append(str(error.value))
    assert messages[1] == messages[0]
    both(name, lambda library: lambda x: (x ** 3).sum(), _arrays((1,)), single=True)

def test_create_graph_result_can_be_differentiated_again():
    results = []
    for library in (torch, dtorch):
        x = library.tensor([0.5, -1.0, 2.0], dtype=library.float64, requires_grad=True)
        jac = library.autograd.functional.jacobian(lambda t: t.sin() * t.sum(), x, create_graph=True)
        jac.sum().backward()
        results.append(x.grad.numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-12)


def test_unused_input_gives_zeros_or_strict_error():
    both("jacobian", lambda library: lambda x, y: x * 2, _arrays((2,), (3,)))
    both("jacobian", lambda library: lambda x, y: x * 2, _arrays((2,), (3,)), vectorize=True)
    for library in (torch, dtorch):
        with pytest.raises(RuntimeError, match="independent of input 1. This is not allowed in strict mode"):
            library.autograd.functional.jacobian(lambda x, y: x * 2, _wrap(library, _arrays((2,), (3,))),
                                                 strict=True)


def test_bad_arguments_raise_as_pytorch_does():
    with pytest.raises(TypeError, match="must be either a Tensor or a tuple of Tensors"):
        dtorch.autograd.functional.jacobian(lambda x: x, [1.0])
    with pytest.raises(RuntimeError, match="invalid size"):
        dtorch.autograd.functional.vjp(lambda x: x * 2, dtorch.ones(3), dtorch.ones(2))
    with pytest.raises(RuntimeError, match="single element"):
        dtorch.autograd.functional.hessian(lambda x: x * 2, dtorch.ones(3))
    with pytest.raises(ValueError, match="strategy"):
        dtorch.autograd.functional.jacobian(lambda x: x, dtorch.ones(2), strategy="sideways")
