"""PyTorch's legacy tensor types (``torch.FloatTensor``, ``torch.LongTensor``, ...), still common in older scripts.

Each is a constructor (``FloatTensor(2, 3)`` uninitialised, ``FloatTensor([1, 2])`` from data) and a type that
``isinstance`` checks against a CPU tensor's dtype, and ``Tensor.type(FloatTensor)`` casts to it.

>>> import dtorch
>>> isinstance(dtorch.ones(2), dtorch.FloatTensor), dtorch.LongTensor([1, 2]).dtype
(True, dtorch.int64)
"""

from dtorch import _backend
from dtorch.tensor import Size, Tensor
from dtorch._warnings import warn as _warn


class _LegacyTensorType(type):
    """The metaclass: ``isinstance(t, FloatTensor)`` is "a CPU tensor of dtype float32"."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and obj.dtype is cls.dtype and obj.device.type == "cpu"

    def __repr__(cls):
        return f"<class 'dtorch.{cls.__name__}'>"


def _construct(cls, *args, device=None):
    from dtorch import factories

    if len(args) == 1 and not isinstance(args[0], int):
        data = args[0]
        if isinstance(data, Size):  # FloatTensor(x.shape): a shape, not data
            return factories.empty(*data, dtype=cls.dtype, device=device)
        return factories.tensor(data, dtype=cls.dtype, device=device)
    if not all(isinstance(n, int) for n in args):
        raise TypeError(f"{cls.__name__}() takes sizes (ints) or data, got {args!r}")
    return factories.empty(*args, dtype=cls.dtype, device=device) if args else \
        factories.empty(0, dtype=cls.dtype, device=device)


def _legacy_type(name, dtype):
    return _LegacyTensorType(name, (), {
        "dtype": dtype,
        "__new__": _construct,
        "__doc__": f"Legacy constructor and type for CPU tensors of dtype {dtype}.",
    })


FloatTensor = _legacy_type("FloatTensor", _backend.float32)
DoubleTensor = _legacy_type("DoubleTensor", _backend.float64)
HalfTensor = _legacy_type("HalfTensor", _backend.float16)
BFloat16Tensor = _legacy_type("BFloat16Tensor", _backend.bfloat16)
LongTensor = _legacy_type("LongTensor", _backend.int64)
IntTensor = _legacy_type("IntTensor", _backend.int32)
ShortTensor = _legacy_type("ShortTensor", _backend.int16)
CharTensor = _legacy_type("CharTensor", _backend.int8)
ByteTensor = _legacy_type("ByteTensor", _backend.uint8)
BoolTensor = _legacy_type("BoolTensor", _backend.bool_)

BY_NAME = {t.__name__: t for t in (FloatTensor, DoubleTensor, HalfTensor, LongTensor, IntTensor, ShortTensor,
                                   CharTensor, ByteTensor, BoolTensor, BFloat16Tensor)}


def set_default_tensor_type(t):
    """PyTorch's deprecated ``set_default_tensor_type``: a floating legacy type (``dtorch.DoubleTensor``) or its
    name (``'torch.DoubleTensor'``) sets the default dtype; it warns, as PyTorch 2.1+ does.

    >>> import dtorch, warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     dtorch.set_default_tensor_type(dtorch.DoubleTensor)
    >>> dtorch.zeros(1).dtype
    dtorch.float64
    >>> dtorch.set_default_dtype(dtorch.float32)
    """
    import warnings

    if isinstance(t, str):
        module, _, name = t.rpartition(".")
        if module not in ("torch", "dtorch") or name not in BY_NAME:
            raise AttributeError(f"module '{module or 'torch'}' has no attribute '{name}'")
        t = BY_NAME[name]
    if not isinstance(t, _LegacyTensorType):
        raise TypeError("invalid type object: only floating-point types are supported as the default type")
    if not t.dtype.is_floating_point:
        raise TypeError("only floating-point types are supported as the default type")
    _warn("torch.set_default_tensor_type() is deprecated as of PyTorch 2.1, please use "
          "torch.set_default_dtype() and torch.set_default_device() as alternatives.", UserWarning)
    _backend.set_default_dtype(t.dtype)
