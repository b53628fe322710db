"""Indexing against PyTorch: ``x[key]`` with every kind of key, ``x[key] = v`` (with autograd), index_select,
gather, scatter, scatter_add, masked_fill, masked_select; gradcheck in float64 for the tricky backwards."""

import numpy as np
import pytest
import torch

import dtorch
from helpers import bools, check_op, ints


def _key_value(key):
    """Index arrays in a key become the same tensor type as the indexed tensor (by library)."""
    def fn(x):
        lib = dtorch if isinstance(x, dtorch.Tensor) else torch
        parts = key if isinstance(key, tuple) else (key,)
        converted = tuple(lib.from_numpy(p.copy()) if isinstance(p, np.ndarray) else p for p in parts)
        return x[converted if isinstance(key, tuple) else converted[0]]
    return fn


BASIC_KEYS = [
    1, -1, (1, 2), slice(1, 3), slice(None, None, 2), (slice(None), 1), (Ellipsis, 0), (None, 1), (1, None),
    (slice(None), None, slice(1, None)), (Ellipsis, None), (0, Ellipsis, 1), slice(5, 10), slice(-2, None),
    (slice(1, 1),), (), (Ellipsis,),
]


@pytest.mark.parametrize("key", BASIC_KEYS, ids=repr)
def test_basic_indexing(key):
    check_op(_key_value(key), None, [(3, 4, 5)])
    check_op(_key_value(key), None, [(3, 4, 5)], noncontiguous=True)


ADVANCED_KEYS = [
    np.array([0, 2, 2]),
    np.array([[0, 1], [2, 0]]),
    (np.array([0, 2]), np.array([1, 3])),
    (slice(None), np.array([3, 0, 3])),
    (np.array([1, 0]), slice(None), np.array([4, 2])),  # advanced indices apart: their dims go first
    (Ellipsis, np.array([0, 0, 1])),
    (np.array([0, 2]), 1),
    np.array([-1, 0]),
    np.array([], dtype=np.int64),
    (None, np.array([1, 1])),
    np.array([True, False, True]),
    (slice(None), np.array([True, False, True, True])),
    bools((3, 4), seed=11),
    bools((3, 4, 5), seed=12),
    np.array(1),
    np.array([0, 2], dtype=np.int32),
    (np.array([[0], [2]]), np.array([1, 2, 3])),  # broadcast index arrays
]


@pytest.mark.parametrize("key", ADVANCED_KEYS, ids=lambda k: repr(k).replace("\n", ""))
def test_advanced_indexing_with_repeated_indices(key):
    check_op(_key_value(key), None, [(3, 4, 5)])
    check_op(_key_value(key), None, [(3, 4, 5)], noncontiguous=True)


def test_indexing_0d_and_empty():
    check_op(lambda x: x[None], None, [()])
    check_op(lambda x: x[...], None, [()])
    check_op(_key_value(np.array(True)), None, [()])
    check_op(lambda x: x[1:], None, [(0, 3)])
    check_op(lambda x: x[:, 1], None, [(0, 3)])
    check_op(lambda x: x[[0, 0, 1]], None, [(2, 3)])  # a list key is an index tensor
    check_op(lambda x: x[ints((2,), 0, 3)] if isinstance(x, dtorch.Tensor) else x[torch.from_numpy(ints((2,), 0, 3))],
             None, [(3,)])


def test_index_errors():
    for lib in (torch, dtorch):
        x = lib.zeros(3, 4)
        with pytest.raises(IndexError):
            x[3]
        with pytest.raises(IndexError):
            x[0, 0, 0]
        with pytest.raises(IndexError):
            x[lib.tensor([0, 5])]
        with pytest.raises(IndexError):
            x[lib.tensor([0.0])]


# ---- __setitem__ -------------------------------------------------------------------------------------------------


def _setitem(key, value_is_input=True, scalar=None):
    def fn(x, *rest):
        lib = dtorch if isinstance(x, dtorch.Tensor) else torch
        parts = key if isinstance(key, tuple) else (key,)
        converted = tuple(lib.from_numpy(p.copy()) if isinstance(p, np.ndarray) else p for p in parts)
        y = x * 1
        y[converted if isinstance(key, tuple) else converted[0]] = rest[0] if rest else scalar
        return y
    return fn


@pytest.mark.parametrize("key, value_shape", [
    (1, (4,)),
    (1, (1,)),
    (1, ()),
    ((slice(None), 2), (3,)),
    ((slice(None), slice(1, 3)), (2,)),
    (slice(None, None, 2), (1, 4)),
    ((Ellipsis, 0), (3,)),
    (np.array([0, 2]), (4,)),
    (np.array([0, 2]), (2, 4)),
    ((np.array([0, 2]), np.array([1, 3])), (2,)),
    (np.array([True, False, True]), (4,)),
    (bools((3, 4), seed=3), ()),
    ((slice(None), np.array([3, 0])), (3, 1)),
])
def test_setitem_broadcasting_with_autograd(key, value_shape):
    check_op(_setitem(key), None, [(3, 4), value_shape])
    check_op(_setitem(key), None, [(3, 4), value_shape], noncontiguous=True)


def test_setitem_scalars_and_without_grad():
    check_op(_setitem(1, scalar=2.5), None, [(3, 4)])
    check_op(_setitem((slice(None), 0), scalar=-1), None, [(3, 4)])
    check_op(_setitem(bools((3, 4)), scalar=0.0), None, [(3, 4)])
    check_op(_setitem(np.array([0, 0]), scalar=7), None, [(3, 4)])  # repeated index, last write wins (same value)
    check_op(_setitem(np.array([1]), scalar=3), None, [ints((3, 4))])
    check_op(_setitem(slice(0, 2)), None, [ints((3, 4)), (4,)], grad=False)  # a float written to an int tensor
    check_op(_setitem(1), None, [(3, 4), np.arange(4, dtype=np.float64)])  # the value is cast to x's dtype
    for lib in (torch, dtorch):
        x = lib.zeros(2, 3)
        x[0] = lib.tensor([1.0, 2.0, 3.0])
        x[:, 1] = 5
        x[x > 4] = -1
        assert x.tolist() == [[1.0, -1.0, 3.0], [0.0, -1.0, 0.0]]
        with pytest.raises(RuntimeError, match="4"):
            x[0] = lib.zeros(4)
    with pytest.raises(RuntimeError, match=r"value tensor of shape \[4\] cannot be broadcast to indexing result of "
                                           r"shape \[3\]"):
        dtorch.zeros(2, 3)[0] = dtorch.zeros(4)


def test_setitem_on_leaf_requiring_grad_raises():
    for lib in (torch, dtorch):
        x = lib.zeros(3, requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            x[0] = 1.0
        with lib.no_grad():
            x[0] = 1.0
        assert x.tolist() == [1.0, 0.0, 0.0]


def test_setitem_value_gradient_into_non_leaf():
    def fn(x, v):
        y = x * 2  # (exp would save its output, which the assignment then modifies)
        y[1:, 0] = v * 2
        return y * x
    check_op(fn, None, [(3, 2), (2,)])


# ---- index_select, gather, scatter, masked ops --------------------------------------------------------------------


def _lib(x):
    return dtorch if isinstance(x, dtorch.Tensor) else torch


def test_index_select():
    check_op(lambda x, i: x.index_select(0, i), None, [(4, 3), ints((5,), 0, 4)])
    check_op(lambda x, i: x.index_select(1, i), None, [(4, 3), ints((5,), 0, 3)], noncontiguous=True)
    check_op(lambda x, i: _lib(x).index_select(x, -1, i), None, [(2, 4, 3), ints((2,), 0, 3)])
    check_op(lambda x, i: x.index_select(0, i), None, [(4, 3), ints((0,), 0, 4)])
    check_op(lambda x, i: x.index_select(0, i), None, [(4,), ints((), 0, 4)])
    check_op(lambda x, i: x.index_select(0, i), None, [ints((4, 2)), ints((3,), 0, 4)])


def test_gather():
    check_op(lambda x, i: x.gather(0, i), None, [(4, 3), ints((2, 3), 0, 4)])
    check_op(lambda x, i: x.gather(1, i), None, [(4, 3), ints((4, 5), 0, 3)])
    check_op(lambda x, i: x.gather(1, i), None, [(4, 3), ints((2, 2), 0, 3)], noncontiguous=True)
    check_op(lambda x, i: _lib(x).gather(x, -1, i), None, [(2, 3, 4), ints((2, 3, 1), 0, 4)])
    check_op(lambda x, i: x.gather(0, i), None, [(4,), ints((0,), 0, 4)])
    check_op(lambda x, i: x.take_along_dim(i, 1), None, [(3, 4), ints((3, 2), 0, 4)])
    for lib in (torch, dtorch):
        with pytest.raises(RuntimeError):
            lib.zeros(3, 4).gather(1, lib.zeros(3, dtype=lib.int64))


def test_scatter_and_scatter_add():
    index = np.array([[0, 1, 2, 0], [2, 0, 0, 1]])  # repeated targets along dim 0
    unique = np.array([[0, 1, 2, 0], [1, 2, 0, 1]])  # a permutation per column: scatter's result is well-defined
    check_op(lambda x, i, s: x.scatter(0, i, s), None, [(3, 4), unique, (2, 4)])
    # src larger than index (torch's own backward rejects this shape; gradcheck covers dtorch's below)
    check_op(lambda x, i, s: x.scatter(0, i, s), None, [(3, 4), unique, (3, 5)], grad=False)
    check_op(lambda x, i, s: x.scatter_add(0, i, s), None, [(3, 4), index, (2, 4)])
    check_op(lambda x, i, s: x.scatter_add(1, i, s), None, [(2, 5), index.T.copy()[:2], (2, 2)],
             noncontiguous=True)
    check_op(lambda x, i: x.scatter(0, i, 2.5), None, [(3, 4), unique])
    check_op(lambda x, i, s: _lib(x).scatter(x, 1, i, s), None, [(2, 3), np.array([[2], [0]]), (2, 1)])
    check_op(lambda x, i, s: _lib(x).scatter_add(x, -1, i, s), None, [(2, 3), np.array([[2, 2]] * 2), (2, 2)])
    check_op(lambda x, i, s: (x * 1).scatter_(0, i, s), None, [(3, 4), unique, (2, 4)])
    check_op(lambda x, i, s: (x * 1).scatter_add_(0, i, s), None, [(3, 4), index, (2, 4)])
    check_op(lambda x, i, s: x.scatter_add(0, i, s), None, [ints((3, 4)), index, ints((2, 4))])


def test_masked_fill_and_masked_select():
    check_op(lambda x, m: x.masked_fill(m, 0.5), None, [(3, 4), bools((3, 4))])
    check_op(lambda x, m: x.masked_fill(m, -1), None, [(3, 4), bools((4,))])
    check_op(lambda x, m: x.masked_fill(m, float("-inf")), None, [(2, 3, 4), bools((3, 1))], noncontiguous=True)
    check_op(lambda x, m: x.masked_fill(m, _lib(x).tensor(2.0)), None, [(3, 4), bools((3, 4))])
    check_op(lambda x, m: x.masked_fill(m, 3), None, [ints((3, 4)), bools((3, 4))])
    check_op(lambda x, m: (x * 1).masked_fill_(m, 0.0), None, [(3, 4), bools((3, 4))])
    check_op(lambda x, m: x.masked_select(m), None, [(3, 4), bools((3, 4))])
    check_op(lambda x, m: x.masked_select(m), None, [(3, 4), bools((4,))])
    check_op(lambda x, m: _lib(x).masked_select(x, m), None, [(4,), bools((3, 4))])
    check_op(lambda x, m: x.masked_select(m), None, [(3, 4), np.zeros((3, 4), dtype=bool)])
    for lib in (torch, dtorch):
        with pytest.raises(RuntimeError, match="only supports boolean masks"):
            lib.zeros(3).masked_fill(lib.zeros(3, dtype=lib.int64), 1.0)


def test_nonzero_and_where_one_argument():
    values = np.array([[0.0, 1.0, 0.0], [2.0, 0.0, 3.0]], dtype=np.float32)
    check_op(lambda x: x.nonzero(), None, [values], grad=False)
    check_op(lambda x: x.nonzero(as_tuple=True), None, [values], grad=False)
    check_op(lambda x: _lib(x).where(x > 0), None, [values], grad=False)
    check_op(lambda x: x.nonzero(), None, [np.zeros((0, 2), dtype=np.float32)], grad=False)


# ---- gradcheck in float64 ------------------------------------------------------------------------------------------


def _float64(*shape):
    return dtorch.randn(*shape, dtype=dtorch.float64, requires_grad=True)


def test_gradcheck_indexing_and_scatter():
    dtorch.manual_seed(0)
    gradcheck = dtorch.autograd.gradcheck
    x = _float64(3, 4)
    index = dtorch.tensor([[0, 1, 2, 0], [2, 0, 0, 1]])
    assert gradcheck(lambda t: t[dtorch.tensor([0, 2, 2]), 1:], (x,))
    assert gradcheck(lambda t: t[t.detach() > 0], (x,))
    assert gradcheck(lambda t: t[None, ..., ::2], (x,))
    assert gradcheck(lambda t: t.index_select(1, dtorch.tensor([3, 3, 0])), (x,))
    assert gradcheck(lambda t: t.gather(0, index), (x,))
    src = _float64(2, 4)
    assert gradcheck(lambda t, s: t.scatter_add(0, index, s), (x, src))
    assert gradcheck(lambda t, s: t.scatter(0, dtorch.tensor([[0, 1, 2, 0], [1, 2, 0, 1]]), s), (x, src))
    assert gradcheck(lambda t, s: t.scatter(0, dtorch.tensor([[0, 1, 2, 0], [1, 2, 0, 1]]), s), (x, _float64(3, 5)))
    assert gradcheck(lambda t: t.masked_fill(dtorch.tensor([True, False, True, False]), 0.0), (x,))
    v = _float64(4)

    def put(t, value):
        y = t * 1
        y[dtorch.tensor([0, 2])] = value
        return y

    assert gradcheck(put, (x, v))


def test_inplace_on_indexed_views_with_autograd():
    def fn(x, w):
        y = x * 2
        y[:, 0] += 1
        y[1] *= 3
        y[0].mul_(w)
        y[1, 1:].exp_()
        return y * y

    check_op(fn, None, [(2, 3), (3,)])
    check_op(fn, None, [(2, 3), (3,)], noncontiguous=True)
    check_op(lambda x: (x * 1)[..., -1].clamp_(max=0.5), None, [(3, 2)])

    def chained_keys(x, v):
        y = x * 2
        y[0][1] = 5.0  # __setitem__ on a view: recorded on the base
        y[1][:2] = v
        return y

    check_op(chained_keys, None, [(3, 3), (2,)])

    def into_non_leaf(x, v):
        y = x * 2
        y[1:].copy_(v)
        return y

    check_op(into_non_leaf, None, [(3, 2), (2,)])
    for lib in (torch, dtorch):
        x = lib.ones(2, 3, requires_grad=True)
        with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
            x[0].add_(1)
    # a view of a view (index of a transpose) is recorded on the root base (tests/ops/test_views.py has more)
    check_op(lambda x: _add_one_to_row(x), None, [(2, 3)])


def _add_one_to_row(x):
    y = x * 1
    y.t()[0].add_(1)
    return y * y


# ---- edge shapes, layouts and dtypes (the audit of issue 3's test list) -------------------------------------------


def _set(key, scalar=None):
    """``y = x * 1; y[key] = value``: ``key`` may be a function of the library (for index tensors)."""
    def fn(x, *rest):
        y = x * 1
        y[key(_lib(x)) if callable(key) else key] = rest[0] if rest else scalar
        return y
    return fn


def test_getitem_edge_keys():
    check_op(lambda x: x[1:, ::2], None, [(4, 6)], noncontiguous=True)
    check_op(lambda x, i: x[i], None, [(4, 3), np.array(2)])
    check_op(lambda x, i: x[i], None, [(4, 3), ints((2,), 0, 4, dtype=np.int32)])
    check_op(lambda x, m: x[m], None, [(3,), np.array(False)])
    check_op(lambda x, m: x[m], None, [(0, 3), bools((0,))])
    check_op(lambda x, i: x[i], None, [(0, 3), ints((0,))])
    check_op(lambda x, i: x[:, i], None, [(0, 3), ints((2,), 0, 3)])
    check_op(lambda x: x[[0, 1], [1, 2]], None, [(3, 4)])
    check_op(lambda x, m: x[m, 1], None, [(3, 4), bools((3,))])
    check_op(lambda x, m: x[m], None, [(3, 4, 2), bools((3, 4))])
    check_op(lambda x, i, j: x[:, i, j], None, [(3, 4, 5), ints((2,), 0, 4), ints((2,), 0, 5)], noncontiguous=True)
    check_op(lambda x, i: x[None, i, None], None, [(3, 4), ints((2,), 0, 3)])
    check_op(lambda x, i: x[..., i, :], None, [(2, 3, 4), ints((2,), 0, 3)])
    check_op(lambda x: x[_lib(x).tensor(1)], None, [(3, 4)])
    check_op(lambda x: x[[-1, -3]], None, [(3, 4)])
    check_op(lambda x: x[-2:, :-1], None, [(3, 4)])
    check_op(lambda x: x[1:100, -100:2], None, [(3, 4)])
    check_op(lambda x: x[2], None, [(5,)], noncontiguous=True)
    check_op(lambda x: x[None, None], None, [()])
    check_op(lambda x: x[..., None], None, [()])
    check_op(lambda x, i: x[..., i], None, [(3,), np.array([0, 0, 2])])
    check_op(lambda x, i: x[i], None, [ints((4, 3)), ints((2,), 0, 4)])


def test_setitem_edge_keys_and_broadcasting():
    check_op(_set(()), None, [(), ()])
    check_op(_set(...), None, [(), ()])
    check_op(_set(...), None, [(3, 4), (4,)])
    check_op(_set((None, 1)), None, [(3, 4), (4,)])
    check_op(_set(slice(0, 0)), None, [(3, 4), (4,)])
    check_op(_set(slice(None)), None, [(0, 4), (4,)])
    check_op(_set((slice(None, None, 2), slice(1, None))), None, [(4, 4), (3,)])
    check_op(_set(lambda lib: lib.tensor([0, 2])), None, [(3, 4), (1, 4)])
    check_op(_set(lambda lib: lib.tensor([True, False, True])), None, [(3, 4), (2, 1)])
    check_op(_set(lambda lib: lib.tensor([[True, False, True, False]] * 3)), None, [(3, 4), (1,)])
    check_op(_set(lambda lib: (lib.tensor([0, 2]), slice(1, 3))), None, [(3, 4), (2,)])
    check_op(_set(lambda lib: lib.tensor([1])), None, [(3, 4), (4,)], noncontiguous=True)
    check_op(_set(1), None, [(3, 4), ()])
    check_op(_set(0, True), None, [bools((3,))])
    check_op(_set(0, 3), None, [ints((3,), dtype=np.uint8)])


def test_index_select_gather_scatter_0d_and_empty():
    check_op(lambda x, i: x.index_select(0, i), None, [(), np.array(0)])
    check_op(lambda x, i: x.index_select(-1, i), None, [(), np.array([0])])
    check_op(lambda x, i: x.index_select(1, i), None, [(2, 3), np.array([2, 2, 0, 2])])
    check_op(lambda x, i: x.index_select(1, i), None, [(0, 3), np.array([1, 2])])
    check_op(lambda x, i: x.index_select(0, i), None, [(4, 3), ints((2,), 0, 4, dtype=np.int32)])
    check_op(lambda x, i: x.gather(0, i), None, [(), np.array(0)])
    check_op(lambda x, i: x.gather(0, i), None, [(), np.array([0, 0])])  # a 0-dim input reads as 1-dim
    check_op(lambda x, i: x.gather(0, i), None, [(3,), np.array(2)])
    check_op(lambda x, i: x.gather(1, i), None, [(3, 4), ints((3, 0))])
    check_op(lambda x, i: x.gather(0, i), None, [(0, 4), ints((0, 4))])
    check_op(lambda x, i: x.gather(1, i), None, [(2, 3, 4), ints((2, 5, 4), 0, 3)], noncontiguous=True)
    check_op(lambda x, i: x.gather(1, i.t()), None, [(3, 4), ints((2, 3), 0, 4)])
    check_op(lambda x, i: x.gather(0, i), None, [(4, 5), ints((2, 3), 0, 4)])
    check_op(lambda x, i, s: x.scatter(0, i, s), None, [(), np.array(0), ()])
    check_op(lambda x, i: x.scatter(0, i, 1.5), None, [(3,), np.array(1)])
    check_op(lambda x, i, s: x.scatter(1, i, s), None, [(3, 4), ints((3, 0)), (3, 0)])
    check_op(lambda x, i, s: x.scatter_add(0, i, s), None, [(), np.array(0), ()])
    check_op(lambda x, i, s: x.scatter_add(0, i, s), None, [(3,), np.array(1), ()])
    check_op(lambda x, i, s: x.scatter_add(0, i, s), None, [(3, 4), ints((0, 4)), (0, 4)])
    check_op(lambda x, i, s: x.scatter_add(2, i, s), None, [(2, 3, 4), ints((2, 3, 6), 0, 4), (2, 3, 6)])
    check_op(lambda x, i, s: x.scatter_add(1, i, s), None, [(3, 4), ints((3, 2), 0, 4), (3, 3)], grad=False)
    check_op(lambda x, i: x.scatter(1, i, -1.0), None, [(3, 4), np.array([[0], [3], [1]])], noncontiguous=True)
    check_op(lambda x, i, s: x.scatter(0, i, s), None, [ints((3, 4)), np.array([[0, 1, 2, 0]]), ints((1, 4))])


@pytest.mark.parametrize("name, make", [
    ("index_select negative", lambda L: L.zeros(3).index_select(0, L.tensor([-1]))),
    ("index_select negative dim 1", lambda L: L.zeros(2, 3).index_select(1, L.tensor([-1]))),
    ("index_select too large", lambda L: L.zeros(3).index_select(0, L.tensor([3]))),
    ("index_select 0-d input", lambda L: L.tensor(1.0).index_select(0, L.tensor([0, 0]))),
    ("gather negative", lambda L: L.zeros(2, 3).gather(1, L.tensor([[-1]]))),
    ("scatter negative", lambda L: L.zeros(2, 3).scatter(1, L.tensor([[-1]]), 1.0)),
    ("scatter_add negative", lambda L: L.zeros(2, 3).scatter_add(1, L.tensor([[-1]]), L.ones(1, 1))),
    ("scatter rank", lambda L: L.zeros(2, 2).scatter(0, L.tensor([0]), 1.0)),
    ("masked_fill 1-d value", lambda L: L.zeros(3).masked_fill(L.tensor([True, False, True]), L.tensor([1.0]))),
])
def test_index_op_errors_match_torch(name, make):
    with pytest.raises(Exception) as expected:
        make(torch)
    with pytest.raises(expected.type) as actual:
        make(dtorch)
    assert str(actual.value).split(",")[0] == str(expected.value).split(",")[0]


def test_masked_ops_edge_cases():
    check_op(lambda x, m: x.masked_fill(m, 1.0), None, [(), np.array(True)])
    check_op(lambda x, m: x.masked_fill(m, 1.0), None, [(3, 4), np.array(True)])
    check_op(lambda x, m: x.masked_fill(m, 1.0), None, [(0, 4), bools((4,))])
    check_op(lambda x, m, v: x.masked_fill(m, v), None, [(3, 4), bools((3, 4)), ()])  # the value gets a gradient
    check_op(lambda x, m, v: (x * 1).masked_fill_(m, v), None, [(3, 4), bools((4,)), np.array(2.0)])
    check_op(lambda x, m, v: x.masked_fill(m, v), None, [(3, 1), bools((3, 4)), ()])
    check_op(lambda x, m: x.masked_fill(m, True), None, [bools((3,)), bools((3,), seed=9)])
    check_op(lambda x, m: x.masked_fill(m, 2.7), None, [ints((3,)), bools((3,))])
    check_op(lambda x, m: x.masked_select(m), None, [(), np.array(True)])
    check_op(lambda x, m: x.masked_select(m), None, [(0, 4), bools((4,))])
    check_op(lambda x, m: x.masked_select(m), None, [(3, 4), bools((3, 4))], noncontiguous=True)
    check_op(lambda x, m: x.masked_select(m), None, [(3, 1), bools((1, 4))])
    check_op(lambda x, m: x.masked_select(m), None, [ints((3, 4)), bools((3, 4))])


def test_gradcheck_more_indexing_forms():
    dtorch.manual_seed(3)
    gradcheck = dtorch.autograd.gradcheck
    x = _float64(3, 4)
    rows, cols = dtorch.tensor([[0], [2]]), dtorch.tensor([1, 3, 3])
    assert gradcheck(lambda t: t[rows, cols], (x,))  # broadcast index arrays, a repeated column
    assert gradcheck(lambda t: t[..., dtorch.tensor([True, False, True, True])], (x,))
    assert gradcheck(lambda t: t.t()[1:, dtorch.tensor([2, 0])], (x,))
    assert gradcheck(lambda t, v: t.masked_fill(dtorch.tensor([[True], [False], [True]]), v), (x, _float64()))
    assert gradcheck(lambda t: t.gather(1, dtorch.tensor([[3, 3], [0, 1], [2, 2]])), (x,))
    assert gradcheck(lambda t: t.masked_select(dtorch.tensor([True, False, True, False])), (x,))
    y = _float64(2, 3, 4)
    assert gradcheck(lambda t, s: t.scatter_add(2, dtorch.tensor([[[0, 0, 3]] * 3] * 2), s), (y, _float64(2, 3, 3)))

    def put(t, value):
        z = t * 1
        z[dtorch.tensor([True, False, True]), 1:] = value  # broadcast over the masked rows
        return z

    assert gradcheck(put, (x, _float64(3)))


MIXED_KEYS = [  # integers apply before index tensors in PyTorch (NumPy counts them among the advanced indices)
    ((3, 4), lambda L: (1, None, L.tensor([False, False, True, True]))),
    ((3, 4, 3), lambda L: (None, slice(-3, None, 2), 2, Ellipsis, L.tensor([True, False, True]))),
    ((2, 3, 4, 5), lambda L: (slice(None), L.tensor([0, 2, 2]), 0, L.tensor([4, 1, 0]))),
    ((3, 4, 5), lambda L: (L.tensor([0, 2]), 1, L.tensor([4, 1]))),
    ((3, 4, 5), lambda L: (L.tensor([[0], [2]]), -1, slice(1, 3))),
    ((3, 4, 5), lambda L: (2, L.tensor([[True, False, True, False, True]] * 4))),
]


@pytest.mark.parametrize("shape, key", MIXED_KEYS, ids=range(len(MIXED_KEYS)))
def test_integers_mixed_with_index_tensors_apply_first(shape, key):
    check_op(lambda x: x[key(_lib(x))], None, [shape])
    check_op(lambda x: x[key(_lib(x))], None, [shape], noncontiguous=True)
    target_shape = tuple(torch.zeros(shape)[key(torch)].shape)
    check_op(_set(key), None, [shape, target_shape])
    check_op(_set(key), None, [shape, target_shape[-1:]], noncontiguous=True)  # broadcast along the rest
    check_op(_set(key, 2.5), None, [shape])


def test_gradcheck_mixed_integer_and_tensor_keys():
    x = _float64(2, 3, 4, 5)
    key = (slice(None), dtorch.tensor([0, 2, 2]), 0, dtorch.tensor([4, 1, 0]))
    assert dtorch.autograd.gradcheck(lambda t: t[key], (x,))
    assert dtorch.autograd.gradcheck(lambda t, v: _set(key)(t, v), (x, _float64(3)))


def test_index_ops():
    index = lambda t, values: t.new_tensor(values).long()  # noqa: E731
    check_op(lambda x, s: x.index_add(1, index(x, [0, 2, 0]), s, alpha=2), None, [(3, 4), (3, 3)])
    check_op(lambda x, s: x.index_copy(0, index(x, [2, 0]), s), None, [(3, 4), (2, 4)])
    check_op(lambda x: x.index_fill(1, index(x, [0, 3]), -1.5), None, [(3, 4)])
    check_op(lambda x, s: (x * 1).index_add_(0, index(x, [1, 1]), s), None, [(3, 4), (2, 4)])
