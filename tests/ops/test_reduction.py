"""Reductions against PyTorch: every ``dim`` form (None, int, negative, tuple) with and without ``keepdim``."""

import numpy as np
import pytest
import torch

import dtorch
from helpers import bools, check_op, ints

DIMS = [None, 0, -1, (0, 2), (-1, 1)]


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("keepdim", [False, True])
def test_sum_mean_var_std_norm_logsumexp(dim, keepdim):
    shape = [(2, 3, 4)]
    if dim is None:
        check_op(lambda x: x.sum(), None, shape)
        check_op(lambda x: x.mean(), None, shape)
        check_op(lambda x: x.var(), None, shape)
        check_op(lambda x: x.std(), None, shape)
        check_op(lambda x: x.norm(), None, shape)
        return
    check_op(lambda x: x.sum(dim, keepdim=keepdim), None, shape)
    check_op(lambda x: x.mean(dim, keepdim), None, shape)
    check_op(lambda x: x.var(dim, keepdim=keepdim), None, shape)
    check_op(lambda x: x.var(dim, keepdim=keepdim, correction=0), None, shape)
    check_op(lambda x: x.std(dim, keepdim=keepdim), None, shape)
    check_op(lambda x: x.std(dim, unbiased=False, keepdim=keepdim), None, shape)
    check_op(lambda x: x.norm(dim=dim, keepdim=keepdim), None, shape)
    check_op(lambda x: x.norm(p=1, dim=dim, keepdim=keepdim), None, shape)
    check_op(lambda x: x.norm(p=3, dim=dim, keepdim=keepdim), None, shape)
    check_op(lambda x: x.logsumexp(dim, keepdim=keepdim), None, shape)
    check_op(lambda x: x.amax(dim, keepdim=keepdim), None, shape)
    check_op(lambda x: x.amin(dim, keepdim=keepdim), None, shape)
    check_op(lambda x: x.prod(dim if isinstance(dim, int) else 0, keepdim=keepdim), None, shape)


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_min_with_dim_return_values_and_indices(dim, keepdim):
    check_op(lambda x: x.max(dim, keepdim=keepdim), None, [(3, 4, 5)])
    check_op(lambda x: x.min(dim, keepdim), None, [(3, 4, 5)])
    check_op(lambda x: x.argmax(dim, keepdim=keepdim), None, [(3, 4, 5)])
    check_op(lambda x: x.argmin(dim, keepdim=keepdim), None, [(3, 4, 5)])
    check_op(lambda x: x.cumsum(dim), None, [(3, 4, 5)])
    check_op(lambda x: x.max(dim=dim).values, None, [ints((3, 4, 5), 0, 100)])


def test_reductions_non_contiguous():
    for fn in (lambda x: x.sum(0), lambda x: x.mean(-1, keepdim=True), lambda x: x.var(1), lambda x: x.std(),
               lambda x: x.norm(dim=0), lambda x: x.logsumexp(1), lambda x: x.prod(0), lambda x: x.amax(1),
               lambda x: x.max(0), lambda x: x.cumsum(1), lambda x: x.argmax(0), lambda x: x.max()):
        check_op(fn, None, [(4, 5)], noncontiguous=True)


def test_full_reductions_and_0d_inputs():
    check_op(lambda x: x.max(), None, [(3, 4)])
    check_op(lambda x: x.min(), None, [(3, 4)])
    check_op(lambda x: x.argmax(), None, [(3, 4)])
    check_op(lambda x: x.argmin(keepdim=True), None, [(3, 4)])
    check_op(lambda x: x.prod(), None, [(3, 4)], low=0.5, high=1.5)
    check_op(lambda x: x.amax(), None, [(3, 4)])
    for fn in (lambda x: x.sum(), lambda x: x.sum(0), lambda x: x.mean(), lambda x: x.prod(), lambda x: x.max(),
               lambda x: x.amax(), lambda x: x.logsumexp(0), lambda x: x.cumsum(0), lambda x: x.norm(),
               lambda x: x.sum(-1, keepdim=True), lambda x: x.argmax()):
        check_op(fn, None, [()])


def test_empty_reductions():
    check_op(lambda x: x.sum(), None, [(0, 3)])
    check_op(lambda x: x.sum(0), None, [(0, 3)])
    check_op(lambda x: x.sum(1), None, [(0, 3)])
    check_op(lambda x: x.prod(0), None, [(0, 3)])
    check_op(lambda x: x.amax(1), None, [(0, 3)])
    check_op(lambda x: x.cumsum(0), None, [(0, 3)])
    check_op(lambda x: x.norm(), None, [(0, 3)])
    check_op(lambda x: x.logsumexp(0), None, [(0, 3)])
    for lib in (torch, dtorch):
        with pytest.raises((RuntimeError, IndexError)):
            lib.zeros(0, 3).max()


def test_ties_share_gradient_like_torch():
    values = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], dtype=np.float32)
    check_op(lambda x: x.amax(1), None, [values])
    check_op(lambda x: x.amin(), None, [values])
    check_op(lambda x: x.max(), None, [values])
    check_op(lambda x: x.max(1), None, [values])  # gradient to the index returned
    check_op(lambda x: x.norm(p=float("inf"), dim=1), None, [values])


def test_prod_with_zeros():
    values = np.array([[1.5, 0.0, 2.0], [0.0, 0.0, 3.0], [1.0, 2.0, -1.0]], dtype=np.float32)
    check_op(lambda x: x.prod(1), None, [values])
    check_op(lambda x: x.prod(), None, [values])
    check_op(lambda x: x.prod(0, keepdim=True), None, [values])


def test_norm_variants():
    check_op(lambda x: x.norm(p=float("inf")), None, [(3, 4)])
    check_op(lambda x: x.norm(p=float("-inf"), dim=1), None, [(3, 4)])
    check_op(lambda x: x.norm(p=0, dim=1), None, [(3, 4)])
    check_op(lambda x: x.norm(p=2.5), None, [(3, 4)])
    check_op(lambda x: dtorch.norm(x, dim=(0, 1)), lambda x: torch.norm(x, dim=(0, 1)), [(3, 4)])
    check_op(lambda x: x.norm(), None, [np.zeros(3, dtype=np.float32)])  # subgradient 0 at the origin


def test_integer_and_bool_reductions():
    check_op(lambda x: x.sum(), None, [ints((3, 4))])
    check_op(lambda x: x.sum(1), None, [ints((3, 4), dtype=np.int32)])
    check_op(lambda x: x.sum(), None, [bools((3, 4))])
    check_op(lambda x: x.sum(0), None, [ints((3, 4), dtype=np.uint8)])
    check_op(lambda x: x.prod(), None, [ints((3, 4), 1, 3, dtype=np.int32)])
    check_op(lambda x: x.cumsum(0), None, [ints((3, 4), dtype=np.int32)])
    check_op(lambda x: x.cumsum(1), None, [bools((3, 4))])
    check_op(lambda x: x.max(), None, [ints((3, 4))])
    check_op(lambda x: x.max(1), None, [ints((3, 4), dtype=np.int8)])
    check_op(lambda x: x.amin(0), None, [ints((3, 4))])
    check_op(lambda x: x.argmax(1), None, [ints((3, 4))])
    check_op(lambda x: x.mean(dtype=dtorch.float32) if isinstance(x, dtorch.Tensor) else x.mean(dtype=torch.float32),
             None, [ints((3, 4))])
    check_op(lambda x: x.sum(dtype=dtorch.float64) if isinstance(x, dtorch.Tensor) else x.sum(dtype=torch.float64),
             None, [(3, 4)])
    check_op(lambda x: x.sum(dtype=dtorch.float64) if isinstance(x, dtorch.Tensor) else x.sum(dtype=torch.float64),
             None, [(3, 4)])
    for lib in (torch, dtorch):
        with pytest.raises(RuntimeError, match="mean"):
            lib.arange(3).mean()


def test_all_any():
    m = bools((3, 4))
    for fn in (lambda x: x.all(), lambda x: x.any(), lambda x: x.all(1), lambda x: x.any(0, keepdim=True),
               lambda x: x.all(dim=-1, keepdim=True), lambda x: dtorch.any(x, 1) if isinstance(x, dtorch.Tensor)
               else torch.any(x, 1), lambda x: x.all(dim=(0, 1)), lambda x: x.any(dim=(0, 1))):
        check_op(fn, None, [m])
    check_op(lambda x: x.all(), None, [ints((3,), 0, 2)])
    check_op(lambda x: x.any(0), None, [np.zeros((0, 2), dtype=np.bool_)])
    check_op(lambda x: x.all(), None, [np.zeros((0,), dtype=np.bool_)])
    check_op(lambda x: x.any(1), None, [np.array([[0.0, 1.5], [0.0, 0.0]], dtype=np.float32)], grad=False)
    check_op(lambda x: x.all(), None, [np.array(True)])


def test_cumsum_cumprod():
    check_op(lambda x: x.cumsum(0), None, [(4,)])
    check_op(lambda x: x.cumsum(-2), None, [(2, 3, 4)])
    check_op(lambda x: x.cumprod(1), None, [(3, 4)])
    check_op(lambda x: x.cumprod(0), None, [np.array([2.0, 0.0, 3.0, 0.5], dtype=np.float32)])


def test_reduction_gradcheck_float64():
    x = dtorch.randn(3, 4, dtype=dtorch.float64, requires_grad=True)
    assert dtorch.autograd.gradcheck(lambda t: t.var(1), (x,))
    assert dtorch.autograd.gradcheck(lambda t: t.var((0, 1), correction=0), (x,))
    assert dtorch.autograd.gradcheck(lambda t: t.std(0, keepdim=True), (x,))
    assert dtorch.autograd.gradcheck(lambda t: t.norm(), (x,))
    assert dtorch.autograd.gradcheck(lambda t: t.norm(p=3, dim=1), (x,))
    assert dtorch.autograd.gradcheck(lambda t: t.norm(p=1, dim=0), (x,))
    assert dtorch.autograd.gradcheck(lambda t: t.logsumexp(1), (x,))
    assert dtorch.autograd.gradcheck(lambda t: t.prod(1), (x,))
    assert dtorch.autograd.gradcheck(lambda t: t.cumprod(1), (x,))


def test_reduction_dim_errors():
    for lib in (torch, dtorch):
        x = lib.zeros(2, 3)
        with pytest.raises(IndexError, match="Dimension out of range"):
            x.sum(2)
        with pytest.raises(RuntimeError, match="appears multiple times"):
            x.sum((1, 1))


def test_dim_reductions_on_0d_inputs():
    for fn in (lambda x: x.max(0), lambda x: x.min(-1, keepdim=True), lambda x: x.argmax(0), lambda x: x.argmin(-1),
               lambda x: x.amax(0), lambda x: x.mean(0), lambda x: x.prod(0), lambda x: x.norm(dim=0),
               lambda x: x.cumsum(-1), lambda x: x.cumprod(0), lambda x: x.sum((0,)), lambda x: x.var(0, correction=0),
               lambda x: x.logsumexp(0), lambda x: x.all(0), lambda x: x.any(-1), lambda x: x.sort(0)):
        check_op(fn, None, [()])


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")  # both libraries warn about these
def test_var_std_edge_cases():
    check_op(lambda x: x.var(0), None, [(1, 3)])  # one sample: nan, and nan gradients
    check_op(lambda x: x.std(0), None, [(1, 3)])
    check_op(lambda x: x.std(1, correction=4), None, [(2, 3)])
    check_op(lambda x: x.var(correction=2), None, [(5,)])
    check_op(lambda x: x.std(dim=(0, 1), keepdim=True), None, [(3, 4)], noncontiguous=True)
    for lib in (torch, dtorch):
        with pytest.raises(RuntimeError, match="floating point"):
            lib.arange(4).var()
        with pytest.raises(RuntimeError, match="floating point"):
            lib.arange(4).std(0)
        with pytest.raises(RuntimeError, match="floating point"):
            lib.arange(4).norm()
    check_op(lambda x: x.logsumexp(1), None, [np.array([[-np.inf, -np.inf], [0.0, -np.inf]], dtype=np.float32)],
             grad=False)
    check_op(lambda x: x.logsumexp(0), None, [np.array([1000.0, 1000.0], dtype=np.float32)])


def test_top_level_reduction_functions():
    def lib(x):
        return dtorch if isinstance(x, dtorch.Tensor) else torch

    check_op(lambda x: lib(x).max(x), None, [(3, 4)])
    check_op(lambda x: lib(x).max(x, 1), None, [(3, 4)])
    check_op(lambda x: lib(x).min(x, dim=0, keepdim=True), None, [(3, 4)])
    check_op(lambda x, y: lib(x).max(x, y), None, [(3, 4), (4,)])
    check_op(lambda x, y: lib(x).min(x, y), None, [(3, 4), (3, 1)])
    check_op(lambda x: lib(x).sum(x, dim=(0, 1), keepdim=True), None, [(3, 4)])
    check_op(lambda x: lib(x).mean(x, 1), None, [(3, 4)])
    check_op(lambda x: lib(x).prod(x, 0), None, [(3, 4)])
    check_op(lambda x: lib(x).var(x, 1, unbiased=False), None, [(3, 4)])
    check_op(lambda x: lib(x).std(x, dim=0, correction=0), None, [(3, 4)])
    check_op(lambda x: lib(x).logsumexp(x, (0, 1)), None, [(3, 4)])
    check_op(lambda x: lib(x).argmax(x, dim=1, keepdim=True), None, [(3, 4)])
    check_op(lambda x: lib(x).cumsum(x, dim=1), None, [(3, 4)])
    check_op(lambda x: lib(x).norm(x, p=1), None, [(3, 4)])
    check_op(lambda x: lib(x).amax(x, dim=(0, 1)), None, [(3, 4)])
    check_op(lambda x: lib(x).all(x > 0), None, [(3, 4)])
    check_op(lambda x: lib(x).count_nonzero(x > 0, 1) if isinstance(x, dtorch.Tensor) else
             torch.count_nonzero(x > 0, 1), None, [(3, 4)])


def test_reductions_without_identity_reject_empty_dims_like_torch():
    for lib in (torch, dtorch):
        x = lib.zeros(0, 3)
        for name in ("amax", "amin", "max", "min", "argmax", "argmin"):
            with pytest.raises(IndexError, match=f"{name}\\(\\): Expected reduction dim 0 to have non-zero size"):
                getattr(x, name)(0)
        with pytest.raises(RuntimeError, match="Expected reduction dim to be specified"):
            x.max()
        with pytest.raises(IndexError, match="Expected reduction dim to be specified"):
            x.argmax()
    for fn in (lambda x: x.amax(1), lambda x: x.max(1), lambda x: x.argmin(1), lambda x: x.logsumexp(0),
               lambda x: x.prod(0), lambda x: x.sum(0), lambda x: x.mean(1)):
        check_op(fn, None, [(0, 3)])


def test_var_mean_std_mean_isclose_allclose_equal():
    def lib(x):
        return dtorch if isinstance(x, dtorch.Tensor) else torch

    check_op(lambda x: lib(x).var_mean(x, 1), None, [(3, 4)])
    check_op(lambda x: lib(x).std_mean(x, dim=0, keepdim=True), None, [(3, 4)])
    check_op(lambda x, y: lib(x).isclose(x, y, atol=0.5), None, [(3, 4), (4,)], grad=False)
    check_op(lambda x, y: lib(x).allclose(x, x + 1e-7) and not lib(x).allclose(x, y), None, [(3,), (3,)],
             grad=False)
    check_op(lambda x, y: lib(x).equal(x, x.clone()) and not lib(x).equal(x, y), None, [(3,), (3,)], grad=False)


def test_integer_cumulative_ops_give_int64():
    for dtype in (np.uint8, np.int8, np.int32, np.bool_):
        check_op(lambda x: x.cumprod(0), None, [ints((2, 3), 0, 3, dtype=dtype)])
        check_op(lambda x: x.cumsum(1), None, [ints((2, 3), 0, 3, dtype=dtype)])


# ---- edge shapes, layouts and dtypes (the audit of issue 3's test list) -------------------------------------------

REDUCTION_DIMS = [None, 1, -1, (0, 1)]


@pytest.mark.parametrize("dim", REDUCTION_DIMS, ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
def test_reductions_on_a_transposed_input(dim, keepdim):
    options = {} if dim is None else {"dim": dim, "keepdim": keepdim}
    for name in ("sum", "mean", "var", "std", "logsumexp", "amax", "amin", "norm"):
        if name in ("logsumexp", "amax", "amin") and dim is None:
            continue
        check_op(lambda x: getattr(x, name)(**options), None, [(3, 4)], noncontiguous=True)
    check_op(lambda x: (x > 0).all(**options), None, [(3, 4)], noncontiguous=True)
    check_op(lambda x: (x > 0).any(**options), None, [(3, 4)], noncontiguous=True)
    if isinstance(dim, int):
        for name in ("max", "min", "argmax", "argmin", "prod", "cumsum"):
            check_op(lambda x: getattr(x, name)(dim, **({} if name == "cumsum" else {"keepdim": keepdim})), None,
                     [(3, 4)], noncontiguous=True)


@pytest.mark.filterwarnings("error")  # torch computes these silently
def test_reductions_of_empty_inputs_give_torch_values_without_warnings():
    check_op(lambda x: x.mean(1), None, [(3, 0)])  # NaN, as in torch
    check_op(lambda x: x.mean(), None, [(0, 3)])
    check_op(lambda x: x.mean(0, keepdim=True), None, [(0, 3)], dtype="float16")
    check_op(lambda x: x.cumsum(1), None, [(0, 3)])
    check_op(lambda x: x.norm(dim=1), None, [(0, 3)])
    check_op(lambda x: x.norm(p=1), None, [(0, 3)])
    check_op(lambda x: x.sum((0, 1)), None, [(0, 3)])
    check_op(lambda x: x.all(1), None, [bools((0, 3))])
    check_op(lambda x: x.any(1), None, [bools((3, 0))])


@pytest.mark.filterwarnings("error")  # torch computes these silently
def test_reductions_of_0d_inputs():
    check_op(lambda x: x.std(0, correction=0), None, [()])  # a zero deviation passes no gradient (torch)
    check_op(lambda x: x.var(correction=0), None, [()])
    check_op(lambda x: x.norm(p=1), None, [()])
    check_op(lambda x: x.logsumexp(()), None, [()])
    check_op(lambda x: x.argmax(keepdim=True), None, [()])
    check_op(lambda x: x.argmax(0, keepdim=True), None, [()])
    check_op(lambda x: x.argmin(-1, keepdim=True), None, [ints((), 0, 3)])
    check_op(lambda x: x.min(0), None, [()])


def test_std_of_constant_slices_has_zero_gradient_like_torch():
    values = np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 3.0]], dtype=np.float32)
    check_op(lambda x: x.std(1), None, [values])
    check_op(lambda x: x.std(1, keepdim=True, correction=0), None, [values])
    check_op(lambda x: x.std(), None, [np.full((2, 2), 3.0, dtype=np.float32)])


@pytest.mark.filterwarnings("error")  # torch computes these silently
def test_logsumexp_of_all_minus_infinity_is_minus_infinity():
    check_op(lambda x: x.logsumexp(0), None, [np.array([-np.inf, -np.inf], dtype=np.float32)], grad=False)
    check_op(lambda x: x.logsumexp(1), None, [np.array([[-np.inf, -np.inf], [1.0, 2.0]], dtype=np.float32)],
             grad=False)
    check_op(lambda x: x.logsumexp(0), None, [np.array([np.inf, 1.0], dtype=np.float32)], grad=False)
    check_op(lambda x: x.logsumexp(0), None, [ints((3,))])


def test_reductions_with_tuple_and_list_dims_and_extra_norms():
    check_op(lambda x: x.logsumexp((0, 1), keepdim=True), None, [(3, 4)])
    check_op(lambda x: x.amax(()), None, [(3, 4)])
    check_op(lambda x: x.sum(()), None, [(3, 4)])
    check_op(lambda x: x.mean([0, 1]), None, [(3, 4)])
    check_op(lambda x: x.std((0, 1)), None, [(3, 4)], dtype="float64")
    check_op(lambda x: x.norm(p=-1, dim=1), None, [(3, 4)], low=0.5)
    check_op(lambda x: x.norm(p=0.5), None, [(3, 4)], low=0.5)
    check_op(lambda x: x.norm(p="fro"), None, [(3, 4)])
    check_op(lambda x: x.norm(p="fro", dim=(0, 1)), None, [(3, 4)])
    check_op(lambda x: dtorch.norm(x, dim=None, keepdim=True) if isinstance(x, dtorch.Tensor) else
             torch.norm(x, dim=None, keepdim=True), None, [(3, 4)])


def test_reductions_with_nan_ties_and_small_dtypes():
    with_nan = np.array([1.0, np.nan, 2.0], dtype=np.float32)
    for fn in (lambda x: x.max(), lambda x: x.max(0), lambda x: x.argmax(), lambda x: x.amax(), lambda x: x.min(0)):
        check_op(fn, None, [with_nan], grad=False)
    ties = np.array([[1.0, 0.0, 0.0]], dtype=np.float32)
    check_op(lambda x: x.argmin(), None, [ties])
    check_op(lambda x: x.min(1), None, [ties])
    check_op(lambda x: x.min(), None, [ties])
    check_op(lambda x: x.argmax(1), None, [np.array([[1.0, 3.0, 3.0]], dtype=np.float32)])
    check_op(lambda x: x.max(1), None, [np.array([[2, 2, 1]])])
    check_op(lambda x: x.min(0), None, [np.array([[2, 2], [2, 1]])])
    check_op(lambda x: x.max(), None, [bools((3,))])
    check_op(lambda x: x.sum(1, keepdim=True), None, [bools((3, 4))])
    check_op(lambda x: x.prod(), None, [bools((3,))])
    check_op(lambda x: x.cumsum(0), None, [bools((4,))])
    check_op(lambda x: x.sum(), None, [ints((100,), 100, 127, dtype=np.int8)])  # int64 accumulation
    check_op(lambda x: x.prod(), None, [ints((10,), 2, 5, dtype=np.int8)])
    check_op(lambda x: x.all(1), None, [ints((3, 2), 0, 2, dtype=np.uint8)])
    check_op(lambda x: x.any(), None, [ints((3, 2), 0, 2)])
    check_op(lambda x: x.mean(0), None, [(3, 4)], dtype="float16")
    check_op(lambda x: x.cumsum(0), None, [(3, 4)], dtype="float16")
    check_op(lambda x: dtorch.cumsum(x, 0, dtype=dtorch.float64) if isinstance(x, dtorch.Tensor) else
             torch.cumsum(x, 0, dtype=torch.float64), None, [(3,)])


def test_reduction_gradcheck_float64_more_forms():
    dtorch.manual_seed(2)
    gradcheck = dtorch.autograd.gradcheck
    x = dtorch.randn(2, 3, 4, dtype=dtorch.float64, requires_grad=True)
    assert gradcheck(lambda t: t.var((0, 2), keepdim=True), (x,))
    assert gradcheck(lambda t: t.std(-1, correction=2), (x,))
    assert gradcheck(lambda t: t.norm(p=2.5, dim=(0, 1)), (x,))
    assert gradcheck(lambda t: t.norm(p=float("inf"), dim=2), (x,))
    assert gradcheck(lambda t: t.logsumexp((1, 2)), (x,))
    assert gradcheck(lambda t: t.mean((0, 2)), (x,))
    assert gradcheck(lambda t: t.amax(1), (x,))
    assert gradcheck(lambda t: t.max(2).values, (x,))
    assert gradcheck(lambda t: t.cumsum(1), (x,))


def test_all_any_with_an_empty_dim_tuple_reduce_nothing():
    check_op(lambda x: x.all(()), None, [bools((3, 4))])
    check_op(lambda x: x.any(dim=(), keepdim=True), None, [bools((3, 4))])
    check_op(lambda x: x.all(dim=[]), None, [bools((3, 4))])
    check_op(lambda x: x.sum(()), None, [(3, 4)])  # sum and mean reduce every dim for ()
    check_op(lambda x: x.mean(()), None, [(3, 4)])
    check_op(lambda x: x.any(()), None, [np.array([[0.0, 1.5]], dtype=np.float32)], grad=False)
    check_op(lambda x: x.all(()), None, [np.array([[0, 3]], dtype=np.uint8)])


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
