"""Tensor factories: ``tensor``, ``as_tensor``, ``from_numpy``, ``zeros``/``ones``/``full``/``empty`` and their
``_like`` forms, ``arange``, ``linspace``, ``eye`` and the random ones (``rand``, ``randn``, ``randint``,
``randperm``, ``normal``). Names, arguments and default dtypes follow PyTorch.
"""

import math

import numpy as np

from dtorch import _backend
from dtorch._errors import raise_not_a_tensor
from dtorch.ops._util import checked_fill_value
from dtorch.random import default_generator, numpy_generator
from dtorch.tensor import Tensor, wrap_array

_new = wrap_array
_PYTHON_NUMBERS = frozenset((int, float, bool))
_INT64 = np.dtype(np.int64)
_FLOAT32 = np.dtype(np.float32)
_FLOAT64 = np.dtype(np.float64)
_EXACT_INT = 2 ** 53  # every int below it in magnitude is exact as a float64


def _finish(array, device, requires_grad):
    if device is None:
        device = _backend.default_device  # None (the CPU) unless set_default_device or `with device(...)` says
    if device is not None:
        array = _backend.to_device(array, device)
    tensor = _new(array, None)
    if requires_grad:
        tensor.requires_grad_(True)
    return tensor


def _numpy_dtype(dtype):
    return None if dtype is None else _backend.to_numpy_dtype(dtype)


def _size(size):
    """``f(2, 3)``, ``f((2, 3))``, ``f([2, 3])`` or ``f(Size)`` as a tuple of ints."""
    for extent in size:
        if type(extent) is not int or extent < 0:
            break
    else:
        return size  # ``f(2, 3)``: a tuple of non-negative Python ints already (``size`` is the caller's *args)
    if len(size) == 1 and not isinstance(size[0], (int, np.integer)):
        size = size[0]
    size = tuple(int(s) for s in size)
    for extent in size:
        if extent < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {extent}: {list(size)}")
    return size


def _infer_array(data, dtype):
    """An array for Python data with PyTorch's inference: floats give the default float, ints int64."""
    if isinstance(data, Tensor):
        array = data._array.copy()
        return array if dtype is None else array.astype(dtype)
    if isinstance(data, np.ndarray) or _backend.is_cupy_array(data):
        array = data.copy()
        return array if dtype is None else array.astype(dtype)
    if isinstance(data, (list, tuple)) and _contains_tensor(data):
        data = _tensors_to_lists(data)
    array = np.array(data)
    if array.dtype == object:
        raise TypeError(f"Could not infer dtype of {type(data).__name__} (ragged nested sequence?)")
    if dtype is not None:
        if dtype.kind in "iu" and array.size and array.dtype.kind in "iuf":
            _check_integer_range(array, dtype)
        with np.errstate(over="ignore"):  # a float beyond the dtype's range becomes inf, silently as in PyTorch
            return array.astype(dtype)
    if array.dtype.kind == "f":
        if isinstance(data, np.generic):
            return array
        with np.errstate(over="ignore"):
            return array.astype(_backend.get_default_dtype().numpy_dtype)
    if array.dtype.kind in "iu" and not isinstance(data, np.generic):
        return array.astype(np.int64)
    if array.dtype.kind == "c" and not isinstance(data, np.generic):  # Python complex numbers: the default complex
        return array.astype(_backend.default_complex().numpy_dtype)
    if array.dtype.kind in "US":
        raise TypeError(f"new(): invalid data type '{array.dtype.kind == 'U' and 'str'}'")
    if array.dtype.kind not in "biufc":
        raise TypeError(f"Could not infer dtype of {array.dtype}")
    return array


def _check_integer_range(array, dtype):
    """PyTorch's range check for Python numbers given an integer dtype: out-of-range values (and non-finite
    floats) are a RuntimeError, except that unsigned types take negative ints down to ``-max``, wrapped around."""
    info = np.iinfo(dtype)
    low = -int(info.max) if dtype.kind == "u" else int(info.min)
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise RuntimeError(f"value cannot be converted to type {dtype.name} without overflow")
        array = np.trunc(array)
    smallest, largest = array.min(), array.max()
    if smallest < low or largest > int(info.max):
        raise RuntimeError(f"value cannot be converted to type {dtype.name} without overflow")


def _contains_tensor(data):
    for item in data:
        if isinstance(item, Tensor):
            return True
        if isinstance(item, (list, tuple)) and _contains_tensor(item):
            return True
    return False


def _tensors_to_lists(data):
    if isinstance(data, Tensor):
        return data.tolist()
    if isinstance(data, (list, tuple)):
        return [_tensors_to_lists(item) for item in data]
    return data


def tensor(data, *, dtype=None, device=None, requires_grad=False, pin_memory=False):
    """A new tensor holding a copy of ``data`` (nested lists, numbers, NumPy arrays, tensors).

    >>> import dtorch
    >>> dtorch.tensor([[1, 2], [3, 4]])
    tensor([[1, 2],
            [3, 4]])
    >>> dtorch.tensor([1.5, 2.0], requires_grad=True)
    tensor([1.5000, 2.0000], requires_grad=True)
    """
    array = _infer_array(data, _numpy_dtype(dtype))
    return _finish(array, device, requires_grad)


def as_tensor(data, dtype=None, device=None):
    """A tensor sharing ``data``'s memory when it is already an array of that dtype and device."""
    numpy_dtype = _numpy_dtype(dtype)
    if isinstance(data, Tensor):
        result = data
        if numpy_dtype is not None and data._array.dtype != numpy_dtype:
            result = data.to(dtype)
        if device is not None:
            result = result.to(device)
        return result
    if isinstance(data, np.ndarray) and (numpy_dtype is None or data.dtype == numpy_dtype):
        _backend.from_numpy_dtype(data.dtype)
        return _finish(data, device, False)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array):
    """A tensor sharing the NumPy array's memory: writes through either are seen by both.

    >>> import dtorch, numpy as np
    >>> a = np.zeros(2); t = dtorch.from_numpy(a); t[0] = 5; a
    array([5., 0.])
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    _backend.from_numpy_dtype(array.dtype)
    return _new(array, None)


def _filled(size, fill, dtype, device, requires_grad):
    numpy_dtype = _backend.get_default_dtype().numpy_dtype if dtype is None else _backend.to_numpy_dtype(dtype)
    if device is None and _backend.default_device is None:
        target, xp = None, np  # the CPU, with no device to resolve
    else:
        target = _backend.as_device(device if device is not None else _backend.default_device)
        if target is not None and target.type == "cuda":
            _backend.check_cuda_dtype(numpy_dtype)  # bfloat16: refused before CuPy is needed
        xp = _backend.array_module_for(target)
    nbytes = numpy_dtype.itemsize
    for extent in size:
        nbytes *= extent
    if nbytes >= 1 << 63:
        raise RuntimeError(f"Storage size calculation overflowed with sizes={list(size)}")
    try:
        if fill is None:
            array = xp.empty(size, dtype=numpy_dtype)
        elif fill == 0:
            array = xp.zeros(size, dtype=numpy_dtype)
        elif type(fill) in _PYTHON_NUMBERS:
            # what np.full does (an empty array, then the value copied in) without its Python layer; for a Python
            # number ``fill`` converts as np.full's unsafe cast does (integer ranges are checked_fill_value's)
            array = xp.empty(size, dtype=numpy_dtype)
            array.fill(checked_fill_value(fill, numpy_dtype))
        else:
            array = xp.full(size, checked_fill_value(fill, numpy_dtype), dtype=numpy_dtype)
    except MemoryError:  # PyTorch's allocators raise RuntimeError, which is what training scripts catch
        where = ("CUDA out of memory" if getattr(target, "type", "cpu") == "cuda"
                 else "DefaultCPUAllocator: can't allocate memory")
        raise RuntimeError(f"{where}: you tried to allocate {nbytes} bytes (sizes={list(size)})") from None
    tensor_ = _new(array, None)
    if requires_grad:
        tensor_.requires_grad_(True)
    return tensor_


def zeros(*size, dtype=None, device=None, requires_grad=False, out=None, layout=None):
    """A tensor of zeros of the default float dtype unless ``dtype`` says otherwise.

    >>> import dtorch
    >>> dtorch.zeros(2, 3).shape
    dtorch.Size([2, 3])
    """
    return _filled(_size(size), 0, dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False, out=None, layout=None):
    return _filled(_size(size), 1, dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False, out=None, layout=None, pin_memory=False,
          memory_format=None):
    return _filled(_size(size), None, dtype, device, requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False):
    """A tensor filled with ``fill_value``; the dtype follows the value (bool, int64 or the default float)."""
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    if dtype is None:
        dtype = _backend.dtype_for_python_scalar(fill_value)
    return _filled(_size((size,)) if not isinstance(size, int) else (size,), fill_value, dtype, device,
                   requires_grad)


def _like(function, input, dtype, device):
    """The dtype and device a ``*_like`` factory takes from ``input`` unless given; PyTorch's TypeError for a
    non-Tensor ``input`` (a NumPy array, most often)."""
    if not isinstance(input, Tensor):
        raise_not_a_tensor(function, "input", 1, input)
    return (dtype if dtype is not None else input.dtype), (device if device is not None else input.device)


def zeros_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    dtype, device = _like("zeros_like", input, dtype, device)
    return _filled(tuple(input._array.shape), 0, dtype, device, requires_grad)


def ones_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    dtype, device = _like("ones_like", input, dtype, device)
    return _filled(tuple(input._array.shape), 1, dtype, device, requires_grad)


def empty_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    dtype, device = _like("empty_like", input, dtype, device)
    return _filled(tuple(input._array.shape), None, dtype, device, requires_grad)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    dtype, device = _like("full_like", input, dtype, device)
    return _filled(tuple(input._array.shape), fill_value, dtype, device, requires_grad)


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False):
    """Values from ``start`` up to (not including) ``end`` by ``step``; int64 when all are ints.

    >>> import dtorch
    >>> dtorch.arange(0, 1, 0.25)
    tensor([0.0000, 0.2500, 0.5000, 0.7500])
    """
    if end is None:
        start, end = 0, start
    if dtype is None and type(start) is int and type(end) is int and type(step) is int \
            and -_EXACT_INT < start < _EXACT_INT and -_EXACT_INT < end < _EXACT_INT:
        # the common case, Python ints: NumPy's int64 arange gives the values of the general path below (whose
        # count, computed in floating point, is exact for bounds below 2**53) without its three array passes
        _check_range(start, end, step)
        return _finish(np.arange(start, end, step, dtype=_INT64), device, requires_grad)
    values = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    start, end, step = values
    _check_range(start, end, step)
    integral = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values)
    if dtype is None:
        dtype = _backend.int64 if integral else _backend.get_default_dtype()
    count = max(int(math.ceil((end - start) / step)), 0)
    numpy_dtype = _backend.to_numpy_dtype(dtype)
    if integral:
        array = (start + step * np.arange(count, dtype=np.int64)).astype(numpy_dtype)
    else:
        array = (start + step * np.arange(count, dtype=np.float64)).astype(numpy_dtype)
    return _finish(array, device, requires_grad)


def _check_range(start, end, step):
    """PyTorch's errors for an ``arange`` that NumPy would answer with an empty array or a ZeroDivisionError."""
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if not (math.isfinite(start) and math.isfinite(end)):
        raise RuntimeError(f"unsupported range: {start} -> {end}")
    if (end - start) * step < 0 and end != start:
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False):
    numpy_dtype = _numpy_dtype(dtype) or _backend.get_default_dtype().numpy_dtype
    array = np.linspace(float(start), float(end), int(steps), dtype=np.float64).astype(numpy_dtype)
    return _finish(array, device, requires_grad)


def logspace(start, end, steps, base=10.0, *, dtype=None, device=None, requires_grad=False):
    numpy_dtype = _numpy_dtype(dtype) or _backend.get_default_dtype().numpy_dtype
    array = np.logspace(float(start), float(end), int(steps), base=base).astype(numpy_dtype)
    return _finish(array, device, requires_grad)


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False):
    numpy_dtype = _numpy_dtype(dtype) or _backend.get_default_dtype().numpy_dtype
    return _finish(np.eye(n, m, dtype=numpy_dtype), device, requires_grad)


# ---- random -------------------------------------------------------------------------------------------------------


def _float_dtype(dtype):
    if dtype is None:
        return _backend.get_default_dtype().numpy_dtype  # (always a floating dtype)
    numpy_dtype = _backend.to_numpy_dtype(dtype)
    if not _backend.is_floating_numpy(numpy_dtype):
        raise RuntimeError(f"expected a floating point dtype, got {_backend.from_numpy_dtype(numpy_dtype)}")
    return numpy_dtype


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Uniform samples from ``[0, 1)``.

    >>> import dtorch
    >>> _ = dtorch.manual_seed(0); x = dtorch.rand(3)
    >>> bool(((x >= 0) & (x < 1)).all())
    True
    """
    return _sample("random", size, generator, dtype, device, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Standard normal samples."""
    return _sample("standard_normal", size, generator, dtype, device, requires_grad)


def _sample(method, size, generator, dtype, device, requires_grad):
    """Floating samples from the NumPy generator's ``method`` (``random`` or ``standard_normal``)."""
    numpy_dtype = _backend.get_default_dtype().numpy_dtype if dtype is None else _float_dtype(dtype)
    # NumPy's generators draw float32 and float64 (identity tests: NumPy keeps one object per builtin dtype);
    # float16 and bfloat16 are drawn in float32 and rounded
    sample_dtype = numpy_dtype if numpy_dtype is _FLOAT32 or numpy_dtype is _FLOAT64 else _FLOAT32
    rng = default_generator.numpy if generator is None else numpy_generator(generator)
    array = getattr(rng, method)(_size(size), dtype=sample_dtype)
    if sample_dtype is not numpy_dtype:
        array = array.astype(numpy_dtype)
    return _finish(array, device, requires_grad)


def randint(low=0, high=None, size=None, *, generator=None, dtype=None, device=None, requires_grad=False):
    """Integers uniform in ``[low, high)``; ``randint(high, size)`` starts at 0.

    >>> import dtorch
    >>> dtorch.randint(3, 5, (2,)).dtype
    dtorch.int64
    """
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint() missing required argument 'size'")
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if high <= low:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    numpy_dtype = _numpy_dtype(dtype) or np.dtype(np.int64)
    array = numpy_generator(generator).integers(low, high, size=_size((size,)) if not isinstance(size, int) else (size,),
                                                dtype=np.int64).astype(numpy_dtype, copy=False)
    return _finish(array, device, requires_grad)


def randperm(n, *, generator=None, dtype=None, device=None, requires_grad=False):
    """A random permutation of ``0 .. n-1``."""
    numpy_dtype = _numpy_dtype(dtype) or np.dtype(np.int64)
    array = numpy_generator(generator).permutation(int(n)).astype(numpy_dtype)
    return _finish(array, device, requires_grad)


def normal(mean, std=1.0, size=None, *, generator=None, dtype=None, device=None, requires_grad=False):
    """Normal samples: tensors ``mean``/``std`` (broadcast) or scalars with a ``size``."""
    rng = numpy_generator(generator)
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        like = mean if isinstance(mean, Tensor) else std
        mean_data = mean._array if isinstance(mean, Tensor) else mean
        std_data = std._array if isinstance(std, Tensor) else std
        shape = np.broadcast_shapes(np.shape(_host(mean_data)), np.shape(_host(std_data)))
        sample = rng.standard_normal(shape).astype(like._array.dtype)
        array = _host(mean_data) + _host(std_data) * sample
        return _finish(np.asarray(array, dtype=like._array.dtype), like.device, requires_grad)
    if size is None:
        raise TypeError("normal() with scalar mean and std needs a size")
    numpy_dtype = _float_dtype(dtype)
    sample = rng.standard_normal(_size((size,)) if not isinstance(size, int) else (size,))
    return _finish((mean + std * sample).astype(numpy_dtype), device, requires_grad)


def _host(value):
    return value.get() if _backend.is_cupy_array(value) else value


def rand_like(input, *, dtype=None, device=None, requires_grad=False, generator=None):
    dtype, device = _like("rand_like", input, dtype, device)
    return rand(tuple(input._array.shape), generator=generator, dtype=dtype, device=device, requires_grad=requires_grad)


def randn_like(input, *, dtype=None, device=None, requires_grad=False, generator=None):
    dtype, device = _like("randn_like", input, dtype, device)
    return randn(tuple(input._array.shape), generator=generator, dtype=dtype, device=device, requires_grad=requires_grad)


def randint_like(input, low=0, high=None, *, dtype=None, device=None, requires_grad=False, generator=None):
    dtype, device = _like("randint_like", input, dtype, device)
    return randint(low, high, tuple(input._array.shape), generator=generator, dtype=dtype, device=device)
