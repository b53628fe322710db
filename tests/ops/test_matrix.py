"""Matrix-structure ops (``dtorch/ops/matrix.py``: triangles, diagonals, diag_embed; trace and fill_diagonal_ on
top of them) against PyTorch, forward and backward, and their argument errors."""

import numpy as np
import pytest
import torch

import dtorch
from helpers import check_op


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
