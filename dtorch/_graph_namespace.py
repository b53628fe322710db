"""The stand-in for ``xp`` in a ``create_graph=True`` backward: NumPy's names over differentiable dtorch ops.

Backward formulas call ``self.xp.exp(x)``, ``self.xp.sum(g, axis=..., keepdims=True)`` and so on. In a plain
backward ``xp`` is NumPy or CuPy and the formulas run on arrays; in a ``create_graph`` backward the engine swaps
in this module, so the very same formula records a graph and gradients of gradients come out of it. Only the
names that backward formulas use are here.
"""

from dtorch import functional as F
from dtorch.tensor import Tensor


def _tensor(value):
    return value if isinstance(value, Tensor) else F._constant(value)


def sum(x, axis=None, keepdims=False, dtype=None):
    return F.sum(_tensor(x), dim=axis, keepdim=keepdims)


def mean(x, axis=None, keepdims=False):
    return F.mean(_tensor(x), dim=axis, keepdim=keepdims)


def max(x, axis=None, keepdims=False):
    return F.amax(_tensor(x), dim=axis if axis is not None else (), keepdim=keepdims)


def min(x, axis=None, keepdims=False):
    return F.amin(_tensor(x), dim=axis if axis is not None else (), keepdim=keepdims)


def reshape(x, shape):
    return F.reshape(_tensor(x), tuple(shape))


def broadcast_to(x, shape):
    return F.expand(_tensor(x), tuple(shape))


def expand_dims(x, axis):
    return F.unsqueeze(_tensor(x), axis)


def swapaxes(x, axis1, axis2):
    return F.transpose(_tensor(x), axis1, axis2)


def transpose(x, axes):
    return F.permute(_tensor(x), *axes)


def matmul(a, b):
    return F.matmul(_tensor(a), _tensor(b))


def einsum(equation, *operands):
    return F.einsum(equation, *[_tensor(o) for o in operands])


def exp(x):
    return F.exp(x)


def log(x):
    return F.log(x) if isinstance(x, Tensor) else F.log(_tensor(x))


def sqrt(x):
    return F.sqrt(x)


def sin(x):
    return F.sin(x)


def cos(x):
    return F.cos(x)


def tanh(x):
    return F.tanh(x)


def erf(x):
    return F.erf(x)


def abs(x):
    return F.abs(x)


def sign(x):
    return F.sign(x)


def where(condition, a, b):
    return F.where(condition, a, b)


def maximum(a, b):
    return F.maximum(a, b)


def minimum(a, b):
    return F.minimum(a, b)


def logaddexp(a, b):
    """``log(exp(a) + exp(b))`` composed from differentiable ops, stable for large arguments."""
    larger = F.maximum(a, b)
    return larger + F.log1p(F.exp(-F.abs(F.sub(a, b))))


def flip(x, axis):
    return F.flip(x, axis)


def cumsum(x, axis):
    return F.cumsum(x, axis)


def roll(x, shift, axis=None):
    return F.roll(x, shift, axis)


def astype(x, dtype):
    return F._cast(x, dtype)


def isfinite(x):
    return F.isfinite(x)
