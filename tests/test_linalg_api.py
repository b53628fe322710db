"""dtorch.linalg (dtorch/linalg.py) against torch.linalg: norms, inv, det and solve, with gradients and errors."""

import math

import numpy as np
import pytest
import torch

import dtorch
from helpers import check_op


def lib_of(tensor):
    return dtorch if isinstance(tensor, dtorch.Tensor) else torch


def well_conditioned(shape, seed=0):
    """Random square matrices plus a multiple of the identity: safely invertible."""
    rng = np.random.default_rng(seed)
    n = shape[-1]
    return (rng.uniform(-1, 1, shape) + 3 * np.eye(n)).astype(np.float64)


@pytest.mark.parametrize("ord", [2, 1, 3, math.inf, -math.inf, 0])
@pytest.mark.parametrize("dim", [None, 1, (0, 2)])
def test_vector_norm(ord, dim):
    grad = ord != 0  # torch's 0-"norm" gradient is zero; dtorch's too, but comparing it says nothing
    check_op(lambda x: lib_of(x).linalg.vector_norm(x, ord=ord, dim=dim), None, [(2, 3, 4)], grad=grad)


@pytest.mark.parametrize("ord", ["fro", 1, -1, math.inf, -math.inf])
@pytest.mark.parametrize("keepdim", [False, True])
def test_matrix_norm(ord, keepdim):
    check_op(lambda x: lib_of(x).linalg.matrix_norm(x, ord=ord, keepdim=keepdim), None, [(2, 3, 4)])
    check_op(lambda x: lib_of(x).linalg.matrix_norm(x, ord=ord, dim=(0, 2)), None, [(3, 2, 4)])


def test_norm_dispatch():
    check_op(lambda x: lib_of(x).linalg.norm(x), None, [(3, 4)])
    check_op(lambda x: lib_of(x).linalg.norm(x, ord=1), None, [(3, 4)])
    check_op(lambda x: lib_of(x).linalg.norm(x, dim=1), None, [(3, 4)])
    check_op(lambda x: lib_of(x).linalg.norm(x, ord=math.inf, dim=(0, 1)), None, [(3, 4)])
    with pytest.raises(NotImplementedError, match="SVD"):
        dtorch.linalg.matrix_norm(dtorch.ones(2, 2), ord="nuc")


@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4)])
def test_inv_and_det(shape):
    a = well_conditioned(shape)
    check_op(lambda x: lib_of(x).linalg.inv(x), None, [a], dtype="float64")
    check_op(lambda x: lib_of(x).linalg.det(x), None, [a], dtype="float64")
    check_op(lambda x: x.inverse() * x.det()[..., None, None], None, [a], dtype="float64")
    assert dtorch.autograd.gradcheck(dtorch.linalg.inv, (dtorch.tensor(a, requires_grad=True),))
    assert dtorch.autograd.gradcheck(dtorch.linalg.det, (dtorch.tensor(a, requires_grad=True),))


@pytest.mark.parametrize("a_shape, b_shape", [
    ((3, 3), (3,)),  # one vector
    ((3, 3), (3, 2)),  # one matrix
    ((2, 3, 3), (2, 3)),  # a batch of vectors: B's shape is A's without the last dim
    ((2, 3, 3), (2, 3, 2)),  # a batch of matrices
    ((2, 3, 3), (3, 2)),  # one matrix broadcast over A's batch
])
def test_solve(a_shape, b_shape):
    a, b = well_conditioned(a_shape), np.random.default_rng(1).uniform(-1, 1, b_shape)
    check_op(lambda x, y: lib_of(x).linalg.solve(x, y), None, [a, b], dtype="float64")


def test_solve_from_the_right():
    a, b = well_conditioned((3, 3)), np.random.default_rng(2).uniform(-1, 1, (2, 3))
    check_op(lambda x, y: lib_of(x).linalg.solve(x, y, left=False), None, [a, b], dtype="float64")


def test_errors_name_the_problem():
    with pytest.raises(RuntimeError, match=r"square matrices, but got shape \[2, 3\]"):
        dtorch.linalg.inv(dtorch.ones(2, 3))
    with pytest.raises(RuntimeError, match="singular"):
        dtorch.linalg.inv(dtorch.zeros(2, 2))
    with pytest.raises(RuntimeError, match="Incompatible shapes"):
        dtorch.linalg.solve(dtorch.eye(3), dtorch.ones(2))
    with pytest.raises(RuntimeError, match="floating point"):
        dtorch.linalg.det(dtorch.eye(2, dtype=dtorch.int64))


def test_inverse_output_changed_in_place_raises_like_torch():
    for lib in (dtorch, torch):
        a = lib.tensor(well_conditioned((3, 3)), requires_grad=True)
        inverse = lib.linalg.inv(a * 1)
        inverse.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            inverse.sum().backward()


def _spd(n, batch=(), seed=0):
    rng = np.random.default_rng(seed)
    m = rng.standard_normal(batch + (n, n))
    return m @ np.swapaxes(m, -1, -2) + n * np.eye(n)


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("batch", [(), (2,)])
def test_cholesky_matches_torch_forward_and_backward(upper, batch):
    a = _spd(4, batch)
    upstream = np.random.default_rng(5).standard_normal(batch + (4, 4))
    results = []
    for lib in (dtorch, torch):
        x = lib.tensor(a, requires_grad=True)
        factor = lib.linalg.cholesky(x, upper=upper)
        factor.backward(lib.tensor(upstream))
        results.append((factor.detach().numpy(), x.grad.numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-9, atol=1e-11)


def test_cholesky_of_a_matrix_that_is_not_positive_definite_raises_as_torch():
    with pytest.raises(RuntimeError, match="not positive-definite"):
        torch.linalg.cholesky(torch.tensor([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(RuntimeError, match="linalg.cholesky: The factorization could not be completed because the "
                                           "input is not positive-definite"):
        dtorch.linalg.cholesky(dtorch.tensor([[1.0, 2.0], [2.0, 1.0]]))


@pytest.mark.parametrize("matrix", [
    np.array([[2.0, 1.0], [0.5, -3.0]]), np.array([[2.0, 1.0], [0.5, 3.0]]), _spd(3, (2,)),
    np.diag([1e-200, 1e-200, 1e-200]),  # det underflows; logabsdet does not
], ids=["negative det", "positive det", "batch", "underflowing det"])
def test_slogdet_and_logdet_match_torch(matrix):
    results = []
    for lib in (dtorch, torch):
        x = lib.tensor(matrix, requires_grad=True)
        sign, logabsdet = lib.linalg.slogdet(x)
        logabsdet.sum().backward()
        method = x.detach().slogdet()
        results.append((sign.detach().numpy(), logabsdet.detach().numpy(), x.grad.numpy(),
                        lib.logdet(x.detach()).numpy(), method[0].numpy(), method.logabsdet.numpy()))
    for mine, theirs in zip(*results):
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, equal_nan=True)


def test_slogdet_second_derivative_matches_torch_and_cholesky_says_it_has_none():
    a = np.random.default_rng(0).standard_normal((3, 3)) + 3 * np.eye(3)
    results = []
    for lib in (dtorch, torch):
        x = lib.tensor(a, requires_grad=True)
        (first,) = lib.autograd.grad(lib.linalg.slogdet(x)[1], x, create_graph=True)
        (second,) = lib.autograd.grad((first * first).sum(), x)
        results.append((first.detach().numpy(), second.numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-10)
    x = dtorch.tensor(a @ a.T, requires_grad=True)
    with pytest.raises(RuntimeError, match="no double-backward formula"):
        dtorch.autograd.grad(dtorch.linalg.cholesky(x).sum(), x, create_graph=True)
