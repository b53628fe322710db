"""In-place changes of views are recorded on the view's base: values and gradients equal PyTorch's, for views of
every kind (reshape, transpose, slices with steps, views of views) and bases with or without a graph."""

import numpy as np
import pytest
import torch

import dtorch
from dtorch.ops.views import view_layout

from helpers import check_op


def _view_then(view, change):
    def fn(x, v):
        y = x * 2
        change(view(y), v)
        return y * y + 1

    return fn


VIEWS = {
    "view(-1)": lambda y: y.view(-1),
    "reshape": lambda y: y.reshape(3, 4),
    "t()": lambda y: y.t(),
    "transpose slice": lambda y: y.transpose(0, 1)[1:],
    "step slice": lambda y: y[:, ::2],
    "unsqueeze squeeze": lambda y: y.unsqueeze(0).squeeze(0),
    "narrow of view": lambda y: y.view(2, 6).narrow(1, 2, 3),
    "permute of reshape": lambda y: y.reshape(2, 2, 3).permute(2, 0, 1),
}

CHANGES = {
    "mul_ by tensor": lambda view, v: view.mul_(v.reshape(()).expand(view.shape)),
    "add_ scalar": lambda view, v: view.add_(1.5),
    "relu_": lambda view, v: view.relu_(),
    "copy_": lambda view, v: view.copy_(v.reshape(()).expand(view.shape) * 3),
    "setitem": lambda view, v: view.__setitem__(0, v.reshape(())),
}


@pytest.mark.parametrize("view", list(VIEWS))
@pytest.mark.parametrize("change", list(CHANGES))
def test_inplace_on_view_matches_torch(view, change):
    check_op(_view_then(VIEWS[view], CHANGES[change]), None, [(4, 3), (1,)])


def test_inplace_on_view_of_a_buffer_without_grad():
    # a preallocated buffer filled through views by tensors that require grad
    def fn(x, v):
        buffer = x.new_zeros((2, 3))
        buffer.view(-1)[:3].copy_(x)
        buffer.t()[:, 1].add_(v)
        return buffer * 2

    check_op(fn, None, [(3,), (3,)])


def test_inplace_on_view_of_leaf_requiring_grad_raises_like_torch():
    for lib in (torch, dtorch):
        x = lib.ones(2, 3, requires_grad=True)
        with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
            x.view(-1).add_(1)


def test_saved_base_changed_through_view_raises():
    for lib in (torch, dtorch):
        x = lib.tensor([0.5, 1.0, 2.0], requires_grad=True)
        h = x * 1
        y = h.exp()
        z = h * y  # saves h
        h.view(3, 1).mul_(2)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            z.sum().backward()


def test_view_layout_of_numpy_views():
    base = np.zeros((3, 4), np.float32)
    assert view_layout(base[1:, ::2], base) == ((2, 2), (4, 2), 4)
    assert view_layout(base.T, base) == ((4, 3), (1, 4), 0)
    assert view_layout(base.reshape(-1)[5:], base) == ((7,), (1,), 5)
    assert view_layout(base[:, ::2], base.T) is None  # a base that is not C-contiguous has no strided layout
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        view_layout(np.broadcast_to(base[:1], (3, 4)), base)
