"""Helpers every op file shares: undoing broadcasting, normalising ``dim`` arguments, a special function."""

import math

import numpy as np

from dtorch._backend import xp_of
from dtorch.tensor import Tensor, _wrap_dim


def constant(array):
    """A backend array as a Tensor without history: index arrays and masks that a ``create_graph`` backward
    passes to differentiable ops."""
    return Tensor._from_array(array, None)


def attached(array, node, index=None):
    """``array`` as a Tensor with history, for a ``create_graph`` backward, without the op keeping Tensors alive
    between its forward and its backward (memory): with ``index`` None the op's own output (``array`` must equal
    it) hanging from ``node`` itself; otherwise input ``index`` of ``node``, where ``array`` equals that input (or
    is equivalent for the formula that reads it, e.g. up to a per-row shift before a softmax), hanging from the
    input's own place in the graph (its node, or the leaf itself)."""
    if array is None:
        return None
    if index is None:
        return Tensor._from_array(array, node)
    edge = node.edges[index]
    if edge is None:
        return Tensor._from_array(array, None)
    if isinstance(edge, Tensor):  # a leaf: the tensor itself (its array is the input)
        return edge
    return Tensor._from_array(array, edge)


def array_module(tensor):
    """NumPy or CuPy for a Tensor's array: in a ``create_graph`` backward ``self.xp`` is the graph namespace, and
    masks and index arrays are still built with the real array module."""
    return xp_of(tensor._array)


def sum_to(xp, grad, shape):
    """Sum ``grad`` down to ``shape``: the one place where broadcasting is undone for every op.

    Leading dimensions that broadcasting added are summed away; dimensions of extent 1 in ``shape`` are summed
    with ``keepdims``. Works on arrays and, in a ``create_graph`` backward, on Tensors (``xp`` is then the
    differentiable namespace).

    >>> import numpy as np
    >>> sum_to(np, np.ones((2, 3)), (3,))
    array([2., 2., 2.])
    """
    grad_shape = grad.shape
    if grad_shape == shape:  # no broadcasting to undo: most calls (both tuples; a list takes the general test)
        return grad
    if tuple(grad_shape) == tuple(shape):
        return grad
    lead = len(grad_shape) - len(shape)
    axes = list(range(lead))
    for i, extent in enumerate(shape):
        if extent == 1 and grad_shape[lead + i] != 1:
            axes.append(lead + i)
    if isinstance(grad, Tensor):  # a create_graph backward: the differentiable namespace records the sum
        if axes:
            grad = xp.sum(grad, axis=tuple(axes), keepdims=True)
        if tuple(grad.shape) != tuple(shape):
            grad = xp.reshape(grad, tuple(shape))
        return grad
    # arrays: their methods (NumPy's module functions add a Python dispatch layer per call)
    if axes:
        grad = grad.sum(axis=tuple(axes), keepdims=True)
    if grad.shape != tuple(shape):
        grad = grad.reshape(tuple(shape))
    return grad


def normalize_dims(dim, ndim):
    """``dim`` (None, an int or a sequence) as a sorted tuple of non-negative axes; None means every axis."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, int):
        axis = _wrap_dim(dim, ndim)
        return (axis,) if ndim else ()  # a 0-dim tensor accepts dim 0 or -1, as in PyTorch, and has no axes
    axes = tuple(sorted(_wrap_dim(d, ndim) for d in dim))
    if not ndim:
        return ()
    if len(set(axes)) != len(axes):
        raise RuntimeError(f"dim {tuple(dim)} appears multiple times in the list of dims")
    if not axes:
        return tuple(range(ndim))
    return axes


def expand_reduced(xp, grad, shape, axes, keepdim):
    """Give a reduced gradient back the reduced axes (as extent 1) so it broadcasts against the input."""
    if not keepdim and axes and len(shape) > 0:
        full = list(shape)
        for axis in axes:
            full[axis] = 1
        if isinstance(grad, Tensor):
            grad = xp.reshape(grad, tuple(full))
        else:
            grad = grad.reshape(tuple(full))  # the array method: np.reshape's dispatch costs more than the view
    return grad


def broadcast_gradient(xp, grad, shape):
    """``xp.broadcast_to(grad, shape)``, for arrays as a fresh array of its own: the gradient of a reduction
    spread back over its input. The engine copies a read-only broadcast view before it stores one in a leaf's
    ``.grad``, and NumPy's ``broadcast_to`` is a Python function of its own; filling a new array costs less than
    either. In a ``create_graph`` backward (Tensors) the namespace's ``broadcast_to`` records the op.

    >>> import numpy as np
    >>> broadcast_gradient(np, np.array([[1.0], [2.0]]), (2, 3))
    array([[1., 1., 1.],
           [2., 2., 2.]])
    """
    if isinstance(grad, Tensor):
        return xp.broadcast_to(grad, shape)
    out = xp.empty(shape, dtype=grad.dtype)
    out[...] = grad
    return out


# erf: NumPy has none. Chebyshev fit of erfc (fractional error under 1.2e-7 everywhere), evaluated with xp so the
# same code runs on CuPy.
_ERFC_COEFFICIENTS = (
    -1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,
    0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277,
)


def erf(xp, x):
    """The error function on an array: float32 accuracy from a Chebyshev fit; float64 inputs get the Maclaurin
    series where ``|x| < 3`` and the fit beyond (erfc < 2.3e-5 there), about 1e-13 absolute error in all."""
    if x.dtype.itemsize >= 8:
        return _erf_float64(xp, x)
    if x.dtype.kind == "V":  # bfloat16: the fit in float32, rounded once (in bfloat16 its terms would cancel)
        return _erf_fit(xp, x.astype(np.float32)).astype(x.dtype)
    if type(x) is np.ndarray and x.dtype == np.float32 and x.size > CHUNK:
        return erf_chunked(x)
    return _erf_fit(xp, x)


# Large float32 arrays: the same fit, evaluated in place piece by piece. Each of its ~27 passes then works on a
# piece that stays in the L2 cache, and no pass allocates; the whole array would stream every pass through memory
# (4x slower on 2M elements).
CHUNK = 32768


def erf_chunked(x, out=None):
    """``_erf_fit(np, x)`` for a float32 NumPy array, bit for bit (except the sign of ``erf(-0.0)``), in pieces."""
    x = x if x.flags.c_contiguous else x.copy()  # (ascontiguousarray would make a 0-d array 1-d)
    out = np.empty_like(x) if out is None else out
    flat_x, flat_out = x.reshape(-1), out.reshape(-1)
    t = np.empty(min(CHUNK, flat_x.size), x.dtype)
    poly = np.empty_like(t)
    for start in range(0, flat_x.size, CHUNK):
        piece = flat_x[start:start + CHUNK]
        n = piece.size
        z, tt, pp = flat_out[start:start + n], t[:n], poly[:n]
        erf_piece(piece, z, tt, pp)
    return out


def erf_piece(x, out, t, poly):
    """``erf(x)`` into ``out`` with scratch arrays ``t`` and ``poly`` (all of ``x``'s size): ``_erf_fit`` in place."""
    np.abs(x, out=out)
    np.multiply(out, 0.5, out=t)
    t += 1.0
    np.reciprocal(t, out=t)
    np.multiply(t, _ERFC_COEFFICIENTS[-1], out=poly)
    poly += _ERFC_COEFFICIENTS[-2]
    for coefficient in _ERFC_COEFFICIENTS[-3::-1]:
        poly *= t
        poly += coefficient
    np.multiply(out, out, out=out)
    np.subtract(poly, out, out=poly)
    np.exp(poly, out=poly)
    poly *= t  # erfc(|x|)
    np.subtract(1.0, poly, out=out)
    np.copysign(out, x, out=out)
    return out


def _erf_fit(xp, x):
    z = xp.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = _ERFC_COEFFICIENTS[-1]
    for coefficient in reversed(_ERFC_COEFFICIENTS[:-1]):
        poly = poly * t + coefficient
    erfc = t * xp.exp(-z * z + poly)
    result = 1.0 - erfc
    return xp.where(x >= 0, result, -result).astype(x.dtype, copy=False)


TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SERIES_TERMS = 56  # 9^56 / 56! < 1e-20: the series has converged for |x| < 3


def _erf_float64(xp, x):
    small = xp.clip(x, -3.0, 3.0)
    square = -small * small
    term = small
    total = small.copy()
    for n in range(1, _SERIES_TERMS):
        term = term * square / n
        total += term / (2 * n + 1)
    return xp.where(xp.abs(x) < 3.0, TWO_OVER_SQRT_PI * total, _erf_fit(xp, x))


def checked_fill_value(value, dtype):
    """A Python number for a tensor of integer or bool NumPy ``dtype``, converted as PyTorch converts a fill value
    (``fill_``, ``full``, ``x[key] = v``, ``where``/``scatter`` scalars): a value out of the dtype's range is
    PyTorch's RuntimeError, except that unsigned types take negative ints down to ``-max``, wrapped around; floats
    are truncated. Values for other dtypes come back unchanged.

    >>> import numpy as np
    >>> checked_fill_value(-1, np.dtype(np.uint8)), checked_fill_value(2.7, np.dtype(np.int8))
    (255, 2)
    """
    kind = dtype.kind
    if kind == "b":
        return bool(value)
    if kind not in "iu":
        return value
    maximum = (1 << (8 * dtype.itemsize - (kind == "i"))) - 1
    if isinstance(value, float) or getattr(value, "dtype", None) is not None and value.dtype.kind == "f":
        value = float(value)
        fits = math.isfinite(value) and (-maximum - 1 if kind == "i" else 0) <= value <= maximum
        converted = int(value) if fits else None
    else:
        converted = int(value)
        fits = (-maximum - 1 if kind == "i" else -maximum) <= converted <= maximum
        if fits and converted < 0 and kind == "u":
            converted += maximum + 1
    if not fits:
        raise RuntimeError(f"value cannot be converted to type {dtype.name}_t without overflow")
    return converted
