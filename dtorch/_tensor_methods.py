"""Tensor methods that are not math: conversion (``to``, ``float``, ``cpu``), ``detach``, ``backward``, the
``new_*`` factories and in-place random fills. Bound onto ``Tensor`` by ``dtorch/__init__.py``."""

import math

import numpy as np

from dtorch import _backend
from dtorch import _legacy_types
from dtorch import autograd
from dtorch import factories
from dtorch import functional as F
from dtorch.autograd import grad_mode
from dtorch.ops.device import ToDevice
from dtorch.ops.views import _address
from dtorch.random import numpy_generator
from dtorch.tensor import Tensor, wrap_array

_new = wrap_array


def parse_to_args(args, kwargs):
    """``(dtype, device, copy)`` from the arguments of ``Tensor.to`` and ``Module.to`` (PyTorch's overloads:
    ``to(dtype, non_blocking=False, copy=False)``, ``to(device=None, dtype=None, non_blocking=False, copy=False)``,
    ``to(other, non_blocking=False, copy=False)``). Positional bools are ``non_blocking`` then ``copy``; an int
    device is ``cuda:N``.

    >>> import dtorch
    >>> parse_to_args((dtorch.float64, False, True), {})
    (dtorch.float64, None, True)
    """
    dtype = kwargs.pop("dtype", None)
    device = kwargs.pop("device", None)
    kwargs.pop("non_blocking", None)
    copy = kwargs.pop("copy", False)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    flags = []
    for arg in args:
        if isinstance(arg, Tensor):
            dtype, device = arg.dtype, arg.device
        elif isinstance(arg, _backend.dtype):
            dtype = arg
        elif isinstance(arg, bool):
            flags.append(arg)  # non_blocking, then copy
        elif isinstance(arg, (str, _backend.device, int)):
            device = arg
        elif arg is None:
            continue
        else:
            raise TypeError(f"to() received an invalid combination of arguments: {type(arg).__name__}")
    if len(flags) > 2:
        raise TypeError(f"to() received an invalid combination of arguments: {len(flags)} bools")
    if len(flags) == 2:
        copy = flags[1]
    if isinstance(device, int):
        device = f"cuda:{device}"
    return dtype, device, copy


def to(self, *args, **kwargs):
    """A tensor with another dtype and/or on another device (``self`` when nothing changes).

    >>> import dtorch
    >>> dtorch.tensor([1, 2]).to(dtorch.float32)
    tensor([1., 2.])
    """
    dtype, device, copy = parse_to_args(args, dict(kwargs))
    result = self
    if device is not None:
        target = _backend.as_device(device)
        if target.type == "cuda" and not _backend.cuda_is_available():
            _backend.check_cuda_dtype(self._array.dtype if dtype is None else _backend.to_numpy_dtype(dtype))
            _backend.cupy()  # raises naming the extra to install
            raise RuntimeError("Torch not compiled with CUDA enabled: no GPU is visible to CuPy")
        if target != self.device:
            result = ToDevice.apply(result, device=str(target))
    if dtype is not None:
        numpy_dtype = _backend.to_numpy_dtype(dtype)
        if result._array.dtype != numpy_dtype:
            if _backend.is_floating_numpy(numpy_dtype):
                result = F._cast(result, numpy_dtype)
            else:
                result = _new(result._array.astype(numpy_dtype), None)
    if copy and result is self:
        result = F.clone(self)
    return result


def _to_dtype(dtype):
    def convert(self, memory_format=None):
        return to(self, dtype)

    convert.__name__ = dtype.name
    convert.__doc__ = f"``self.to(dtorch.{dtype.name})``"
    return convert


def cpu(self, memory_format=None):
    return to(self, "cpu")


def cuda(self, device=None, non_blocking=False, memory_format=None):
    return to(self, "cuda" if device is None else (device if not isinstance(device, int) else f"cuda:{device}"))


def type_as(self, other):
    return to(self, other.dtype)


def tensor_type(self, dtype=None, non_blocking=False):
    if dtype is None:
        names = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor", "int64": "LongTensor",
                 "int32": "IntTensor", "int16": "ShortTensor", "int8": "CharTensor", "uint8": "ByteTensor",
                 "bool": "BoolTensor", "bfloat16": "BFloat16Tensor"}
        return "dtorch." + names[self.dtype.name]
    if isinstance(dtype, str):  # 'torch.FloatTensor' or 'dtorch.FloatTensor'
        name = dtype.rsplit(".", 1)[-1]
        if name not in _legacy_types.BY_NAME:
            raise ValueError(f"invalid type: {dtype!r}")
        dtype = _legacy_types.BY_NAME[name]
    if isinstance(dtype, _legacy_types._LegacyTensorType):
        dtype = dtype.dtype
    return to(self, dtype)


def detach(self):
    """A tensor sharing this one's memory, cut from the graph (it never requires grad)."""
    result = _new(self._array, None)
    result._base = self._base if self._base is not None else self
    return result


def detach_(self):
    if self._base is not None and self.grad_fn is not None:
        raise RuntimeError("Can't detach views in-place. Use detach() instead.")
    self.grad_fn = None
    self.requires_grad = False
    return self


def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    """Compute the gradient of this tensor with respect to the graph's leaves, accumulated into their ``.grad``.

    >>> import dtorch
    >>> w = dtorch.tensor([2.0], requires_grad=True)
    >>> (w * w).sum().backward(); w.grad
    tensor([4.])
    """
    autograd.backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph, inputs=inputs)


def _new_like(self, size, fill, dtype, device, requires_grad):
    dtype = dtype if dtype is not None else self.dtype
    device = device if device is not None else self.device
    shape = factories._size(size)
    if fill is None:
        return factories.empty(shape, dtype=dtype, device=device, requires_grad=requires_grad)
    return factories.full(shape, fill, dtype=dtype, device=device, requires_grad=requires_grad)


def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
    return _new_like(self, size, 0, dtype, device, requires_grad)


def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
    return _new_like(self, size, 1, dtype, device, requires_grad)


def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
    return _new_like(self, size, None, dtype, device, requires_grad)


def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
    return _new_like(self, (size,), fill_value, dtype, device, requires_grad)


def new_tensor(self, data, *, dtype=None, device=None, requires_grad=False):
    return factories.tensor(data, dtype=dtype if dtype is not None else self.dtype,
                            device=device if device is not None else self.device, requires_grad=requires_grad)


def _fill_from_host(self, sample):
    """In-place random fill: never recorded (like ``nn.init``), bumps the version."""
    if grad_mode.is_grad_enabled() and self.requires_grad and self.grad_fn is None:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
    sample = sample.astype(self._array.dtype, copy=False)
    if _backend.is_cupy_array(self._array):
        sample = _backend.to_device(sample, self.device)
    self._array[...] = sample
    self._bump_version()
    return self


def uniform_(self, a=0.0, b=1.0, *, generator=None):
    """Fill with samples uniform in ``[a, b)``."""
    return _fill_from_host(self, numpy_generator(generator).uniform(a, b, self._array.shape))


def normal_(self, mean=0.0, std=1.0, *, generator=None):
    """Fill with normal samples."""
    return _fill_from_host(self, numpy_generator(generator).normal(mean, std, self._array.shape))


def bernoulli_(self, p=0.5, *, generator=None):
    return _fill_from_host(self, numpy_generator(generator).random(self._array.shape) < p)


def exponential_(self, lambd=1.0, *, generator=None):
    return _fill_from_host(self, numpy_generator(generator).exponential(1.0 / lambd, self._array.shape))


def random_(self, low=0, high=None, *, generator=None):
    if high is None:
        low, high = 0, low
    return _fill_from_host(self, numpy_generator(generator).integers(low, high, self._array.shape))


def view_as(self, other):
    return F.view(self, other.shape)


def reshape_as(self, other):
    return F.reshape(self, other.shape)


def iterate(self):
    if self._array.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    return iter(F.unbind(self, 0))


def tensor_all(self, dim=None, keepdim=False):
    return F.all(self, dim, keepdim)


def T(self):
    return F.permute(self, *reversed(range(self._array.ndim)))


def mT(self):
    if self._array.ndim < 2:
        raise RuntimeError("tensor.mT is only supported on matrices or batches of matrices. Got 1-D tensor.")
    return F.transpose(self, -2, -1)


def apply_(self, callable):
    flat = self._array.reshape(-1)
    for index in range(flat.size):
        flat[index] = callable(flat[index].item())
    self._bump_version()
    return self


def nan_to_num(self, nan=0.0, posinf=None, neginf=None):
    """NaN, +inf and -inf replaced (by 0 and the dtype's largest and smallest values unless given); the gradient
    passes where the input is finite, as in PyTorch."""
    if self._array.dtype.kind != "f":
        return F.clone(self)
    info = np.finfo(self._array.dtype)
    result = F.where(F.isnan(self), float(nan), self)
    result = F.where(F.eq(self, math.inf), float(info.max if posinf is None else posinf), result)
    return F.where(F.eq(self, -math.inf), float(info.min if neginf is None else neginf), result)



def storage_offset(self):
    """How many elements into its base tensor's memory this view starts (0 for a tensor that owns its memory).

    >>> import dtorch
    >>> dtorch.arange(6).reshape(2, 3)[1:].storage_offset()
    3
    """
    if self._base is None:
        return 0
    return (_address(self._array) - _address(self._base._array)) // self._array.itemsize


def pin_memory(self):
    """Accepted for compatibility: host arrays are already usable for copies to the GPU; returns ``self``."""
    return self


def is_pinned(self):
    """False: dtorch does not allocate page-locked host memory."""
    return False


def share_memory_(self):
    """Accepted for compatibility; returns ``self``. (DataLoader workers send batches through shared memory.)"""
    return self


def numpy(self, *, force=False):
    """The NumPy array behind this CPU tensor (shared memory, no copy).

    >>> import dtorch
    >>> dtorch.tensor([1, 2]).numpy()
    array([1, 2])
    """
    if self.requires_grad and not force and grad_mode.is_grad_enabled():  # PyTorch allows it under no_grad
        raise RuntimeError(
            "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."
        )
    if _backend.is_cupy_array(self._array):
        if force:
            return self._array.get()
        raise TypeError(
            f"can't convert {self.device} device type tensor to numpy. Use Tensor.cpu() to copy the tensor "
            "to host memory first."
        )
    if self._array.dtype == _backend.BFLOAT16_NUMPY:  # as PyTorch: NumPy has no bfloat16 of its own
        raise TypeError("Got unsupported ScalarType BFloat16")
    return self._array
