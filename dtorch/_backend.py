"""The array backend: NumPy on the CPU, CuPy on NVIDIA GPUs.

Everything in dtorch that needs to know *which* array library holds an array asks this module. CuPy is imported
lazily, on the first use of a CUDA device, and is optional: without it (or without a GPU) ``dtorch.cuda`` reports
itself unavailable and everything on the CPU still works. No other module of dtorch imports ``cupy``.

Contents: the dtype table (``dtorch.float32`` and friends, PyTorch's promotion rules), devices (``cpu``,
``cuda:N``), ``xp_of(array)`` (NumPy or CuPy for an array) and moving arrays between devices.
"""

import ml_dtypes
import numpy as np

# ----------------------------------------------------------------------------------------------------------------------
# dtypes


class dtype:
    """A tensor element type, the counterpart of ``torch.dtype``.

    >>> import dtorch
    >>> dtorch.float32.is_floating_point, dtorch.float32.itemsize
    (True, 4)
    """

    __slots__ = ("name", "numpy_dtype", "is_floating_point", "is_signed", "itemsize", "category")

    def __init__(self, name, numpy_dtype, category):
        self.name = name
        self.numpy_dtype = np.dtype(numpy_dtype)
        # category orders bool < integer < floating point < complex, as PyTorch's promotion does
        self.category = category
        self.is_floating_point = category == 2
        self.is_signed = self.numpy_dtype.kind in "ifc" or category >= 2  # bfloat16's NumPy kind is 'V'
        self.itemsize = self.numpy_dtype.itemsize

    @property
    def is_complex(self):
        return self.category == 3

    def to_numpy(self):
        return self.numpy_dtype

    def __repr__(self):
        return "dtorch." + self.name

    def __reduce__(self):
        # dtypes are singletons: pickling names the module attribute
        return (_dtype_by_name, (self.name,))


float16 = dtype("float16", np.float16, 2)
float32 = dtype("float32", np.float32, 2)
float64 = dtype("float64", np.float64, 2)
int8 = dtype("int8", np.int8, 1)
int16 = dtype("int16", np.int16, 1)
int32 = dtype("int32", np.int32, 1)
int64 = dtype("int64", np.int64, 1)
uint8 = dtype("uint8", np.uint8, 1)
bool_ = dtype("bool", np.bool_, 0)
# complex numbers: enough for ``dtorch.fft`` and the arithmetic on spectra (gradients follow PyTorch's convention:
# the gradient of a real loss with respect to z = x + iy is dL/dx + i dL/dy)
complex64 = dtype("complex64", np.complex64, 3)
complex128 = dtype("complex128", np.complex128, 3)
# bfloat16 is ml_dtypes' NumPy type (the one JAX uses). Its NumPy kind is 'V', not 'f': code that asks "is this
# array floating?" tests ``kind == "f"`` first (free for float32) and falls back to membership in FLOATING_NUMPY.
# CuPy has no bfloat16: moving such an array to a GPU is refused in ``to_device``.
bfloat16 = dtype("bfloat16", ml_dtypes.bfloat16, 2)
BFLOAT16_NUMPY = bfloat16.numpy_dtype

ALL_DTYPES = (float16, float32, float64, int8, int16, int32, int64, uint8, bool_, complex64, complex128, bfloat16)
# the NumPy dtypes of dtorch's floating dtypes, bfloat16 included (kind 'f' or 'V')
FLOATING_NUMPY = frozenset(d.numpy_dtype for d in ALL_DTYPES if d.category == 2)


def is_floating_numpy(numpy_dtype):
    """True for the NumPy dtype of a dtorch floating dtype (float16/32/64 and bfloat16, whose kind is 'V')."""
    return numpy_dtype.kind == "f" or numpy_dtype in FLOATING_NUMPY
_DTYPE_BY_NUMPY = {d.numpy_dtype: d for d in ALL_DTYPES}
_DTYPE_BY_NAME = {d.name: d for d in ALL_DTYPES}
_DTYPE_BY_NAME.update(half=float16, float=float32, double=float64, short=int16, int=int32, long=int64,
                      cfloat=complex64, cdouble=complex128)


def _dtype_by_name(name):
    return _DTYPE_BY_NAME[name]


def from_numpy_dtype(numpy_dtype):
    """The dtorch dtype for a NumPy dtype; a TypeError for types dtorch has no counterpart of."""
    try:
        return _DTYPE_BY_NUMPY[numpy_dtype]
    except KeyError:
        pass
    try:
        return _DTYPE_BY_NUMPY[np.dtype(numpy_dtype)]
    except (KeyError, TypeError):
        raise TypeError(
            f"can't convert np.ndarray of type {np.dtype(numpy_dtype)}. The only supported types are: "
            "float64, float32, float16, complex64, complex128, int64, int32, int16, int8, uint8, and bool."
        ) from None


def to_numpy_dtype(d):
    """The NumPy dtype behind a dtorch dtype (also accepts NumPy dtypes and Python types ``float``/``int``/``bool``)."""
    if type(d) is dtype:
        return d.numpy_dtype
    if d is float:
        return _default_float.numpy_dtype
    if d is int:
        return int64.numpy_dtype
    if d is bool:
        return bool_.numpy_dtype
    return from_numpy_dtype(d).numpy_dtype


_default_float = float32


def get_default_dtype():
    """The dtype of new floating-point tensors (``float32`` unless changed).

    >>> import dtorch
    >>> dtorch.get_default_dtype()
    dtorch.float32
    """
    return _default_float


def set_default_dtype(d):
    """Set the dtype that float factories and int-to-float promotion produce; only floating dtypes are allowed.

    >>> import dtorch
    >>> dtorch.set_default_dtype(dtorch.float64); dtorch.tensor([1.0]).dtype
    dtorch.float64
    >>> dtorch.set_default_dtype(dtorch.float32)
    """
    global _default_float
    if type(d) is not dtype or not d.is_floating_point:
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    _default_float = d


def promote_types(a, b):
    """PyTorch's ``promote_types`` on dtorch dtypes: the higher category wins, sizes widen within a category.

    Unlike NumPy, an integer meeting a float gives that float (``int64`` + ``float16`` is ``float16``).

    >>> import dtorch
    >>> dtorch.promote_types(dtorch.int64, dtorch.float16)
    dtorch.float16
    """
    if a is b:
        return a
    if {a.category, b.category} == {2, 3}:  # float64 with complex64 is complex128, as in PyTorch
        return _DTYPE_BY_NUMPY[np.promote_types(a.numpy_dtype, b.numpy_dtype)]
    if a.category != b.category:
        return a if a.category > b.category else b
    if a.category == 0:
        return a
    return _DTYPE_BY_NUMPY[np.promote_types(a.numpy_dtype, b.numpy_dtype)]


_result_cache = {}


def result_numpy_dtype(a_dtype, a_is_scalar_like, b_dtype, b_is_scalar_like):
    """The NumPy dtype PyTorch gives for a binary op between two arrays.

    ``*_is_scalar_like`` is True for 0-dim tensors: they take part only when their category is higher than the
    dimensioned operand's (``float32[3] + float64[]`` stays ``float32``; ``int32[3] + float64[]`` is ``float64``).
    """
    key = (a_dtype, a_is_scalar_like, b_dtype, b_is_scalar_like)
    found = _result_cache.get(key)
    if found is not None:
        return found
    da, db = _DTYPE_BY_NUMPY[a_dtype], _DTYPE_BY_NUMPY[b_dtype]
    if a_is_scalar_like == b_is_scalar_like:
        result = promote_types(da, db)
    else:
        dimensioned, zero_dim = (db, da) if a_is_scalar_like else (da, db)
        result = zero_dim if zero_dim.category > dimensioned.category else dimensioned
    _result_cache[key] = result.numpy_dtype
    return result.numpy_dtype


def dtype_for_python_scalar(value):
    """The dtype a Python scalar becomes on its own: bool, int64 or the default float."""
    if isinstance(value, bool):
        return bool_
    if isinstance(value, int):
        return int64
    if isinstance(value, complex):
        return default_complex()
    return _default_float


def default_complex():
    """The complex dtype matching the default float: complex64 for float32, complex128 for float64."""
    return complex128 if _default_float is float64 else complex64


class finfo:
    """Machine limits of a floating dtype (the default dtype when none is given), PyTorch's ``torch.finfo``.

    >>> import dtorch
    >>> dtorch.finfo(dtorch.float16).max
    65504.0
    """

    def __init__(self, type=None):
        d = get_default_dtype() if type is None else type
        numpy_dtype = to_numpy_dtype(d)
        if not is_floating_numpy(numpy_dtype):
            raise TypeError(f"torch.finfo() requires a floating point input type, got {from_numpy_dtype(numpy_dtype)}")
        info = np.finfo(numpy_dtype)
        self.bits = info.bits
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.tiny = float(info.smallest_normal)
        self.smallest_normal = self.tiny
        self.resolution = 10.0 ** -info.precision  # a power of ten, as a Python float (NumPy rounds it to dtype)
        self.dtype = from_numpy_dtype(numpy_dtype).name

    def __repr__(self):
        return (f"finfo(resolution={self.resolution}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
                f"smallest_normal={self.tiny:g}, tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:
    """Limits of an integer dtype, PyTorch's ``torch.iinfo``.

    >>> import dtorch
    >>> dtorch.iinfo(dtorch.uint8).max
    255
    """

    def __init__(self, type):
        numpy_dtype = to_numpy_dtype(type)
        if numpy_dtype.kind not in "iub":
            raise TypeError(f"torch.iinfo() requires an integer input type, got {from_numpy_dtype(numpy_dtype)}")
        info = np.iinfo(np.uint8 if numpy_dtype.kind == "b" else numpy_dtype)
        self.bits = info.bits
        self.max = int(info.max) if numpy_dtype.kind != "b" else 1
        self.min = int(info.min)
        self.dtype = from_numpy_dtype(numpy_dtype).name

    def __repr__(self):
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"


# ----------------------------------------------------------------------------------------------------------------------
# devices


class device:
    """Where a tensor's array lives: ``device('cpu')`` or ``device('cuda', 0)`` / ``device('cuda:0')``.

    >>> import dtorch
    >>> dtorch.device('cuda:1')
    device(type='cuda', index=1)
    """

    __slots__ = ("type", "index")

    def __init__(self, type, index=None):
        if isinstance(type, device):
            type, index = type.type, type.index
        elif ":" in type:
            if index is not None:
                raise RuntimeError(f"type (string) must not include an index because index was passed explicitly: {type}")
            type, text = type.split(":", 1)
            if not text.isdigit():
                raise RuntimeError(f"Invalid device string: '{type}:{text}'")
            index = int(text)
        if type not in ("cpu", "cuda"):
            raise RuntimeError(
                f"Expected one of cpu, cuda device type at start of device string: {type}"
            )
        self.type = type
        self.index = index

    def __eq__(self, other):
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and self.type == other.type and self.index == other.index

    def __hash__(self):
        return hash((self.type, self.index))

    def __repr__(self):
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __reduce__(self):
        return (device, (self.type, self.index))

    def __enter__(self):
        """``with dtorch.device('cuda'):`` makes this the default device of factory calls inside the block."""
        _device_stack.append(default_device)
        set_default_device(self)
        return self

    def __exit__(self, *exc_info):
        global default_device
        default_device = _device_stack.pop()
        return False


CPU = device("cpu")

# The device of new tensors from factories (``zeros``, ``randn``, ``tensor``, ...) called without ``device=``;
# None means the CPU (the factories then skip the move entirely).
default_device = None
_device_stack = []  # defaults saved by ``with device(...)`` blocks, innermost last


def get_default_device():
    """The device factories put new tensors on (``cpu`` unless changed).

    >>> import dtorch
    >>> dtorch.get_default_device()
    device(type='cpu')
    """
    return CPU if default_device is None else default_device


def set_default_device(d):
    """Make ``d`` (a device, ``'cpu'``, ``'cuda:1'``, an int CUDA index, or None for the CPU) the device of new
    tensors from factories called without ``device=``, as PyTorch's ``set_default_device``.

    >>> import dtorch
    >>> dtorch.set_default_device('cpu'); dtorch.zeros(2).device
    device(type='cpu')
    """
    global default_device
    target = None if d is None else as_device(d)
    default_device = None if target is None or target.type == "cpu" else target

_cupy = None  # the cupy module once imported; False when the import failed
_cuda_devices = {}


def cupy():
    """The CuPy module, imported on first use; a RuntimeError naming the extra to install when it is missing."""
    global _cupy
    if _cupy is None:
        try:
            import cupy as module

            _cupy = module
        except Exception:  # ImportError, or a CUDA library that fails to load
            _cupy = False
    if _cupy is False:
        raise RuntimeError(
            "CUDA tensors need CuPy and an NVIDIA GPU: install dtorch with the 'cuda12' or 'cuda13' extra "
            "(pip install 'dtorch[cuda12]')"
        )
    return _cupy


def cuda_is_available():
    """True when CuPy imports and sees at least one GPU. Never raises."""
    try:
        return cupy().cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def cuda_device_count():
    try:
        return cupy().cuda.runtime.getDeviceCount()
    except Exception:
        return 0


def is_cupy_array(array):
    """True when ``array`` is a CuPy array (checked without importing CuPy)."""
    return type(array).__module__.startswith("cupy")


def xp_of(array):
    """The array module (``numpy`` or ``cupy``) that owns ``array``: ops are written once against it.

    >>> import numpy as np
    >>> xp_of(np.zeros(2)) is np
    True
    """
    if type(array) is np.ndarray:
        return np
    if is_cupy_array(array):
        return cupy()
    return np


def device_of(array):
    """The dtorch device an array lives on."""
    if type(array) is np.ndarray or not is_cupy_array(array):
        return CPU
    index = array.device.id
    found = _cuda_devices.get(index)
    if found is None:
        found = _cuda_devices[index] = device("cuda", index)
    return found


def as_device(spec):
    """Normalise ``'cpu'``, ``'cuda'``, ``'cuda:1'``, an int (a CUDA index) or a device to a device."""
    if spec is None or isinstance(spec, device):
        return spec if spec is None or spec.type == "cpu" or spec.index is not None else device("cuda", _current_cuda_index())
    if isinstance(spec, int):
        return device("cuda", spec)
    return as_device(device(spec))


def _current_cuda_index():
    try:
        return cupy().cuda.runtime.getDevice()
    except Exception:
        return 0


def to_device(array, target):
    """Move (copy) an array to ``target``; returns the array itself when it is already there."""
    target = as_device(target)
    here = device_of(array)
    if here == target:
        return array
    if target.type == "cpu":
        return array.get()
    check_cuda_dtype(array.dtype)
    cp = cupy()
    with cp.cuda.Device(target.index):
        return cp.asarray(array)


def check_cuda_dtype(numpy_dtype):
    """Refuse, before CuPy is needed, a dtype that CuPy cannot hold (bfloat16) for a CUDA tensor."""
    if numpy_dtype == BFLOAT16_NUMPY:
        raise TypeError(
            "bfloat16 tensors cannot be moved to CUDA in dtorch: CuPy has no bfloat16 dtype, so dtorch keeps "
            "bfloat16 on the CPU (through ml_dtypes). On the GPU use float16 (autocast('cuda') computes in float16 "
            "by default)"
        )


def array_module_for(target):
    """NumPy for the CPU, CuPy for a CUDA device."""
    if target is None or target.type == "cpu":
        return np
    return cupy()
