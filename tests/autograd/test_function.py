"""Custom autograd Functions, gradcheck, and the op registry that makes ops recordable."""

import numpy as np
import pytest
import torch

import dtorch
from dtorch.autograd.function import REGISTRY
from dtorch.autograd import Function, gradcheck


class ScaledSquare(Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return x * x * scale

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        assert ctx.needs_input_grad == (True,)
        return grad * 2 * x * ctx.scale, None


def test_custom_function_forward_backward():
    x = dtorch.tensor([1.0, -2.0], dtype=dtorch.float64, requires_grad=True)
    y = ScaledSquare.apply(x, 3.0)
    assert y.grad_fn.name() == "ScaledSquareBackward"
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, -12.0])
    assert gradcheck(lambda t: ScaledSquare.apply(t, 3.0), (x,))


def test_custom_function_without_grad_returns_plain_output():
    y = ScaledSquare.apply(dtorch.ones(2), 2.0)
    assert not y.requires_grad


def test_custom_function_wrong_number_of_gradients():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad, grad

    x = dtorch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="incorrect number of gradients"):
        Bad.apply(x).sum().backward()


def test_gradcheck_catches_a_wrong_backward():
    class Wrong(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x

    x = dtorch.tensor([0.5, 1.5], dtype=dtorch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        gradcheck(Wrong.apply, (x,))
    assert gradcheck(Wrong.apply, (x,), raise_exception=False) is False


def test_ops_are_recordable_and_replay_from_attrs():
    x = dtorch.randn(3, 4, requires_grad=True)
    y = x.sum(dim=1, keepdim=True)
    node = y.grad_fn
    assert type(node).__name__ in REGISTRY
    replayed = type(node)(**node.attrs)
    replayed.xp = np
    np.testing.assert_allclose(replayed.forward(x.detach().numpy()), y.detach().numpy())
    for value in node.attrs.values():
        assert isinstance(value, (int, float, str, tuple, bool, type(None), np.dtype))


def test_mark_dirty_turns_the_input_into_the_output():
    class DoubleInPlace(Function):
        @staticmethod
        def forward(ctx, x):
            x._array *= 2
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad * 2

    leaf = dtorch.tensor([1.0, 3.0], requires_grad=True)
    h = leaf * 1
    out = DoubleInPlace.apply(h)
    assert out is h and h.grad_fn.name() == "DoubleInPlaceBackward"
    out.sum().backward()
    np.testing.assert_allclose(leaf.grad.numpy(), [2.0, 2.0])
    with pytest.raises(RuntimeError, match="leaf Variable"):
        DoubleInPlace.apply(dtorch.ones(2, requires_grad=True))


def _split_scale(lib, materialize=True, seen=None):
    class SplitScale(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            ctx.set_materialize_grads(materialize)
            index = x.argmax()
            ctx.mark_non_differentiable(index)
            return x * w, x.exp(), index

        @staticmethod
        def backward(ctx, grad_scaled, grad_exp, grad_index):
            if seen is not None:
                seen.append((grad_scaled is None, grad_exp is None))
            x, w = ctx.saved_tensors
            grad_x = grad_scaled * w if grad_scaled is not None else 0
            if grad_exp is not None:
                grad_x = grad_x + grad_exp * x.exp()
            grad_w = (grad_scaled * x).sum() if grad_scaled is not None else None
            return grad_x, grad_w

    return SplitScale


@pytest.mark.parametrize("loss", ["both", "first only", "second twice"])
def test_custom_function_with_several_outputs_matches_torch(loss):
    grads = []
    for lib in (dtorch, torch):
        x = lib.tensor([0.5, -1.0, 2.0], requires_grad=True)
        w = lib.tensor(3.0, requires_grad=True)
        scaled, exp, index = _split_scale(lib).apply(x, w)
        assert not index.requires_grad and scaled.requires_grad and exp.requires_grad
        if loss == "both":
            total = scaled.sum() * 2 + exp.pow(2).sum()
        elif loss == "first only":
            total = scaled.sum()
        else:
            total = (exp * exp).sum() + exp.sum()
        total.backward()
        grads.append((x.grad.numpy().copy(), None if w.grad is None else w.grad.item(), index.item()))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-6)
    assert (grads[0][1] is None) == (grads[1][1] is None)
    assert grads[0][1] is None or grads[0][1] == pytest.approx(grads[1][1])
    assert grads[0][2] == grads[1][2]


def test_custom_function_several_outputs_materialize_and_retain_graph():
    seen = []
    x = dtorch.tensor([0.5, 1.0], requires_grad=True)
    w = dtorch.tensor(2.0, requires_grad=True)
    scaled, exp, _ = _split_scale(dtorch, materialize=False, seen=seen).apply(x, w)
    exp.sum().backward(retain_graph=True)
    assert seen[-1] == (True, False)  # no gradient reached the first output: None, not zeros
    np.testing.assert_allclose(x.grad.numpy(), np.exp([0.5, 1.0]), rtol=1e-6)
    exp.sum().backward()  # a second backward through the retained graph sees fresh slots
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp([0.5, 1.0]), rtol=1e-6)


def test_custom_function_saved_output_among_several_is_version_checked():
    class ExpAndSquare(dtorch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            exp = x.exp()
            ctx.save_for_backward(exp, x)
            return exp, x * x

        @staticmethod
        def backward(ctx, grad_exp, grad_square):
            exp, x = ctx.saved_tensors
            return grad_exp * exp + grad_square * 2 * x

    x = dtorch.tensor([0.5, 1.0], requires_grad=True)
    exp, square = ExpAndSquare.apply(x)
    (exp.sum() + square.sum()).backward(retain_graph=True)
    np.testing.assert_allclose(x.grad.numpy(), np.exp([0.5, 1.0]) + [1.0, 2.0], rtol=1e-6)
    exp.mul_(2)  # the saved output, changed in place
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        exp.sum().backward()
