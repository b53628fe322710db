"""Custom autograd Functions, gradcheck, and the op registry that makes ops recordable."""

import numpy as np
import pytest

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
            x.data *= 2
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
