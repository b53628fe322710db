"""Reductions over ``dim`` (an int, a tuple, or None for all) with ``keepdim``, and cumulative sums.

The ``axes`` attribute is always a sorted tuple of non-negative axes, resolved by the front end, so a recorded
op replays without knowing the input's rank.
"""

import math

import numpy as np

from dtorch import _backend
from dtorch.autograd.function import Op, graph_mode
from dtorch.ops._util import broadcast_gradient, expand_reduced, normalize_dims

_INT64 = np.dtype(np.int64)
_numpy_ndarray = np.ndarray
# NumPy's reductions themselves: ``ndarray.sum``/``max``/``min`` reach these ufunc reduces through a Python wrapper
# (numpy/_core/_methods.py) that costs about as much as reducing a small array. The ops below call them directly
# on NumPy arrays (same function, same arguments) and the array methods on CuPy arrays.
_add_reduce = np.add.reduce
_maximum_reduce = np.maximum.reduce
_minimum_reduce = np.minimum.reduce
# the ``axes`` of ``dim=None`` and of one non-negative dim, built once (NumPy arrays have at most 64 dimensions)
_EVERY_AXIS = tuple(tuple(range(ndim)) for ndim in range(65))
_ONE_AXIS = tuple((axis,) for axis in range(64))


def reduction_axes(dim, ndim):
    """``normalize_dims(dim, ndim)`` for the two common spellings, ``None`` and one int in range, from tables;
    anything else (tuples, out-of-range dims, a 0-dim input) goes through ``normalize_dims``.

    >>> reduction_axes(None, 3), reduction_axes(-1, 3), reduction_axes([2, 0], 3)
    ((0, 1, 2), (2,), (0, 2))
    """
    if dim is None:
        return _EVERY_AXIS[ndim]
    if type(dim) is int and -ndim <= dim < ndim:
        return _ONE_AXIS[dim % ndim]
    return normalize_dims(dim, ndim)


def _torch_reduction_name(op, node, ndim):
    """PyTorch's grad_fn name of a reduction: ``SumBackward0`` for ``sum()``, ``SumBackward1`` with a ``dim``
    (told apart by the axes: a ``dim`` naming every axis reads as ``sum()``)."""
    every_axis = not node.keepdim and len(node.axes) == ndim
    return f"{op}Backward{0 if every_axis else 1}"


class Sum(Op):
    attr_names = ("axes", "keepdim", "dtype")

    def name(self):
        return _torch_reduction_name("Sum", self, len(self.input_shape))

    def forward(self, x):
        self.input_shape = x.shape
        return sum_array(x, self.axes, self.keepdim, self.dtype)

    def backward(self, grad):
        xp = self.xp
        grad = expand_reduced(xp, grad, self.input_shape, self.axes, self.keepdim)
        return (broadcast_gradient(xp, grad, self.input_shape),)


def sum_array(x, axes, keepdim, dtype):
    """The sum of the array ``x`` over ``axes``: ``Sum``'s forward, and ``dtorch.sum``'s when nothing is recorded
    (a NumPy scalar for every axis without ``keepdim``)."""
    if type(x) is _numpy_ndarray:
        return _add_reduce(x, axes, dtype, None, keepdim)
    # array methods, here and below: NumPy's module functions add a Python dispatch layer per call
    return x.sum(axis=axes, keepdims=keepdim, dtype=dtype)


class Mean(Op):
    attr_names = ("axes", "keepdim")

    def name(self):
        return _torch_reduction_name("Mean", self, len(self.input_shape))

    def forward(self, x):
        self.input_shape = x.shape
        count = 1
        for axis in self.axes:
            count *= x.shape[axis]
        self.count = count
        if count == 0:  # NaN, as in PyTorch, without NumPy's "mean of empty slice" warning
            return self.xp.sum(x, axis=self.axes, keepdims=self.keepdim) * math.nan
        if x.dtype.itemsize >= 4:
            # what NumPy's mean computes (a sum in the input's dtype, then one division) without its Python layer
            if type(x) is _numpy_ndarray:
                return _add_reduce(x, self.axes, None, None, self.keepdim) / count
            return x.sum(axis=self.axes, keepdims=self.keepdim) / count
        return self.xp.mean(x, axis=self.axes, keepdims=self.keepdim)  # float16: NumPy sums in float32

    def backward(self, grad):
        xp = self.xp
        grad = expand_reduced(xp, grad, self.input_shape, self.axes, self.keepdim)
        # an empty input has an empty gradient, whatever the scale
        return (broadcast_gradient(xp, grad / self.count if self.count else grad * 0, self.input_shape),)


class Prod(Op):
    attr_names = ("axes", "keepdim")

    def name(self):
        return _torch_reduction_name("Prod", self, self.input_ndim)

    def forward(self, x):
        self.save_for_backward(x)
        self.input_ndim = x.ndim
        return self.xp.prod(x, axis=self.axes, keepdims=self.keepdim)

    def backward(self, grad):
        (x,) = self.saved_tensors
        xp = self.xp
        grad = expand_reduced(xp, grad, x.shape, self.axes, self.keepdim)
        # product of all the other elements, computed without dividing so zeros are handled
        if graph_mode.active:
            return (grad * _product_of_others_recorded(xp, x, self.axes),)
        return (grad * _product_of_others(xp, x, self.axes),)


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


def _product_of_others_recorded(xp, x, axes):
    """``_product_of_others`` as recorded ops (a ``create_graph`` backward): the products of n rows, row i being
    the group with its i-th element replaced by 1; O(n^2) for a group of n, but differentiable again."""
    kept = tuple(a for a in range(x.ndim) if a not in axes)
    order = kept + tuple(axes)
    moved = xp.transpose(x, order)
    group = 1
    for axis in axes:
        group *= x.shape[axis]
    flat = xp.reshape(moved, tuple(moved.shape[: len(kept)]) + (group,))
    eye = _backend.xp_of(x._array).eye(group, dtype=bool)
    rows = xp.where(eye, 1, xp.expand_dims(flat, -2))  # (..., group, group)
    others = Prod.apply(rows, axes=(rows.ndim - 1,), keepdim=False)
    return xp.transpose(xp.reshape(others, moved.shape), tuple(np.argsort(order)))


class MaxMin(Op):
    """``amax``/``amin`` over axes; the gradient is shared equally among tied extremes (PyTorch's rule)."""

    attr_names = ("axes", "keepdim", "mode")
    saves_output = True  # backward compares x with the kept extreme, which is (a view of) the output

    def name(self):
        # max() and min() are MaxBackward1/MinBackward1 in PyTorch, amax/amin (with a dim) AmaxBackward0/AminBackward0
        if not self.keepdim and len(self.axes) == self.input_ndim:
            return f"{self.mode.capitalize()}Backward1"
        return f"A{self.mode}Backward0"

    def forward(self, x):
        self.save_for_backward(x)
        self.input_ndim = x.ndim
        every_axis = not self.keepdim and len(self.axes) == x.ndim
        if type(x) is _numpy_ndarray:
            if every_axis:  # the 0-dim extreme broadcasts against x in backward
                out = self.extreme = extreme_of_all(x, self.mode)
                return out
            reduce = _maximum_reduce if self.mode == "max" else _minimum_reduce
            out = self.extreme = reduce(x, self.axes, None, None, True)
        else:
            if every_axis:
                out = self.extreme = x.max() if self.mode == "max" else x.min()
                return out
            out = x.max(axis=self.axes, keepdims=True) if self.mode == "max" else x.min(axis=self.axes, keepdims=True)
            self.extreme = out
        if not self.keepdim:
            out = out.squeeze(axis=self.axes)
        return out

    def backward(self, grad):
        (x,) = self.saved_tensors
        xp = self.xp
        grad = expand_reduced(xp, grad, x.shape, self.axes, self.keepdim)
        hits = x == self.extreme
        # counted in the gradient's dtype: an int64 count would promote a float32 gradient to float64
        count = xp.sum(hits, axis=self.axes, keepdims=True, dtype=grad.dtype)
        return (grad * hits / count,)


def extreme_of_all(x, mode):
    """The largest (``mode`` "max") or smallest element of a non-empty NumPy array, as a NumPy scalar: ``MaxMin``'s
    forward over every axis, and ``dtorch.max``'s when nothing is recorded.

    For a contiguous array of numbers it is the element at ``argmax``/``argmin``: one C loop without the set-up of
    the ufunc reduce, which costs twice as much on a small array. Both give NaN when there is one (argmax/argmin
    point at the first NaN). A zero extreme comes from the reduce, whose choice between -0.0 and +0.0 (the last of
    equal elements) is PyTorch's; the element at the index is the first.
    """
    if x.dtype.kind in "fiu" and (x.ndim == 1 or x.flags.c_contiguous):
        flat = x if x.ndim == 1 else x.reshape(-1)
        out = flat[flat.argmax()] if mode == "max" else flat[flat.argmin()]
        if out != 0:
            return out
    return _maximum_reduce(x, None) if mode == "max" else _minimum_reduce(x, None)


class MaxMinDim(Op):
    """``max(dim)``/``min(dim)``: the values, plus the indices as a second, non-differentiable output."""

    attr_names = ("axis", "keepdim", "mode")
    n_outputs = 2

    def name(self):
        return f"{self.mode.capitalize()}Backward0"

    def forward(self, x):
        self.input_shape = x.shape
        values, indices, self.indices = extreme_along(self.xp, x, self.axis, self.keepdim, self.mode)
        return values, indices

    def backward(self, grad):
        xp = self.xp
        if not self.input_shape:
            return (grad,)
        if not self.keepdim:
            grad = xp.expand_dims(grad, self.axis)
        arrays = _backend.xp_of(self.indices)
        indices = arrays.expand_dims(self.indices, self.axis)
        if graph_mode.active:  # the same scatter as a recorded where: differentiable again
            extent = self.input_shape[self.axis]
            positions = arrays.arange(extent).reshape((extent,) + (1,) * (len(self.input_shape) - self.axis - 1))
            return (xp.where(positions == indices, grad, 0),)
        out = xp.zeros(self.input_shape, dtype=grad.dtype)
        xp.put_along_axis(out, indices, grad, axis=self.axis)
        return (out,)


def extreme_along(xp, x, axis, keepdim, mode):
    """``max(dim)``/``min(dim)`` of the array ``x`` (``mode`` "max" or "min"): the values, the int64 indices as
    returned, and the indices in the reduced shape (what ``MaxMinDim``'s backward scatters to). ``MaxMinDim``'s
    forward, and ``dtorch.max``'s when nothing is recorded."""
    if x.ndim == 0:  # dim 0 or -1 of a 0-dim tensor: the value itself, index 0
        index = xp.zeros((), dtype=_INT64)
        return x.copy(), index, index
    if mode == "max":
        indices = x.argmax(axis)  # the reduced shape; an axis of extent 1 comes back below for keepdim
        values = _maximum_reduce(x, axis, None, None, keepdim) if type(x) is _numpy_ndarray else \
            x.max(axis=axis, keepdims=keepdim)  # the values at ``indices`` (NaN included)
    else:
        indices = x.argmin(axis)
        values = _minimum_reduce(x, axis, None, None, keepdim) if type(x) is _numpy_ndarray else \
            x.min(axis=axis, keepdims=keepdim)
    if xp.count_nonzero(values) != values.size:
        # a zero extreme: NumPy's max/min may give -0.0 where the element at the index is +0.0 (or the reverse);
        # PyTorch returns the element at the index, so gather it (rare: a cheap test decides)
        values = xp.take_along_axis(x, xp.expand_dims(indices, axis), axis=axis)
        if not keepdim:
            values = values.squeeze(axis)
    returned = indices.reshape(values.shape) if keepdim else indices
    return values, returned if returned.dtype is _INT64 else returned.astype(_INT64), indices


class Var(Op):
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


class Std(Op):
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
        # PyTorch passes no gradient where the deviation is 0 (its subgradient; the formula would give 0 / 0)
        std = xp.where(std == 0, 1, std)
        return (grad * centered / (std * self.divisor),)


class Norm(Op):
    """The vector p-norm over axes (p may be inf, -inf, 0 or any real); PyTorch's subgradient 0 at x = 0."""

    attr_names = ("p", "axes", "keepdim")

    def name(self):
        return "LinalgVectorNormBackward0"

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


class LogSumExp(Op):
    attr_names = ("axes", "keepdim")

    def name(self):
        return "LogsumexpBackward0"

    def forward(self, x):
        self.save_for_backward(x)
        xp = self.xp
        if x.size == 0:  # an empty sum: log(0) = -inf, as in PyTorch (max has no identity to shift by)
            return xp.full_like(xp.sum(x, axis=self.axes, keepdims=self.keepdim), -math.inf)
        shift = xp.max(x, axis=self.axes, keepdims=True)
        shift = xp.where(xp.isfinite(shift), shift, 0)
        with np.errstate(divide="ignore"):  # every term -inf: log(0) = -inf, as in PyTorch
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


class CumSum(Op):
    attr_names = ("axis",)

    def name(self):
        return "CumsumBackward0"

    def forward(self, x):
        if x.ndim == 0:
            return x.copy()
        return self.xp.cumsum(x, axis=self.axis)

    def backward(self, grad):
        xp = self.xp
        if grad.ndim == 0:
            return (grad,)
        return (xp.flip(xp.cumsum(xp.flip(grad, axis=self.axis), axis=self.axis), axis=self.axis),)


class CumProd(Op):
    attr_names = ("axis",)

    def name(self):
        return "CumprodBackward0"

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
        if graph_mode.active:
            return (_cumprod_backward_recorded(xp, x, grad, self.axis),)
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


def _cumprod_backward_recorded(xp, x, grad, axis):
    """CumProd's backward as recorded ops (a ``create_graph`` backward): row i of an n x n matrix is x with its
    i-th element replaced by 1, whose cumulative products are d out_j / d x_i for j >= i."""
    last = x.ndim - 1
    moved = xp.swapaxes(x, axis, last)
    g = xp.swapaxes(grad, axis, last)
    n = moved.shape[-1]
    arrays = _backend.xp_of(x._array)
    rows = xp.where(arrays.eye(n, dtype=bool), 1, xp.expand_dims(moved, -2))  # (..., n, n)
    partial = CumProd.apply(rows, axis=rows.ndim - 1)  # [..., i, j] = prod_{k <= j, k != i} x_k
    later = arrays.triu(arrays.ones((n, n), dtype=bool))  # j >= i
    result = xp.sum(xp.where(later, xp.expand_dims(g, -2) * partial, 0), axis=-1)
    return xp.swapaxes(result, axis, last)


class ArgExtreme(Op):
    attr_names = ("axis", "keepdim", "mode")
    differentiable = False

    def forward(self, x):
        xp = self.xp
        if not self.keepdim:
            out = x.argmax(self.axis) if self.mode == "max" else x.argmin(self.axis)
            if type(out) is _numpy_ndarray and out.dtype is _INT64:
                return out
            return xp.asarray(out, dtype=_INT64)  # a NumPy integer scalar for axis=None
        out = x.argmax(axis=self.axis, keepdims=True) if self.mode == "max" else \
            x.argmin(axis=self.axis, keepdims=True)
        if self.axis is None:  # NumPy keeps one axis of extent 1; PyTorch every axis
            out = out.reshape((1,) * x.ndim)
        return xp.asarray(out, dtype=_INT64)


class AllAny(Op):
    attr_names = ("axes", "keepdim", "mode")
    differentiable = False

    def forward(self, x):
        reduce = self.xp.all if self.mode == "all" else self.xp.any
        return reduce(x, axis=self.axes, keepdims=self.keepdim)
