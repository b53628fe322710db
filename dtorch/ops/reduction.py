"""Reductions over ``dim`` (an int, a tuple, or None for all) with ``keepdim``, and cumulative sums.

The ``axes`` attribute is always a sorted tuple of non-negative axes, resolved by the front end, so a recorded
op replays without knowing the input's rank.
"""

import math

from dtorch.autograd.function import Function
from dtorch.ops._util import expand_reduced


class Sum(Function):
    attr_names = ("axes", "keepdim", "dtype")

    def forward(self, x):
        self.input_shape = x.shape
        return self.xp.sum(x, axis=self.axes, keepdims=self.keepdim, dtype=self.dtype)

    def backward(self, grad):
        xp = self.xp
        grad = expand_reduced(xp, grad, self.input_shape, self.axes, self.keepdim)
        return (xp.broadcast_to(grad, self.input_shape),)


class Mean(Function):
    attr_names = ("axes", "keepdim")

    def forward(self, x):
        self.input_shape = x.shape
        count = 1
        for axis in self.axes:
            count *= x.shape[axis]
        self.count = count
        return self.xp.mean(x, axis=self.axes, keepdims=self.keepdim)

    def backward(self, grad):
        xp = self.xp
        grad = expand_reduced(xp, grad, self.input_shape, self.axes, self.keepdim)
        return (xp.broadcast_to(grad / self.count, self.input_shape),)


class Prod(Function):
    attr_names = ("axes", "keepdim")
    differentiable_backward = False

    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.prod(x, axis=self.axes, keepdims=self.keepdim)

    def backward(self, grad):
        (x,) = self.saved_tensors
        xp = self.xp
        grad = expand_reduced(xp, grad, x.shape, self.axes, self.keepdim)
        # product of all the other elements, computed without dividing so zeros are handled: for each axis in
        # turn, exclusive cumulative products from the left and the right
        others = _product_of_others(xp, x, self.axes)
        return (grad * others,)


def _product_of_others(xp, x, axes):
    """For each element, the product of the other elements in its reduction group."""
    moved = xp.moveaxis(x, axes, tuple(range(x.ndim - len(axes), x.ndim)))
    kept_shape = moved.shape[: x.ndim - len(axes)]
    group = 1
    for axis in axes:
        group *= x.shape[axis]
    if group == 0:
        return xp.zeros_like(x)
    flat = xp.reshape(moved, kept_shape + (group,))
    ones = xp.ones(kept_shape + (1,), dtype=x.dtype)
    left = xp.cumprod(xp.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    right = xp.flip(xp.cumprod(xp.flip(xp.concatenate([flat[..., 1:], ones], axis=-1), axis=-1), axis=-1), axis=-1)
    result = xp.reshape(left * right, moved.shape)
    return xp.moveaxis(result, tuple(range(x.ndim - len(axes), x.ndim)), axes)


class MaxMin(Function):
    """``amax``/``amin`` over axes; the gradient is shared equally among tied extremes (PyTorch's rule)."""

    attr_names = ("axes", "keepdim", "mode")

    def forward(self, x):
        self.save_for_backward(x)
        reduce = self.xp.max if self.mode == "max" else self.xp.min
        out = reduce(x, axis=self.axes, keepdims=True)
        self.extreme = out
        if not self.keepdim:
            out = self.xp.squeeze(out, axis=self.axes)
        return out

    def backward(self, grad):
        (x,) = self.saved_tensors
        xp = self.xp
        grad = expand_reduced(xp, grad, x.shape, self.axes, self.keepdim)
        hits = x == self.extreme
        # counted in the gradient's dtype: an int64 count would promote a float32 gradient to float64
        count = xp.sum(hits, axis=self.axes, keepdims=True, dtype=grad.dtype)
        return (grad * hits / count,)


class MaxMinDim(Function):
    """``max(dim)``/``min(dim)``: the values, plus the indices as a second, non-differentiable output."""

    attr_names = ("axis", "keepdim", "mode")
    n_outputs = 2
    differentiable_backward = False

    def forward(self, x):
        xp = self.xp
        self.input_shape = x.shape
        if x.ndim == 0:  # dim 0 or -1 of a 0-dim tensor: the value itself, index 0
            return x.copy(), xp.zeros((), dtype="int64")
        pick = xp.argmax if self.mode == "max" else xp.argmin
        indices = xp.expand_dims(pick(x, axis=self.axis), self.axis)
        self.indices = indices
        self.input_shape = x.shape
        values = xp.take_along_axis(x, indices, axis=self.axis)
        if not self.keepdim:
            values = xp.squeeze(values, axis=self.axis)
            indices = xp.squeeze(indices, axis=self.axis)
        return values, indices.astype("int64")

    def backward(self, grad):
        xp = self.xp
        if not self.input_shape:
            return (grad,)
        if not self.keepdim:
            grad = xp.expand_dims(grad, self.axis)
        out = xp.zeros(self.input_shape, dtype=grad.dtype)
        xp.put_along_axis(out, self.indices, grad, axis=self.axis)
        return (out,)


class Var(Function):
    """Variance with ``correction`` (1 is Bessel's, the default)."""

    attr_names = ("axes", "keepdim", "correction")

    def forward(self, x):
        self.save_for_backward(x)
        count = 1
        for axis in self.axes:
            count *= x.shape[axis]
        # PyTorch's backward divides by N - correction unclamped (0 gives inf/nan, never a Python error)
        self.divisor = count - self.correction
        return self.xp.var(x, axis=self.axes, keepdims=self.keepdim, ddof=self.correction)

    def backward(self, grad):
        (x,) = self.saved_tensors
        xp = self.xp
        grad = expand_reduced(xp, grad, x.shape, self.axes, self.keepdim)
        centered = x - xp.mean(x, axis=self.axes, keepdims=True)
        return (grad * centered * 2.0 / self.divisor,)


class Std(Function):
    attr_names = ("axes", "keepdim", "correction")

    def forward(self, x):
        self.save_for_backward(x)
        count = 1
        for axis in self.axes:
            count *= x.shape[axis]
        self.divisor = count - self.correction  # unclamped in backward, as in Var
        return self.xp.std(x, axis=self.axes, keepdims=self.keepdim, ddof=self.correction)

    def backward(self, grad):
        (x,) = self.saved_tensors
        xp = self.xp
        grad = expand_reduced(xp, grad, x.shape, self.axes, self.keepdim)
        centered = x - xp.mean(x, axis=self.axes, keepdims=True)
        std = xp.sqrt(xp.sum(centered * centered, axis=self.axes, keepdims=True) / max(self.divisor, 0))
        return (grad * centered / (std * self.divisor),)


class Norm(Function):
    """The vector p-norm over axes (p may be inf, -inf, 0 or any real); PyTorch's subgradient 0 at x = 0."""

    attr_names = ("p", "axes", "keepdim")

    def forward(self, x):
        self.save_for_backward(x)
        xp = self.xp
        p = self.p
        magnitude = xp.abs(x)
        if p == float("inf"):
            return xp.max(magnitude, axis=self.axes, keepdims=self.keepdim)
        if p == float("-inf"):
            return xp.min(magnitude, axis=self.axes, keepdims=self.keepdim)
        if p == 0:
            return xp.sum(x != 0, axis=self.axes, keepdims=self.keepdim).astype(x.dtype)
        if p == 2:
            return xp.sqrt(xp.sum(x * x, axis=self.axes, keepdims=self.keepdim))
        if p == 1:
            return xp.sum(magnitude, axis=self.axes, keepdims=self.keepdim)
        return xp.sum(magnitude ** p, axis=self.axes, keepdims=self.keepdim) ** (1.0 / p)

    def backward(self, grad):
        (x,) = self.saved_tensors
        xp = self.xp
        p = self.p
        grad = expand_reduced(xp, grad, x.shape, self.axes, self.keepdim)
        if p == 0:
            return (x * 0,)
        if p == 1:
            return (grad * xp.sign(x),)
        magnitude = xp.abs(x)
        if p in (float("inf"), float("-inf")):
            reduce = xp.max if p > 0 else xp.min
            extreme = reduce(magnitude, axis=self.axes, keepdims=True)
            hits = magnitude == extreme
            count = xp.sum(hits, axis=self.axes, keepdims=True, dtype=grad.dtype)
            return (grad * xp.sign(x) * hits / count,)
        norm = xp.sum(magnitude ** p, axis=self.axes, keepdims=True) ** (1.0 / p)
        safe_norm = xp.where(norm == 0, 1.0, norm)
        if p == 2:
            return (grad * x / safe_norm,)
        return (grad * xp.sign(x) * magnitude ** (p - 1) / safe_norm ** (p - 1),)


class LogSumExp(Function):
    attr_names = ("axes", "keepdim")

    def forward(self, x):
        self.save_for_backward(x)
        xp = self.xp
        if x.size == 0:  # an empty sum: log(0) = -inf, as in PyTorch (max has no identity to shift by)
            return xp.full_like(xp.sum(x, axis=self.axes, keepdims=self.keepdim), -math.inf)
        shift = xp.max(x, axis=self.axes, keepdims=True)
        shift = xp.where(xp.isfinite(shift), shift, 0)
        out = xp.log(xp.sum(xp.exp(x - shift), axis=self.axes, keepdims=True)) + shift
        if not self.keepdim:
            out = xp.squeeze(out, axis=self.axes)
        return out

    def backward(self, grad):
        (x,) = self.saved_tensors
        xp = self.xp
        if x.size == 0:
            return (x * 0,)
        grad = expand_reduced(xp, grad, x.shape, self.axes, self.keepdim)
        shift = xp.max(x, axis=self.axes, keepdims=True)
        weights = xp.exp(x - shift)
        weights = weights / xp.sum(weights, axis=self.axes, keepdims=True)
        return (grad * weights,)


class CumSum(Function):
    attr_names = ("axis",)

    def forward(self, x):
        if x.ndim == 0:
            return x.copy()
        return self.xp.cumsum(x, axis=self.axis)

    def backward(self, grad):
        xp = self.xp
        if grad.ndim == 0:
            return (grad,)
        return (xp.flip(xp.cumsum(xp.flip(grad, axis=self.axis), axis=self.axis), axis=self.axis),)


class CumProd(Function):
    attr_names = ("axis",)
    differentiable_backward = False

    def forward(self, x):
        self.save_for_backward(x)
        if x.ndim == 0:
            return x.copy()
        return self.xp.cumprod(x, axis=self.axis)

    def backward(self, grad):
        (x,) = self.saved_tensors
        xp = self.xp
        if x.ndim == 0:
            return (grad,)
        # d out_j / d x_i = prod_{k<=j, k!=i} x_k, summed against grad_j for j >= i; O(n^2) but exact with zeros
        moved = xp.moveaxis(x, self.axis, -1)
        g = xp.moveaxis(grad, self.axis, -1)
        n = moved.shape[-1]
        result = xp.zeros_like(moved)
        for i in range(n):
            others = moved.copy()
            others[..., i] = 1
            partial = xp.cumprod(others, axis=-1)
            result[..., i] = xp.sum((g * partial)[..., i:], axis=-1)
        return (xp.moveaxis(result, -1, self.axis),)


class ArgExtreme(Function):
    attr_names = ("axis", "keepdim", "mode")
    differentiable = False

    def forward(self, x):
        xp = self.xp
        pick = xp.argmax if self.mode == "max" else xp.argmin
        if self.axis is None:
            out = pick(x)
            if self.keepdim:
                out = xp.reshape(out, (1,) * x.ndim)
            return xp.asarray(out, dtype="int64")
        out = pick(x, axis=self.axis)
        if self.keepdim:
            out = xp.expand_dims(out, self.axis)
        return out.astype("int64")


class AllAny(Function):
    attr_names = ("axes", "keepdim", "mode")
    differentiable = False

    def forward(self, x):
        reduce = self.xp.all if self.mode == "all" else self.xp.any
        return reduce(x, axis=self.axes, keepdims=self.keepdim)
