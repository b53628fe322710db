"""dtorch: PyTorch's API on NumPy (CPU) and CuPy (NVIDIA GPUs), scaled out over MPI and NCCL.

``import dtorch as torch`` is meant to be all an ordinary training script needs. This file assembles the package:
it re-exports the public API and binds the Tensor's methods and operators to the functions of
``dtorch.functional`` (so ``a + b``, ``a.add(b)`` and ``dtorch.add(a, b)`` run the same op). Importing dtorch never
initialises MPI and never imports CuPy.
"""

from dtorch import _backend
from dtorch._errors import raise_not_a_tensor as _raise_not_a_tensor
from dtorch._backend import (  # noqa: F401
    bfloat16,
    bool_ as bool,
    complex64,
    complex128,
    device,
    dtype,
    finfo,
    float16,
    float32,
    float64,
    get_default_device,
    get_default_dtype,
    iinfo,
    int8,
    int16,
    int32,
    int64,
    promote_types,
    set_default_device,
    set_default_dtype,
    uint8,
)
from dtorch.tensor import Size, Tensor  # noqa: F401
from dtorch import autograd  # noqa: F401
from dtorch.autograd import engine as _engine
from dtorch.autograd import function as _function
from dtorch.autograd.grad_mode import (  # noqa: F401
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from dtorch import functional as _F
from dtorch.functional import *  # noqa: F401,F403
from dtorch.functional import (  # noqa: F401
    abs,
    all,
    any,
    max,
    min,
    pow,
    round,
    sum,
)
from dtorch import factories as _factories
from dtorch.factories import (  # noqa: F401
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    logspace,
    normal,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from dtorch import random  # noqa: F401
from dtorch.random import (  # noqa: F401
    Generator,
    default_generator,
    get_rng_state,
    initial_seed,
    manual_seed,
    seed,
    set_rng_state,
)
from dtorch import cuda  # noqa: F401
from dtorch import _graph_namespace
from dtorch._tensor_str import set_printoptions  # noqa: F401
from dtorch import _tensor_methods as _M

half = float16
cfloat = complex64
cdouble = complex128
float = float32
double = float64
short = int16
int = int32
long = int64

__version__ = "0.1.0"

import math as _math  # noqa: E402

inf = _math.inf
nan = _math.nan
pi = _math.pi
e = _math.e

_function.graph_mode.namespace = _graph_namespace


def is_tensor(obj):
    """True for dtorch Tensors (and Parameters)."""
    return isinstance(obj, Tensor)


def is_floating_point(input):
    """True for a floating dtype (bfloat16 included), ``torch.is_floating_point``."""
    if not isinstance(input, Tensor):
        _raise_not_a_tensor("is_floating_point", "input", 1, input)
    return _backend.is_floating_numpy(input._array.dtype)


def numel(input):
    """The number of elements, ``torch.numel``."""
    if not isinstance(input, Tensor):
        _raise_not_a_tensor("numel", "input", 1, input)
    return input.numel()


def result_type(tensor1, tensor2):
    def parts(value):
        if isinstance(value, Tensor):
            return value._array.dtype, value._array.ndim == 0
        return _backend.dtype_for_python_scalar(value).numpy_dtype, True

    (a, a_scalar), (b, b_scalar) = parts(tensor1), parts(tensor2)
    return _backend.from_numpy_dtype(_backend.result_numpy_dtype(a, a_scalar, b, b_scalar))


def compile(model=None, **options):
    """Return ``model`` unchanged: dtorch has no compiler; accepted so that scripts calling ``torch.compile`` run.

    >>> import dtorch
    >>> layer = dtorch.nn.Linear(2, 2)
    >>> dtorch.compile(layer, mode="max-autotune") is layer
    True
    """
    if model is None:  # used as a decorator with options: @dtorch.compile(mode=...)
        return lambda function: function
    return model


import builtins as _builtins  # noqa: E402

_settings = {"float32_matmul_precision": "highest", "deterministic": False, "deterministic_warn_only": False}


def set_float32_matmul_precision(precision):
    """Accepted for compatibility ('highest', 'high', 'medium'); dtorch's float32 matmuls always run in float32."""
    if precision not in ("highest", "high", "medium"):
        raise RuntimeError(f"Invalid precision: {precision!r}; expected one of 'highest', 'high', 'medium'")
    _settings["float32_matmul_precision"] = precision


def get_float32_matmul_precision():
    return _settings["float32_matmul_precision"]


def use_deterministic_algorithms(mode, *, warn_only=False):
    """Recorded for compatibility: dtorch's ops are already deterministic on NumPy (no parallel reductions)."""
    _settings["deterministic"] = _builtins.bool(mode)  # ``bool`` is dtorch.bool in this module
    _settings["deterministic_warn_only"] = _builtins.bool(warn_only)


def are_deterministic_algorithms_enabled():
    return _settings["deterministic"]


def get_num_threads():
    return 1


def set_num_threads(count):
    """Accepted for compatibility: NumPy's BLAS threads are set by OMP_NUM_THREADS before start-up."""


# ======================================================================================================================
# Tensor methods and operators: every one is a function of dtorch.functional (or _tensor_methods) with ``self`` first.

_METHODS_FROM_FUNCTIONAL = (
    "add sub mul div true_divide divide multiply subtract floor_divide remainder fmod pow maximum minimum "
    "clamp clip clamp_min clamp_max neg negative exp log log1p log2 log10 sqrt rsqrt abs absolute sin cos tanh "
    "sigmoid logit relu erf reciprocal square sign floor ceil trunc round clone "
    "eq ne lt le gt ge less less_equal greater greater_equal not_equal logical_and logical_or logical_xor "
    "logical_not bitwise_and bitwise_or bitwise_xor bitwise_not isnan isinf isfinite equal allclose isclose "
    "sum mean prod max min amax amin argmax argmin var std norm logsumexp cumsum cumprod any count_nonzero "
    "reshape view flatten unflatten squeeze unsqueeze permute transpose swapaxes swapdims t movedim expand "
    "expand_as broadcast_to repeat narrow select split chunk tensor_split hsplit vsplit dsplit unbind flip roll "
    "contiguous resolve_conj resolve_neg is_conj is_neg "
    "index_select gather scatter scatter_add masked_fill masked_select nonzero take_along_dim "
    "matmul mm bmm dot inner outer ger sort argsort topk "
    "expm1 exp2 sinh cosh asin arcsin acos arccos atan arctan atan2 arctan2 hypot logaddexp frac sgn signbit "
    "lerp addcmul addcdiv addmm baddbmm triu tril diagonal diag_embed diag trace unique bincount tile "
    "repeat_interleave ravel moveaxis dist index_add index_fill index_copy bernoulli"
).split()

for _name in _METHODS_FROM_FUNCTIONAL:
    setattr(Tensor, _name, getattr(_F, _name))

Tensor.all = _M.tensor_all
for _name in ("scatter_reduce index_put index_put_ median nanmedian quantile nanquantile diff kron rot90 histc cross "
              "cummax cummin").split():
    setattr(Tensor, _name, getattr(_F, _name))
Tensor.scatter_reduce_ = _F._inplace(_F.scatter_reduce)
Tensor.real = property(_F.real)
Tensor.imag = property(_F.imag)
Tensor.conj = _F.conj
Tensor.is_complex = _F.is_complex


def _tile_method(self, *dims):
    """``Tensor.tile(2, 1)`` as well as ``Tensor.tile((2, 1))``, as PyTorch's method accepts."""
    return _F.tile(self, dims[0] if len(dims) == 1 and not isinstance(dims[0], _builtins.int) else dims)


Tensor.tile = _tile_method
Tensor.angle = _F.angle
Tensor.nan_to_num_ = _F._inplace(_F.nan_to_num)
Tensor.where = lambda self, condition, other: _F.where(condition, self, other)
Tensor.softplus = _F.softplus
Tensor.gelu = _F.gelu
Tensor.silu = _F.silu

_INPLACE = (
    "add sub mul div pow clamp clip clamp_min clamp_max neg exp log log1p sqrt rsqrt abs sin cos tanh sigmoid "
    "relu floor ceil trunc round sign reciprocal remainder fmod masked_fill scatter scatter_add maximum minimum "
    "square expm1 sinh cosh asin acos atan atan2 hypot frac lerp addcmul addcdiv addmm baddbmm triu tril "
    "index_add index_fill index_copy logaddexp floor_divide bitwise_and bitwise_or bitwise_xor"
).split()
for _name in _INPLACE:
    setattr(Tensor, _name + "_", _F._inplace(getattr(_F, _name)))

Tensor.zero_ = _F.zero_
Tensor.fill_diagonal_ = _F.fill_diagonal_
Tensor.fill_ = _F.fill_
Tensor.copy_ = _F.copy_
Tensor.__setitem__ = _F.setitem
Tensor.__getitem__ = _F.getitem

for _name in (
    "to cpu cuda type_as detach detach_ backward new_zeros new_ones new_empty new_full new_tensor uniform_ normal_ "
    "bernoulli_ exponential_ random_ view_as reshape_as apply_ nan_to_num storage_offset pin_memory is_pinned "
    "share_memory_ numpy"
).split():
    setattr(Tensor, _name, getattr(_M, _name))
Tensor.type = _M.tensor_type
Tensor.__iter__ = _M.iterate
Tensor.T = property(_M.T)
Tensor.mT = property(_M.mT)
Tensor.H = property(_M.T)

Tensor.half = _M._to_dtype(float16)
Tensor.bfloat16 = _M._to_dtype(bfloat16)
Tensor.float = _M._to_dtype(float32)
Tensor.double = _M._to_dtype(float64)
Tensor.char = _M._to_dtype(int8)
Tensor.short = _M._to_dtype(int16)
Tensor.int = _M._to_dtype(int32)
Tensor.long = _M._to_dtype(int64)
Tensor.byte = _M._to_dtype(uint8)
Tensor.bool = _M._to_dtype(bool)


def _reflected(function):
    def reflected(self, other):
        return function(other, self)

    return reflected


Tensor.__add__ = _F.add
Tensor.__radd__ = _F.add
Tensor.__iadd__ = Tensor.add_
Tensor.__sub__ = _F.sub
Tensor.__rsub__ = _reflected(_F.sub)
Tensor.__isub__ = Tensor.sub_
Tensor.__mul__ = _F.mul
Tensor.__rmul__ = _F.mul
Tensor.__imul__ = Tensor.mul_
Tensor.__truediv__ = _F.div
Tensor.__rtruediv__ = _reflected(_F.div)
Tensor.__itruediv__ = Tensor.div_
Tensor.__floordiv__ = _F.floor_divide
Tensor.__ifloordiv__ = Tensor.floor_divide_
Tensor.__imod__ = Tensor.remainder_
Tensor.__iand__ = Tensor.bitwise_and_
Tensor.__ior__ = Tensor.bitwise_or_
Tensor.__ixor__ = Tensor.bitwise_xor_
Tensor.__rfloordiv__ = _reflected(_F.floor_divide)
Tensor.__mod__ = _F.remainder
Tensor.__rmod__ = _reflected(_F.remainder)
Tensor.__pow__ = _F.pow
Tensor.__rpow__ = _reflected(_F.pow)
Tensor.__ipow__ = Tensor.pow_
Tensor.__matmul__ = _F.matmul
Tensor.__rmatmul__ = _reflected(_F.matmul)
Tensor.__neg__ = _F.neg
Tensor.__pos__ = lambda self: self
Tensor.__abs__ = _F.abs
Tensor.__invert__ = _F.bitwise_not
Tensor.__and__ = _F.bitwise_and
Tensor.__rand__ = _F.bitwise_and
Tensor.__or__ = _F.bitwise_or
Tensor.__ror__ = _F.bitwise_or
Tensor.__xor__ = _F.bitwise_xor
Tensor.__rxor__ = _F.bitwise_xor
Tensor.__eq__ = _F.eq
Tensor.__ne__ = _F.ne
Tensor.__lt__ = _F.lt
Tensor.__le__ = _F.le
Tensor.__gt__ = _F.gt
Tensor.__ge__ = _F.ge
Tensor.__hash__ = lambda self: id(self)

del _name

# The layers above the tensor core. They import the core, so they come last; none of them initialises MPI or
# imports CuPy at import time (``distributed`` starts MPI only in ``init_process_group``).
import dtorch.autograd.functional  # noqa: E402,F401  (above the tensor API: it stacks Jacobian rows)
from dtorch import nn  # noqa: E402,F401
from dtorch import optim  # noqa: E402,F401
from dtorch import utils  # noqa: E402,F401
import dtorch.utils.data  # noqa: E402,F401
from dtorch import distributed  # noqa: E402,F401
from dtorch import multiprocessing  # noqa: E402,F401  (spawn starts its children through MPI; nothing at import)
from dtorch import linalg  # noqa: E402,F401
from dtorch import fft  # noqa: E402,F401
from dtorch import amp, backends, testing  # noqa: E402,F401
from dtorch import distributions  # noqa: E402,F401
from dtorch import export, jit, onnx  # noqa: E402,F401  (model export; onnx imports its package lazily)
from dtorch._legacy_types import (  # noqa: E402,F401
    BFloat16Tensor,
    BoolTensor,
    ByteTensor,
    CharTensor,
    DoubleTensor,
    FloatTensor,
    HalfTensor,
    IntTensor,
    LongTensor,
    ShortTensor,
    set_default_tensor_type,
)
from dtorch.amp import (  # noqa: E402,F401
    autocast,
    get_autocast_cpu_dtype,
    get_autocast_dtype,
    is_autocast_cpu_enabled,
    is_autocast_enabled,
    set_autocast_dtype,
    set_autocast_enabled,
)

cuda.amp = amp  # the older spelling, torch.cuda.amp.GradScaler / autocast

inverse = linalg.inv
det = linalg.det
slogdet = linalg.slogdet
logdet = linalg.logdet
Tensor.inverse = linalg.inv
Tensor.det = linalg.det
Tensor.slogdet = linalg.slogdet
Tensor.logdet = linalg.logdet
from dtorch.serialization import load, save  # noqa: E402,F401
Tensor.softmax = _F.softmax
Tensor.log_softmax = _F.log_softmax
