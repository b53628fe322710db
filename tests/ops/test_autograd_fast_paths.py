"""Fast paths of the autograd layer (issue 12) held equal to their references and to PyTorch.

- ``Op.apply`` links one- and two-Tensor-input nodes inline; ``Op._record`` is the reference it must match.
- ``sum_to``/``expand_reduced`` use array methods on arrays and the differentiable namespace on Tensors.
- ``broadcast_gradient`` (Sum and Mean backward) fills a fresh array where the reference is ``xp.broadcast_to``.
"""

import numpy as np
import pytest
import torch

import dtorch
from dtorch.autograd import function as function_module
from dtorch.ops import elementwise as E
from dtorch.ops._util import broadcast_gradient, expand_reduced, sum_to


def _rand(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _pair(array, requires_grad=True):
    return (dtorch.tensor(array, requires_grad=requires_grad), torch.tensor(array, requires_grad=requires_grad))


# ---- Op.apply's inline recording against Op._record -----------------------------------------------------------------


@pytest.mark.parametrize("grads", [(True, True), (True, False), (False, True)])
def test_inline_record_of_two_inputs_equals_record(grads):
    a = dtorch.tensor(_rand(3, 1), requires_grad=grads[0])
    b = dtorch.tensor(_rand(4, seed=1), requires_grad=grads[1])
    out = a * b  # Mul saves both inputs
    reference = function_module._object_new(type(out.grad_fn))
    reference.save_for_backward(a._array, b._array)
    reference._record((a, b))
    assert out.grad_fn.edges == reference.edges
    assert [(owner, version) for owner, _, version in out.grad_fn._saved] == \
           [(owner, version) for owner, _, version in reference._saved]
    assert all(array is original for (_, array, _), original in zip(out.grad_fn._saved, (a._array, b._array)))
    assert reference.sequence_nr == out.grad_fn.sequence_nr + 1  # both drew from the one counter, in order


def test_inline_record_of_one_input_keeps_saved_input_and_version_check():
    x = dtorch.tensor(_rand(5), requires_grad=True)
    y = x * 1.0  # a non-leaf, so it may be changed in place
    out = y.sin()  # Sin saves its input
    ((owner, array, version),) = out.grad_fn._saved
    assert owner is y and array is y._array and version == 0
    assert out.grad_fn.edges == [y.grad_fn]
    y.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_inline_record_of_saved_constant_is_not_an_input():
    x = dtorch.tensor(_rand(6), requires_grad=True)
    out = dtorch.relu(x)  # saves a mask, not an input (or its input: either entry form must be right)
    for owner, array, _ in out.grad_fn._saved:
        assert owner is None or owner._array is array
    out.sum().backward()
    torch_x = torch.tensor(_rand(6), requires_grad=True)
    torch.relu(torch_x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), torch_x.grad.numpy())


def test_inline_record_of_binary_input_shapes():
    a = dtorch.tensor(_rand(2, 3), requires_grad=True)
    b = dtorch.tensor(_rand(3, seed=2))
    node = (a + b).grad_fn
    if type(node).needs_input_shapes:
        assert node.input_shapes == ((2, 3), (3,))
    (a + b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.ones((2, 3), np.float32))


# ---- sum_to, expand_reduced, broadcast_gradient ---------------------------------------------------------------------


@pytest.mark.parametrize("grad_shape, shape", [((2, 3), (3,)), ((2, 3), (2, 1)), ((4, 2, 3), (1, 3)), ((2, 3), (2, 3)),
                                               ((0, 3), (3,)), ((2, 3), [2, 3])])
def test_sum_to_arrays_equal_tensors(grad_shape, shape):
    grad = _rand(*grad_shape)
    from_arrays = sum_to(np, grad, shape)
    from dtorch.autograd.function import graph_mode
    from_tensors = sum_to(graph_mode.namespace, dtorch.tensor(grad), shape)
    assert from_arrays.shape == tuple(shape)
    np.testing.assert_allclose(from_arrays, from_tensors.numpy(), rtol=1e-6)
    # against PyTorch: the gradient of broadcasting an input of ``shape`` to ``grad_shape``
    source = torch.zeros(tuple(shape), requires_grad=True)
    source.expand(grad_shape).backward(torch.tensor(grad))
    np.testing.assert_allclose(from_arrays, source.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("grad_shape, shape", [((2, 1, 3), (2, 4, 3)), ((), (3, 2)), ((1,), (5,)), ((2, 1), (2, 0)),
                                               ((), ())])
def test_broadcast_gradient_equals_broadcast_to(grad_shape, shape, dtype):
    grad = _rand(*grad_shape, dtype=dtype)
    out = broadcast_gradient(np, grad, shape)
    np.testing.assert_array_equal(out, np.broadcast_to(grad, shape))
    assert out.dtype == dtype and out.flags.writeable and out.flags.owndata


def test_expand_reduced_array_method_equals_tensor_path():
    from dtorch.autograd.function import graph_mode
    grad = _rand(2, 4)
    as_array = expand_reduced(np, grad, (2, 3, 4), (1,), False)
    as_tensor = expand_reduced(graph_mode.namespace, dtorch.tensor(grad), (2, 3, 4), (1,), False)
    assert as_array.shape == (2, 1, 4) == tuple(as_tensor.shape)
    np.testing.assert_array_equal(as_array, as_tensor.numpy())


# ---- Sum and Mean backward against PyTorch --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("shape, dim, keepdim", [((3, 4), None, False), ((3, 4), 1, False), ((3, 4), -2, True),
                                                 ((2, 3, 4), (0, 2), False), ((2, 3, 4), (-1,), True), ((5,), 0, False),
                                                 ((0, 3), 1, False), ((0, 3), None, False), ((), None, False)])
def test_sum_mean_backward_matches_torch(reduction, shape, dim, keepdim, dtype):
    ours, theirs = _pair(_rand(*shape, dtype=dtype))
    kwargs = {} if dim is None else {"dim": dim, "keepdim": keepdim}
    out_ours = getattr(ours, reduction)(**kwargs)
    out_theirs = getattr(theirs, reduction)(**kwargs)
    weights = _rand(*out_theirs.shape, seed=3, dtype=dtype)
    (out_ours * dtorch.tensor(weights)).sum().backward()
    (out_theirs * torch.tensor(weights)).sum().backward()
    assert ours.grad.dtype == dtorch.float32 if dtype == np.float32 else ours.grad.dtype == dtorch.float64
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-6)
    assert ours.grad._array.flags.writeable


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_sum_mean_backward_of_non_contiguous_input(reduction):
    array = _rand(4, 6)
    ours, theirs = _pair(array)
    getattr(ours.t()[1:, ::2], reduction)(0).pow(2).sum().backward()
    getattr(theirs.t()[1:, ::2], reduction)(0).pow(2).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_sum_mean_double_backward_matches_torch(reduction, dtype):
    array = _rand(3, 4, dtype=dtype)
    ours, theirs = _pair(array)
    grads = []
    for x, lib in ((ours, dtorch), (theirs, torch)):
        y = getattr(x * x, reduction)(1, keepdim=False)  # x*x makes the second derivative depend on x
        (first,) = lib.autograd.grad(y.pow(2).sum(), x, create_graph=True)
        (second,) = lib.autograd.grad(first.sum(), x)
        grads.append((first.detach().numpy(), second.numpy()))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-5)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-5)


def test_sum_backward_leaf_grad_is_not_shared_between_calls():
    x = dtorch.tensor(_rand(2, 3), requires_grad=True)
    x.sum().backward()
    first = x.grad
    x.sum().backward()  # accumulates: the first gradient array must not have been aliased elsewhere
    np.testing.assert_array_equal(first.numpy(), np.full((2, 3), 2.0, np.float32))


# ---- Linear backward: the 2-d array path against the general one and PyTorch ----------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape", [(3, 4), (2, 3, 4), (4,), (0, 4)])
@pytest.mark.parametrize("bias_shape", [(5,), (), None])
@pytest.mark.parametrize("needs", [(True, True, True), (True, False, False), (False, True, True), (False, False, True)])
def test_linear_backward_matches_torch(x_shape, bias_shape, needs, dtype):
    arrays = [_rand(*x_shape, dtype=dtype), _rand(5, 4, seed=1, dtype=dtype)]
    if bias_shape is not None:
        arrays.append(_rand(*bias_shape, seed=2, dtype=dtype))
    if not any(needs[:len(arrays)]):
        pytest.skip("nothing requires grad: no backward to compare")
    grads = []
    for lib in (dtorch, torch):
        inputs = [lib.tensor(array, requires_grad=need) for array, need in zip(arrays, needs)]
        out = lib.nn.functional.linear(*inputs)
        (out * lib.tensor(_rand(*out.shape, seed=3, dtype=dtype))).sum().backward()
        grads.append([None if t.grad is None else t.grad.numpy() for t in inputs])
    for ours, theirs in zip(*grads):
        if theirs is None:
            assert ours is None
            continue
        assert type(ours) is np.ndarray and ours.shape == theirs.shape and ours.dtype == theirs.dtype
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bias_shape", [(5,), ()])
def test_linear_double_backward_matches_torch(bias_shape):
    arrays = [_rand(3, 4, dtype=np.float64), _rand(5, 4, seed=1, dtype=np.float64),
              _rand(*bias_shape, seed=2, dtype=np.float64)]
    results = []
    for lib in (dtorch, torch):
        x, w, b = (lib.tensor(array, requires_grad=True) for array in arrays)
        out = lib.nn.functional.linear(x, w, b).tanh().sum()
        grad_x, grad_w, grad_b = lib.autograd.grad(out, (x, w, b), create_graph=True)
        penalty = (grad_x ** 2).sum() + (grad_w ** 2).sum() + (grad_b ** 2).sum()
        results.append([g.numpy() for g in lib.autograd.grad(penalty, (x, w, b))])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
