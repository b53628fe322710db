"""Matrix products and sorting against PyTorch: matmul in every shape combination, mm, bmm, einsum, outer, dot,
sort, topk; gradcheck in float64 for einsum and sort/topk."""

import numpy as np
import pytest
import torch

import dtorch
from helpers import check_op, ints

MATMUL_SHAPES = [
    [(3,), (3,)],  # 1-D . 1-D: a 0-dim result
    [(3,), (3, 4)],  # 1-D . 2-D
    [(2, 3), (3,)],  # 2-D . 1-D
    [(2, 3), (3, 4)],
    [(5, 2, 3), (5, 3, 4)],  # batched
    [(5, 2, 3), (3, 4)],  # batched . matrix
    [(2, 3), (5, 3, 4)],  # matrix . batched
    [(2, 1, 2, 3), (5, 3, 4)],  # batch dims broadcast
    [(4, 2, 3), (3,)],  # N-D . 1-D
    [(3,), (4, 3, 2)],  # 1-D . N-D
    [(0, 3), (3, 4)],  # empty
    [(2, 0), (0, 4)],  # empty inner dimension: zeros
    [(1, 3), (3, 1)],
]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul_shapes(shapes):
    check_op(lambda a, b: a @ b, None, shapes)
    check_op(lambda a, b: _lib(a).matmul(a, b), None, shapes, noncontiguous=True)


def _lib(x):
    return dtorch if isinstance(x, dtorch.Tensor) else torch


def test_matmul_float64_and_integers():
    check_op(lambda a, b: a @ b, None, [(3, 4), (4, 2)], dtype="float64")
    check_op(lambda a, b: a @ b, None, [ints((3, 4)), ints((4, 2))])
    check_op(lambda a, b: a.matmul(b), None, [ints((4,)), ints((4,))])


def test_mm_bmm_dot_outer():
    check_op(lambda a, b: a.mm(b), None, [(2, 3), (3, 4)])
    check_op(lambda a, b: _lib(a).mm(a, b), None, [(2, 3), (3, 4)], noncontiguous=True)
    check_op(lambda a, b: a.bmm(b), None, [(5, 2, 3), (5, 3, 4)])
    check_op(lambda a, b: a.bmm(b), None, [(5, 2, 3), (5, 3, 4)], noncontiguous=True)
    check_op(lambda a, b: a.dot(b), None, [(4,), (4,)])
    check_op(lambda a, b: _lib(a).dot(a, b), None, [(4,), (4,)], noncontiguous=True)
    check_op(lambda a, b: a.dot(b), None, [(0,), (0,)])
    check_op(lambda a, b: a.outer(b), None, [(3,), (4,)])
    check_op(lambda a, b: _lib(a).outer(a, b), None, [(3,), (4,)], noncontiguous=True)
    check_op(lambda a, b: a.outer(b), None, [ints((3,)), ints((2,))])
    check_op(lambda a, b: a.inner(b), None, [(4,), (4,)])


def test_product_shape_errors_name_both_shapes():
    for lib in (torch, dtorch):
        with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(2x3 and 4x5\)"):
            lib.zeros(2, 3) @ lib.zeros(4, 5)
        with pytest.raises(RuntimeError, match="both arguments to matmul need to be at least 1D"):
            lib.matmul(lib.zeros(()), lib.zeros(3))
        with pytest.raises(RuntimeError):
            lib.zeros(3).dot(lib.zeros(4))
        with pytest.raises(RuntimeError):
            lib.zeros(2, 3).mm(lib.zeros(3))
        with pytest.raises(RuntimeError):
            lib.zeros(2, 2, 3).bmm(lib.zeros(3, 3, 4))
        with pytest.raises(RuntimeError):
            lib.zeros(2, 3) @ lib.zeros(3, dtype=lib.float64)
    with pytest.raises(RuntimeError) as error:
        dtorch.zeros(5, 2, 3) @ dtorch.zeros(4, 3, 4)
    assert "5x2x3" in str(error.value) and "4x3x4" in str(error.value)


def test_broadcast_error_names_both_shapes():
    for lib in (torch, dtorch):
        with pytest.raises(RuntimeError, match=r"The size of tensor a \(3\) must match the size of tensor b \(4\) at "
                                               r"non-singleton dimension 1"):
            lib.zeros(2, 3) + lib.zeros(2, 4)
    with pytest.raises(RuntimeError, match=r"\[2, 3\] and \[2, 4\]"):
        dtorch.zeros(2, 3) * dtorch.zeros(2, 4)
    with pytest.raises(RuntimeError, match=r"\[5, 3\] and \[4\]"):
        dtorch.where(dtorch.zeros(5, 3) > 0, dtorch.zeros(5, 3), dtorch.zeros(4))


EINSUM_CASES = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("bij,bjk->bik", [(5, 2, 3), (5, 3, 4)]),
    ("ij->ji", [(2, 3)]),
    ("ij->", [(2, 3)]),
    ("ij->j", [(2, 3)]),
    ("i,i->", [(4,), (4,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("...ij,...jk->...ik", [(2, 5, 2, 3), (5, 3, 4)]),
    ("b...,b->...", [(3, 2, 4), (3,)]),
    ("...i->...", [(2, 3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),  # implicit output
    ("ba,ab->", [(3, 2), (2, 3)]),
    ("ijk,j->ik", [(2, 3, 4), (3,)]),
    ("ij,kl->il", [(2, 3), (4, 5)]),  # j and k are summed inside one operand only
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("i j , j k -> i k", [(2, 3), (3, 4)]),
]


@pytest.mark.parametrize("equation, shapes", EINSUM_CASES, ids=[c[0] for c in EINSUM_CASES])
def test_einsum(equation, shapes):
    check_op(lambda *ops: _lib(ops[0]).einsum(equation, *ops), None, shapes)
    check_op(lambda *ops: _lib(ops[0]).einsum(equation, list(ops)), None, shapes, noncontiguous=True)


def test_einsum_repeated_subscripts_read_diagonals():
    check_op(lambda a: _lib(a).einsum("ii->i", a), None, [(3, 3)])
    check_op(lambda a: _lib(a).einsum("ii", a), None, [(3, 3)])
    check_op(lambda a, b: _lib(a).einsum("iji,j->i", a, b), None, [(3, 2, 3), (2,)])
    check_op(lambda a, b: _lib(a).einsum("bii,bi->b", a, b), None, [(2, 3, 3), (2, 3)], noncontiguous=True)
    check_op(lambda a, b: _lib(a).einsum("iik,j->j", a, b), None, [(3, 3, 2), (4,)])


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("descending", [False, True])
def test_sort(dim, descending):
    check_op(lambda x: x.sort(dim, descending=descending), None, [(4, 5)])
    check_op(lambda x: _lib(x).sort(x, dim=dim, descending=descending, stable=True), None, [(4, 5)],
             noncontiguous=True)
    check_op(lambda x: x.argsort(dim, descending=descending), None, [(4, 5)])
    check_op(lambda x: x.sort(dim=dim, descending=descending, stable=True), None, [ints((4, 5), 0, 3)])


def test_sort_edge_cases():
    check_op(lambda x: x.sort(), None, [()])
    check_op(lambda x: x.sort(0), None, [(0,)])
    check_op(lambda x: x.sort(stable=True), None, [np.array([2.0, 1.0, 2.0, 1.0], dtype=np.float32)])
    check_op(lambda x: x.sort(descending=True, stable=True), None, [np.array([True, False, True])])
    check_op(lambda x: x.sort(descending=True, stable=True), None, [ints((6,), 0, 200, dtype=np.uint8)])
    values = np.array([1.0, np.nan, -np.inf, 3.0, np.nan, np.inf], dtype=np.float32)
    check_op(lambda x: x.sort(stable=True), None, [values], grad=False)
    check_op(lambda x: x.sort(descending=True, stable=True), None, [values], grad=False)
    check_op(lambda x: x.topk(3), None, [values], grad=False)
    check_op(lambda x: x.topk(3, largest=False), None, [values], grad=False)


@pytest.mark.parametrize("k, dim, largest", [(1, -1, True), (3, -1, True), (2, 0, False), (0, 1, True),
                                             (5, 1, False)])
def test_topk(k, dim, largest):
    check_op(lambda x: x.topk(k, dim, largest=largest), None, [(4, 5)])
    check_op(lambda x: _lib(x).topk(x, k, dim=dim, largest=largest), None, [(4, 5)], noncontiguous=True)


def test_topk_edge_cases():
    check_op(lambda x: x.topk(2), None, [ints((3, 6), 0, 50)])
    check_op(lambda x: x.topk(1), None, [()])
    check_op(lambda x: x.topk(3, sorted=True), None, [(7,)])
    for lib in (torch, dtorch):
        with pytest.raises(RuntimeError, match="selected index k out of range"):
            lib.zeros(3).topk(4)


def test_gradcheck_einsum_sort_topk():
    dtorch.manual_seed(1)
    gradcheck = dtorch.autograd.gradcheck

    def f64(*shape):
        return dtorch.randn(*shape, dtype=dtorch.float64, requires_grad=True)

    a, b, c = f64(2, 3), f64(3, 4), f64(4, 2)
    assert gradcheck(lambda x, y: dtorch.einsum("ij,jk->ik", x, y), (a, b))
    assert gradcheck(lambda x, y, z: dtorch.einsum("ij,jk,kl->il", x, y, z), (a, b, c))
    assert gradcheck(lambda x, y: dtorch.einsum("ij,kl->il", x, y), (a, b))
    assert gradcheck(lambda x, y: dtorch.einsum("...j,jk->...k", x, y), (f64(2, 2, 3), b))
    assert gradcheck(lambda x, y: dtorch.einsum("iji,j->i", x, y), (f64(3, 2, 3), f64(2)))
    x = f64(3, 5)
    assert gradcheck(lambda t: t.sort(1).values, (x,))
    assert gradcheck(lambda t: t.sort(0, descending=True).values, (x,))
    assert gradcheck(lambda t: t.topk(2, 1).values, (x,))
    assert gradcheck(lambda t: t.topk(2, 0, largest=False).values, (x,))
    assert gradcheck(lambda t, u: t @ u, (f64(2, 3, 4), f64(4)))
    assert gradcheck(lambda t, u: t @ u, (f64(3), f64(2, 3, 4)))


def test_matmul_with_a_numpy_operand_and_reflected_operators():
    check_op(lambda a: a @ np.arange(3, dtype=np.float32), lambda a: a @ torch.arange(3.0), [(2, 3)])
    check_op(lambda a: np.ones((2, 3), dtype=np.float32) @ a if isinstance(a, dtorch.Tensor) else
             torch.from_numpy(np.ones((2, 3), dtype=np.float32)) @ a, None, [(3, 4)])
    check_op(lambda a: 2 // (a.abs() + 0.5), None, [(3,)], grad=False)
    check_op(lambda a: 5 % (a.abs() + 0.5), None, [(3,)], grad=False)  # torch has no derivative here
    check_op(lambda a: 1 - a, None, [(3,)])
    check_op(lambda a: _lib(a).rsub(a, 1), None, [(3,)])


# ---- edge shapes, layouts and dtypes (the audit of issue 3's test list) -------------------------------------------

MATMUL_EDGE_SHAPES = [
    [(0,), (0,)],  # an empty dot product: 0
    [(0,), (0, 4)],
    [(2, 0), (0,)],
    [(0, 2, 3), (3, 4)],  # an empty batch
    [(2, 3), (0, 3, 4)],
    [(3,), (0, 3, 2)],
    [(0, 3), (3,)],
    [(1, 2, 3), (4, 3, 5)],  # a batch of 1 broadcasts
    [(4, 1, 2, 3), (1, 5, 3, 2)],
    [(3,), (1, 3, 1)],
    [(2, 1, 3), (3,)],
    [(1,), (1,)],
    [(1,), (1, 5)],
]


@pytest.mark.parametrize("shapes", MATMUL_EDGE_SHAPES, ids=str)
def test_matmul_edge_shapes(shapes):
    check_op(lambda a, b: a @ b, None, shapes)
    check_op(lambda a, b: a @ b, None, shapes, noncontiguous=True)


def test_products_dtypes_and_empty_operands():
    check_op(lambda a, b: a @ b, None, [(2, 3, 4), (4,)], dtype="float64")
    check_op(lambda a, b: a @ b, None, [(2, 3, 4), (4, 2)], dtype="float16")
    check_op(lambda a, b: a @ b, None, [ints((3,)), ints((3, 2))])
    check_op(lambda a, b: a @ b, None, [ints((2, 3, 3)), ints((3,))])
    check_op(lambda a, b: a.mm(b), None, [(0, 3), (3, 4)])
    check_op(lambda a, b: a.mm(b), None, [(2, 0), (0, 4)])
    check_op(lambda a, b: a.mm(b), None, [ints((2, 3)), ints((3, 4))])
    check_op(lambda a, b: a.bmm(b), None, [(0, 2, 3), (0, 3, 4)])
    check_op(lambda a, b: a.bmm(b), None, [(2, 2, 0), (2, 0, 4)])
    check_op(lambda a, b: a.bmm(b), None, [(2, 2, 3), (2, 3, 4)], dtype="float64")
    check_op(lambda a, b: a.outer(b), None, [(0,), (3,)])
    check_op(lambda a, b: a.outer(b), None, [ints((3,)), (2,)])
    check_op(lambda a, b: a.dot(b), None, [ints((3,)), ints((3,))])
    check_op(lambda a, b: a.dot(b), None, [(3,), (3,)], dtype="float64")


EINSUM_EDGE_CASES = [
    ("ij,jk->ik", [(0, 3), (3, 4)]),
    ("ij,jk->ik", [(2, 0), (0, 4)]),
    (",->", [(), ()]),
    (",i->i", [(), (3,)]),
    ("ij,ij->i", [(3, 1), (3, 4)]),  # size-1 broadcasting between operands
    ("ij,ij->i", [(3, 4), (1, 4)]),
    ("...i,...i->...", [(2, 1, 4), (3, 4)]),
    ("ij,j->", [(3, 1), (4,)]),
    ("ii,ij->j", [(3, 3), (3, 1)]),
    ("ii->", [(3, 3)]),
    ("Ab,bC->AC", [(2, 3), (3, 4)]),
    ("i,j,k->ijk", [(2,), (3,), (4,)]),
]


@pytest.mark.parametrize("equation, shapes", EINSUM_EDGE_CASES, ids=[f"{c[0]} {c[1]}" for c in EINSUM_EDGE_CASES])
def test_einsum_edge_cases(equation, shapes):
    check_op(lambda *ops: _lib(ops[0]).einsum(equation, *ops), None, shapes)
    check_op(lambda *ops: _lib(ops[0]).einsum(equation, *ops), None, shapes, noncontiguous=True)
    check_op(lambda *ops: _lib(ops[0]).einsum(equation, *ops), None, shapes, dtype="float64")


def test_einsum_integer_operands():
    check_op(lambda a, b: _lib(a).einsum("ij,jk->ik", a, b), None, [ints((2, 3)), ints((3, 4))])


def test_sort_topk_edge_cases_and_dtypes():
    check_op(lambda x: x.sort(descending=True), None, [()])
    check_op(lambda x: x.sort(1), None, [(0, 3)])
    check_op(lambda x: x.sort(1), None, [(3, 0)])
    check_op(lambda x: x.sort(1), None, [(2, 3, 4)], dtype="float64", noncontiguous=True)
    check_op(lambda x: x.sort(0, descending=True), None, [(5, 3)], dtype="float16")
    check_op(lambda x: x.sort(), None, [np.array([np.inf, -1.0, -np.inf, 0.0], dtype=np.float32)])
    check_op(lambda x: x.argsort(), None, [()])
    check_op(lambda x: x.argsort(stable=True), None, [ints((8,), 0, 3)])
    check_op(lambda x: x.topk(0), None, [()])
    check_op(lambda x: x.topk(0, 0), None, [(0, 3)])
    check_op(lambda x: x.topk(0), None, [(5,)])
    check_op(lambda x: x.topk(2, 1), None, [(2, 3, 4)], noncontiguous=True)
    check_op(lambda x: x.topk(5, largest=False), None, [(5,)])
    check_op(lambda x: x.topk(2), None, [(3, 5)], dtype="float64")
    check_op(lambda x: x.topk(2, largest=False), None, [ints((6,), 0, 250, dtype=np.uint8)])


def test_gradcheck_matmul_forms_and_einsum_broadcasting():
    dtorch.manual_seed(4)
    gradcheck = dtorch.autograd.gradcheck

    def f64(*shape):
        return dtorch.randn(*shape, dtype=dtorch.float64, requires_grad=True)

    assert gradcheck(lambda a, b: a @ b, (f64(3), f64(3)))
    assert gradcheck(lambda a, b: a @ b, (f64(3), f64(3, 2)))
    assert gradcheck(lambda a, b: a @ b, (f64(2, 3), f64(3)))
    assert gradcheck(lambda a, b: a @ b, (f64(2, 1, 2, 3), f64(3, 3, 2)))
    assert gradcheck(lambda a, b: a.bmm(b), (f64(2, 2, 3), f64(2, 3, 2)))
    assert gradcheck(lambda a, b: a.outer(b), (f64(3), f64(2)))
    assert gradcheck(lambda a, b: dtorch.einsum("ij,ij->i", a, b), (f64(3, 1), f64(3, 4)))
    assert gradcheck(lambda a, b: dtorch.einsum("...i,...i->...", a, b), (f64(2, 1, 4), f64(3, 4)))
    assert gradcheck(lambda a: dtorch.einsum("ii->", a), (f64(3, 3),))
    assert gradcheck(lambda t: t.sort(1, descending=True).values, (f64(2, 3, 4),))
    assert gradcheck(lambda t: t.topk(3, 2, largest=False).values, (f64(2, 3, 4),))


def test_tensordot_cdist_dist():
    lib_of = lambda t: dtorch if isinstance(t, dtorch.Tensor) else torch  # noqa: E731
    check_op(lambda a, b: lib_of(a).tensordot(a, b, dims=1), None, [(2, 3), (3, 4)])
    check_op(lambda a, b: lib_of(a).tensordot(a, b, dims=([0, 2], [1, 0])), None, [(2, 3, 4), (4, 2, 5)])
    check_op(lambda a, b: lib_of(a).cdist(a, b), None, [(2, 3, 4), (2, 5, 4)])
    check_op(lambda a, b: lib_of(a).cdist(a, b, p=1.0), None, [(3, 4), (5, 4)])
    check_op(lambda a, b: a.dist(b, 3), None, [(3, 4), (4,)])
