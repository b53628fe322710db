"""Fast paths of issue 12 held equal to the reference paths they stand beside (and to PyTorch).

Each fast path skips work only in a common case (same dtypes, a plain slice, a C-contiguous array, ...); these
tests run the fast and the reference path on the same inputs and compare values, gradients, versions and errors.
"""

import re
import warnings

import numpy as np
import pytest
import torch

import dtorch
from dtorch import functional as F
from dtorch.ops import reduction as R
from dtorch.ops import shape as S
from dtorch.ops.nn import sum_last
from helpers import check_op


def _rand(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ---- shapes and views ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, numel", [((2, 3), 6), ((6,), 6), ((), 1), ((0, 5), 0), ((2, -1), 6), ((-1,), 0),
                                          ((5, 0, -1), 0)])
def test_infer_shape_fast_path_equals_general(shape, numel):
    if -1 in shape and numel == 0 and shape.count(-1) == 1 and 0 in shape:
        with pytest.raises(RuntimeError):
            F._infer_shape(shape, numel)
        return
    expected = list(shape)
    if -1 in expected:
        known = int(np.prod([s for s in expected if s != -1]))
        expected[expected.index(-1)] = numel // known if known else 0
    assert F._infer_shape(shape, numel) == tuple(expected)


@pytest.mark.parametrize("shape", [(2, -3), (-2, -3), (4, 2), (7,)])
def test_infer_shape_rejects_what_the_general_path_rejects(shape):
    with pytest.raises(RuntimeError):
        F._infer_shape(shape, 6)


@pytest.mark.parametrize("source, target", [((8, 1), (8, 8)), ((1,), (3, 4)), ((), (2, 3)), ((3, 1, 2), (4, 3, 5, 2)),
                                            ((0, 1), (0, 4)), ((2, 3), (2, 3))])
def test_expand_view_equals_broadcast_to(source, target):
    x = _rand(*source)
    fast = S._expand_view(x, target)
    reference = np.broadcast_to(x, target)
    assert fast.shape == reference.shape and fast.dtype == reference.dtype
    np.testing.assert_array_equal(fast, reference)
    assert fast.strides == reference.strides
    assert not fast.flags.writeable
    assert np.shares_memory(fast, x) or x.size == 0


def test_expand_of_a_view_shares_memory_and_version_with_the_base():
    base = dtorch.zeros(4, 1)
    view = base[1:3]
    expanded = view.expand(2, 5)
    assert expanded._base is base
    base[1, 0] = 7.0
    assert expanded[0, 3].item() == 7.0
    assert expanded._version == base._version
    check_op(lambda x: x.expand(3, 4, 5), None, [(4, 1)])
    check_op(lambda x: x.expand(2, 3), None, [(3,)], noncontiguous=True)  # the reference path (not contiguous)


def test_getitem_plain_key_fast_path_equals_tuple_path():
    x = dtorch.tensor(_rand(6, 5), requires_grad=True)
    for key in (2, -1, 0, slice(1, 4), slice(None, None, 2), slice(-3, None), slice(4, 1), slice(None)):
        fast, reference = x[key], x[(key,)]
        np.testing.assert_array_equal(fast.detach().numpy(), reference.detach().numpy())
        assert fast.grad_fn.name() == reference.grad_fn.name()
        assert fast._base is x
        upstream = dtorch.tensor(_rand(*fast.shape, seed=3))
        (fast_grad,) = dtorch.autograd.grad(fast, x, upstream)
        (reference_grad,) = dtorch.autograd.grad(reference, x, upstream)
        np.testing.assert_array_equal(fast_grad.numpy(), reference_grad.numpy())
    with pytest.raises(IndexError, match="shape \\[6, 5\\]"):
        x[6]
    with pytest.raises(ValueError):
        x[::-1]  # not a plain slice: the reference path raises PyTorch's error
    check_op(lambda x: x[1:3], None, [(4, 3)])
    check_op(lambda x: x[-2], None, [(4, 3)])


def test_split_pieces_equal_narrow():
    x = dtorch.tensor(_rand(7, 4), requires_grad=True)
    for dim, size in ((0, 3), (1, 2), (-1, 3)):
        pieces = x.split(size, dim)
        start = 0
        for piece in pieces:
            reference = x.narrow(dim, start, piece.shape[dim])
            np.testing.assert_array_equal(piece.detach().numpy(), reference.detach().numpy())
            assert piece._base is x
            start += piece.shape[dim]
    check_op(lambda x: x.split(3, 1), None, [(2, 7)])
    check_op(lambda x: x.chunk(3), None, [(7, 2)])


def test_cat_errors_are_pytorchs_after_the_fast_path():
    a, b = dtorch.zeros(2, 3), dtorch.zeros(2, 4)
    with pytest.raises(RuntimeError, match="Sizes of tensors must match except in dimension 0"):
        dtorch.cat([a, b])
    with pytest.raises(RuntimeError, match="same number of dimensions"):
        dtorch.cat([a, dtorch.zeros(3)])
    with pytest.raises(RuntimeError, match="zero-dimensional tensor \\(at position 0\\)"):
        dtorch.cat([dtorch.tensor(1.0), dtorch.tensor(2.0)])
    assert dtorch.cat([a, b], 1).shape == (2, 7)
    check_op(lambda x, y: torch.cat([x, y], 1) if isinstance(x, torch.Tensor) else dtorch.cat([x, y], 1), None,
             [(2, 3), (2, 4)])
    mixed = dtorch.cat([dtorch.zeros(1, dtype=dtorch.int64), dtorch.ones(1)])  # promotion: the reference path
    assert mixed.dtype == dtorch.float32


# ---- reductions --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axes, keepdim", [((0, 1, 2), False), ((1,), True), ((0, 2), False)])
def test_mean_as_sum_over_count_equals_numpy_mean(dtype, axes, keepdim):
    x = _rand(5, 6, 7, dtype=dtype)
    out = R.Mean(axes=axes, keepdim=keepdim).forward(x)
    np.testing.assert_array_equal(out, np.mean(x, axis=axes, keepdims=keepdim))
    assert np.asarray(out).dtype == dtype


def test_mean_float16_keeps_the_reference_path():
    x = _rand(300, dtype=np.float16)
    out = R.Mean(axes=(0,), keepdim=False).forward(x)
    np.testing.assert_array_equal(out, np.mean(x, axis=(0,)))


def test_max_dim_values_equal_the_values_at_the_indices():
    x = _rand(5, 6)
    x[2, 3] = np.nan
    x[4, :] = 1.5  # ties: the first index, as PyTorch
    for mode in ("max", "min"):
        for keepdim in (False, True):
            values, indices = R.MaxMinDim(axis=1, keepdim=keepdim, mode=mode).forward(x)
            pick = np.argmax(x, axis=1) if mode == "max" else np.argmin(x, axis=1)
            reference = np.take_along_axis(x, np.expand_dims(pick, 1), 1)
            if not keepdim:
                reference = reference[:, 0]
            np.testing.assert_array_equal(values, reference)
            np.testing.assert_array_equal(indices.reshape(-1), pick)
            assert indices.dtype == np.int64
    check_op(lambda x: x.max(dim=1), None, [(4, 5)])
    check_op(lambda x: x.min(dim=0, keepdim=True), None, [(4, 5)])
    # signed zeros: the value is the element at the index, as in PyTorch (NumPy's max alone may flip the sign)
    for row in ([-0.0, 0.0], [0.0, -0.0], [-0.0, -0.0, 1.0]):
        for mode in ("max", "min"):
            for keepdim in (False, True):
                ours = getattr(dtorch.tensor([row]), mode)(dim=1, keepdim=keepdim)
                theirs = getattr(torch.tensor([row]), mode)(dim=1, keepdim=keepdim)
                assert np.signbit(ours.values.numpy()).tolist() == np.signbit(theirs.values.numpy()).tolist()
                assert ours.indices.tolist() == theirs.indices.tolist()


def test_max_of_every_axis_shares_the_gradient_among_ties():
    x = dtorch.tensor([1.0, 3.0, 3.0, 2.0], requires_grad=True)
    t = torch.tensor([1.0, 3.0, 3.0, 2.0], requires_grad=True)
    x.max().backward()
    t.max().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())
    check_op(lambda x: x.amax((0, 1)), None, [(3, 4)])
    check_op(lambda x: x.max(), None, [(3, 4)])
    check_op(lambda x: x.min(), None, [(3, 4)])


def test_argmax_keepdim_shapes():
    check_op(lambda x: x.argmax(), None, [(3, 4)])
    check_op(lambda x: x.argmax(keepdim=True), None, [(3, 4)])
    check_op(lambda x: x.argmin(1, keepdim=True), None, [(3, 4)])


def test_sum_last_small_and_large_agree():
    for shape in ((8, 8), (300, 40)):
        a = _rand(*shape)
        np.testing.assert_allclose(sum_last(np, a), a.sum(axis=-1, keepdims=True), rtol=1e-5, atol=1e-5)


# ---- binary and in-place arithmetic -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div"])
def test_inplace_fast_path_equals_reference(name):
    a, b = _rand(4, 5), _rand(5, seed=1) + 3.0
    fast = dtorch.tensor(a)
    version = fast._version
    getattr(fast, name + "_")(dtorch.tensor(b))
    assert fast._version == version + 1
    reference = dtorch.tensor(a)
    with dtorch.no_grad():  # through the general path: an out-of-place result copied in
        F._inplace_from(reference, getattr(F, name)(reference, dtorch.tensor(b)))
    np.testing.assert_array_equal(fast.numpy(), reference.numpy())
    scalar = dtorch.tensor(a)
    getattr(scalar, name + "_")(2.5)
    expected = getattr(torch.tensor(a), name + "_")(2.5)
    np.testing.assert_allclose(scalar.numpy(), expected.numpy(), rtol=1e-6)


def test_inplace_fast_path_leaves_the_errors_to_the_reference_path():
    small = dtorch.zeros(3)
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        small.add_(dtorch.ones(2, 3))
    assert small._version == 0
    leaf = dtorch.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        leaf.mul_(2.0)
    integer = dtorch.zeros(3, dtype=dtorch.int64)
    with pytest.raises(RuntimeError, match="can't be cast"):
        integer.add_(1.5)
    with dtorch.no_grad():
        leaf.add_(dtorch.ones(3))
    np.testing.assert_array_equal(leaf.detach().numpy(), np.ones(3, np.float32))


def test_inplace_on_a_view_is_seen_by_the_base():
    base = dtorch.zeros(2, 3)
    row = base[1]
    row += dtorch.ones(3)
    np.testing.assert_array_equal(base.numpy(), [[0, 0, 0], [1, 1, 1]])
    assert base._version == 1


def test_binary_fast_paths_equal_promotion_paths():
    check_op(lambda x, y: x * y, None, [(3, 4), (4,)])
    check_op(lambda x, y: x - y, None, [(3, 1), (4,)])
    check_op(lambda x, y: x / y, None, [(3, 4), (3, 4)], low=0.5, high=2.0)
    for op in ("mul", "sub", "div", "gt", "eq"):
        a = dtorch.tensor([[1.0, 2.0]], dtype=dtorch.float64)
        b = dtorch.tensor([3.0, 4.0])  # float32: the promotion path
        ta, tb = torch.tensor([[1.0, 2.0]], dtype=torch.float64), torch.tensor([3.0, 4.0])
        ours, theirs = getattr(dtorch, op)(a, b), getattr(torch, op)(ta, tb)
        assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    with pytest.raises(RuntimeError, match="size of tensor a \\(3\\) must match the size of tensor b \\(2\\)"):
        dtorch.zeros(3) * dtorch.zeros(2)
    with pytest.raises(RuntimeError, match="size of tensor a \\(3\\)"):
        dtorch.zeros(3) > dtorch.zeros(2)


# ---- losses -------------------------------------------------------------------------------------------------------


def test_cross_entropy_fast_paths():
    logits = _rand(6, 5)
    target = np.array([0, 4, 2, -100, 1, 3])
    for kwargs in ({}, {"ignore_index": -100}, {"reduction": "sum"}, {"label_smoothing": 0.1}):
        x, t = dtorch.tensor(logits, requires_grad=True), torch.tensor(logits, requires_grad=True)
        safe = np.where(target < 0, 0, target)
        ours = dtorch.nn.functional.cross_entropy(x, dtorch.tensor(safe if not kwargs else target), **kwargs)
        theirs = torch.nn.functional.cross_entropy(t, torch.tensor(safe if not kwargs else target), **kwargs)
        np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-5)
        ours.backward()
        theirs.backward()
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-6)
    every_ignored = dtorch.nn.functional.cross_entropy(dtorch.tensor(logits), dtorch.full((6,), -100))
    assert np.isnan(every_ignored.item())
    with pytest.raises(IndexError, match="Target 5 is out of bounds"):
        dtorch.nn.functional.cross_entropy(dtorch.tensor(logits), dtorch.tensor([0, 5, 0, 0, 0, 0]))
    with pytest.raises(IndexError, match="Target -1 is out of bounds"):
        dtorch.nn.functional.cross_entropy(dtorch.tensor(logits), dtorch.tensor([0, -1, 0, 0, 0, 0]))
    check_op(lambda x: torch.nn.functional.cross_entropy(x, torch.tensor([[1, 0], [2, 1]]))
             if isinstance(x, torch.Tensor) else
             dtorch.nn.functional.cross_entropy(x, dtorch.tensor([[1, 0], [2, 1]])), None, [(2, 3, 2)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape, dtype", [((7, 5), np.float32), ((3, 4, 2), np.float32), ((5,), np.float64),
                                          ((6, 3), np.float64), ((300, 200), np.float32), ((3, 200, 70), np.float64)])
def test_cross_entropy_dense_path_equals_weighted_path(reduction, shape, dtype):
    """Every label a class and no weight: the dense path (no mask, no row weights) gives the general path's
    numbers bit for bit (weights of ones take the general path) and PyTorch's within rounding."""
    logits = _rand(*shape, seed=3, dtype=dtype)
    c = shape[0] if len(shape) == 1 else shape[1]
    labels = np.random.default_rng(4).integers(0, c, size=shape[:1] + shape[2:] if len(shape) > 1 else ())
    results = []
    for weight in (None, dtorch.ones(c, dtype=dtorch.float32 if dtype == np.float32 else dtorch.float64)):
        x = dtorch.tensor(logits, requires_grad=True)
        loss = dtorch.nn.functional.cross_entropy(x, dtorch.tensor(labels), weight=weight, reduction=reduction)
        assert loss.grad_fn.dense is (weight is None)
        loss.backward(dtorch.ones_like(loss))
        results.append((loss.detach().numpy(), x.grad.numpy()))
    (loss, grad), (weighted_loss, weighted_grad) = results
    assert loss.dtype == weighted_loss.dtype == dtype and grad.dtype == dtype
    np.testing.assert_array_equal(loss, weighted_loss)
    np.testing.assert_array_equal(grad, weighted_grad)
    t = torch.tensor(logits, requires_grad=True)
    theirs = torch.nn.functional.cross_entropy(t, torch.tensor(labels), reduction=reduction)
    theirs.backward(torch.ones_like(theirs))
    np.testing.assert_allclose(loss, theirs.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_cross_entropy_label_check_one_reduction():
    """The single unsigned-max check: uint8 labels, an ignore_index inside the classes, labels equal to it, and
    out-of-range labels on either side (with or without ignored rows) behave as before, errors included."""
    logits = dtorch.tensor(_rand(4, 3))
    for labels, kwargs in (([0, 2, 1, 1], {}), ([0, 2, 1, 1], {"ignore_index": 1}), ([0, -100, 2, 1], {}),
                           ([255, 2, 1, 0], {"ignore_index": 255})):
        dtype = torch.uint8 if labels[0] == 255 else torch.int64
        ours = dtorch.nn.functional.cross_entropy(logits, dtorch.tensor(labels, dtype=getattr(dtorch, str(dtype)[6:])),
                                                  **kwargs)
        theirs = torch.nn.functional.cross_entropy(torch.tensor(logits.numpy()), torch.tensor(labels, dtype=dtype),
                                                   **kwargs)
        np.testing.assert_allclose(ours.item(), theirs.item(), rtol=1e-6)
    for labels, bad in (([0, 3, 1, 1], 3), ([0, -2, 1, -100], -2), ([-100, 7, 1, -100], 7)):
        with pytest.raises(IndexError, match=f"Target {bad} is out of bounds"):
            dtorch.nn.functional.cross_entropy(logits, dtorch.tensor(labels))
        with pytest.raises(IndexError, match=f"Target {bad} is out of bounds"):
            dtorch.nn.functional.nll_loss(logits, dtorch.tensor(labels))


def test_log_softmax_divides_in_backward_once():
    """LogSoftmax keeps exponentials and sums, and its first backward divides them into the softmax in place: a
    retained graph's second backward, and a create_graph one after it, see the same softmax (PyTorch's grads)."""
    data, upstream = _rand(5, 7, seed=8), _rand(5, 7, seed=9)
    x, t = dtorch.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    out, theirs = dtorch.log_softmax(x, 1), torch.log_softmax(t, 1)
    np.testing.assert_allclose(out.detach().numpy(), theirs.detach().numpy(), rtol=1e-6, atol=1e-6)
    (expected,) = torch.autograd.grad(theirs, t, torch.tensor(upstream), create_graph=True)
    first = dtorch.autograd.grad(out, x, dtorch.tensor(upstream), retain_graph=True)[0].numpy()
    second = dtorch.autograd.grad(out, x, dtorch.tensor(upstream), retain_graph=True)[0].numpy()
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    (graph_grad,) = dtorch.autograd.grad(out, x, dtorch.tensor(upstream), create_graph=True)
    np.testing.assert_allclose(graph_grad.detach().numpy(), first, rtol=1e-6, atol=1e-7)
    (second_order,) = dtorch.autograd.grad((graph_grad * graph_grad).sum(), x)
    (expected_second,) = torch.autograd.grad((expected * expected).sum(), t)
    np.testing.assert_allclose(second_order.numpy(), expected_second.numpy(), rtol=1e-4, atol=1e-6)


# ---- erf and GELU in pieces ------------------------------------------------------------------------------------------


def test_erf_in_pieces_equals_the_fit_bit_for_bit():
    from dtorch.ops._util import CHUNK, _erf_fit, erf_chunked

    x = _rand(3 * CHUNK + 17) * 3
    x[:4] = [0.0, np.inf, -np.inf, 10.0]
    np.testing.assert_array_equal(erf_chunked(x), _erf_fit(np, x))
    big = dtorch.tensor(x)
    np.testing.assert_allclose(dtorch.erf(big).numpy(), torch.erf(torch.tensor(x)).numpy(), atol=1e-6)
    assert np.isnan(erf_chunked(np.array([np.nan], np.float32)))[0]


@pytest.mark.parametrize("shape", [(), (0,), (64,), (5000,), (5, 40000)])
def test_gelu_pieces_equal_the_reference_formula(shape):
    from dtorch.ops import elementwise as E

    x = np.asarray(_rand(*shape) * 3)  # (a 0-d draw comes back as a NumPy scalar)
    if x.size >= 64:  # the edges: zeros of both signs, infinities, NaN, far tails
        x.reshape(-1)[:9] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -1e30, 9.0, -9.0]
    fast = E.Gelu(approximate="none")
    out = fast.forward(x)
    assert fast.derivative is not None
    # the pieces use PyTorch's float32 erf (A&S 7.1.26, absolute error 1.5e-7), the reference formula the
    # erfc fit of _util and the float64 formula is exact: all three agree to a few float32 units
    reference_out = 0.5 * x * (1 + E._erf(np, x * (1 / np.sqrt(2))))
    np.testing.assert_allclose(out, reference_out, rtol=2e-6, atol=6e-7)
    exact = torch.nn.functional.gelu(torch.tensor(x.astype(np.float64))).numpy()
    np.testing.assert_allclose(out, exact, rtol=2e-6, atol=6e-7)
    np.testing.assert_allclose(out, torch.nn.functional.gelu(torch.tensor(x)).numpy(), rtol=2e-6, atol=6e-7)
    with np.errstate(invalid="ignore"):
        slope = torch.tensor(x.astype(np.float64), requires_grad=True)
        torch.nn.functional.gelu(slope).backward(torch.ones_like(slope))
        np.testing.assert_allclose(fast.derivative, slope.grad.numpy(), rtol=2e-6, atol=6e-7)
    # a strided input takes the same pieces
    strided = np.asarray(_rand(*shape, 2) * 3)[..., 0]
    np.testing.assert_array_equal(E.Gelu(approximate="none").forward(strided),
                                  E.Gelu(approximate="none").forward(strided.copy()))
    if not x.size:
        return
    upstream = _rand(*shape, seed=4)
    ours = dtorch.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    dtorch.nn.functional.gelu(ours).backward(dtorch.tensor(upstream))
    torch.nn.functional.gelu(theirs).backward(torch.tensor(upstream))
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-5, atol=1e-6)
    # a retained graph's second backward takes the reference formula: the same gradient
    again = dtorch.tensor(x, requires_grad=True)
    y = dtorch.nn.functional.gelu(again)
    y.backward(dtorch.tensor(upstream), retain_graph=True)
    first = again.grad.clone()
    again.grad = None
    y.backward(dtorch.tensor(upstream))
    np.testing.assert_allclose(again.grad.numpy(), first.numpy(), rtol=1e-5, atol=1e-6)
    with dtorch.no_grad():
        assert dtorch.nn.functional.gelu(dtorch.tensor(x)).grad_fn is None
    check_op(lambda x: torch.nn.functional.gelu(x) if isinstance(x, torch.Tensor) else
             dtorch.nn.functional.gelu(x), None, [(4, 5)])
    check_op(lambda x: torch.nn.functional.gelu(x, approximate="tanh") if isinstance(x, torch.Tensor) else
             dtorch.nn.functional.gelu(x, approximate="tanh"), None, [(4, 5)])


def test_gelu_pieces_track_pytorch_on_a_dense_grid():
    """The float32 pieces (A&S erf like PyTorch's, in a scaled variable, the sign or-ed into the bits) against
    PyTorch's float32 GELU and its backward, every 5e-5 over [-10, 10] (three pieces and a short one) and at tiny,
    denormal and zero inputs of both signs: the output within 8 float32 units of |x| (both round Φ near 0.5
    differently), the derivative within 4 units of 1, and neither further from the exact (float64) values than
    PyTorch's own float32 results are, plus 2 units."""
    from dtorch.ops import elementwise as E

    tiny = np.array([1e-45, 1e-40, 1.1754942e-38, 1e-30, 1e-20, 1e-10, 1e-5], np.float32)
    x = np.concatenate([np.linspace(-10, 10, 400_001, dtype=np.float32), tiny, -tiny, [0.0, -0.0]])
    x = x.astype(np.float32)
    node = E.Gelu(approximate="none")
    out = node.forward(x).astype(np.float64)
    derivative = node.derivative.astype(np.float64)
    theirs = torch.tensor(x, requires_grad=True)
    their_out = torch.nn.functional.gelu(theirs)
    their_out.backward(torch.ones(x.shape))
    exact = torch.tensor(x.astype(np.float64), requires_grad=True)
    exact_out = torch.nn.functional.gelu(exact)
    exact_out.backward(torch.ones(x.shape, dtype=torch.float64))
    out_unit = np.spacing(np.abs(x)).astype(np.float64)  # (the units of a denormal x: the outputs agree exactly)
    derivative_unit = float(np.spacing(np.float32(1)))
    for ours, pytorch, reference, unit, bound in (
            (out, their_out.detach().numpy(), exact_out.detach().numpy(), out_unit, 8),
            (derivative, theirs.grad.numpy(), exact.grad.numpy(), derivative_unit, 4)):
        assert np.max(np.abs(ours - pytorch) / unit) <= bound
        assert np.max(np.abs(ours - reference) / unit) <= np.max(np.abs(pytorch - reference) / unit) + 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(64,), (3, 0), (4, 5000)])
def test_sigmoid_fast_path_equals_reference_and_pytorch(dtype, shape):
    from dtorch.ops import elementwise as E

    x = _rand(*shape, dtype=dtype) * 8
    if x.size:  # beyond exp's overflow on both sides, infinities, NaN, zero
        x.reshape(-1)[:8] = [-100.0, 100.0, -800.0, 800.0, -np.inf, np.inf, np.nan, 0.0]
    ours = dtorch.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    out = ours.sigmoid()
    expected = theirs.sigmoid()
    tiny = 1e-37 if dtype == np.float32 else 1e-300  # below that the capped exponent gives ~1e-38 (float32)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=2e-7 if dtype == np.float64
                               else 4e-7, atol=tiny)
    np.testing.assert_allclose(out.detach().numpy(), E._sigmoid(np, x), rtol=1e-6, atol=tiny)
    upstream = _rand(*shape, seed=3, dtype=dtype)
    out.backward(dtorch.tensor(upstream))
    expected.backward(torch.tensor(upstream))
    # s (1 - s): one unit of s near 1 moves the gradient by that unit, as in PyTorch's own formula
    grad_atol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-6, atol=grad_atol)
    (graph_grad,) = dtorch.autograd.grad(ours.sigmoid(), ours, dtorch.tensor(upstream), create_graph=True)
    np.testing.assert_allclose(graph_grad.detach().numpy(), theirs.grad.numpy(), rtol=1e-6, atol=grad_atol)
    assert out.dtype == ours.dtype and ours.grad.dtype == ours.dtype


# ---- row blocks: softmax and layer norm ------------------------------------------------------------------------


def _row_block_inputs(shape, dtype, seed=0):
    """Inputs for the blocked paths: rows that cross block boundaries, large and -inf entries."""
    x = _rand(*shape, seed=seed, dtype=dtype) * 4
    x.reshape(-1, shape[-1])[1, :2] = [-np.inf, 60.0]
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 70, 512), (3, 40000), (9000, 5)])
def test_softmax_row_blocks_equal_the_reference_path_and_pytorch(dtype, shape, monkeypatch):
    from dtorch.ops import nn as NN

    x = _row_block_inputs(shape, dtype)
    upstream = _rand(*shape, seed=5, dtype=dtype)
    assert x.size > NN.ROW_BLOCK  # the blocked path
    blocked = NN.Softmax(axis=x.ndim - 1)
    out = blocked.forward(x)
    grad = blocked.backward(upstream)[0]
    # the reference path: the same formulas on the whole array (its float32 row sums of 40000 terms are the
    # less accurate: a looser bound there)
    with monkeypatch.context() as patch:
        patch.setattr(NN, "ROW_BLOCK", 1 << 62)
        reference = NN.Softmax(axis=x.ndim - 1)
        reference_out = reference.forward(x)
        reference_grad = reference.backward(upstream)[0]
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    atol = 2e-6 if dtype == np.float32 else 1e-13  # g - sum(g p) cancels: a few units of the row's largest term
    np.testing.assert_allclose(out, reference_out, rtol=rtol, atol=atol)
    np.testing.assert_allclose(grad, reference_grad, rtol=rtol, atol=atol * 10)
    ours = dtorch.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    result = dtorch.softmax(ours, -1)
    expected = torch.softmax(theirs, -1)
    result.backward(dtorch.tensor(upstream))
    expected.backward(torch.tensor(upstream))
    assert result.dtype == ours.dtype and ours.grad.dtype == ours.dtype
    np.testing.assert_allclose(result.detach().numpy(), expected.detach().numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=rtol, atol=atol)
    # a create_graph backward differentiates the same formula
    (graph_grad,) = dtorch.autograd.grad(dtorch.softmax(ours, -1), ours, dtorch.tensor(upstream), create_graph=True)
    np.testing.assert_allclose(graph_grad.detach().numpy(), theirs.grad.numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("first", [0, 100])
def test_softmax_rows_redo_the_blocks_outside_the_safe_range(dtype, first):
    """The blocked softmax exponentiates without subtracting the maximum, redoes with it a block whose sums fall
    outside ``[1, 1/tiny]`` and subtracts it in every later block: overflowing, underflowing, ``+-inf`` and NaN
    rows give PyTorch's numbers, in the first block or after plain ones (``first``), and finite inputs raise no
    floating-point warning."""
    from dtorch.ops import nn as NN

    big = 100.0 if dtype == np.float32 else 800.0  # exp overflows
    x = _rand(300, 512, dtype=dtype) * 3
    assert x.size > NN.ROW_BLOCK and (first == 0 or first >= NN.ROW_BLOCK // 512)  # (100: after a plain block)
    special = x[first:]
    special[0] += big
    special[1] -= 1.5 * big  # every exponential underflows: a sum of 0
    special[2] = -np.inf
    special[2, 3] = 1.0  # -inf entries beside a finite one
    special[3] = -np.inf  # all -inf: NaN, as in PyTorch
    special[4, 7] = np.nan
    special[5, 9] = np.inf
    special[6] = np.log(np.finfo(dtype).max) - 0.5 + special[6] * 0.01  # each term finite, their sum overflows
    special[7, :] = -1.5 * big
    special[7, 11] = 30.0  # one large term: the others underflow either way
    special[8] = np.log(np.finfo(dtype).tiny) + 3 + special[8] * 0.01  # a sum below 1
    special[9] = -1.0 / 3.0  # equal entries
    upstream = _rand(300, 512, seed=5, dtype=dtype)
    ours = dtorch.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no floating-point warning: PyTorch gives none)
        result = dtorch.softmax(ours, -1)
        result.backward(dtorch.tensor(upstream))
    expected = torch.softmax(theirs, -1)
    expected.backward(torch.tensor(upstream))
    tiny = np.finfo(dtype).tiny
    rtol = 2e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(result.detach().numpy(), expected.detach().numpy(), rtol=rtol, atol=tiny)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=rtol * 10, atol=rtol)
    assert np.isnan(result.detach().numpy()[[first + 3, first + 4, first + 5]]).all()
    finite = np.delete(x, [first + 2, first + 3, first + 4, first + 5], axis=0)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        np.testing.assert_allclose(NN._softmax_rows(finite), torch.softmax(torch.tensor(finite), -1).numpy(),
                                   rtol=rtol, atol=tiny)


def test_softmax_row_dots_without_vecdot_equal_vecdot(monkeypatch):
    """NumPy before 2.0 has no ``vecdot``: the backward's row sums come from einsum, with the same numbers."""
    from dtorch.ops import nn as NN

    a, b = _rand(70, 512), _rand(70, 512, seed=1)
    with_vecdot = NN._row_dots(a, b)
    monkeypatch.setattr(NN, "_vecdot", None)
    # (float32 sums of 512 terms of size ~1: a few units of 1e-5 apart)
    np.testing.assert_allclose(NN._row_dots(a, b), with_vecdot, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(NN._row_dots(a, b), (a.astype(np.float64) * b).sum(1), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(300, 200), (3, 200, 70)])
def test_cross_entropy_row_blocks_equal_the_reference_path_and_pytorch(dtype, shape, monkeypatch):
    """Large NumPy logits go block by block (``_shifted_exp_rows``); the dense case keeps no log-probability array,
    and its create_graph backward rebuilds one from the exponentials (an underflowing one becomes -inf there)."""
    from dtorch.ops import loss as L

    logits = _rand(*shape, dtype=dtype) * 3
    logits[0, 5] = -200.0  # its exponential underflows to 0
    logits[1, 7] = 80.0
    c = shape[1]
    labels = np.random.default_rng(4).integers(0, c, size=shape[:1] + shape[2:])
    assert logits.size > L.ROW_BLOCK

    def run(reference=False):
        with monkeypatch.context() as patch:
            if reference:
                patch.setattr(L, "ROW_BLOCK", 1 << 62)
            x = dtorch.tensor(logits * 2, requires_grad=True)
            # (logits from an op, not a leaf: the graph backward then reads the kept arrays, not the leaf)
            loss = dtorch.nn.functional.cross_entropy(x * 0.5, dtorch.tensor(labels))
            assert loss.grad_fn.dense and (loss.grad_fn.logp is None) is not reference
            (grad,) = dtorch.autograd.grad(loss, x, create_graph=True)
            (second,) = dtorch.autograd.grad((grad * grad).sum(), x)
        return loss.detach().numpy(), grad.detach().numpy(), second.numpy()

    t = torch.tensor(logits * 2, requires_grad=True)
    expected_loss = torch.nn.functional.cross_entropy(t * 0.5, torch.tensor(labels))
    (expected_grad,) = torch.autograd.grad(expected_loss, t, create_graph=True)
    (expected_second,) = torch.autograd.grad((expected_grad * expected_grad).sum(), t)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    blocked, reference = run(), run(reference=True)
    for mine, ref, their in zip(blocked, reference, (expected_loss, expected_grad, expected_second)):
        assert mine.dtype == dtype
        scale = float(np.abs(ref).max())
        np.testing.assert_allclose(mine, ref, rtol=rtol, atol=rtol * scale)
        np.testing.assert_allclose(mine, their.detach().numpy(), rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, normalized", [((2, 70, 512), (512,)), ((3, 40000), (40000,)),
                                               ((9, 6, 30, 40), (30, 40))])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_row_blocks_equal_the_reference_path_and_pytorch(dtype, shape, normalized, affine, monkeypatch):
    from dtorch.ops import norm as N

    x = _rand(*shape, dtype=dtype) * 3 + 1
    upstream = _rand(*shape, seed=5, dtype=dtype)
    weight = _rand(*normalized, seed=6, dtype=dtype) if affine else None
    bias = _rand(*normalized, seed=7, dtype=dtype) if affine else None
    assert x.size > N.ROW_BLOCK
    rtol = 2e-5 if dtype == np.float32 else 1e-12
    ours = dtorch.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    ours_params = [dtorch.tensor(p, requires_grad=True) if p is not None else None for p in (weight, bias)]
    their_params = [torch.tensor(p, requires_grad=True) if p is not None else None for p in (weight, bias)]
    result = dtorch.nn.functional.layer_norm(ours, normalized, *ours_params)
    expected = torch.nn.functional.layer_norm(theirs, normalized, *their_params)
    result.backward(dtorch.tensor(upstream))
    expected.backward(torch.tensor(upstream))
    np.testing.assert_allclose(result.detach().numpy(), expected.detach().numpy(), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=rtol, atol=rtol)
    for mine, their in zip(ours_params, their_params):
        if mine is not None:
            np.testing.assert_allclose(mine.grad.numpy(), their.grad.numpy(), rtol=rtol, atol=rtol * 10)
    # the reference path gives the same numbers within rounding
    with monkeypatch.context() as patch:
        patch.setattr(N, "ROW_BLOCK", 1 << 62)
        again = dtorch.tensor(x, requires_grad=True)
        reference = dtorch.nn.functional.layer_norm(again, normalized, *[p.detach() if p is not None else None
                                                                         for p in ours_params])
        reference.backward(dtorch.tensor(upstream))
    np.testing.assert_allclose(reference.detach().numpy(), result.detach().numpy(), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(again.grad.numpy(), ours.grad.numpy(), rtol=rtol, atol=rtol)
    if affine:  # only the weight's gradient asked for
        (only_weight,) = dtorch.autograd.grad(
            dtorch.nn.functional.layer_norm(ours.detach(), normalized, ours_params[0]), [ours_params[0]],
            dtorch.tensor(upstream))
        np.testing.assert_allclose(only_weight.numpy(), their_params[0].grad.numpy(), rtol=rtol, atol=rtol * 10)
    # create_graph: the graph backward gives the same first derivative
    (graph_grad,) = dtorch.autograd.grad(dtorch.nn.functional.layer_norm(ours, normalized, *ours_params), ours,
                                         dtorch.tensor(upstream), create_graph=True)
    np.testing.assert_allclose(graph_grad.detach().numpy(), theirs.grad.numpy(), rtol=rtol * 10, atol=rtol * 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(32, 8, 6, 6), (9, 4), (3, 5, 7), (2, 3, 2, 3, 4)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_channel_sums_equal_the_reference_path_and_pytorch(dtype, shape, affine, monkeypatch):
    from dtorch.ops import norm as N

    c = shape[1]
    x = _rand(*shape, dtype=dtype) * 3 + 2
    upstream = _rand(*shape, seed=5, dtype=dtype)
    weight = _rand(c, seed=6, dtype=dtype) if affine else None
    bias = _rand(c, seed=7, dtype=dtype) if affine else None
    rtol = 2e-5 if dtype == np.float32 else 1e-12

    def run(lib, reference=False):
        tensor = dtorch.tensor if lib is dtorch else torch.tensor
        inputs = [tensor(x, requires_grad=True)] + [tensor(p, requires_grad=True) if p is not None else None
                                                    for p in (weight, bias)]
        running = [tensor(np.zeros(c, dtype)), tensor(np.ones(c, dtype))]
        with monkeypatch.context() as patch:
            if reference:
                patch.setattr(N, "_channel_sums_apply", lambda x: False)
            out = lib.nn.functional.batch_norm(inputs[0], *running, *inputs[1:], training=True)
            out.backward(tensor(upstream))
            (graph_grad,) = (lib.autograd.grad(lib.nn.functional.batch_norm(inputs[0], None, None, *inputs[1:],
                                                                              training=True),
                                               inputs[0], tensor(upstream), create_graph=True))
        grads = [t.grad.detach().numpy() for t in inputs if t is not None]
        return [out.detach().numpy(), *[r.numpy() for r in running], graph_grad.detach().numpy(), *grads]

    ours, reference, theirs = run(dtorch), run(dtorch, reference=True), run(torch)
    for mine, ref, their in zip(ours, reference, theirs):
        assert mine.dtype == dtype
        scale = max(1.0, float(np.abs(their).max()))
        np.testing.assert_allclose(mine, their, rtol=rtol, atol=rtol * scale)
        np.testing.assert_allclose(mine, ref, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", [{}, {"reduction": "none"}, {"reduction": "sum"}, {"label_smoothing": 0.2},
                                     {"ignore_index": 3}, {"weight": True}, {"probabilities": True}])
def test_cross_entropy_softmax_from_kept_exponentials_matches_pytorch(dtype, options):
    """Backward reads the softmax as the forward's ``exps / total`` (no second exp): every branch against
    PyTorch, on logits with -inf and a large value, and a retained graph's second backward alike."""
    options = dict(options)
    rows, classes = 300, 200
    logits = _rand(rows, classes, dtype=dtype) * 3
    logits[0, 5] = -np.inf
    logits[1, 7] = 80.0
    labels = np.random.default_rng(2).integers(0, classes, rows)
    labels[0] = 4
    if options.pop("probabilities", False):
        target = np.random.default_rng(3).dirichlet(np.ones(classes), rows).astype(dtype)
        logits[0, 5] = -30.0  # (0 * -inf is NaN in PyTorch's loss too)
    else:
        target = labels
    weight = options.pop("weight", None)
    weight = np.random.default_rng(4).random(classes).astype(dtype) + 0.5 if weight else None
    ours = dtorch.tensor(logits, requires_grad=True)
    theirs = torch.tensor(logits, requires_grad=True)
    loss = dtorch.nn.functional.cross_entropy(ours, dtorch.tensor(target), None if weight is None else
                                              dtorch.tensor(weight), **options)
    expected = torch.nn.functional.cross_entropy(theirs, torch.tensor(target), None if weight is None else
                                                 torch.tensor(weight), **options)
    upstream = _rand(*expected.shape, seed=9, dtype=dtype)
    loss.backward(dtorch.tensor(upstream), retain_graph=True)
    expected.backward(torch.tensor(upstream))
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    atol = 1e-7 if dtype == np.float32 else 1e-15
    np.testing.assert_allclose(loss.detach().numpy(), expected.detach().numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=rtol, atol=atol)
    first = ours.grad.clone()
    ours.grad = None
    loss.backward(dtorch.tensor(upstream))
    np.testing.assert_array_equal(ours.grad.numpy(), first.numpy())


@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "softmax", "log_softmax", "softmax_0d", "cross_entropy",
                                  "cross_entropy_weighted", "cross_entropy_probabilities", "cross_entropy_weight_grad"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("grad_mode", [True, False])
def test_activation_and_loss_no_grad_shortcuts_equal_apply(name, dtype, grad_mode, monkeypatch):
    """gelu, softmax/log_softmax and cross_entropy run the op's forward without apply when nothing is recorded:
    the same numbers as apply (forced by a capture hook), with and without requires_grad and grad mode."""
    F_ = dtorch.nn.functional
    x = _rand(6, 7, dtype=dtype) * 3
    labels = dtorch.tensor(np.random.default_rng(1).integers(0, 7, 6))
    probabilities = dtorch.tensor(np.random.default_rng(2).dirichlet(np.ones(7), 6).astype(dtype))
    weight_array = np.random.default_rng(3).random(7).astype(dtype) + 0.5
    calls = {
        "gelu": lambda t: F_.gelu(t),
        "gelu_tanh": lambda t: F_.gelu(t, approximate="tanh"),
        "softmax": lambda t: F_.softmax(t, -1),
        "log_softmax": lambda t: F_.log_softmax(t, 0),
        "softmax_0d": lambda t: dtorch.softmax(t[0, 0], 0),
        "cross_entropy": lambda t: F_.cross_entropy(t, labels),
        "cross_entropy_weighted": lambda t: F_.cross_entropy(t, labels, dtorch.tensor(weight_array), reduction="none",
                                                             label_smoothing=0.1),
        "cross_entropy_probabilities": lambda t: F_.cross_entropy(t, probabilities, reduction="sum"),
        "cross_entropy_weight_grad": lambda t: F_.cross_entropy(t, labels,
                                                                dtorch.tensor(weight_array, requires_grad=True)),
    }
    for requires_grad in (False, True):
        source = dtorch.tensor(x, requires_grad=requires_grad)
        with dtorch.set_grad_enabled(grad_mode):
            fast, reference = _run_both_paths(monkeypatch, lambda: calls[name](source))
        assert fast.dtype == reference.dtype and fast.shape == reference.shape
        np.testing.assert_array_equal(fast.detach().numpy(), reference.detach().numpy())
        recorded = grad_mode and (requires_grad or name == "cross_entropy_weight_grad")
        assert (fast.grad_fn is not None) == (reference.grad_fn is not None) == recorded
    if name == "gelu":  # a forward that records nothing keeps no derivative
        from dtorch.ops import elementwise as E

        node = E.Gelu(approximate="none", keeps_derivative=False)
        node.forward(x.astype(np.float32))
        assert node.derivative is None


# ---- embedding ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("indices", [
    np.array([3, 1, 3, 0, 3, 1, 7]),  # repeats: levels
    np.array([4, 2, 0]),  # no repeats: one write
    np.array([5] * 40 + [1]),  # more repeats than levels: add.at
    np.array([], dtype=np.int64),
    np.array([8, 2, 8, 2, 8, 0, 5, 5]),  # several repeated indices, the last occurrence not the first's order
])
def test_scatter_add_rows_equals_add_at_bit_for_bit(indices):
    from dtorch.ops.nn import scatter_add_rows

    rows = _rand(indices.size, 6, seed=5)
    reference = _rand(9, 6, seed=6)
    fast = reference.copy()
    np.add.at(reference, indices, rows)
    scatter_add_rows(np, fast, indices, rows)
    np.testing.assert_array_equal(fast, reference)
    # into a fresh zero array (Embedding's gradient): rows written where they stand, repeats redone in order
    from_zero = np.zeros((9, 6))
    np.add.at(from_zero, indices, rows)
    fresh = scatter_add_rows(np, np.zeros((9, 6)), indices, rows, target_is_zero=True)
    np.testing.assert_array_equal(fresh, from_zero)


def test_embedding_gradient_with_repeats_and_padding():
    ids = np.array([[1, 4, 1], [0, 4, 4]])
    for padding_idx in (None, 4):
        check_op(lambda w: torch.nn.functional.embedding(torch.tensor(ids), w, padding_idx=padding_idx)
                 if isinstance(w, torch.Tensor) else
                 dtorch.nn.functional.embedding(dtorch.tensor(ids), w, padding_idx=padding_idx), None, [(6, 3)])


# ---- convolution: the input gradient as a convolution (all the convolutions' paths: tests/ops/test_conv_paths.py) ----


def test_conv_gradients_through_both_input_paths_match_pytorch():
    for c, o in ((4, 4), (2, 5)):  # O <= C: the convolution path; O > C: the reference path
        check_op(lambda x, w: torch.nn.functional.conv2d(x, w, padding=1) if isinstance(x, torch.Tensor) else
                 dtorch.nn.functional.conv2d(x, w, padding=1), None, [(2, c, 6, 7), (o, c, 3, 3)])
    check_op(lambda x, w: torch.nn.functional.conv2d(x, w, padding="same") if isinstance(x, torch.Tensor) else
             dtorch.nn.functional.conv2d(x, w, padding="same"), None, [(2, 3, 6, 7), (3, 3, 4, 2)])


def test_basic_tuple_keys_and_matrix_transposes_equal_the_general_paths():
    x = dtorch.tensor(_rand(4, 5, 6), requires_grad=True)
    for key in ((slice(None), 1), (1, 2), (slice(1, 3), slice(None, None, 2), -1), (0,), ()):
        fast = x[key]
        spec, tensors = F._index_spec(x, key)
        reference = dtorch.ops.indexing.Index.apply(x, *tensors, spec=spec)
        np.testing.assert_array_equal(fast.detach().numpy(), reference.detach().numpy())
        assert fast.grad_fn.name() == reference.grad_fn.name()
    m = dtorch.tensor(_rand(3, 4), requires_grad=True)
    for dims in ((0, 1), (1, 0), (-1, 0), (-2, -1), (1, -2)):
        np.testing.assert_array_equal(m.transpose(*dims).detach().numpy(), m.detach().numpy().T)
    assert m.transpose(0, 0).shape == (3, 4) and m.transpose(1, -1).shape == (3, 4)
    with pytest.raises(IndexError):
        m.transpose(0, 2)
    assert m.flatten(1, 1) is m and m.flatten(-1, 1) is m
    check_op(lambda x: x.t(), None, [(3, 4)])
    check_op(lambda x: x.transpose(-1, 0), None, [(3, 4)])
    check_op(lambda x: x.flatten(1), None, [(2, 3, 4)])
    check_op(lambda x: x[:, 1], None, [(3, 4)])
    check_op(lambda x: x[1:, ::2, 0], None, [(3, 4, 2)])


def test_wrap_array_equals_from_array():
    from dtorch.tensor import Tensor, wrap_array

    array = _rand(3)
    for grad_fn in (None, object()):
        fast, reference = wrap_array(array, grad_fn), Tensor._from_array(array, grad_fn)
        assert type(fast) is type(reference) is Tensor
        for slot in ("_array", "grad_fn", "requires_grad", "grad", "_vc", "_base", "_hooks", "_post_hooks"):
            assert getattr(fast, slot) is getattr(reference, slot) or getattr(fast, slot) == getattr(reference, slot)


def test_squeeze_one_dim_and_permute_fast_paths():
    x = dtorch.tensor(_rand(3, 1, 4, 1), requires_grad=True)
    for dim in (1, -1, 0, 2, 3, -4):
        fast = x.squeeze(dim)
        reference = x.squeeze((dim,))  # the general path (a tuple of dims)
        assert fast.shape == reference.shape and fast.grad_fn.name() == "SqueezeBackward1"
    assert dtorch.tensor(2.0).squeeze(0).shape == ()
    for dims in ((2, 0, 1, 3), (0, 1, 2, 3), (-1, 0, 1, 2), (3, 2, -3, 0)):
        np.testing.assert_array_equal(x.permute(*dims).detach().numpy(),
                                      np.transpose(x.detach().numpy(), [d % 4 for d in dims]))
    with pytest.raises(RuntimeError, match="duplicate dims"):
        x.permute(0, 0, 1, 2)
    with pytest.raises(IndexError):
        x.permute(0, 1, 2, 4)
    with pytest.raises(IndexError):
        x.squeeze(4)
    check_op(lambda x: x.squeeze(1), None, [(3, 1, 2)])
    check_op(lambda x: x.squeeze(0), None, [(3, 1, 2)])
    check_op(lambda x: x.permute(2, 0, 1), None, [(3, 1, 2)])


def test_stack_equals_numpy_stack():
    from dtorch.ops.shape import Stack

    arrays = [_rand(3, 4, seed=k) for k in range(3)]
    for axis in (0, 1, 2):
        node = Stack(axis=axis)
        node.xp = np
        np.testing.assert_array_equal(node.forward(*arrays), np.stack(arrays, axis=axis))
    scalars = [np.array(1.0, np.float32), np.array(2.0, np.float32)]
    node = Stack(axis=0)
    node.xp = np
    np.testing.assert_array_equal(node.forward(*scalars), np.stack(scalars))
    check_op(lambda x, y: torch.stack([x, y], 1) if isinstance(x, torch.Tensor) else dtorch.stack([x, y], 1), None,
             [(2, 3), (2, 3)])
    check_op(lambda x, y: torch.stack([x, y]) if isinstance(x, torch.Tensor) else dtorch.stack([x, y]), None,
             [(), ()])


# ---- max pooling: the winners' masks ---------------------------------------------------------------------------


def _reference_winner_masks(node):
    out = node.out
    taken = np.zeros(out.shape, dtype=bool)
    for i, j, view in node.views:
        hit = (view == out) | (view != view)
        hit &= ~taken
        taken |= hit
        yield i, j, hit


@pytest.mark.parametrize("with_nan", [False, True])
def test_max_pool_winner_masks_equal_the_reference(with_nan):
    from dtorch.ops.conv import MaxPool2d

    x = np.maximum(_rand(2, 3, 8, 9, seed=11), 0)  # many tied zeros, as after a ReLU
    x[0, 0, :2, :2] = 1.0  # a whole window tied
    if with_nan:
        x[1, 2, 3, 3] = np.nan
        x[1, 2, 4, 5] = np.nan
    for kernel, stride in (((2, 2), (2, 2)), ((3, 3), (2, 2)), ((1, 1), (1, 1))):
        node = MaxPool2d(kernel_size=kernel, stride=stride, padding=(0, 0), dilation=(1, 1), ceil_mode=False)
        node.xp = np
        node.forward(x)
        for (i, j, fast), (_, _, reference) in zip(node._winner_masks(), _reference_winner_masks(node)):
            np.testing.assert_array_equal(fast, reference)
    check_op(lambda x: torch.nn.functional.max_pool2d(torch.relu(x), 2) if isinstance(x, torch.Tensor) else
             dtorch.nn.functional.max_pool2d(dtorch.relu(x), 2), None, [(2, 3, 6, 6)])


def test_max_pool_backward_disjoint_and_overlapping_windows_match_pytorch():
    for kernel, stride, padding, dilation in ((2, 2, 0, 1), (3, 3, 1, 1), (2, 3, 0, 1), (3, 2, 1, 1), (2, 3, 0, 2),
                                              (2, 2, 0, 2)):
        check_op(lambda x: torch.nn.functional.max_pool2d(torch.relu(x), kernel, stride, padding, dilation)
                 if isinstance(x, torch.Tensor) else
                 dtorch.nn.functional.max_pool2d(dtorch.relu(x), kernel, stride, padding, dilation), None,
                 [(2, 3, 9, 8)])


# ---- no-grad shortcuts of the view, shape, indexing and join front ends (issue 12) ---------------------------------
# When nothing is recorded, the front ends compute the array themselves (``dtorch.ops.shape.outside_graph``,
# ``wrap_view``); a capture hook that records nothing makes every call take the op's ``apply``, the reference path.


def _run_both_paths(monkeypatch, call):
    """``call()`` through the shortcut and through the reference path: (result or exception) for each."""
    from dtorch.autograd import function as function_module

    def run():
        try:
            return call()
        except Exception as error:  # noqa: BLE001  (the errors are compared)
            return error

    fast = run()
    with monkeypatch.context() as patch:
        patch.setattr(function_module, "capture", lambda node, inputs, attrs, result: None)
        reference = run()
    return fast, reference


def _assert_same_tensor(fast, reference, source):
    assert type(fast) is type(reference) is dtorch.Tensor
    assert fast.shape == reference.shape and fast.dtype == reference.dtype
    np.testing.assert_array_equal(fast._array, reference._array)
    assert fast._array.strides == reference._array.strides
    assert fast._array.flags.writeable == reference._array.flags.writeable
    assert np.shares_memory(fast._array, source._array) == np.shares_memory(reference._array, source._array)
    assert _base_role(fast, source) == _base_role(reference, source)  # one version counter with the same tensor
    assert fast._version == reference._version
    assert fast.requires_grad == reference.requires_grad
    assert (fast.grad_fn is None) == (reference.grad_fn is None)
    if reference.grad_fn is not None:  # recorded: the same node, and the same gradient through it
        assert fast.grad_fn.name() == reference.grad_fn.name()
        assert fast.grad_fn.attrs == reference.grad_fn.attrs
        assert [edge is None for edge in fast.grad_fn.edges] == [edge is None for edge in reference.grad_fn.edges]
        upstream = dtorch.tensor(_rand(*fast.shape, seed=7, dtype=fast._array.dtype))
        (fast_grad,) = dtorch.autograd.grad(fast, source, upstream, retain_graph=True)
        (reference_grad,) = dtorch.autograd.grad(reference, source, upstream, retain_graph=True)
        np.testing.assert_array_equal(fast_grad.numpy(), reference_grad.numpy())


def _base_role(result, source):
    """Whose memory (and version counter) ``result`` shares: none, ``source``'s base, or a tensor made in the call."""
    if result._base is None:
        return None
    if result._base is (source._base if source._base is not None else source):
        return "the source's base"
    assert result._array.size == 0 or np.shares_memory(result._array, result._base._array)
    return "an intermediate's"


def _assert_same_outcome(fast, reference, source):
    if isinstance(reference, Exception):
        assert type(fast) is type(reference) and str(fast) == str(reference)
    elif isinstance(reference, tuple):
        assert isinstance(fast, tuple) and len(fast) == len(reference)
        for fast_piece, reference_piece in zip(fast, reference):
            _assert_same_tensor(fast_piece, reference_piece, source)
    else:
        _assert_same_tensor(fast, reference, source)


def _library(tensor):
    return torch if isinstance(tensor, torch.Tensor) else dtorch


_SHAPE_CALLS = [
    ("view(8, 8)", lambda x: x.view(8, 8)),
    ("view((8, 8))", lambda x: x.view((8, 8))),
    ("view([4, -1])", lambda x: x.view([4, -1])),
    ("view(Size)", lambda x: x.view(dtorch.Size([2, 32]))),
    ("view(-1)", lambda x: x.view(-1)),
    ("view(-1, -1)", lambda x: x.view(-1, -1)),
    ("view(7, 9)", lambda x: x.view(7, 9)),
    ("view(8, -2)", lambda x: x.view(8, -2)),
    ("view(None)", lambda x: x.view(None)),
    ("view()", lambda x: x.view()),
    ("view(int32)", lambda x: x.view(dtorch.int32)),
    ("view(same dtype)", lambda x: x.view(x.dtype)),
    ("reshape(4, 16)", lambda x: x.reshape(4, 16)),
    ("reshape((2, -1, 4))", lambda x: x.reshape((2, -1, 4))),
    ("reshape(0, -1)", lambda x: x.reshape(0, -1)),
    ("reshape(8.5, 8)", lambda x: x.reshape(8.5, 8)),
    ("t()", lambda x: x.view(8, 8).t()),
    ("transpose(0, 1)", lambda x: x.view(8, 8).transpose(0, 1)),
    ("transpose(-1, 0)", lambda x: x.view(4, 4, 4).transpose(-1, 0)),
    ("transpose(0, 3)", lambda x: x.view(8, 8).transpose(0, 3)),
    ("permute(2, 0, 1)", lambda x: x.view(4, 4, 4).permute(2, 0, 1)),
    ("permute((-1, 0, 1))", lambda x: x.view(4, 4, 4).permute((-1, 0, 1))),
    ("permute([1, 0])", lambda x: x.view(8, 8).permute([1, 0])),
    ("permute(0, 0, 1)", lambda x: x.view(4, 4, 4).permute(0, 0, 1)),
    ("permute(1, 0)", lambda x: x.view(4, 4, 4).permute(1, 0)),
    ("permute()", lambda x: x.view(8, 8).permute()),
    ("permute(None)", lambda x: x.view(8, 8).permute(None)),
    ("unsqueeze(0)", lambda x: x.unsqueeze(0)),
    ("unsqueeze(-1)", lambda x: x.view(8, 8).unsqueeze(-1)),
    ("unsqueeze(2)", lambda x: x.view(8, 8).unsqueeze(2)),
    ("unsqueeze(3)", lambda x: x.view(8, 8).unsqueeze(3)),
    ("squeeze(1)", lambda x: x.view(64, 1).squeeze(1)),
    ("squeeze(0)", lambda x: x.view(64, 1).squeeze(0)),
    ("squeeze(-1)", lambda x: x.view(64, 1).squeeze(-1)),
    ("squeeze(2)", lambda x: x.view(64, 1).squeeze(2)),
    ("flatten()", lambda x: x.view(4, 4, 4).flatten()),
    ("flatten(1)", lambda x: x.view(4, 4, 4).flatten(1)),
    ("expand(8, 8)", lambda x: x.view(8, 8)[:, :1].contiguous().expand(8, 8)),
    ("expand((-1, 8))", lambda x: x.view(8, 8)[:, :1].contiguous().expand((-1, 8))),
    ("expand(2, 8, 8)", lambda x: x.view(8, 8)[:, :1].contiguous().expand(2, 8, 8)),
    ("expand(0, 8, 1)", lambda x: x.view(8, 8)[:, :1].contiguous().expand(0, 8, 1)),
    ("expand(8, 0)", lambda x: x.view(8, 8)[:, :1].contiguous().expand(8, 0)),
    ("expand of a view", lambda x: x.view(64, 1)[8:16].expand(8, 5)),
    ("expand(-1, 8) lead", lambda x: x.view(8, 8)[:, :1].contiguous().expand(-1, 8, 8)),
    ("expand(8, 3) misfit", lambda x: x.view(8, 8).expand(8, 3)),
    ("expand(64)", lambda x: x.view(8, 8).expand(64)),
    ("expand(8.0, 8)", lambda x: x.view(8, 8)[:, :1].contiguous().expand(8.0, 8)),
    ("x[0:3]", lambda x: x[0:3]),
    ("x[::3]", lambda x: x[::3]),
    ("x[-5:]", lambda x: x[-5:]),
    ("x[2]", lambda x: x[2]),
    ("x[-1]", lambda x: x[-1]),
    ("x[64]", lambda x: x[64]),
    ("x8[2]", lambda x: x.view(8, 8)[2]),
    ("x8[:, 1]", lambda x: x.view(8, 8)[:, 1]),
    ("x8[1, 2]", lambda x: x.view(8, 8)[1, 2]),
    ("x8[1:3, ::2]", lambda x: x.view(8, 8)[1:3, ::2]),
    ("x8[:, 9]", lambda x: x.view(8, 8)[:, 9]),
    ("x8[..., 1]", lambda x: x.view(8, 8)[..., 1]),
    ("x8[None]", lambda x: x.view(8, 8)[None]),
    ("x[idx]", lambda x: x[_library(x).tensor([0, 3, -5, 7])]),
    ("x[mask]", lambda x: x[x > 0]),
    ("x8[idx]", lambda x: x.view(8, 8)[_library(x).tensor([[1, 2], [7, 0]])]),
    ("x[0-dim idx]", lambda x: x[_library(x).tensor(3)]),
    ("x[idx out of range]", lambda x: x[_library(x).tensor([64])]),
    ("x[float idx]", lambda x: x[_library(x).tensor([1.0])]),
    ("x8[bad mask]", lambda x: x.view(8, 8)[x > 0]),
    ("split(16)", lambda x: x.split(16)),
    ("split(10)", lambda x: x.split(10)),
    ("split([10, 54])", lambda x: x.split([10, 54])),
    ("split([10, 50])", lambda x: x.split([10, 50])),
    ("split(3, 1)", lambda x: x.view(8, 8).split(3, 1)),
    ("split(0)", lambda x: x.split(0)),
    ("chunk(4)", lambda x: x.chunk(4)),
    ("chunk(3, -1)", lambda x: x.view(8, 8).chunk(3, -1)),
    ("chunk(9)", lambda x: x.chunk(9)),
    ("chunk(0)", lambda x: x.chunk(0)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("source", ["contiguous", "view", "strided", "requires_grad under no_grad", "requires_grad"])
@pytest.mark.parametrize("name, call", _SHAPE_CALLS, ids=[name for name, _ in _SHAPE_CALLS])
def test_shape_and_index_shortcuts_equal_the_reference_path(monkeypatch, name, call, source, dtype):
    root = dtorch.tensor(_rand(2, 64, dtype=dtype))
    x = {"contiguous": root[0].clone(), "view": root[1], "strided": root.t().contiguous().t()[0],
         "requires_grad under no_grad": root[0].clone().requires_grad_(),
         "requires_grad": root[0].clone().requires_grad_()}[source]
    if source == "strided":  # 64 elements two apart: views of it need strides, reshapes copy
        x = dtorch.tensor(_rand(64, 2, dtype=dtype))[:, 0]
    with dtorch.no_grad() if source == "requires_grad under no_grad" else dtorch.enable_grad():
        fast, reference = _run_both_paths(monkeypatch, lambda: call(x))
    _assert_same_outcome(fast, reference, x)
    if isinstance(reference, Exception):
        return
    # and PyTorch, the oracle, agrees on the values and on what is a view (where it takes the call: it rejects some
    # sizes the reference parse reads, ``reshape(8.5, 8)``, and has no ``dtorch.int32``)
    try:
        theirs = call(torch.tensor(x.detach().numpy()))
    except (TypeError, RuntimeError, IndexError):
        return
    for ours, expected in zip(fast if isinstance(fast, tuple) else (fast,),
                              theirs if isinstance(theirs, tuple) else (theirs,)):
        np.testing.assert_array_equal(ours.detach().numpy(), expected.detach().numpy())
        if expected._base is not None and source != "strided":
            assert ours._base is not None


_JOIN_CALLS = [
    ("cat", lambda a, b: dtorch.cat([a, b])),
    ("cat dim 1", lambda a, b: dtorch.cat((a, b), 1)),
    ("cat dim -1", lambda a, b: dtorch.cat([a, b], -1)),
    ("cat dim 2", lambda a, b: dtorch.cat([a, b], 2)),
    ("cat with 1-D empty", lambda a, b: dtorch.cat([a, dtorch.zeros(0, dtype=a.dtype), b])),
    ("cat vectors", lambda a, b: dtorch.cat([a[0], b[1]])),
    ("cat vectors dim -1", lambda a, b: dtorch.cat([a[0], b[1]], -1)),
    ("cat vectors with empty", lambda a, b: dtorch.cat([a[0], dtorch.zeros(0, dtype=a.dtype), b[1]])),
    ("cat vectors dim 1", lambda a, b: dtorch.cat([a[0], b[1]], 1)),
    ("cat vectors with an empty one requiring grad",
     lambda a, b: dtorch.cat([a[0], dtorch.zeros(0, dtype=a.dtype, requires_grad=True), b[1]])),
    ("cat 1-D empty of another dtype", lambda a, b: dtorch.cat([a, dtorch.zeros(0, dtype=dtorch.int64)])),
    ("cat mixed dtypes", lambda a, b: dtorch.cat([a, b.double()])),
    ("cat ints", lambda a, b: dtorch.cat([a, b.long()])),
    ("cat shapes misfit", lambda a, b: dtorch.cat([a, b[:, :2]], 0)),
    ("cat 0-dim", lambda a, b: dtorch.cat([a[0, 0], b])),
    ("cat one", lambda a, b: dtorch.cat([a])),
    ("cat empty list", lambda a, b: dtorch.cat([])),
    ("cat generator", lambda a, b: dtorch.cat(t_ for t_ in (a, b))),
    ("cat array", lambda a, b: dtorch.cat([a, b.numpy()])),
    ("stack", lambda a, b: dtorch.stack([a, b])),
    ("stack dim 1", lambda a, b: dtorch.stack((a, b), 1)),
    ("stack dim 2", lambda a, b: dtorch.stack([a, b], 2)),
    ("stack dim -1", lambda a, b: dtorch.stack([a, b], -1)),
    ("stack dim -3", lambda a, b: dtorch.stack([a, b], -3)),
    ("stack dim 3", lambda a, b: dtorch.stack([a, b], 3)),
    ("stack misfit", lambda a, b: dtorch.stack([a, b[:, :2]])),
    ("stack mixed", lambda a, b: dtorch.stack([a, b.double()])),
    ("stack 0-dim", lambda a, b: dtorch.stack([a[0, 0], b[0, 0]])),
    ("stack empty", lambda a, b: dtorch.stack([a[:0], b[:0]], 1)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("grad, mode", [(False, "grad mode on"), (True, "no_grad"), (True, "grad mode on")])
@pytest.mark.parametrize("name, call", _JOIN_CALLS, ids=[name for name, _ in _JOIN_CALLS])
def test_cat_and_stack_shortcuts_equal_the_reference_path(monkeypatch, name, call, grad, mode, dtype):
    a = dtorch.tensor(_rand(4, 3, dtype=dtype), requires_grad=grad)
    b = dtorch.tensor(_rand(4, 3, seed=1, dtype=dtype)).t().contiguous().t()  # (a non-contiguous operand)
    with dtorch.no_grad() if mode == "no_grad" else dtorch.enable_grad():
        fast, reference = _run_both_paths(monkeypatch, lambda: call(a, b))
    _assert_same_outcome(fast, reference, a)  # recorded: the same node, attrs and gradients
    if grad and mode == "grad mode on" and not isinstance(reference, Exception) and reference.grad_fn is not None:
        assert fast.grad_fn.name() in ("CatBackward0", "StackBackward0", "CloneBackward0", "ToCopyBackward0")


def test_numpy_parse_of_view_sizes_equals_the_reference_parse():
    """Whenever NumPy accepts the sizes, the reference parse accepts them and gives the same shape."""
    rng = np.random.default_rng(5)
    extents = [-3, -2, -1, 0, 1, 2, 3, 4, 6, 12, 24]
    for numel in (0, 1, 12, 24):
        data = np.zeros(numel, np.float32)
        for _ in range(400):
            sizes = tuple(int(v) for v in rng.choice(extents, size=rng.integers(0, 4)))
            for form in (sizes, (sizes,), (list(sizes),), (dtorch.Size(sizes),) if min(sizes, default=0) >= 0 else ()):
                if not form:
                    continue
                fast = F._numpy_reshape(data, form)
                if fast is None:
                    continue
                assert fast.shape == F._infer_shape(F._shape_arg(form), numel), (form, numel)


def test_single_element_index_is_a_view_as_in_pytorch():
    for library in (dtorch, torch):
        for grad in (False, True):
            x = library.zeros(3, 2, requires_grad=grad) * 1  # (not a leaf: in-place changes of its views are fine)
            element = x[1, 0]
            assert element._base is x and element.dim() == 0 and element.requires_grad == grad
            element.add_(5.0)
            x[1][1].add_(2.0)  # a view of a view
            assert x[1].tolist() == [5.0, 2.0] and x._version == 2
    ours = dtorch.tensor(_rand(4), requires_grad=True)
    theirs = torch.tensor(ours.detach().numpy(), requires_grad=True)
    for library, leaf in ((dtorch, ours), (torch, theirs)):
        y = leaf * 1
        y[2].mul_(3.0)
        y.sum().backward()
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())
    check_op(lambda x: x[1, 2], None, [(3, 4)])
    check_op(lambda x: x[2], None, [(5,)])


def test_view_shortcuts_under_a_capture_are_recorded():
    """A jit trace sees every view op: the shortcut steps aside while a capture runs."""
    x = dtorch.tensor(_rand(64))

    def program(t):
        return t.view(8, 8).t()[1:3].unsqueeze(0).flatten() + dtorch.cat([t, t])[:16]

    traced = dtorch.jit.trace(program, (x,))
    other = dtorch.tensor(_rand(64, seed=2))
    np.testing.assert_array_equal(traced(other).numpy(), program(other).numpy())


# ---- issue 12, second round: reductions, clamp, where, the matmul family, factories -----------------------------
# Each fast path below is held equal to the general path it stands beside (run on the same inputs) and to PyTorch.

from dtorch import factories  # noqa: E402
from dtorch.ops import elementwise as E  # noqa: E402
from dtorch.ops import linalg as L  # noqa: E402
from dtorch.ops._util import normalize_dims  # noqa: E402


def _special(shape, dtype, seed=0):
    """Random values with NaN, signed zeros, infinities and ties mixed in."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    specials = np.array([np.nan, 0.0, -0.0, np.inf, -np.inf, 1.5, 1.5], dtype)
    flat[rng.integers(0, flat.size, 6)] = specials[rng.integers(0, specials.size, 6)]
    return x


@pytest.mark.parametrize("ndim", [0, 1, 2, 3])
def test_reduction_axes_equal_normalize_dims(ndim):
    for dim in [None, *range(-ndim - 1, ndim + 1), (0, -1), [1, 0], True]:
        try:
            expected = normalize_dims(dim, ndim)
        except (IndexError, RuntimeError, TypeError) as error:
            with pytest.raises(type(error), match=re.escape(str(error))):
                R.reduction_axes(dim, ndim)
            continue
        assert R.reduction_axes(dim, ndim) == expected


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("dim, keepdim", [(None, False), (None, True), (1, False), (-1, True), ((0, 2), False)])
def test_sum_forward_by_ufunc_equals_array_method(dtype, dim, keepdim):
    x = _special((3, 4, 5), dtype)
    axes = normalize_dims(dim, x.ndim)
    fast = R.Sum(axes=axes, keepdim=keepdim, dtype=None).forward(x)
    reference = x.sum(axis=axes, keepdims=keepdim)  # the CuPy path's call
    np.testing.assert_array_equal(fast, reference)
    assert np.asarray(fast).dtype == reference.dtype and np.shape(fast) == reference.shape
    fast = R.Mean(axes=axes, keepdim=keepdim).forward(x)
    np.testing.assert_array_equal(fast, np.mean(x, axis=axes, keepdims=keepdim))


def test_sum_front_end_fast_path_equals_the_dtype_path():
    x = dtorch.tensor(_rand(3, 4, 5), requires_grad=True)
    for dim in (None, 0, -1, (0, 2), [2, 1]):
        for keepdim in (False, True):
            fast = x.sum(dim, keepdim) if dim is not None else x.sum(keepdim=keepdim) if keepdim else x.sum()
            reference = x.sum(dim, keepdim, dtype=dtorch.float32) if dim is not None else \
                x.sum(dim=None, keepdim=keepdim, dtype=dtorch.float32)  # the general path
            np.testing.assert_array_equal(fast.detach().numpy(), reference.detach().numpy())
            assert fast.grad_fn.name() == reference.grad_fn.name()
    for dtype in ("float32", "float64"):
        check_op(lambda x: x.sum(), None, [(3, 4)], dtype=dtype)
        check_op(lambda x: x.sum(-1, keepdim=True), None, [(3, 4)], dtype=dtype)
        check_op(lambda x: x.sum((0, -1)), None, [(2, 3, 4)], dtype=dtype)
        check_op(lambda x: x.sum(0), None, [(3, 4)], dtype=dtype, noncontiguous=True)
    check_op(lambda x: x.sum(), None, [(0, 3)])
    check_op(lambda x: x.sum(1), None, [(0, 3)])
    check_op(lambda x: x.sum(), None, [()])
    # integers and bools keep the general path: int64 results, as PyTorch's
    check_op(lambda x: x.sum(1), None, [np.arange(12, dtype=np.int32).reshape(3, 4)])
    check_op(lambda x: x.sum(), None, [np.array([True, False, True])])
    for bad in (2, -3):
        with pytest.raises(IndexError, match="Dimension out of range"):
            dtorch.zeros(2, 3).sum(bad)
        with pytest.raises(IndexError, match="Dimension out of range"):
            torch.zeros(2, 3).sum(bad)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int8, np.int64, np.uint8])
def test_extreme_of_all_equals_the_reduce(dtype):
    rng = np.random.default_rng(1)
    for trial in range(200):
        shape = (int(rng.integers(1, 9)),) if trial % 2 else (int(rng.integers(1, 4)), int(rng.integers(1, 5)))
        if np.dtype(dtype).kind == "f":
            x = _special(shape, dtype, seed=trial)
        else:
            x = rng.integers(0, 4, shape).astype(dtype)
        for view in (x, x.T, x[..., ::2]):
            for mode, reduce in (("max", np.maximum.reduce), ("min", np.minimum.reduce)):
                fast, reference = R.extreme_of_all(view, mode), reduce(view, None)
                assert type(fast) is type(reference)
                np.testing.assert_array_equal(fast, reference)
                assert np.signbit(fast) == np.signbit(reference)


def test_max_and_min_of_every_element_match_pytorch():
    for row in ([-0.0, 0.0], [0.0, -0.0], [1.0, np.nan, 2.0], [np.nan, -np.inf], [3.0, 3.0, -1.0], [-0.0, -1.0, 0.0]):
        for mode in ("max", "min"):
            ours = getattr(dtorch.tensor(row), mode)()
            theirs = getattr(torch.tensor(row), mode)()
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
            if not np.isnan(ours.item()):  # (the sign bit of a NaN is not part of its value)
                assert np.signbit(ours.numpy()) == np.signbit(theirs.numpy())
            assert ours.dtype == dtorch.float32 and ours.shape == ()
    for dtype in ("float32", "float64"):
        check_op(lambda x: x.max(), None, [(3, 4)], dtype=dtype)
        check_op(lambda x: x.min(), None, [(5,)], dtype=dtype, noncontiguous=True)
        check_op(lambda x: x.max(), None, [(2, 3, 4)], dtype=dtype, noncontiguous=True)
    check_op(lambda x: x.max(), None, [np.array([[3, 7], [7, -1]])])
    check_op(lambda x: x.min(), None, [np.array([True, False])])
    with pytest.raises(RuntimeError, match="Expected reduction dim to be specified"):
        dtorch.zeros(0, 3).max()


def test_max_dim_front_end_errors_and_keepdim():
    for dim in (0, 1, -1, -2):
        for keepdim in (False, True):
            check_op(lambda x: x.max(dim, keepdim), None, [(3, 4)])
            check_op(lambda x: x.min(dim=dim, keepdim=keepdim), None, [(3, 4)], dtype="float64")
    check_op(lambda x: x.max(-1), None, [(2, 3, 4)], noncontiguous=True)
    check_op(lambda x: x.max(0), None, [(5,)])
    check_op(lambda x: x.max(0, keepdim=True), None, [()])
    check_op(lambda x: x.max(1), None, [(0, 3)])
    for lib in (dtorch, torch):
        with pytest.raises(IndexError, match="Dimension out of range"):
            lib.zeros(2, 3).max(2)
        with pytest.raises(IndexError, match="Expected reduction dim 0 to have non-zero size"):
            lib.zeros(0, 3).max(0)
    assert repr(dtorch.tensor([[1.0, 2.0]]).max(1)).startswith("dtorch.return_types.max(")
    assert repr(dtorch.tensor([[1.0, 2.0]]).min(1)).startswith("dtorch.return_types.min(")


def test_argmax_fast_path_ties_nans_and_errors():
    x = np.array([[1.0, 3.0, 3.0, np.nan], [2.0, np.nan, np.nan, 2.0], [0.0, -0.0, 5.0, 5.0]], np.float32)
    for dim in (None, 0, 1, -1):
        for keepdim in (False, True):
            for name in ("argmax", "argmin"):
                ours = getattr(dtorch.tensor(x), name)(dim=dim, keepdim=keepdim)
                theirs = getattr(torch.tensor(x), name)(dim=dim, keepdim=keepdim)
                assert ours.tolist() == theirs.tolist() and ours.dtype == dtorch.int64
                assert tuple(ours.shape) == tuple(theirs.shape)
    check_op(lambda x: x.argmax(), None, [np.array([2, 9, 9, 1], dtype=np.int8)])
    check_op(lambda x: x.argmin(0), None, [()])
    for lib in (dtorch, torch):
        with pytest.raises(IndexError, match="Expected reduction dim to be specified for input.numel"):
            lib.zeros(0).argmax()
        with pytest.raises(IndexError, match="Dimension out of range"):
            lib.zeros(2).argmax(1)


def test_clamp_forward_by_ufunc_equals_np_clip():
    for dtype in (np.float16, np.float32, np.float64):
        x = _special((6, 7), dtype)
        for low, high in ((-0.5, 0.5), (None, 0.25), (-1, None), (0.5, -0.5), (np.float64(-0.1), np.float32(0.2)),
                          (-np.inf, np.nan), (0, 0)):
            fast = E.Clamp(min=low, max=high).forward(x)
            reference = np.clip(x, low, high).astype(x.dtype)  # the general path's call
            np.testing.assert_array_equal(fast, reference)
            assert fast.dtype == x.dtype
            if low != 0:  # (equal zero bounds: NumPy's and PyTorch's choices of the sign of a zero differ)
                theirs = torch.clamp(torch.tensor(x), None if low is None else float(low),
                                     None if high is None else float(high)).numpy()
                np.testing.assert_array_equal(fast, theirs)


def test_clamp_front_end_fast_path_equals_the_general_path():
    for dtype in ("float32", "float64"):
        check_op(lambda x: x.clamp(-0.5, 0.5), None, [(4, 5)], dtype=dtype)
        check_op(lambda x: x.clamp(min=-1), None, [(4, 5)], dtype=dtype, noncontiguous=True)
        check_op(lambda x: x.clamp(max=0.25), None, [(7,)], dtype=dtype)
        check_op(lambda x: x.clamp(1.0, -1.0), None, [(7,)], dtype=dtype)
    check_op(lambda x: x.clamp(-0.5, True), None, [(4,)])  # a bool bound: the general path
    check_op(lambda x: x.clamp(-1, 2), None, [np.arange(-3, 4)])  # integers: the general path
    check_op(lambda x: x.clamp(-0.5, 2), None, [np.arange(-3, 4)])  # int tensor, float bound: the default float
    check_op(lambda x: x.clamp(0.0, 1.0), None, [(0, 3)])
    for lib in (dtorch, torch):
        with pytest.raises(RuntimeError, match="At least one of 'min' or 'max' must not be None"):
            lib.clamp(lib.zeros(2))


def test_where_fast_path_equals_the_general_path():
    rng = np.random.default_rng(4)
    mask = rng.random((3, 4)) > 0.5
    for dtype in ("float32", "float64"):
        check_op(lambda c, x, y: (torch if isinstance(x, torch.Tensor) else dtorch).where(c, x, y), None,
                 [mask, (3, 4), (3, 4)], dtype=dtype)
        check_op(lambda c, x, y: (torch if isinstance(x, torch.Tensor) else dtorch).where(c, x, y), None,
                 [mask[:, :1], (1, 4), (3, 1)], dtype=dtype)
    # other dtypes and scalars: the general path, with PyTorch's promotion
    check_op(lambda c, x, y: (torch if isinstance(x, torch.Tensor) else dtorch).where(c, x, y), None,
             [mask, (3, 4), np.arange(12).reshape(3, 4)])
    check_op(lambda c, x: (torch if isinstance(x, torch.Tensor) else dtorch).where(c, x, 0.5), None, [mask, (3, 4)])
    x = dtorch.tensor(_rand(3, 4), requires_grad=True)
    fast = dtorch.where(dtorch.tensor(mask), x, dtorch.tensor(_rand(3, 4, seed=1)))
    general = dtorch.where(dtorch.tensor(mask.astype(np.uint8)), x, dtorch.tensor(_rand(3, 4, seed=1)))
    np.testing.assert_array_equal(fast.detach().numpy(), general.detach().numpy())
    assert fast.grad_fn.name() == general.grad_fn.name()
    # a misfit: the fast path hands over to the general path, whose message names it
    for lib in (dtorch, torch):
        with pytest.raises(RuntimeError, match="The size of tensor a \\(4\\) must match the size of tensor b \\(3\\)"):
            lib.where(lib.tensor(mask), lib.zeros(3, 4), lib.zeros(3, 3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_forward_by_dot_equals_matmul(dtype):
    rng = np.random.default_rng(5)
    for n, m, k in ((8, 8, 8), (1, 64, 1), (3, 5, 7), (0, 4, 5), (4, 0, 5), (100, 30, 50)):
        a = rng.standard_normal((n, m)).astype(dtype)
        b = rng.standard_normal((m, k)).astype(dtype)
        v = rng.standard_normal(m).astype(dtype)
        w = rng.standard_normal(m).astype(dtype)
        for left, right in ((a, b), (np.asfortranarray(a), b[:, ::-1]), (a[::-1], b[:, ::2]), (a, v[:, None])):
            fast = L.MatMul().forward(left, right)  # the same BLAS gemm: equal bit for bit
            np.testing.assert_array_equal(fast, np.matmul(left, right))
            assert fast.dtype == dtype
        for left, right in ((a, v[::-1]), (v, b), (v, w), (v[::-1], w)):  # matmul (matrix and vector), a BLAS dot
            fast = L.MatMul().forward(left, right)
            np.testing.assert_allclose(fast, np.matmul(left, right), rtol=1e-5 if dtype == np.float32 else 1e-12,
                                       atol=1e-5 if dtype == np.float32 else 1e-12)
            assert np.asarray(fast).dtype == dtype and np.shape(fast) == np.matmul(left, right).shape


def test_matmul_family_front_ends_match_pytorch():
    for dtype in ("float32", "float64"):
        check_op(lambda x, y: x @ y, None, [(64,), (64,)], dtype=dtype)
        check_op(lambda x, y: x @ y, None, [(3, 4), (4,)], dtype=dtype)
        check_op(lambda x, y: x @ y, None, [(4,), (4, 5)], dtype=dtype, noncontiguous=True)
        check_op(lambda x, y: x @ y, None, [(8, 8), (8, 8)], dtype=dtype, noncontiguous=True)
        check_op(lambda x, y: x @ y, None, [(2, 3, 4), (4, 5)], dtype=dtype)
        for name, shapes in (("mm", [(3, 4), (4, 5)]), ("bmm", [(2, 3, 4), (2, 4, 5)]), ("dot", [(6,), (6,)])):
            check_op(lambda x, y: getattr(torch if isinstance(x, torch.Tensor) else dtorch, name)(x, y), None,
                     shapes, dtype=dtype)
    check_op(lambda x, y: x @ y, None, [np.arange(6).reshape(2, 3), np.arange(3)])  # integers: np.matmul
    errors = [
        ("mat1 and mat2 shapes cannot be multiplied \\(3x4 and 5x2\\)", lambda lib: lib.mm(lib.zeros(3, 4), lib.zeros(5, 2))),
        ("mat1 and mat2 shapes cannot be multiplied", lambda lib: lib.zeros(3, 4) @ lib.zeros(5)),
        ("expected m1 and m2 to have the same dtype", lambda lib: lib.zeros(3, 4) @ lib.zeros(4, dtype=lib.float64)),
        ("both arguments to matmul need to be at least 1D", lambda lib: lib.zeros(()) @ lib.zeros(3)),
        (None, lambda lib: lib.mm(lib.zeros(3), lib.zeros(3, 2))),
        (None, lambda lib: lib.bmm(lib.zeros(2, 3, 4), lib.zeros(3, 4, 5))),
        ("inconsistent tensor size", lambda lib: lib.dot(lib.zeros(3), lib.zeros(4))),
    ]
    for message, call in errors:
        with pytest.raises(RuntimeError, match=message):
            call(dtorch)
        with pytest.raises(RuntimeError):
            call(torch)


def test_size_fast_path_equals_the_general_path():
    for size in ((2, 3), (), (0,), (5,)):
        assert factories._size(size) == size and type(factories._size(size)) is tuple
    for given, expected in ((((2, 3),), (2, 3)), (([4, 1],), (4, 1)), ((np.int64(3), 2), (3, 2)),
                            ((dtorch.Size([2, 5]),), (2, 5)), ((True, 2), (1, 2))):
        result = factories._size(given)
        assert result == expected and type(result) is tuple and all(type(n) is int for n in result)
    for lib in (dtorch, torch):
        with pytest.raises(RuntimeError):
            lib.zeros(2, -1)
    with pytest.raises(RuntimeError, match="negative dimension -1"):
        dtorch.ones(-1)


@pytest.mark.parametrize("dtype", [None, "float64", "float16", "bfloat16", "int32", "bool", "uint8"])
def test_filled_factories_equal_numpy_full(dtype):
    ours_dtype = None if dtype is None else getattr(dtorch, dtype)
    numpy_dtype = np.float32 if dtype is None else getattr(dtorch, dtype).numpy_dtype
    for size in ((8, 8), (0, 3), ()):
        for name, value in (("zeros", 0), ("ones", 1)):
            ours = getattr(dtorch, name)(*size, dtype=ours_dtype)
            assert ours._array.dtype == numpy_dtype and ours.shape == size
            np.testing.assert_array_equal(ours._array, np.full(size, value, dtype=numpy_dtype))
        for value in (2, -1.5, True):
            if dtype in ("uint8", "int32", "bool") and value == -1.5:
                continue
            ours = dtorch.full(size, value, dtype=ours_dtype)
            reference = np.full(size, factories.checked_fill_value(value, ours._array.dtype), dtype=ours._array.dtype)
            np.testing.assert_array_equal(ours._array, reference)
    assert dtorch.ones(3, requires_grad=True).requires_grad
    assert dtorch.full((2,), 7).numpy().dtype == torch.full((2,), 7).numpy().dtype == np.int64
    with pytest.raises(RuntimeError, match="value cannot be converted to type uint8"):
        dtorch.full((2,), 300, dtype=dtorch.uint8)


def _arange_general(start, end, step):
    """The general path of ``arange`` for ints: int64 values from float64 arithmetic on a float64 arange."""
    count = max(int(np.ceil((end - start) / step)), 0)
    return (start + step * np.arange(count, dtype=np.int64)).astype(np.int64)


def test_arange_fast_path_equals_the_general_path():
    rng = np.random.default_rng(6)
    for _ in range(300):
        start, end = (int(v) for v in rng.integers(-50, 50, 2))
        step = int(rng.choice([-7, -3, -1, 1, 2, 5]))
        if (end - start) * step < 0:
            start, end = end, start
        fast = dtorch.arange(start, end, step)
        np.testing.assert_array_equal(fast.numpy(), _arange_general(start, end, step))
        assert fast.dtype == dtorch.int64
        # the same through the general path (NumPy integers are not Python ints) and PyTorch
        general = dtorch.arange(np.int64(start), np.int64(end), np.int64(step))
        np.testing.assert_array_equal(fast.numpy(), general.numpy())
        assert fast.tolist() == torch.arange(start, end, step).tolist()
    assert dtorch.arange(5).tolist() == [0, 1, 2, 3, 4] and dtorch.arange(0).shape == (0,)
    big = 2 ** 60  # past the fast path's bounds: the general path
    assert dtorch.arange(big, big + 3).tolist() == torch.arange(big, big + 3).tolist()
    assert dtorch.arange(4, dtype=dtorch.float64).dtype == dtorch.float64
    assert dtorch.arange(0, 1, 0.25).tolist() == torch.arange(0, 1, 0.25).tolist()
    for args, message in (((0, 5, 0), "step must be nonzero"), ((5, 0, 1), "upper bound and lower bound inconsistent")):
        for lib in (dtorch, torch):
            with pytest.raises(RuntimeError, match=message):
                lib.arange(*args)
    for lib in (dtorch, torch):
        with pytest.raises(RuntimeError, match="Tensors of floating point"):
            lib.arange(3, requires_grad=True)


@pytest.mark.parametrize("dtype", [None, "float64", "float16", "bfloat16"])
def test_random_factories_draw_in_the_sampled_dtype(dtype):
    ours_dtype = None if dtype is None else getattr(dtorch, dtype)
    for name, draw in (("randn", "standard_normal"), ("rand", "random")):
        dtorch.manual_seed(11)
        ours = getattr(dtorch, name)(4, 5, dtype=ours_dtype)
        sample = np.float64 if dtype == "float64" else np.float32
        expected = getattr(np.random.Generator(np.random.PCG64(11)), draw)((4, 5), dtype=sample)
        target = np.float32 if dtype is None else getattr(dtorch, dtype).numpy_dtype
        np.testing.assert_array_equal(ours._array, expected.astype(target))
        assert ours._array.dtype == target and ours.shape == (4, 5)
    assert dtorch.randn(3, requires_grad=True).requires_grad
    with pytest.raises(RuntimeError, match="expected a floating point dtype"):
        dtorch.randn(3, dtype=dtorch.int64)


class _ShortcutInputs:
    """Small tensors for the no-grad shortcuts; ``requires_grad`` on the floating ones."""

    def __init__(self, requires_grad):
        def make(*shape, seed):
            return dtorch.tensor(_rand(*shape, seed=seed), requires_grad=requires_grad)

        self.x, self.a = make(64, seed=0), make(64, seed=1)
        self.x8, self.a8, self.row = make(8, 8, seed=2), make(8, 8, seed=3), make(8, seed=4)
        self.x3, self.a3 = make(4, 4, 4, seed=5), make(4, 4, 4, seed=6)
        self.scalar = make(seed=7)
        self.x64 = dtorch.tensor(_rand(3, 5, seed=8, dtype=np.float64), requires_grad=requires_grad)
        self.ints = dtorch.tensor(np.array([[3, -1, 7], [7, 0, 2]]))
        self.mask = dtorch.tensor(_rand(8, 8, seed=9) > 0)


@pytest.mark.parametrize("call", [
    lambda s: s.x.sum(), lambda s: s.x8.sum(-1, keepdim=True), lambda s: s.x3.sum((0, 2)), lambda s: s.scalar.sum(),
    lambda s: s.x64.sum(0), lambda s: s.x.max(), lambda s: s.x8.min(), lambda s: s.x3.transpose(0, 2).max(),
    lambda s: s.ints.max(), lambda s: s.x64.min(), lambda s: s.x @ s.a, lambda s: s.x8 @ s.a8, lambda s: s.x8 @ s.row,
    lambda s: s.row @ s.a8, lambda s: s.x3 @ s.a3, lambda s: dtorch.mm(s.x8, s.a8.t()), lambda s: dtorch.bmm(s.x3, s.a3),
    lambda s: dtorch.dot(s.x, s.a), lambda s: s.x64 @ s.x64.t(), lambda s: s.x > s.a, lambda s: s.x8 == s.row,
    lambda s: s.scalar <= s.scalar, lambda s: s.ints != s.ints, lambda s: dtorch.logical_and(s.mask, s.mask),
    lambda s: dtorch.where(s.mask, s.x8, s.a8), lambda s: dtorch.where(s.mask, s.row, s.a8),
    # errors: the shortcut raises what the reference path raises
    lambda s: s.x8 @ s.x, lambda s: dtorch.mm(s.x8, s.a8[:5]), lambda s: s.x8 > s.x, lambda s: s.x8 @ s.x64,
    lambda s: dtorch.where(s.mask, s.x8, s.x[:3]), lambda s: s.x.sum(1), lambda s: s.x[:0].max(),
    # elementwise: the op's own forward on the arrays
    lambda s: s.x + s.a, lambda s: s.x8 - s.row, lambda s: s.x8 * s.a8, lambda s: s.row / s.x8, lambda s: -s.x,
    lambda s: s.ints + s.ints, lambda s: s.mask + s.mask, lambda s: s.ints * s.ints, lambda s: s.ints / s.ints,
    lambda s: -s.ints, lambda s: s.scalar * s.scalar, lambda s: dtorch.exp(s.x), lambda s: s.x8.tanh(),
    lambda s: dtorch.sqrt(s.x), lambda s: dtorch.log(s.ints), lambda s: s.x.sigmoid(), lambda s: dtorch.relu(s.x8),
    lambda s: s.x3.relu(), lambda s: dtorch.sin(s.x64), lambda s: s.x8 + s.x, lambda s: s.x * s.x[:5],
    lambda s: s.mask - s.mask,
    # max(dim)/min(dim): values and indices
    lambda s: s.x8.max(1), lambda s: s.x8.min(-1, keepdim=True), lambda s: s.x.max(0), lambda s: s.scalar.max(0),
    lambda s: s.ints.max(1), lambda s: s.x3.min(0), lambda s: (s.x8 * 0).max(1), lambda s: s.x8.max(2),
    # clamp with number bounds; argmax/argmin
    lambda s: s.x.clamp(-0.5, 0.5), lambda s: s.x8.clamp(min=0), lambda s: s.x64.clamp(max=0.1),
    lambda s: s.x.clamp(1, -1), lambda s: s.x.argmax(), lambda s: s.x8.argmin(1), lambda s: s.x3.argmax(-1, True),
    lambda s: s.x8.argmax(keepdim=True), lambda s: s.scalar.argmax(0), lambda s: s.ints.argmin(0),
    lambda s: s.x8.argmax(2), lambda s: s.x[:0].argmax(),
])
def test_no_grad_shortcuts_of_reductions_products_and_comparisons_equal_apply(monkeypatch, call):
    for requires_grad in (False, True):
        for grad_enabled in (True, False):
            inputs = _ShortcutInputs(requires_grad)
            with dtorch.set_grad_enabled(grad_enabled), np.errstate(invalid="ignore", divide="ignore"):
                fast, reference = _run_both_paths(monkeypatch, lambda: call(inputs))
            if isinstance(reference, Exception):
                assert type(fast) is type(reference) and str(fast) == str(reference)
                continue
            if isinstance(reference, tuple):  # (values, indices)
                assert type(fast) is type(reference) and repr(fast) == repr(reference)
                for fast_part, reference_part in zip(fast, reference):
                    _assert_same_result(fast_part, reference_part, inputs)
                continue
            _assert_same_result(fast, reference, inputs)


def _assert_same_result(fast, reference, inputs):
    assert type(fast) is type(reference) is dtorch.Tensor
    assert fast.shape == reference.shape and fast.dtype == reference.dtype
    np.testing.assert_array_equal(fast._array, reference._array)
    assert np.signbit(fast._array).tolist() == np.signbit(reference._array).tolist()
    assert type(fast._array) is np.ndarray and fast._base is None
    assert fast.requires_grad == reference.requires_grad
    assert (fast.grad_fn is None) == (reference.grad_fn is None)
    if reference.grad_fn is not None:  # recorded: both paths are the op's apply
        assert fast.grad_fn.name() == reference.grad_fn.name()
    else:
        assert fast._array is not inputs.x._array  # a new array, never one of the inputs


def test_no_grad_shortcuts_match_pytorch_under_no_grad():
    values = {}
    for lib in (dtorch, torch):
        x = lib.tensor(_rand(8, 8), requires_grad=True)
        a = lib.tensor(_rand(8, 8, seed=1))
        with lib.no_grad():
            results = [x.sum(), x.max(), x.min(), x @ a, x[0] @ a[1], lib.mm(x, a), x > a,
                       lib.where(x > 0, x, a), lib.bmm(x.reshape(2, 4, 8), a.reshape(2, 8, 4)), x + a, x - a[0],
                       x * a, x / a, -x, lib.exp(x), x.tanh(), lib.relu(x), x.sigmoid(), *x.max(1),
                       *x.min(0, keepdim=True), x.clamp(-0.5, 0.5), x.argmax(), x.argmin(1)]
        assert not any(r.requires_grad for r in results)
        values[lib] = [r.numpy() for r in results]
    for ours, theirs in zip(values[dtorch], values[torch]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape


def test_reduction_and_product_shortcuts_under_a_capture_are_recorded():
    """A jit trace sees every op: the shortcuts step aside while a capture runs."""
    x = dtorch.tensor(_rand(8, 8))

    def program(t):
        return (t @ t).sum(1) + t.max() + (t > 0).sum() + dtorch.where(t > 0, t, t * 2).min() - t.exp() / (t.relu() + 1)

    traced = dtorch.jit.trace(program, (x,))
    other = dtorch.tensor(_rand(8, 8, seed=2))
    np.testing.assert_allclose(traced(other).numpy(), program(other).numpy(), rtol=1e-6)


@pytest.mark.parametrize("op, call", [
    (R.Sum, lambda s: s.x.sum()), (R.MaxMin, lambda s: s.x.max()), (R.MaxMin, lambda s: s.x8.min()),
    (R.MaxMinDim, lambda s: s.x8.max(1)), (R.MaxMinDim, lambda s: s.x8.min(0)), (L.MatMul, lambda s: s.x @ s.a),
    (L.MatMul, lambda s: dtorch.mm(s.x8, s.a8)), (L.MatMul, lambda s: dtorch.bmm(s.x3, s.a3)),
    (E.Compare, lambda s: s.x > s.a), (E.Where, lambda s: dtorch.where(s.mask, s.x8, s.a8)),
    (E.Add, lambda s: s.x + s.a), (E.Sub, lambda s: s.x - s.a), (E.Mul, lambda s: s.x * s.a),
    (E.Div, lambda s: s.x / s.a), (E.Neg, lambda s: -s.x), (E.Exp, lambda s: s.x.exp()), (E.Relu, lambda s: s.x.relu()),
    (E.Clamp, lambda s: s.x.clamp(-0.5, 0.5)), (R.ArgExtreme, lambda s: s.x.argmax()),
    (R.ArgExtreme, lambda s: s.x8.argmin(1)),
])
def test_no_grad_shortcuts_are_taken(monkeypatch, op, call):
    """Without grad the front ends above never reach the op's apply (the shortcut is what the benchmark times)."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"{op.__name__}.apply reached")

    inputs = _ShortcutInputs(requires_grad=False)
    monkeypatch.setattr(op, "apply", refuse)
    call(inputs)
    with dtorch.no_grad():
        call(_ShortcutInputs(requires_grad=True))
