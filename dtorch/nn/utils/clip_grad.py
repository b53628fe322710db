"""Gradient clipping: ``clip_grad_norm_`` (and its two halves), ``clip_grad_value_``.

All of them change ``p.grad`` in place on raw arrays and record no graph. ``foreach`` is accepted and ignored:
each gradient is one NumPy/CuPy call already.
"""

import math
import types

import numpy as np

from dtorch import _backend
from dtorch.tensor import Tensor
from dtorch._warnings import warn as _warn

__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_"]


def _as_list(tensors):
    if isinstance(tensors, Tensor):
        return [tensors]
    return list(tensors)


def _vector_norm(array, norm_type):
    """The p-norm of all elements of an array, as a 0-dim array of its dtype (float32 accumulation for float16)."""
    xp = _backend.xp_of(array)
    flat = array.reshape(-1)
    if flat.dtype.itemsize < 4:
        flat = flat.astype(np.float32)
    if norm_type == 2.0:
        result = xp.sqrt(xp.dot(flat, flat))
    elif flat.size == 0:
        result = xp.zeros((), dtype=flat.dtype)
    elif norm_type == math.inf:
        result = xp.abs(flat).max()
    elif norm_type == -math.inf:
        result = xp.abs(flat).min()
    elif norm_type == 0.0:
        result = xp.asarray(xp.count_nonzero(flat), dtype=flat.dtype)
    elif norm_type == 1.0:
        result = xp.abs(flat).sum()
    else:
        result = (xp.abs(flat) ** norm_type).sum() ** (1.0 / norm_type)
    return xp.asarray(result, dtype=array.dtype)


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The norm of the norms of ``tensors``: the p-norm of all their elements as one vector.

    Args:
        tensors (Tensor or iterable of Tensors): usually gradients.
        norm_type (float or str): p; ``'inf'`` / ``float('inf')`` for the max-norm.
        error_if_nonfinite (bool): raise a RuntimeError when the norm is nan or ±inf.
        foreach: ignored.

    Returns:
        a 0-dim Tensor (``tensor(0.)`` for no tensors).

    >>> import dtorch
    >>> get_total_norm([dtorch.tensor([3.0]), dtorch.tensor([4.0])])
    tensor(5.)
    """
    tensors = _as_list(tensors)
    norm_type = float(norm_type)
    if not tensors:
        return Tensor._from_array(np.zeros((), dtype=np.float32), None)
    first = tensors[0]._array
    xp = _backend.xp_of(first)
    first_device = _backend.device_of(first)
    norms = [_backend.to_device(_vector_norm(t._array, norm_type), first_device) for t in tensors]
    dtype = np.result_type(*[n.dtype for n in norms])
    total = _vector_norm(xp.stack([n.astype(dtype, copy=False) for n in norms]), norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it cannot be "
            "clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
            "`error_if_nonfinite=False`"
        )
    return Tensor._from_array(total, None)


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    """Scale the gradients of ``parameters`` by ``min(1, max_norm / (total_norm + 1e-6))``, in place.

    Args:
        parameters (Tensor or iterable of Tensors): whose ``.grad`` to scale.
        max_norm (float): the largest norm allowed.
        total_norm (Tensor): from :func:`get_total_norm`.
        foreach: ignored.
    """
    grads = [p.grad for p in _as_list(parameters) if p.grad is not None]
    if not grads:
        return
    total = total_norm._array if isinstance(total_norm, Tensor) else np.asarray(total_norm, dtype=np.float32)
    xp = _backend.xp_of(total)
    # computed in the norm's dtype, as PyTorch does, so float32 coefficients agree to the bit
    coefficient = xp.asarray(max_norm, dtype=total.dtype) / (total + xp.asarray(1e-6, dtype=total.dtype))
    coefficient = xp.minimum(coefficient, xp.asarray(1.0, dtype=total.dtype))
    for grad in grads:
        scale = _backend.to_device(coefficient, _backend.device_of(grad._array))
        with np.errstate(invalid="ignore"):  # a non-finite norm scales to nan, as in PyTorch
            grad._array *= scale.astype(grad._array.dtype)
        grad._bump_version()


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Clip the gradients of ``parameters`` so that their total norm is at most ``max_norm``; in place.

    The total norm is that of all gradients concatenated into one vector; every gradient is multiplied by
    ``min(1, max_norm / (total + 1e-6))``.

    Args:
        parameters (Tensor or iterable of Tensors): parameters whose ``.grad`` to clip (those without are skipped).
        max_norm (float): the largest total norm allowed.
        norm_type (float or str): p of the p-norm; ``'inf'`` for the max-norm (default 2).
        error_if_nonfinite (bool): raise a RuntimeError when the total norm is nan or ±inf (default False).
        foreach: accepted for PyTorch compatibility and ignored.

    Returns:
        the total norm before clipping, a 0-dim Tensor.

    >>> import dtorch
    >>> w = dtorch.nn.Parameter(dtorch.zeros(2)); w.grad = dtorch.tensor([3.0, 4.0])
    >>> clip_grad_norm_([w], max_norm=1.0)
    tensor(5.)
    >>> w.grad
    tensor([0.6000, 0.8000])
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    else:
        is_generator = isinstance(parameters, types.GeneratorType)
        parameters = list(parameters)
        if is_generator and not parameters:
            _warn("`parameters` is an empty generator, no gradient clipping will occur.")
    grads = [p.grad for p in parameters if p.grad is not None]
    total_norm = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(parameters, max_norm, total_norm, foreach)
    return total_norm


def clip_grad_norm(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Deprecated alias of :func:`clip_grad_norm_`."""
    _warn(
        "`torch.nn.utils.clip_grad_norm` is now deprecated in favor of `torch.nn.utils.clip_grad_norm_`.",
        FutureWarning,
    )
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element of ``parameters`` into ``[-clip_value, clip_value]``, in place.

    Args:
        parameters (Tensor or iterable of Tensors): parameters whose ``.grad`` to clamp.
        clip_value (float): the bound.
        foreach: ignored.

    >>> import dtorch
    >>> w = dtorch.nn.Parameter(dtorch.zeros(2)); w.grad = dtorch.tensor([-3.0, 0.5])
    >>> clip_grad_value_(w, 1.0); w.grad
    tensor([-1.0000,  0.5000])
    """
    clip_value = float(clip_value)
    for p in _as_list(parameters):
        grad = p.grad
        if grad is None:
            continue
        xp = _backend.xp_of(grad._array)
        xp.clip(grad._array, -clip_value, clip_value, out=grad._array)
        grad._bump_version()
