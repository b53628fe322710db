"""Helpers shared by the distributions: parameter broadcasting, probs <-> logits, cached properties."""

import numbers

from dtorch import _backend
from dtorch import factories
from dtorch import functional as F
from dtorch.nn import functional as NF
from dtorch.tensor import Tensor


def broadcast_all(*values):
    """Turn numbers into tensors (of the tensors' dtype, else the default dtype) and broadcast everything together.

    >>> import dtorch
    >>> loc, scale = broadcast_all(dtorch.zeros(3), 1.0)
    >>> scale.shape
    dtorch.Size([3])
    """
    like = next((v for v in values if isinstance(v, Tensor)), None)
    tensors = []
    for value in values:
        if isinstance(value, Tensor):
            tensors.append(value)
        elif isinstance(value, numbers.Number):
            dtype = like.dtype if like is not None else _backend.get_default_dtype()
            device = like.device if like is not None else None
            tensors.append(factories.tensor(float(value), dtype=dtype, device=device))
        else:
            raise ValueError("Input arguments must all be instances of numbers.Number or Tensor.")
    if len(tensors) == 1:
        return tensors
    return list(F.broadcast_tensors(*tensors))


def _eps(tensor):
    return _backend.finfo(tensor.dtype).eps


def clamp_probs(probs):
    """Clamp probabilities into ``[eps, 1 - eps]`` so their logits stay finite."""
    eps = _eps(probs)
    return F.clamp(probs, min=eps, max=1 - eps)


def probs_to_logits(probs, is_binary=False):
    """``log(p) - log(1 - p)`` for a binary probability, ``log(p)`` for a categorical one (both clamped).

    >>> import dtorch
    >>> probs_to_logits(dtorch.tensor([0.5]), is_binary=True)
    tensor([0.])
    """
    clamped = clamp_probs(probs)
    if is_binary:
        return F.log(clamped) - F.log1p(-clamped)
    return F.log(clamped)


def logits_to_probs(logits, is_binary=False):
    """``sigmoid`` of a binary logit, ``softmax`` over the last dim of categorical logits.

    >>> import dtorch
    >>> logits_to_probs(dtorch.tensor([0.0]), is_binary=True)
    tensor([0.5000])
    """
    if is_binary:
        return F.sigmoid(logits)
    return NF.softmax(logits, dim=-1)


def sum_rightmost(value, dim):
    """Sum away the ``dim`` rightmost dimensions of ``value``."""
    if dim == 0:
        return value
    return F.sum(value.reshape(tuple(value.shape[: value.dim() - dim]) + (-1,)), -1)


class lazy_property:
    """A property computed once on first access and then stored on the instance (``probs`` from ``logits``)."""

    def __init__(self, wrapped):
        self.wrapped = wrapped
        self.__doc__ = wrapped.__doc__
        self.__name__ = wrapped.__name__

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = self.wrapped(instance)
        instance.__dict__[self.wrapped.__name__] = value
        return value
