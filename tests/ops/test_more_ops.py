"""The rest of PyTorch's everyday tensor API against PyTorch: more elementwise math, fused multiply-adds,
triangles and diagonals, search/count/sampling, shape helpers, index_* ops, finfo/iinfo and constants."""

import math

import numpy as np
import pytest
import torch

import dtorch
from helpers import check_op, ints


@pytest.mark.parametrize("name", ["expm1", "exp2", "sinh", "cosh", "atan", "arctan", "frac"])
@pytest.mark.parametrize("shape", [(3, 4), (), (0, 2)])
def test_unary_math(name, shape):
    check_op(lambda x: getattr(x, name)(), None, [shape])
    check_op(lambda x: getattr(x, name)(), None, [(4, 3)], noncontiguous=True)


@pytest.mark.parametrize("name", ["asin", "acos", "arcsin", "arccos"])
def test_inverse_trig_inside_their_domain(name):
    check_op(lambda x: getattr(x, name)(), None, [(3, 4)], low=-0.9, high=0.9)


@pytest.mark.parametrize("name", ["atan2", "hypot", "logaddexp"])
@pytest.mark.parametrize("shapes", [[(3, 4), (3, 4)], [(3, 4), (4,)], [(2, 1, 3), (4, 1)], [(), (3,)]])
def test_binary_math(name, shapes):
    check_op(lambda a, b: getattr(a, name)(b), None, shapes)
    check_op(lambda a, b: getattr(dtorch if isinstance(a, dtorch.Tensor) else torch, name)(a, b), None, shapes)


def test_binary_math_second_order():
    check_op(lambda a, b: a.atan2(b), None, [(3,), (3,)], second_order=True, dtype="float64")
    check_op(lambda a, b: a.logaddexp(b), None, [(3,), (3,)], second_order=True, dtype="float64")
    check_op(lambda x: x.sinh() + x.expm1(), None, [(3,)], second_order=True, dtype="float64")


def test_fused_multiply_adds():
    check_op(lambda a, b, w: a.lerp(b, w), None, [(3, 4), (3, 4), (4,)])
    check_op(lambda a, b: a.lerp(b, 0.25), None, [(3, 4), (4,)])
    check_op(lambda a, b, c: a.addcmul(b, c, value=0.5), None, [(3, 4), (3, 4), (4,)])
    check_op(lambda a, b, c: a.addcdiv(b, c, value=-2), None, [(3, 4), (3, 1), (4,)], low=0.5, high=2.0)
    check_op(lambda a, b, c: a.addmm(b, c, beta=0.5, alpha=2), None, [(4,), (3, 5), (5, 4)])
    check_op(lambda a, b, c: a.addmm(b, c, beta=0), None, [(3, 4), (3, 5), (5, 4)])
    check_op(lambda a, b, c: a.baddbmm(b, c, alpha=0.5), None, [(2, 3, 4), (2, 3, 5), (2, 5, 4)])


def test_fused_multiply_adds_in_place():
    def fn(a, b, c):
        y = a * 1
        y.addcmul_(b, c, value=2).addcdiv_(b, c.abs() + 1).lerp_(b, 0.3)
        return y

    check_op(fn, None, [(3, 4), (3, 4), (4,)])


@pytest.mark.parametrize("diagonal", [-2, -1, 0, 1, 3])
def test_triangles(diagonal):
    check_op(lambda x: x.triu(diagonal), None, [(3, 4)])
    check_op(lambda x: x.tril(diagonal), None, [(2, 4, 3)])
    check_op(lambda x: x.triu(diagonal), None, [(4, 3)], noncontiguous=True)
    check_op(lambda x: (x * 1).tril_(diagonal), None, [(3, 4)])
    check_op(lambda x: x.tril(diagonal), None, [(3, 3)], second_order=True, dtype="float64")


@pytest.mark.parametrize("offset", [-2, 0, 1])
def test_diagonals(offset):
    check_op(lambda x: x.diag(offset), None, [(3,)])
    check_op(lambda x: x.diag(offset), None, [(3, 4)])
    check_op(lambda x: x.diagonal(offset), None, [(4, 3)], noncontiguous=True)
    check_op(lambda x: x.diagonal(offset, -1, 0), None, [(3, 2, 4)])
    check_op(lambda x: x.diag_embed(offset, 0, 2), None, [(3, 2)])
    check_op(lambda x: x.diag_embed(offset), None, [(2, 3)])


def test_trace_and_fill_diagonal():
    check_op(lambda x: x.trace(), None, [(3, 4)])
    for shape, wrap in (((3, 4), False), ((7, 3), True), ((7, 3), False), ((3, 3, 3), False)):
        ours, theirs = dtorch.zeros(*shape), torch.zeros(*shape)
        ours.fill_diagonal_(2.5, wrap=wrap)
        theirs.fill_diagonal_(2.5, wrap=wrap)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    with pytest.raises(RuntimeError, match="all dimensions of input must be of equal length"):
        dtorch.zeros(2, 3, 3).fill_diagonal_(1)


def test_matrix_structure_errors():
    with pytest.raises(RuntimeError, match=r"at least 2 dimensions, got shape \[3\]"):
        dtorch.triu(dtorch.ones(3))
    with pytest.raises(RuntimeError, match="Supports 1D or 2D tensors"):
        dtorch.diag(dtorch.ones(2, 2, 2))
    with pytest.raises(RuntimeError, match="diagonal dimensions cannot be identical"):
        dtorch.diagonal(dtorch.ones(2, 2), 0, 1, 1)


@pytest.mark.parametrize("kwargs", [{}, {"return_inverse": True}, {"return_counts": True},
                                    {"return_inverse": True, "return_counts": True}, {"dim": 0}])
def test_unique(kwargs):
    values = ints((4, 3), 0, 3, seed=5)
    ours = dtorch.unique(dtorch.tensor(values), **kwargs)
    theirs = torch.unique(torch.tensor(values), **kwargs)
    ours = ours if isinstance(ours, tuple) else (ours,)
    theirs = theirs if isinstance(theirs, tuple) else (theirs,)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        assert str(a.dtype).split(".")[1] == str(b.dtype).split(".")[1]


def test_counting_and_searching():
    values = ints((12,), 0, 6, seed=6)
    weights = np.linspace(0, 1, 12, dtype=np.float32)
    np.testing.assert_array_equal(dtorch.bincount(dtorch.tensor(values), minlength=8).numpy(),
                                  torch.bincount(torch.tensor(values), minlength=8).numpy())
    np.testing.assert_allclose(dtorch.bincount(dtorch.tensor(values), dtorch.tensor(weights)).numpy(),
                               torch.bincount(torch.tensor(values), torch.tensor(weights)).numpy(), rtol=1e-6)
    with pytest.raises(RuntimeError, match="non-negative"):
        dtorch.bincount(dtorch.tensor([1, -1]))
    boundaries = np.array([[1, 3, 5, 7], [2, 4, 6, 8]])
    queries = np.array([[3, 6, 0], [1, 9, 4]])
    for right in (False, True):
        np.testing.assert_array_equal(
            dtorch.searchsorted(dtorch.tensor(boundaries), dtorch.tensor(queries), right=right).numpy(),
            torch.searchsorted(torch.tensor(boundaries), torch.tensor(queries), right=right).numpy())
        np.testing.assert_array_equal(
            dtorch.bucketize(dtorch.tensor(queries), dtorch.tensor(boundaries[0]), right=right).numpy(),
            torch.bucketize(torch.tensor(queries), torch.tensor(boundaries[0]), right=right).numpy())
    assert dtorch.searchsorted(dtorch.tensor([1, 2]), dtorch.tensor([2]), out_int32=True).dtype == dtorch.int32
    with pytest.raises(RuntimeError, match=r"boundaries tensor \[2, 4\] and input value tensor \[3, 3\]"):
        dtorch.searchsorted(dtorch.tensor(boundaries), dtorch.ones(3, 3))


def test_multinomial_and_bernoulli():
    dtorch.manual_seed(0)
    probabilities = dtorch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]])
    drawn = dtorch.multinomial(probabilities, 50, replacement=True)
    assert drawn.shape == (2, 50) and drawn.dtype == dtorch.int64
    assert (drawn[0] == 1).all() and set(drawn[1].tolist()) == {0, 2}
    without = dtorch.multinomial(dtorch.tensor([1.0, 2.0, 3.0, 4.0]), 4)
    assert sorted(without.tolist()) == [0, 1, 2, 3]
    frequencies = np.bincount(dtorch.multinomial(dtorch.tensor([1.0, 3.0]), 4000, True).numpy()) / 4000
    np.testing.assert_allclose(frequencies, [0.25, 0.75], atol=0.03)
    with pytest.raises(RuntimeError, match="cannot sample n_sample > prob_dist.size"):
        dtorch.multinomial(dtorch.tensor([0.5, 0.5]), 3)
    with pytest.raises(RuntimeError, match="probability tensor contains either"):
        dtorch.multinomial(dtorch.tensor([0.5, -1.0]), 1)
    dtorch.manual_seed(1)
    first = dtorch.bernoulli(dtorch.full((1000,), 0.3))
    dtorch.manual_seed(1)
    np.testing.assert_array_equal(first.numpy(), dtorch.bernoulli(dtorch.full((1000,), 0.3)).numpy())
    assert first.dtype == dtorch.float32 and abs(first.mean().item() - 0.3) < 0.05
    assert set(dtorch.bernoulli(dtorch.tensor([0.0, 1.0])).tolist()) == {0.0, 1.0}


def test_shape_helpers():
    check_op(lambda x: x.tile((2, 1, 2)), None, [(3, 4)])
    check_op(lambda x: x.tile((2,)), None, [(3, 4)])
    check_op(lambda x: x.repeat_interleave(2), None, [(3, 2)])
    check_op(lambda x: x.repeat_interleave(3, dim=1), None, [(3, 2)], noncontiguous=True)
    check_op(lambda x: x.repeat_interleave(x.new_tensor([1, 0, 2]).long(), dim=0), None, [(3, 2)])
    np.testing.assert_array_equal(dtorch.repeat_interleave(dtorch.tensor([2, 0, 1])).numpy(),
                                  torch.repeat_interleave(torch.tensor([2, 0, 1])).numpy())
    check_op(lambda x: x.ravel(), None, [(3, 4)], noncontiguous=True)
    check_op(lambda x: x.moveaxis(0, -1), None, [(2, 3, 4)])
    for indexing in ("ij", "xy"):
        check_op(lambda a, b, c: sum(g * (i + 1) for i, g in enumerate(
            (dtorch if isinstance(a, dtorch.Tensor) else torch).meshgrid(a, b, c, indexing=indexing))),
            None, [(3,), (4,), (2,)])
    check_op(lambda a, b: sum((dtorch if isinstance(a, dtorch.Tensor) else torch).broadcast_tensors(a, b)),
             None, [(3, 1), (4,)])
    with pytest.raises(RuntimeError, match=r"\[3, 2\], \[4\]"):
        dtorch.broadcast_tensors(dtorch.ones(3, 2), dtorch.ones(4))


def test_tensordot_cdist_dist():
    lib_of = lambda t: dtorch if isinstance(t, dtorch.Tensor) else torch  # noqa: E731
    check_op(lambda a, b: lib_of(a).tensordot(a, b, dims=1), None, [(2, 3), (3, 4)])
    check_op(lambda a, b: lib_of(a).tensordot(a, b, dims=([0, 2], [1, 0])), None, [(2, 3, 4), (4, 2, 5)])
    check_op(lambda a, b: lib_of(a).cdist(a, b), None, [(2, 3, 4), (2, 5, 4)])
    check_op(lambda a, b: lib_of(a).cdist(a, b, p=1.0), None, [(3, 4), (5, 4)])
    check_op(lambda a, b: a.dist(b, 3), None, [(3, 4), (4,)])


def test_index_ops():
    index = lambda t, values: t.new_tensor(values).long()  # noqa: E731
    check_op(lambda x, s: x.index_add(1, index(x, [0, 2, 0]), s, alpha=2), None, [(3, 4), (3, 3)])
    check_op(lambda x, s: x.index_copy(0, index(x, [2, 0]), s), None, [(3, 4), (2, 4)])
    check_op(lambda x: x.index_fill(1, index(x, [0, 3]), -1.5), None, [(3, 4)])
    check_op(lambda x, s: (x * 1).index_add_(0, index(x, [1, 1]), s), None, [(3, 4), (2, 4)])


def test_signbit_and_small_tensor_methods():
    check_op(lambda x: x.sgn(), None, [(3, 4)], grad=False)  # torch's sgn gradient is a ZeroTensor
    ours = dtorch.tensor([-0.0, 1.0, -2.0]).signbit()
    np.testing.assert_array_equal(ours.numpy(), torch.tensor([-0.0, 1.0, -2.0]).signbit().numpy())
    x = dtorch.arange(12.0).reshape(3, 4)
    assert x[1:, 2:].storage_offset() == torch.arange(12.0).reshape(3, 4)[1:, 2:].storage_offset()
    assert x.pin_memory() is x and not x.is_pinned() and x.share_memory_() is x


def test_finfo_iinfo_and_constants():
    for name in ("float16", "float32", "float64"):
        ours, theirs = dtorch.finfo(getattr(dtorch, name)), torch.finfo(getattr(torch, name))
        for field in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype"):
            assert getattr(ours, field) == getattr(theirs, field), (name, field)
    for name in ("uint8", "int8", "int16", "int32", "int64"):
        ours, theirs = dtorch.iinfo(getattr(dtorch, name)), torch.iinfo(getattr(torch, name))
        assert (ours.bits, ours.min, ours.max, ours.dtype) == (theirs.bits, theirs.min, theirs.max, theirs.dtype)
    assert dtorch.finfo().eps == torch.finfo().eps
    with pytest.raises(TypeError, match="floating point"):
        dtorch.finfo(dtorch.int32)
    assert (dtorch.inf, dtorch.pi, dtorch.e) == (math.inf, math.pi, math.e) and math.isnan(dtorch.nan)


def test_compile_returns_the_model_unchanged():
    layer = dtorch.nn.Linear(2, 2)
    assert dtorch.compile(layer) is layer

    @dtorch.compile(mode="reduce-overhead")
    def double(x):
        return x * 2

    assert double(dtorch.ones(1)).item() == 2.0
