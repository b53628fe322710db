"""PyTorch's everyday tensor functions added for issue 16, each against PyTorch forward and backward with
``check_op``: scatter_reduce, index_put(_), tril/triu_indices, median/nanmedian, quantile/nanquantile, isin, diff,
kron, rot90, dstack/column_stack/atleast_*d, histc, cross/linalg.cross, cummax/cummin, nan_to_num, range keys."""

import warnings

import numpy as np
import pytest
import torch

import dtorch
from helpers import check_op, ints


def lib(x):
    return torch if isinstance(x, torch.Tensor) else dtorch


# ---- scatter_reduce, index_put ----------------------------------------------------------------------------------------

INDEX = np.array([[0, 2, 0, 1], [3, 3, 1, 1]])


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce(reduce, include_self):
    check_op(lambda x, i, s: x.scatter_reduce(1, i, s, reduce, include_self=include_self), None,
             [(2, 5), INDEX, (2, 4)], dtype="float64")
    check_op(lambda x, i, s: lib(x).scatter_reduce(x, 0, i, s, reduce=reduce, include_self=include_self), None,
             [(4, 3), np.array([[0, 3, 0], [0, 1, 3]]), (2, 3)], dtype="float64")


@pytest.mark.parametrize("reduce", ["prod", "amax", "amin"])
def test_scatter_reduce_with_zeros_and_ties(reduce):
    x = np.array([[0.0, 2.0, 3.0, 2.0, 1.0]])
    src = np.array([[3.0, 0.0, 2.0, 3.0]])
    check_op(lambda a, i, b: a.scatter_reduce(1, i, b, reduce), None, [x, np.array([[2, 0, 1, 2]]), src],
             dtype="float64")


def test_scatter_reduce_integer_mean_and_in_place():
    check_op(lambda x, i, s: x.scatter_reduce(0, i, s, "mean"), None,
             [ints((5,), 0, 9), np.array([0, 0, 4]), ints((3,), 0, 9, seed=3)])
    for library in (torch, dtorch):
        x = library.zeros(3)
        assert x.scatter_reduce_(0, library.tensor([0, 0]), library.tensor([2.0, 5.0]), "amax") is x
        assert x.tolist() == [5.0, 0.0, 0.0]


def test_scatter_reduce_second_order():
    check_op(lambda x, i, s: x.scatter_reduce(1, i, s * s, "amax") ** 2, None, [(2, 5), INDEX, (2, 4)],
             dtype="float64", second_order=True)
    check_op(lambda x, i, s: x.scatter_reduce(1, i, s * s, "mean", include_self=False) ** 2, None,
             [(2, 5), INDEX, (2, 4)], dtype="float64", second_order=True)


def test_scatter_reduce_bad_arguments():
    x = dtorch.zeros(3)
    with pytest.raises(RuntimeError, match="reduce argument must be either sum, prod, mean, amax or amin"):
        x.scatter_reduce(0, dtorch.tensor([0]), dtorch.ones(1), "max")
    with pytest.raises(RuntimeError, match="Expected self.dtype to be equal to src.dtype"):
        x.scatter_reduce(0, dtorch.tensor([0]), dtorch.ones(1, dtype=dtorch.float64), "sum")


@pytest.mark.parametrize("accumulate", [False, True])
def test_index_put(accumulate):
    rows, cols = np.array([0, 2, 0]), np.array([1, 3, 1])

    def put(x, v, r, c):
        return x.index_put((r, c), v, accumulate=accumulate) * 2

    if accumulate:
        check_op(put, None, [(3, 4), (3,), rows, cols])
    else:
        check_op(put, None, [(3, 4), (2,), np.array([0, 2]), np.array([1, 3])])
    check_op(lambda x, v, r: x.index_put((r,), v, accumulate=accumulate), None, [(3, 4), (4,), np.array([2])])


def test_index_put_in_place_and_errors():
    for library in (torch, dtorch):
        x = library.zeros(2, 3)
        y = x.index_put_((library.tensor([0, 0]), library.tensor([1, 1])), library.tensor(1.5), accumulate=True)
        assert y is x and x.tolist() == [[0.0, 3.0, 0.0], [0.0, 0.0, 0.0]]
    with pytest.raises(RuntimeError, match="Index put requires the source and destination dtypes match"):
        dtorch.zeros(3).index_put_((dtorch.tensor([0]),), dtorch.tensor([1]))
    with pytest.raises(IndexError, match="too many indices"):
        dtorch.zeros(3).index_put((dtorch.tensor([0]), dtorch.tensor([0])), dtorch.tensor(1.0))


# ---- triangle indices, median, quantile -------------------------------------------------------------------------------


@pytest.mark.parametrize("row, col, offset", [(3, 3, 0), (3, 4, 1), (4, 3, -1), (2, 5, -3), (0, 3, 0)])
def test_tril_and_triu_indices(row, col, offset):
    for name in ("tril_indices", "triu_indices"):
        ours = getattr(dtorch, name)(row, col, offset)
        theirs = getattr(torch, name)(row, col, offset)
        assert ours.dtype == dtorch.int64 and ours.tolist() == theirs.tolist(), name
    assert dtorch.tril_indices(3, 3, dtype=dtorch.int32).dtype == dtorch.int32


@pytest.mark.parametrize("name", ["median", "nanmedian"])
def test_median_values_indices_and_gradient(name):
    def fn(x):
        return getattr(lib(x), name)(x)

    check_op(fn, None, [(3, 5)])
    check_op(lambda x: getattr(x, name)(1), None, [(3, 4)])
    check_op(lambda x: getattr(x, name)(0, keepdim=True), None, [(5, 2)])
    check_op(lambda x: getattr(x, name)(-1), None, [(2, 3, 4)], dtype="float64")
    check_op(lambda x: getattr(x, name)(), None, [()])


@pytest.mark.parametrize("name", ["median", "nanmedian"])
def test_median_with_nan(name):
    x = np.array([[1.0, 5.0, 2.0, 2.0, 7.0], [3.0, np.nan, 1.0, 0.0, 4.0], [np.nan] * 5])
    check_op(lambda t: getattr(t, name)(1), None, [x], grad=False)
    check_op(lambda t: getattr(t, name)(), None, [x[:2]], grad=False)


QUANTILE_INTERPOLATIONS = ["linear", "lower", "higher", "midpoint", "nearest"]


@pytest.mark.parametrize("interpolation", QUANTILE_INTERPOLATIONS)
@pytest.mark.parametrize("name", ["quantile", "nanquantile"])
def test_quantile(interpolation, name):
    q = np.array([0.0, 0.25, 0.5, 0.625, 0.9, 1.0])

    def with_q(fn):
        return lambda x: fn(x, lib(x).tensor(q, dtype=x.dtype))

    check_op(lambda x: getattr(x, name)(0.3, interpolation=interpolation), None, [(7,)], dtype="float64")
    check_op(with_q(lambda x, qs: getattr(x, name)(qs, 1, interpolation=interpolation)), None, [(3, 6)],
             dtype="float64")
    check_op(with_q(lambda x, qs: getattr(x, name)(qs, 0, keepdim=True, interpolation=interpolation)), None,
             [(5, 2)], dtype="float64")
    check_op(lambda x: getattr(x, name)(0.5, keepdim=True, interpolation=interpolation), None, [(2, 3)],
             dtype="float64")


@pytest.mark.parametrize("name", ["quantile", "nanquantile"])
def test_quantile_with_nan(name):
    x = np.array([[1.0, np.nan, 3.0, 0.5], [np.nan] * 4, [2.0, 1.0, 4.0, 3.0]])
    check_op(lambda t: getattr(t, name)(0.4, 1), None, [x], grad=False)


def test_quantile_errors_as_pytorch():
    x = dtorch.ones(3)
    with pytest.raises(RuntimeError, match=r"q values must be in the range \[0, 1\]"):
        x.quantile(1.5)
    with pytest.raises(RuntimeError, match="input tensor must be either float or double dtype"):
        dtorch.tensor([1, 2]).quantile(0.5)
    with pytest.raises(RuntimeError, match="interpolation must be one of"):
        x.quantile(0.5, interpolation="cubic")


# ---- isin, diff, kron, rot90, stacking --------------------------------------------------------------------------------


def test_isin():
    a, b = ints((3, 4), 0, 6), ints((5,), 0, 6, seed=9)
    check_op(lambda x, y: lib(x).isin(x, y), None, [a, b])
    check_op(lambda x, y: lib(x).isin(x, y, invert=True), None, [a, b])
    check_op(lambda x: lib(x).isin(x, 3), None, [a])
    check_op(lambda x: lib(x).isin(2, x), None, [a])
    check_op(lambda x, y: lib(x).isin(x, y), None, [np.array([0.5, 1.0, 2.0]), np.array([1.0, 3.0])], grad=False)


@pytest.mark.parametrize("kwargs", [{}, {"n": 2}, {"dim": 0}, {"n": 3, "dim": 1}, {"n": 9}])
def test_diff(kwargs):
    check_op(lambda x: lib(x).diff(x, **kwargs), None, [(4, 5)])


def test_diff_prepend_append_and_bool():
    check_op(lambda x, p, a: lib(x).diff(x, dim=1, prepend=p, append=a), None, [(3, 4), (3, 2), (3, 1)])
    check_op(lambda x: x.diff(prepend=lib(x).tensor([1.0]), append=lib(x).tensor([0.5, 2.0])), None, [(4,)])
    check_op(lambda x: lib(x).diff(x), None, [np.array([True, False, False, True])])


@pytest.mark.parametrize("shapes", [[(2,), (3,)], [(2, 3), (2, 2)], [(2, 1, 2), (3, 2)], [(3,), (2, 2)]])
def test_kron(shapes):
    check_op(lambda a, b: lib(a).kron(a, b), None, shapes)


@pytest.mark.parametrize("k", [0, 1, 2, 3, -1, 5])
def test_rot90(k):
    check_op(lambda x: lib(x).rot90(x, k), None, [(3, 4)])
    check_op(lambda x: x.rot90(k, [2, 0]), None, [(2, 3, 4)])


def test_rot90_errors():
    with pytest.raises(RuntimeError, match="expected rotation dims to be different"):
        dtorch.rot90(dtorch.ones(2, 2), 1, [1, 1])
    with pytest.raises(RuntimeError, match="expected total rotation dims == 2"):
        dtorch.rot90(dtorch.ones(2, 2), 1, [0])


@pytest.mark.parametrize("shapes", [[(3,), (3,)], [(2, 3), (2, 3)], [(), ()], [(2, 2, 1), (2, 2, 3)]])
def test_dstack(shapes):
    check_op(lambda a, b: lib(a).dstack([a, b]), None, shapes)


@pytest.mark.parametrize("shapes", [[(3,), (3,)], [(2, 3), (2, 1)], [(), ()], [(2,), (2, 3)]])
def test_column_stack(shapes):
    check_op(lambda a, b: lib(a).column_stack((a, b)), None, shapes)


def test_atleast_nd():
    for name in ("atleast_1d", "atleast_2d", "atleast_3d"):
        for shape in [(), (3,), (2, 3), (2, 3, 4)]:
            check_op(lambda x: getattr(lib(x), name)(x), None, [shape])
        check_op(lambda x, y: getattr(lib(x), name)(x, y), None, [(), (2,)])


# ---- histc, cross, cummax/cummin, nan_to_num, range keys --------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [{}, {"bins": 4, "min": 0, "max": 3}, {"bins": 7, "min": -1, "max": 1},
                                    {"bins": 3}])
def test_histc(kwargs):
    check_op(lambda x: lib(x).histc(x, **kwargs), None, [(50,)], grad=False)
    check_op(lambda x: x.histc(**kwargs), None, [np.array([2.0, 2.0])], grad=False)


def test_histc_errors():
    with pytest.raises(RuntimeError, match="not implemented for 'Long'"):
        dtorch.histc(dtorch.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="max must be larger than min"):
        dtorch.histc(dtorch.ones(2), min=2, max=1)


def test_cross():
    check_op(lambda a, b: lib(a).linalg.cross(a, b), None, [(4, 3), (4, 3)])
    check_op(lambda a, b: lib(a).linalg.cross(a, b, dim=0), None, [(3, 2), (3, 1)])
    check_op(lambda a, b: lib(a).cross(a, b, dim=1), None, [(2, 3, 2), (2, 3, 2)])
    check_op(lambda a, b: a.cross(b, dim=-1) ** 2, None, [(2, 3), (2, 3)], dtype="float64", second_order=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_op(lambda a, b: lib(a).cross(a, b), None, [(2, 3, 3), (2, 3, 3)])
    with pytest.warns(UserWarning, match="Using torch.cross without specifying the dim arg is deprecated"):
        dtorch.cross(dtorch.ones(3), dtorch.ones(3))
    with pytest.raises(RuntimeError, match="must have length 3"):
        dtorch.linalg.cross(dtorch.ones(2), dtorch.ones(2))


@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_cummax_and_cummin(name):
    check_op(lambda x: getattr(lib(x), name)(x, 1), None, [(3, 6)])
    check_op(lambda x: getattr(x, name)(0), None, [(5, 2)], dtype="float64")
    check_op(lambda x: getattr(x, name)(0), None, [()])
    ties = np.array([1.0, 3.0, 3.0, 2.0, np.nan, 5.0, 1.0, 0.0])
    check_op(lambda x: getattr(x, name)(0), None, [ties], grad=False)
    check_op(lambda x: getattr(x, name)(-1), None, [ints((2, 7), 0, 3)])


def test_nan_to_num():
    x = np.array([np.nan, np.inf, -np.inf, 1.5, -2.0])
    check_op(lambda t: lib(t).nan_to_num(t), None, [x])
    check_op(lambda t: lib(t).nan_to_num(t, nan=1.0, posinf=9.0, neginf=-9.0) * t.detach().nan_to_num(), None, [x])
    check_op(lambda t: t.nan_to_num(), None, [x.astype(np.float64)])
    for library in (torch, dtorch):
        t = library.tensor([float("nan"), 1.0])
        assert t.nan_to_num_(nan=3.0) is t and t.tolist() == [3.0, 1.0]


def test_indexing_with_a_python_range():
    check_op(lambda x: x[range(1, 3)], None, [(4, 3)])
    check_op(lambda x: x[:, range(0, 3, 2)] * 2, None, [(4, 3)])
    for library in (torch, dtorch):
        x = library.zeros(5)
        x[range(1, 4)] = 1.0
        assert x.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


# ---- binary ops with unsupported operands, integer range checks of tensor(), 1-D class targets -----------------------


@pytest.mark.parametrize("value", ["a", None, object()])
def test_binary_ops_reject_non_numbers_with_a_type_error(value):
    for symbol in ("+", "-", "*", "/", "**"):
        messages = []
        for library in (torch, dtorch):
            with pytest.raises(TypeError) as error:
                eval(f"x {symbol} value", {"x": library.ones(2), "value": value})
            messages.append(str(error.value))
        if not (symbol == "*" and isinstance(value, str)):  # torch tries str * tensor as sequence repetition
            assert messages[1] == messages[0]
    with pytest.raises(TypeError, match="unsupported operand"):
        dtorch.add(dtorch.ones(2), None)


@pytest.mark.parametrize("data, dtype", [([300], "int8"), ([-129], "int8"), ([1e10], "int32"), ([200.5], "int8"),
                                         ([float("inf")], "int32"), ([70000], "int16")])
def test_tensor_rejects_integers_out_of_range(data, dtype):
    for library in (torch, dtorch):
        with pytest.raises(RuntimeError, match=f"value cannot be converted to type {dtype} without overflow"):
            library.tensor(data, dtype=getattr(library, dtype))


@pytest.mark.parametrize("data, dtype", [([-1], "uint8"), ([-3], "uint8"), ([3.7], "int8"), ([255], "uint8"),
                                         ([True], "int8"), ([[1, 2], [3, 127]], "int8")])
def test_tensor_integer_conversions_that_pytorch_allows(data, dtype):
    assert dtorch.tensor(data, dtype=getattr(dtorch, dtype)).tolist() == \
        torch.tensor(data, dtype=getattr(torch, dtype)).tolist()


@pytest.mark.parametrize("target", [np.array([2]), np.array(2)])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_class_losses_on_a_1d_input_take_a_one_element_target(target, reduction):
    grad = target.ndim == 0  # torch's own backward rejects the (1,) target ("size mismatch"); dtorch's works
    check_op(lambda x, t: lib(x).nn.functional.nll_loss(x, t, reduction=reduction), None, [(4,), target], grad=grad)
    check_op(lambda x, t: lib(x).nn.functional.cross_entropy(x, t, reduction=reduction), None, [(4,), target],
             grad=grad)
    x = dtorch.randn(4, requires_grad=True)
    dtorch.nn.functional.cross_entropy(x, dtorch.tensor([2]), reduction=reduction).backward()
    expected = x.detach().softmax(0) - dtorch.nn.functional.one_hot(dtorch.tensor(2), 4)
    np.testing.assert_allclose(x.grad.numpy(), expected.numpy(), rtol=1e-5, atol=1e-7)
