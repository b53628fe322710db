"""The public math of dtorch: ``dtorch.add``, ``dtorch.sum``, ``dtorch.cat``, ... and, bound in
``dtorch/__init__.py``, the same functions as Tensor methods and operators.

Each front end turns its arguments into plain data (PyTorch's names and defaults: ``dim``, ``keepdim``, ...),
applies PyTorch's dtype promotion and calls one ``Op`` from ``dtorch.ops``. Errors are PyTorch's types with
messages that name the shapes or devices involved.
"""

import builtins
import collections
import math
import numbers

import numpy as np

from dtorch import _backend
from dtorch.autograd import function as _function
from dtorch.autograd import grad_mode
from dtorch.ops import elementwise as E
from dtorch.ops import indexing as I
from dtorch.ops import linalg as L
from dtorch.ops import matrix as MX
from dtorch.ops import nn as NN
from dtorch.ops import reduction as R
from dtorch.ops import shape as S
from dtorch.ops import spectral as SP
from dtorch.ops import views as V
from dtorch.ops._util import checked_fill_value, normalize_dims
from dtorch.random import numpy_generator
from dtorch.tensor import Size, Tensor, _wrap_dim, wrap_array
from dtorch._warnings import warn as _warn
from dtorch._errors import (
    CAUGHT as _NOT_A_TENSOR, not_a_tensor as _not_a_tensor, raise_not_a_tensor as _raise_not_a_tensor,
)

_new = wrap_array
_object_new = object.__new__
_grad_state = grad_mode._state
_SCALAR_TYPES = (int, float, bool)

# ======================================================================================================================
# operands and promotion


def _constant(value, like=None):
    """A Tensor for a non-Tensor operand (an array or nested list), on ``like``'s device."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray) or _backend.is_cupy_array(value):
        array = value
    else:
        array = np.asarray(value)
        if array.dtype == np.float64 and not isinstance(value, np.ndarray):
            array = array.astype(_backend.get_default_dtype().numpy_dtype)
    if like is not None and _backend.device_of(array) != like.device:
        array = _backend.to_device(array, like.device)
    return _new(array, None)


def _cast(tensor, numpy_dtype):
    if tensor._array.dtype == numpy_dtype:
        return tensor
    return E.Cast.apply(tensor, dtype=numpy_dtype)


# ---- autocast and bfloat16 products ----------------------------------------------------------------------------------
# The matmul family, linear and the convolutions call ``_lower_precision`` when ``_AUTOCAST.active`` (one attribute
# read) or their input is bfloat16 (an identity test: NumPy keeps one bfloat16 dtype object) and they are not already
# inside it (``_AUTOCAST.inner``); the ops PyTorch runs in float32 under autocast call ``_autocast_float32`` when
# ``_AUTOCAST.active``. Everything else never looks.
_AUTOCAST = grad_mode.autocast_state
_BFLOAT16 = _backend.BFLOAT16_NUMPY
_FLOAT32 = np.dtype(np.float32)
_FLOAT64 = np.dtype(np.float64)
_BOOL = np.dtype(np.bool_)


def _autocast_target(tensors):
    """The NumPy dtype of the enabled autocast region for the device type of ``tensors``' first tensor, or None."""
    first = next(t for t in tensors if t is not None)
    device_type = "cuda" if _backend.is_cupy_array(first._array) else "cpu"
    if not _AUTOCAST.enabled[device_type]:
        return None, device_type
    return _AUTOCAST.dtype[device_type].numpy_dtype, device_type


def _autocast_cast(tensors, target, device_type):
    """``tensors`` with their floating members on ``device_type`` cast (differentiably) to ``target``; float64 stays,
    as PyTorch's autocast leaves double alone."""
    cuda = device_type == "cuda"
    return tuple(t if t is None or t._array.dtype == target or t._array.dtype == _FLOAT64
                 or not _backend.is_floating_numpy(t._array.dtype) or _backend.is_cupy_array(t._array) != cuda
                 else E.Cast.apply(t, dtype=target) for t in tensors)


def _lower_precision(function, tensors, *args, **kwargs):
    """``function(*tensors, *args, **kwargs)`` for a matmul, linear or convolution, as PyTorch runs it in an
    autocast region or on bfloat16 tensors.

    Inside an enabled autocast region of the tensors' device type, floating inputs are first cast to the region's
    dtype (differentiable casts: the parameters' gradients come back in their own dtype). When the inputs are then
    all bfloat16, the product runs in float32 and its result is rounded once to bfloat16, as PyTorch's CPU kernels
    accumulate bfloat16 products in float32 (NumPy would give a float32 result, or fail for some ops).
    """
    if _AUTOCAST.active:
        target, device_type = _autocast_target(tensors)
        if target is not None:
            tensors = _autocast_cast(tensors, target, device_type)
    round_to = None
    if builtins.all(t is None or t._array.dtype == _BFLOAT16 for t in tensors):
        tensors = tuple(None if t is None else E.Cast.apply(t, dtype=_FLOAT32) for t in tensors)
        round_to = _BFLOAT16
    # the casts are made: the function's own calls (and the nested front ends it calls) skip them
    active, inner = _AUTOCAST.active, _AUTOCAST.inner
    _AUTOCAST.active, _AUTOCAST.inner = False, True
    try:
        out = function(*tensors, *args, **kwargs)
    finally:
        _AUTOCAST.active, _AUTOCAST.inner = active, inner
    return out if round_to is None else E.Cast.apply(out, dtype=round_to)


def _in_float32(function, input, *args, **kwargs):
    """``function(input, ...)`` for a bfloat16 ``input`` (a reduction or a normalization), computed in float32 with
    its floating results rounded once to bfloat16: PyTorch's CPU kernels accumulate bfloat16 in float32, where NumPy
    would sum in bfloat16 and lose most digits of a long sum. Differentiable both ways."""
    result = function(E.Cast.apply(input, dtype=_FLOAT32), *args, **kwargs)
    return _round_to_bfloat16(result)


def _tensors_in_float32(function, tensors, *args, **kwargs):
    """``function(*tensors, ...)`` with the bfloat16 members of ``tensors`` computed in float32, and the floating
    results rounded to bfloat16 (``_in_float32`` for ops with parameters, such as ``layer_norm``)."""
    tensors = tuple(E.Cast.apply(t, dtype=_FLOAT32) if t is not None and t._array.dtype == _BFLOAT16 else t
                    for t in tensors)
    return _round_to_bfloat16(function(*tensors, *args, **kwargs))


def _round_to_bfloat16(result):
    if isinstance(result, Tensor):
        return E.Cast.apply(result, dtype=_BFLOAT16) if result._array.dtype == _FLOAT32 else result
    items = [_round_to_bfloat16(item) for item in result]  # (values, indices), var_mean's pair
    return type(result)(*items) if hasattr(result, "_fields") else type(result)(items)


def _autocast_float32(tensors, device_types=("cpu", "cuda")):
    """``tensors`` with float16/bfloat16 members cast up to float32 when an autocast region is enabled for their
    device type and that type is in ``device_types`` (PyTorch's list of ops that autocast runs in float32 differs
    between the CPU and CUDA); the tensors unchanged otherwise."""
    target, device_type = _autocast_target(tensors)
    if target is None or device_type not in device_types:
        return tensors
    cuda = device_type == "cuda"
    return tuple(t if t is None or t._array.dtype == _FLOAT32 or t._array.dtype == _FLOAT64
                 or not _backend.is_floating_numpy(t._array.dtype) or _backend.is_cupy_array(t._array) != cuda
                 else E.Cast.apply(t, dtype=_FLOAT32) for t in tensors)


def _default_float_numpy():
    return _backend.get_default_dtype().numpy_dtype


def _scalar_for(tensor, scalar):
    """Adjust a Python scalar operand: ints/bools meeting a float scalar become the default float (PyTorch)."""
    if isinstance(scalar, np.generic):
        scalar = scalar.item()
    kind = tensor._array.dtype.kind
    if type(scalar) is float and kind in "biu":
        return _cast(tensor, _default_float_numpy()), scalar
    if type(scalar) is int and kind in "biu":
        if kind == "b":  # NumPy picks int8 for some ufuncs; PyTorch int64
            return _cast(tensor, np.dtype(np.int64)), scalar
        if not 0 <= scalar <= 127:
            scalar = _wrap_integer(scalar, tensor._array.dtype)
    return tensor, scalar


def _wrap_integer(value, dtype):
    """A Python int outside ``dtype``'s range wraps around as PyTorch's cast does (``uint8 tensor - 1`` adds 255);
    NumPy would raise an OverflowError."""
    info = np.iinfo(dtype)
    if info.min <= value <= info.max:
        return value
    if not -2 ** 63 <= value < 2 ** 64:
        raise OverflowError("int too big to convert")
    return int(np.array(value % 2 ** 64, dtype=np.uint64).astype(dtype))


def _promote_pair(a, b):
    da, db = a._array.dtype, b._array.dtype
    target = _backend.result_numpy_dtype(da, a._array.ndim == 0, db, b._array.ndim == 0)
    return _cast(a, target), _cast(b, target)


def _result_numpy_dtype(tensors):
    """PyTorch's result type of several tensors: dimensioned ones promote together; 0-dim ones count only when of
    a higher category."""
    dimensioned = zero_dim = None
    for t_ in tensors:
        dtype = t_._array.dtype
        if t_._array.ndim:
            dimensioned = dtype if dimensioned is None else _backend.result_numpy_dtype(dimensioned, False, dtype, False)
        else:
            zero_dim = dtype if zero_dim is None else _backend.result_numpy_dtype(zero_dim, True, dtype, True)
    if dimensioned is None or zero_dim is None:
        return zero_dim if dimensioned is None else dimensioned
    return _backend.result_numpy_dtype(dimensioned, False, zero_dim, True)


def _broadcastable(a, b):
    try:
        np.broadcast_shapes(a._array.shape, b._array.shape)
    except ValueError:
        return False
    return True


def _broadcast_error(a, b, error):
    """PyTorch's error for operands ``a`` and ``b`` (tensors, scalars or shape tuples) that do not broadcast."""
    shape_a = list(a) if isinstance(a, tuple) else list(getattr(a, "shape", ()))
    shape_b = list(b) if isinstance(b, tuple) else list(getattr(b, "shape", ()))
    for offset in range(1, builtins.min(len(shape_a), len(shape_b)) + 1):
        size_a, size_b = shape_a[-offset], shape_b[-offset]
        if size_a != size_b and size_a != 1 and size_b != 1:
            dim = builtins.max(len(shape_a), len(shape_b)) - offset
            return RuntimeError(
                f"The size of tensor a ({size_a}) must match the size of tensor b ({size_b}) at non-singleton "
                f"dimension {dim} (shapes {shape_a} and {shape_b})"
            )
    return RuntimeError(f"{error} (shapes {shape_a} and {shape_b})")


def _binary(op, a, b, **attrs):
    """Apply a broadcasting binary op with PyTorch's promotion; either side may be a Python scalar."""
    if isinstance(a, Tensor):
        if isinstance(b, Tensor):
            if a._array.dtype is not b._array.dtype:
                a, b = _promote_pair(a, b)
        elif type(b) in _SCALAR_TYPES or isinstance(b, (numbers.Number, np.generic)):
            a, b = _scalar_for(a, b)
        else:
            return _binary(op, a, _constant(_array_like_operand(op, a, b), a), **attrs)
    elif isinstance(b, Tensor):
        if type(a) in _SCALAR_TYPES or isinstance(a, (numbers.Number, np.generic)):
            b, a = _scalar_for(b, a)
        else:
            return _binary(op, _constant(_array_like_operand(op, a, b), b), b, **attrs)
    elif isinstance(a, np.ndarray) or _backend.is_cupy_array(a):
        # neither side a Tensor: not an operator (those have a Tensor on one side) but ``dtorch.add(array, 1)``
        _raise_not_a_tensor(op.__name__.lower(), "input", 1, a)
    else:
        return _binary(op, _constant(a), b, **attrs)
    try:
        return op.apply(a, b, **attrs)
    except ValueError as error:
        raise _broadcast_error(a, b, error) from None


# binary ops that only functions reach (Tensor operators accept an array operand, as PyTorch's do: ``t + array``)
_FUNCTION_ONLY_OPS = frozenset((E.Maximum, E.Minimum, E.Atan2, E.Hypot, E.LogAddExp))
_OPERATOR_SYMBOLS = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/", "Pow": "** or pow()"}


def _array_like_operand(op, a, b):
    """The non-Tensor operand of a binary op when it is array-like (an array or a nested list); anything else
    (None, a string, an arbitrary object) is the TypeError Python gives for unsupported operand types."""
    other = b if isinstance(a, Tensor) else a
    if op in _FUNCTION_ONLY_OPS and (isinstance(other, np.ndarray) or _backend.is_cupy_array(other)):
        # no operator reaches these ops: an array here was passed to ``dtorch.maximum`` and the like by mistake
        position = 2 if other is b else 1
        _raise_not_a_tensor(op.__name__.lower(), ("input", "other")[position - 1], position, other)
    if isinstance(other, (list, tuple, np.ndarray)) or _backend.is_cupy_array(other):
        return other
    names = ["Tensor" if isinstance(x, Tensor) else type(x).__name__ for x in (a, b)]
    symbol = _OPERATOR_SYMBOLS.get(op.__name__, op.__name__.lower() + "()")
    raise TypeError(f"unsupported operand type(s) for {symbol}: '{names[0]}' and '{names[1]}'")


def _float_operands(a, b):
    """True division and friends: integer/bool operands become the default float first."""
    if isinstance(a, Tensor) and a._array.dtype.kind in "biu":
        if not isinstance(b, Tensor) or b._array.dtype.kind in "biu":
            a = _cast(a, _default_float_numpy())
    if isinstance(b, Tensor) and b._array.dtype.kind in "biu":
        if not isinstance(a, Tensor) or a._array.dtype.kind in "biu":
            b = _cast(b, _default_float_numpy())
    return a, b


def _as_tensor_arg(x, name="input"):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a Tensor, not {type(x).__name__}")
    return x


# ======================================================================================================================
# arithmetic


def add(input, other, *, alpha=1):
    """``input + alpha * other`` with broadcasting.

    >>> import dtorch
    >>> dtorch.add(dtorch.tensor([1, 2]), 1.5)
    tensor([2.5000, 3.5000])
    """
    if alpha != 1:
        other = _binary(E.Mul, other, alpha)
    elif type(input) is Tensor and type(other) is Tensor and input._array.dtype is other._array.dtype:
        try:  # the common case, without the promotion logic of _binary
            if type(input._array) is np.ndarray and type(other._array) is np.ndarray \
                    and _both_outside_graph(input, other):
                return _forward_only(E.Add, input._array, other._array)
            return E.Add.apply(input, other)
        except ValueError as error:
            raise _broadcast_error(input, other, error) from None
    return _binary(E.Add, input, other)


def sub(input, other, *, alpha=1):
    """``input - alpha * other`` with broadcasting."""
    try:
        if alpha != 1:
            other = _binary(E.Mul, other, alpha)
        elif type(input) is Tensor and type(other) is Tensor and input._array.dtype is other._array.dtype \
                and input._array.dtype.kind == "f":
            try:  # the common case, as in ``add``
                if type(input._array) is np.ndarray and type(other._array) is np.ndarray \
                        and _both_outside_graph(input, other):
                    return _forward_only(E.Sub, input._array, other._array)
                return E.Sub.apply(input, other)
            except ValueError as error:
                raise _broadcast_error(input, other, error) from None
        try:
            return _binary(E.Sub, input, other)
        except TypeError:  # NumPy refuses bool - bool with a TypeError; PyTorch's error is a RuntimeError
            if not (_is_bool_operand(input) and _is_bool_operand(other)):
                raise
            raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or "
                               "`logical_xor()` operator instead.") from None
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "sub", "input other", input, other)


def _is_bool_operand(value):
    return isinstance(value, (bool, np.bool_)) or isinstance(value, Tensor) and value._array.dtype == np.bool_


def rsub(input, other, *, alpha=1):
    return sub(other, input, alpha=alpha)


def mul(input, other):
    """Elementwise product with broadcasting.

    >>> import dtorch
    >>> dtorch.mul(dtorch.tensor([1., 2.]), dtorch.tensor([[3.], [4.]]))
    tensor([[3., 6.],
            [4., 8.]])
    """
    try:
        if type(input) is Tensor and type(other) is Tensor and input._array.dtype is other._array.dtype:
            try:  # the common case, as in ``add``
                if type(input._array) is np.ndarray and type(other._array) is np.ndarray \
                        and _both_outside_graph(input, other):
                    return _forward_only(E.Mul, input._array, other._array)
                return E.Mul.apply(input, other)
            except ValueError as error:
                raise _broadcast_error(input, other, error) from None
        return _binary(E.Mul, input, other)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "mul", "input other", input, other)


def div(input, other, *, rounding_mode=None):
    """True division (integers give floats); ``rounding_mode`` ``'floor'`` or ``'trunc'`` rounds the quotient.

    >>> import dtorch
    >>> dtorch.div(dtorch.tensor([7, -7]), 2, rounding_mode='trunc')
    tensor([ 3, -3])
    """
    try:
        if rounding_mode is None:
            if type(input) is Tensor and type(other) is Tensor and input._array.dtype is other._array.dtype \
                    and input._array.dtype.kind == "f":
                try:  # the common case, as in ``add``
                    if type(input._array) is np.ndarray and type(other._array) is np.ndarray \
                            and _both_outside_graph(input, other):
                        return _forward_only(E.Div, input._array, other._array)
                    return E.Div.apply(input, other)
                except ValueError as error:
                    raise _broadcast_error(input, other, error) from None
            a, b = _float_operands(input, other)
            return _binary(E.Div, a, b)
        if rounding_mode == "floor":
            return floor_divide(input, other)
        if rounding_mode == "trunc":
            integral = builtins.all(
                v._array.dtype.kind in "biu" if isinstance(v, Tensor) else isinstance(v, (int, np.integer))
                for v in (input, other)
            )
            if integral:
                _check_integer_divisor(input, other)
            quotient = _binary(E.Div, *_float_operands(input, other))
            result = trunc(quotient)
            if integral and isinstance(input, Tensor):
                result = result.to(input.dtype)
            return result
        raise RuntimeError("div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
                           f"'{rounding_mode}'")
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "div", "input other", input, other)


true_divide = divide = div
multiply = mul
subtract = sub


def _check_integer_divisor(input, other):
    """An integer division by zero is PyTorch's RuntimeError (NumPy's gives 0 and a warning). Checked on the CPU
    only: on a GPU the check would wait for the device (and PyTorch's CUDA kernels do not check either)."""
    if isinstance(other, Tensor):
        divisor = other._array
        if divisor.dtype.kind not in "biu" or type(divisor) is not np.ndarray or divisor.all():
            return
    elif type(other) not in (int, bool) or other != 0:
        return
    if input._array.dtype.kind in "biu" if isinstance(input, Tensor) else type(input) in (int, bool):
        raise RuntimeError("ZeroDivisionError")


def floor_divide(input, other):
    try:
        _check_integer_divisor(input, other)
        return _binary(E.IntegerArithmetic, input, other, function="floor_divide")
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "floor_divide", "input other", input, other)


def remainder(input, other):
    """Python-style remainder (the sign of the divisor)."""
    try:
        _check_integer_divisor(input, other)
        return _binary(E.IntegerArithmetic, input, other, function="remainder")
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "remainder", "input other", input, other)


def fmod(input, other):
    """C-style remainder (the sign of the dividend)."""
    try:
        _check_integer_divisor(input, other)
        return _binary(E.IntegerArithmetic, input, other, function="fmod")
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "fmod", "input other", input, other)


def pow(input, exponent):
    """``input ** exponent``; either may be a scalar.

    >>> import dtorch
    >>> dtorch.pow(dtorch.tensor([1., 2., 3.]), 2)
    tensor([1., 4., 9.])
    """
    try:
        if isinstance(input, Tensor) and input._array.dtype.kind in "biu" and isinstance(exponent, Tensor):
            if exponent._array.dtype.kind == "f":
                input = _cast(input, exponent._array.dtype)
        if isinstance(exponent, Tensor) and exponent._array.dtype.kind in "iu" and _integral_base(input):
            powers = exponent._array
            if type(powers) is np.ndarray and powers.size and powers.min() < 0:
                return _integer_power_with_negative_exponents(input, exponent)
        return _binary(E.Pow, input, exponent)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "pow", "input exponent", input, exponent)


def _integral_base(value):
    if isinstance(value, Tensor):
        return value._array.dtype.kind in "iu"
    return type(value) is int or isinstance(value, np.integer)


def _integer_power_with_negative_exponents(input, exponent):
    """PyTorch's integer pow at negative exponents (NumPy raises): 1 for a base of 1, +-1 for -1, 0 otherwise."""
    result = pow(input, clamp(exponent, min=0))  # PyTorch's dtype and broadcasting
    base = input._array if isinstance(input, Tensor) else input
    powers = exponent._array
    at_negative = np.where(base == 1, 1, np.where(base == -1, np.where(powers % 2 == 0, 1, -1), 0))
    return _new(np.where(powers < 0, at_negative, result._array).astype(result._array.dtype), None)


def maximum(input, other):
    try:
        return _binary(E.Maximum, input, other)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "maximum", "input other", input, other)


def minimum(input, other):
    try:
        return _binary(E.Minimum, input, other)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "minimum", "input other", input, other)


def where(condition, input=None, other=None):
    """Pick from ``input`` where ``condition`` holds, else from ``other``; scalars broadcast.

    >>> import dtorch
    >>> x = dtorch.tensor([-1., 2.])
    >>> dtorch.where(x > 0, x, 0.)
    tensor([0., 2.])
    """
    try:
        if type(condition) is Tensor and type(input) is Tensor and type(other) is Tensor \
                and condition._array.dtype is _BOOL and input._array.dtype is other._array.dtype:
            try:  # the common case: a bool mask and two tensors of one dtype need no conversion
                mask, a, b = condition._array, input._array, other._array
                if type(mask) is np.ndarray and type(a) is np.ndarray and type(b) is np.ndarray \
                        and _both_outside_graph(input, other):
                    return _wrap_result(np.where(mask, a, b))  # Where's forward
                return E.Where.apply(condition, input, other)
            except ValueError:
                pass  # not broadcastable: the general path below names the misfit
        if input is None and other is None:
            return nonzero(condition, as_tuple=True)
        condition = _constant(condition)  # (the graph-mode backward formulas pass NumPy masks here)
        if condition._array.dtype != np.bool_:
            if condition._array.dtype != np.uint8:  # (PyTorch still takes uint8 masks, with a deprecation warning)
                legacy = {"int8": "Char", "int16": "Short", "int32": "Int", "int64": "Long", "float16": "Half",
                          "float32": "Float", "float64": "Double"}
                raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor with dtype "
                                   f"{legacy.get(condition._array.dtype.name, condition._array.dtype.name)}")
            condition = _new(condition._array.astype(bool), None)
        like = input if isinstance(input, Tensor) else other if isinstance(other, Tensor) else condition
        if not isinstance(input, Tensor):
            if isinstance(input, np.ndarray):  # only scalars stand in for tensors here, as in PyTorch
                _raise_not_a_tensor("where", "input", 2, input)
            input = _scalar_tensor(input, other if isinstance(other, Tensor) else None, like)
        if not isinstance(other, Tensor):
            if isinstance(other, np.ndarray):
                _raise_not_a_tensor("where", "other", 3, other)
            other = _scalar_tensor(other, input, like)
        if input._array.dtype is not other._array.dtype:
            input, other = _promote_pair(input, other)
        try:
            return E.Where.apply(condition, input, other)
        except ValueError as error:
            # PyTorch broadcasts condition, input, other in turn and names the first misfit
            shape = condition._array.shape
            for operand in (input, other):
                try:
                    shape = np.broadcast_shapes(shape, operand._array.shape)
                except ValueError:
                    raise _broadcast_error(shape, operand, error) from None
            raise
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "where", "condition input other", condition, input, other)


def _scalar_tensor(value, partner, like):
    """A 0-dim tensor for a scalar operand of ``where``: the partner's dtype when compatible, as PyTorch does."""
    if isinstance(value, Tensor):
        return value
    if partner is not None:
        dtype = partner._array.dtype
        if isinstance(value, float) and dtype.kind in "biu":
            dtype = _default_float_numpy()
        elif isinstance(value, int) and not isinstance(value, bool) and dtype.kind == "b":
            dtype = np.dtype(np.int64)
    else:
        dtype = _backend.dtype_for_python_scalar(value).numpy_dtype
    if dtype.kind in "iu":
        value = checked_fill_value(value, dtype)
    array = _backend.array_module_for(like.device).asarray(value, dtype=dtype)
    return _new(array, None)


# bounds that leave a floating input's dtype alone (bools, NumPy scalars and tensors take the general path)
_CLAMP_BOUND_TYPES = frozenset((float, int, type(None)))


def clamp(input, min=None, max=None):
    """Clamp into ``[min, max]``; bounds may be scalars or tensors.

    >>> import dtorch
    >>> dtorch.clamp(dtorch.tensor([-2., 0.5, 3.]), min=0., max=1.)
    tensor([0.0000, 0.5000, 1.0000])
    """
    try:
        if input._array.dtype.kind == "f" and type(min) in _CLAMP_BOUND_TYPES and type(max) in _CLAMP_BOUND_TYPES \
                and (min is not None or max is not None):  # the common case: nothing to promote
            if type(input._array) is np.ndarray and _outside_graph(input):
                return _forward_only(E.Clamp, input._array, min=min, max=max)
            return E.Clamp.apply(input, min=min, max=max)
        if min is None and max is None:
            raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
        if isinstance(min, Tensor) or isinstance(max, Tensor):
            low = _constant(min, input) if min is not None else None
            high = _constant(max, input) if max is not None else None
            target = _result_numpy_dtype([t_ for t_ in (input, low, high) if t_ is not None])
            input, low, high = (_cast(t_, target) if t_ is not None else None for t_ in (input, low, high))
            try:
                return E.ClampTensor.apply(input, low, high)
            except ValueError as error:
                bound = low if low is not None and not _broadcastable(input, low) else high
                raise _broadcast_error(input, bound, error) from None
        if isinstance(min, float) or isinstance(max, float):
            input, _ = _scalar_for(input, 0.0)
        return E.Clamp.apply(input, min=min, max=max)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "clamp", "input", input)


clip = clamp


def clamp_min(input, min):
    return clamp(input, min=min)


def clamp_max(input, max):
    return clamp(input, max=max)


def _float_input(input):
    if input._array.dtype.kind in "biu":
        return _cast(input, _default_float_numpy())
    return input


def _unary(op, integers_to_float=True, doc=None):
    """The front end of the elementwise op ``op`` of one tensor, named after it: the no-grad shortcut or
    ``op.apply``. ``integers_to_float``: integer inputs are cast to the default float dtype first (``exp``);
    False keeps every dtype (``neg``, ``relu``)."""
    name = op.__name__.lower()

    def function(input):
        try:
            if integers_to_float:
                input = _float_input(input)
            if type(input._array) is np.ndarray and _outside_graph(input):
                return _forward_only(op, input._array)
            return op.apply(input)
        except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
            _not_a_tensor(error, name, "input", input)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = doc or f"Elementwise ``{name}``; integer inputs give the default float dtype."
    return function


neg = _unary(E.Neg, integers_to_float=False, doc="Elementwise ``-x``, in the input's dtype.")
negative = neg


exp = _unary(E.Exp)
log = _unary(E.Log)
log1p = _unary(E.Log1p)
sqrt = _unary(E.Sqrt)
rsqrt = _unary(E.Rsqrt)
sin = _unary(E.Sin)
cos = _unary(E.Cos)
tanh = _unary(E.Tanh)
sigmoid = _unary(E.Sigmoid)
erf = _unary(E.Erf)
silu = _unary(E.Silu)


def logit(input, eps=None):
    """``log(z / (1 - z))``, the inverse of ``sigmoid``, with ``z`` the input clamped to ``[eps, 1 - eps]`` when
    ``eps`` is given (else inputs outside ``[0, 1]`` give NaN, as in PyTorch). The gradient is ``1 / (z (1 - z))``,
    and 0 where the clamp applied.

    >>> import dtorch
    >>> dtorch.logit(dtorch.tensor([0.5, 0.75]))
    tensor([0.0000, 1.0986])
    """
    try:
        return E.Logit.apply(_float_input(input), eps=None if eps is None else float(eps))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "logit", "input", input)


def log2(input):
    try:
        return log(input) / float(np.log(2.0))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "log2", "input", input)


def log10(input):
    try:
        return log(input) / float(np.log(10.0))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "log10", "input", input)


def abs(input):
    try:
        return E.Abs.apply(input)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "abs", "input", input)


absolute = abs


relu = _unary(E.Relu, integers_to_float=False, doc="""``max(x, 0)``, in the input's dtype.

    >>> import dtorch
    >>> dtorch.relu(dtorch.tensor([-1., 2.]))
    tensor([0., 2.])
    """)


def gelu(input, approximate="none"):
    try:
        if approximate not in ("none", "tanh"):
            raise RuntimeError(f"approximate argument must be either none or tanh, got '{approximate}'")
        if input._array.dtype is _BFLOAT16:  # 1 + erf cancels: PyTorch computes in float32 and rounds once
            return _in_float32(gelu, input, approximate)
        if type(input._array) is np.ndarray and _outside_graph(input):
            # nothing recorded: no backward will want the derivative the float32 pieces would keep
            return _forward_only(E.Gelu, input._array, approximate=approximate, keeps_derivative=False)
        return E.Gelu.apply(input, approximate=approximate)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "gelu", "input", input)


def softplus(input, beta=1.0, threshold=20.0):
    return E.Softplus.apply(input, beta=beta, threshold=threshold)


def reciprocal(input):
    try:
        return div(1.0, _float_input(input))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "reciprocal", "input", input)


def square(input):
    try:
        if input._array.dtype.kind == "b":  # PyTorch squares bools as int64 (it is pow(x, 2))
            input = _cast(input, np.dtype(np.int64))
        return mul(input, input)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "square", "input", input)


def sign(input):
    try:
        if input._array.dtype.kind == "b":
            return input.clone()
        return E.ZeroGradUnary.apply(input, function="sign", decimals=0)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "sign", "input", input)


def floor(input):
    try:
        if input._array.dtype.kind in "biu":
            return input.clone()
        return E.ZeroGradUnary.apply(input, function="floor", decimals=0)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "floor", "input", input)


def ceil(input):
    try:
        if input._array.dtype.kind in "biu":
            return input.clone()
        return E.ZeroGradUnary.apply(input, function="ceil", decimals=0)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "ceil", "input", input)


def trunc(input):
    try:
        if input._array.dtype.kind in "biu":
            return input.clone()
        return E.ZeroGradUnary.apply(input, function="trunc", decimals=0)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "trunc", "input", input)


def round(input, *, decimals=0):
    """Round half to even, as PyTorch does."""
    try:
        if input._array.dtype.kind in "biu":
            return input.clone()
        return E.ZeroGradUnary.apply(input, function="round", decimals=decimals)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "round", "input", input)


def clone(input, *, memory_format=None):
    try:
        return E.Clone.apply(input)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "clone", "input", input)


# ---- comparisons and logic ------------------------------------------------------------------------------------


def _compare(function):
    """A broadcasting binary op whose result needs no gradient: comparisons, logical and bitwise ops."""

    numpy_function = getattr(np, function)

    def compare(input, other):
        if type(input) is Tensor and type(other) is Tensor and input._array.dtype is other._array.dtype:
            try:  # the common case, as in ``add``
                a, b = input._array, other._array
                if type(a) is np.ndarray and type(b) is np.ndarray and _function.capture is None:
                    # never recorded (no gradient), so outside a capture Compare's forward runs without apply
                    return _wrap_result(numpy_function(a, b))
                return E.Compare.apply(input, other, function=function)
            except ValueError as error:
                raise _broadcast_error(input, other, error) from None
        return _binary(E.Compare, input, other, function=function)

    compare.__name__ = function
    return compare


eq = _compare("equal")
ne = _compare("not_equal")
lt = _compare("less")
le = _compare("less_equal")
gt = _compare("greater")
ge = _compare("greater_equal")
less, less_equal, greater, greater_equal, not_equal = lt, le, gt, ge, ne


logical_and = _compare("logical_and")
logical_or = _compare("logical_or")
logical_xor = _compare("logical_xor")
bitwise_and = _compare("bitwise_and")
bitwise_or = _compare("bitwise_or")
bitwise_xor = _compare("bitwise_xor")


def logical_not(input):
    try:
        return E.Compare.apply(input, function="logical_not")
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "logical_not", "input", input)


def bitwise_not(input):
    try:
        return E.Compare.apply(input, function="invert")
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "bitwise_not", "input", input)


def isnan(input):
    try:
        return E.Compare.apply(input, function="isnan")
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "isnan", "input", input)


def isinf(input):
    try:
        return E.Compare.apply(input, function="isinf")
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "isinf", "input", input)


def isfinite(input):
    try:
        return E.Compare.apply(input, function="isfinite")
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "isfinite", "input", input)


def equal(input, other):
    """True when both tensors have the same shape and elements."""
    try:
        return input.shape == other.shape and bool((input._array == other._array).all())
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "equal", "input other", input, other)


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    try:
        xp = _backend.xp_of(input._array)
        return bool(xp.allclose(input._array, other._array, rtol=rtol, atol=atol, equal_nan=equal_nan))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "allclose", "input other", input, other)


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    try:
        xp = _backend.xp_of(input._array)
        if isinstance(other, Tensor):
            other_data = other._array
        elif isinstance(other, np.ndarray):
            _raise_not_a_tensor("isclose", "other", 2, other)
        else:
            other_data = other
        return _new(xp.isclose(input._array, other_data, rtol=rtol, atol=atol, equal_nan=equal_nan), None)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "isclose", "input other", input, other)


# ======================================================================================================================
# reductions


def _check_dtype_arg(dtype):
    return None if dtype is None else _backend.to_numpy_dtype(dtype)


def sum(input, dim=None, keepdim=False, *, dtype=None):
    """Sum over ``dim`` (an int, a tuple, or all dimensions). Integer and bool inputs sum to int64.

    >>> import dtorch
    >>> dtorch.sum(dtorch.tensor([[1., 2.], [3., 4.]]), dim=0)
    tensor([4., 6.])
    """
    try:
        array = input._array
        if dtype is None and array.dtype.kind == "f":  # the common case: a floating input summed in its dtype
            axes = R.reduction_axes(dim, array.ndim)
            if type(array) is np.ndarray and _outside_graph(input):
                return _wrap_result(R.sum_array(array, axes, keepdim, None))
            return R.Sum.apply(input, axes=axes, keepdim=keepdim, dtype=None)
        numpy_dtype = _check_dtype_arg(dtype)
        if numpy_dtype is not None:
            # cast first, as PyTorch does, so the gradient comes back in the input's dtype
            input, numpy_dtype = _cast(input, numpy_dtype), None
        elif input._array.dtype.kind in "biuV":  # (kind 'V' is bfloat16: tested here at no cost to float32)
            if input._array.dtype == _BFLOAT16:
                return _in_float32(sum, input, dim, keepdim)
            numpy_dtype = np.dtype(np.int64)
        axes = normalize_dims(dim, input._array.ndim)
        return R.Sum.apply(input, axes=axes, keepdim=keepdim, dtype=numpy_dtype)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "sum", "input", input)


def mean(input, dim=None, keepdim=False, *, dtype=None):
    """Mean over ``dim``; floating inputs only (pass ``dtype`` for integers), as in PyTorch."""
    try:
        if dtype is not None:
            input = _cast(input, _backend.to_numpy_dtype(dtype))
        if input._array.dtype.kind not in "fc":
            if input._array.dtype == _BFLOAT16:
                return _in_float32(mean, input, dim, keepdim)
            raise RuntimeError(
                "mean(): could not infer output dtype. Input dtype must be either a floating point or complex dtype. "
                f"Got: {input.dtype}"
            )
        axes = normalize_dims(dim, input._array.ndim)
        return R.Mean.apply(input, axes=axes, keepdim=keepdim)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "mean", "input", input)


def prod(input, dim=None, keepdim=False, *, dtype=None):
    try:
        if dtype is not None:
            input = _cast(input, _backend.to_numpy_dtype(dtype))
        elif input._array.dtype.kind in "biuV":
            if input._array.dtype == _BFLOAT16:
                return _in_float32(prod, input, dim, keepdim)
            input = _cast(input, np.dtype(np.int64))
        axes = normalize_dims(dim, input._array.ndim) if dim is not None else tuple(range(input._array.ndim))
        return R.Prod.apply(input, axes=axes, keepdim=keepdim)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "prod", "input", input)


_values_indices = {}


def _return_type(name):
    """A ``(values, indices)`` named tuple that prints like ``torch.return_types.<name>``."""
    found = _values_indices.get(name)
    if found is None:
        def __repr__(self):
            return f"dtorch.return_types.{name}(\nvalues={self.values!r},\nindices={self.indices!r})"

        base = collections.namedtuple(name, ["values", "indices"])
        found = type(name, (base,), {"__slots__": (), "__repr__": __repr__, "__module__": "dtorch.return_types"})
        _values_indices[name] = found
    return found


def _check_nonempty_reduction(input, name, error=RuntimeError):
    if input._array.size == 0:
        raise error(
            f"{name}(): Expected reduction dim to be specified for input.numel() == 0. Specify the reduction dim "
            "with the 'dim' argument."
        )


def _check_nonzero_extents(input, axes, name):
    """max/min/argmax/argmin have no identity: reducing an axis of extent 0 is PyTorch's IndexError."""
    if input._array.size == 0:
        for axis in axes:
            if input._array.shape[axis] == 0:
                raise IndexError(f"{name}(): Expected reduction dim {axis} to have non-zero size.")


_MAX_RESULT = _return_type("max")
_MIN_RESULT = _return_type("min")


def max(input, dim=None, keepdim=False, *, out=None):
    """The largest element; with ``dim``, ``(values, indices)``; with a tensor, the elementwise maximum.

    >>> import dtorch
    >>> dtorch.max(dtorch.tensor([[1, 5], [7, 2]]), dim=1)
    dtorch.return_types.max(
    values=tensor([5, 7]),
    indices=tensor([1, 0]))
    """
    if isinstance(dim, Tensor):
        return maximum(input, dim)
    return _extreme(input, dim, keepdim, "max", _MAX_RESULT)


def min(input, dim=None, keepdim=False, *, out=None):
    """The smallest element; with ``dim``, ``(values, indices)``; with a tensor, the elementwise minimum."""
    if isinstance(dim, Tensor):
        return minimum(input, dim)
    return _extreme(input, dim, keepdim, "min", _MIN_RESULT)


def _extreme(input, dim, keepdim, mode, result_type):
    """``max``/``min`` (``mode``) of every element, or ``(values, indices)`` along ``dim`` as ``result_type``."""
    try:
        array = input._array
        if dim is None:
            if not array.size:
                _check_nonempty_reduction(input, mode)
            if type(array) is np.ndarray and _outside_graph(input):
                return _wrap_result(R.extreme_of_all(array, mode))
            return R.MaxMin.apply(input, axes=R.reduction_axes(None, array.ndim), keepdim=False, mode=mode)
        axis = _wrap_dim(dim, array.ndim)
        if not array.size:
            _check_nonzero_extents(input, (axis,), mode)
        if type(array) is np.ndarray and _outside_graph(input):
            values, indices, _ = R.extreme_along(np, array, axis, keepdim, mode)
            return result_type(_wrap_result(values), _wrap_result(indices))
        values, indices = R.MaxMinDim.apply(input, axis=axis, keepdim=keepdim, mode=mode)
        return result_type(values, indices)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, mode, "input", input)


def amax(input, dim=(), keepdim=False):
    try:
        axes = normalize_dims(dim if dim != () else None, input._array.ndim)
        _check_nonzero_extents(input, axes, "amax")
        return R.MaxMin.apply(input, axes=axes, keepdim=keepdim, mode="max")
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "amax", "input", input)


def amin(input, dim=(), keepdim=False):
    try:
        axes = normalize_dims(dim if dim != () else None, input._array.ndim)
        _check_nonzero_extents(input, axes, "amin")
        return R.MaxMin.apply(input, axes=axes, keepdim=keepdim, mode="min")
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "amin", "input", input)


def argmax(input, dim=None, keepdim=False):
    """The index of the largest element (of the flattened tensor without ``dim``)."""
    return _arg_extreme(input, dim, keepdim, "max")


def argmin(input, dim=None, keepdim=False):
    """The index of the smallest element (of the flattened tensor without ``dim``)."""
    return _arg_extreme(input, dim, keepdim, "min")


def _arg_extreme(input, dim, keepdim, mode):
    name = "arg" + mode
    try:
        array = input._array
        axis = None if dim is None else _wrap_dim(dim, array.ndim)
        if not array.ndim:  # dim 0 or -1 of a 0-dim tensor: index 0, 0-dim even with keepdim
            axis = None
        if not array.size:
            if axis is None:
                _check_nonempty_reduction(input, name, IndexError)
            else:
                _check_nonzero_extents(input, (axis,), name)
        if type(array) is np.ndarray and _function.capture is None:  # (never recorded: indices have no gradient)
            return _forward_only(R.ArgExtreme, array, axis=axis, keepdim=keepdim, mode=mode)
        return R.ArgExtreme.apply(input, axis=axis, keepdim=keepdim, mode=mode)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, name, "input", input)


def _check_floating(input, message):
    if input._array.dtype.kind != "f":
        raise RuntimeError(message)


def _correction(unbiased, correction):
    if correction is not None:
        return correction
    if unbiased is None:
        return 1
    return 1 if unbiased else 0


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance over ``dim`` with ``correction`` (default 1, Bessel's); ``unbiased=False`` means correction 0.

    >>> import dtorch
    >>> dtorch.var(dtorch.tensor([1., 2., 3., 4.]))
    tensor(1.6667)
    """
    try:
        if isinstance(dim, bool):
            dim, unbiased = None, dim
        if input._array.dtype is _BFLOAT16:
            return _in_float32(var, input, dim, unbiased, keepdim, correction=correction)
        _check_floating(input, "std and var only support floating point and complex dtypes")
        axes = normalize_dims(dim, input._array.ndim)
        return R.Var.apply(input, axes=axes, keepdim=keepdim, correction=_correction(unbiased, correction))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "var", "input", input)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Standard deviation over ``dim``; same arguments as ``var``."""
    try:
        if isinstance(dim, bool):
            dim, unbiased = None, dim
        if input._array.dtype is _BFLOAT16:
            return _in_float32(std, input, dim, unbiased, keepdim, correction=correction)
        _check_floating(input, "std and var only support floating point and complex dtypes")
        axes = normalize_dims(dim, input._array.ndim)
        return R.Std.apply(input, axes=axes, keepdim=keepdim, correction=_correction(unbiased, correction))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "std", "input", input)


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    try:
        return var(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "var_mean", "input", input)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    try:
        return std(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "std_mean", "input", input)


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """The vector p-norm over ``dim`` (all elements by default); ``'fro'`` is the 2-norm.

    >>> import dtorch
    >>> dtorch.norm(dtorch.tensor([3., 4.]))
    tensor(5.)
    """
    try:
        if dtype is not None:
            input = _cast(input, _backend.to_numpy_dtype(dtype))
        if p == "fro" or p is None:
            p = 2
        if p == "nuc":
            raise NotImplementedError("dtorch.norm: the nuclear norm is not implemented")
        if input._array.dtype is _BFLOAT16:
            return _in_float32(norm, input, p, dim, keepdim)
        _check_floating(input, f"linalg.vector_norm: Expected a floating point or complex tensor as input. Got "
                               f"{input.dtype}")
        axes = normalize_dims(dim, input._array.ndim)
        return R.Norm.apply(input, p=float(p), axes=axes, keepdim=keepdim)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "norm", "input", input)


def logsumexp(input, dim, keepdim=False):
    try:
        if input._array.dtype is _BFLOAT16:
            return _in_float32(logsumexp, input, dim, keepdim)
        axes = normalize_dims(dim, input._array.ndim)
        return R.LogSumExp.apply(_float_input(input), axes=axes, keepdim=keepdim)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "logsumexp", "input", input)


def cumsum(input, dim, *, dtype=None):
    try:
        if dtype is not None:
            input = _cast(input, _backend.to_numpy_dtype(dtype))
        elif input._array.dtype.kind in "biuV":
            if input._array.dtype == _BFLOAT16:
                return _in_float32(cumsum, input, dim)
            input = _cast(input, np.dtype(np.int64))
        return R.CumSum.apply(input, axis=_wrap_dim(dim, input._array.ndim))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "cumsum", "input", input)


def cumprod(input, dim, *, dtype=None):
    try:
        if dtype is not None:
            input = _cast(input, _backend.to_numpy_dtype(dtype))
        elif input._array.dtype.kind in "biuV":
            if input._array.dtype == _BFLOAT16:
                return _in_float32(cumprod, input, dim)
            input = _cast(input, np.dtype(np.int64))
        return R.CumProd.apply(input, axis=_wrap_dim(dim, input._array.ndim))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "cumprod", "input", input)


def all(input, dim=None, keepdim=False):
    try:
        return _uint8_like(input, R.AllAny.apply(input, axes=_all_any_axes(input, dim), keepdim=keepdim, mode="all"))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "all", "input", input)


def any(input, dim=None, keepdim=False):
    try:
        return _uint8_like(input, R.AllAny.apply(input, axes=_all_any_axes(input, dim), keepdim=keepdim, mode="any"))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "any", "input", input)


def _all_any_axes(input, dim):
    """all/any reduce no dim for an empty tuple (where sum and mean reduce them all), as in PyTorch."""
    if dim is None:
        return None
    if not isinstance(dim, int) and len(dim) == 0:
        return ()
    return normalize_dims(dim, input._array.ndim)


def _uint8_like(input, result):
    """PyTorch's all/any of a uint8 tensor are uint8 (0 or 1), of anything else bool."""
    if input._array.dtype == np.uint8:
        return _new(result._array.astype(np.uint8), None)
    return result


def count_nonzero(input, dim=None):
    try:
        return sum(ne(input, 0), dim)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "count_nonzero", "input", input)


# ======================================================================================================================
# shape


# The no-grad shortcut of the view, shape and indexing front ends (``dtorch.ops.shape``): when nothing is recorded
# they compute the array themselves and wrap it, skipping ``Op.apply``; ``tests/ops/test_fast_paths.py`` holds them
# equal to the op's ``apply`` (the reference path, still taken whenever the graph is recorded).
_outside_graph = S.outside_graph
_wrap_view = S.wrap_view


def _both_outside_graph(a, b):
    """``outside_graph`` for an op on two Tensors: neither requires grad (or grad mode is off) and no capture runs."""
    return (not (a.requires_grad or b.requires_grad) or not _grad_state["enabled"]) and _function.capture is None


def _forward_only(op, *arrays, **attrs):
    """``op``'s own forward on NumPy arrays, wrapped as by ``_wrap_result``: the no-grad shortcut of the front ends
    (the node is made with its ``attrs`` for the forward's use, as ``Op.apply`` makes it, and dropped)."""
    node = _object_new(op)
    for name in attrs:  # (as in ``Op.apply``: setattr keeps the node's attributes out of a materialised __dict__)
        setattr(node, name, attrs[name])
    return _wrap_result(node.forward(*arrays))


def _wrap_result(out):
    """The forward result ``out`` of an op that does not make views, as the Tensor ``Op.apply`` returns when nothing
    is recorded (a NumPy scalar becomes a 0-dim array). Front ends' no-grad shortcuts call it."""
    return _new(out if type(out) is np.ndarray else np.asarray(out), None)


# what ``view``/``reshape`` hand to NumPy's reshape to parse: ints (``view(8, 8)``), or one tuple, list or Size
# (NumPy reads ``reshape(None)`` as "flatten", so anything else takes the reference parse)
_NUMPY_SIZE_ARGUMENTS = frozenset((int, tuple, list, Size))


def _numpy_reshape(data, shape):
    """``data.reshape(*shape)`` when NumPy accepts the sizes as PyTorch does, else None: the reference parse
    (``_shape_arg``, ``_infer_shape``) then decides, and raises PyTorch's error."""
    if not shape or type(shape[0]) not in _NUMPY_SIZE_ARGUMENTS:
        return None
    try:
        out = data.reshape(*shape)
    except (TypeError, ValueError):
        return None
    sizes = shape if type(shape[0]) is int else shape[0]
    if out.shape != tuple(sizes) and -1 not in sizes:  # NumPy infers an extent for any negative size, PyTorch for -1
        return None
    return out


def _shape_arg(shape):
    """Accept ``f(2, 3)``, ``f((2, 3))`` and ``f([2, 3])`` (and Size)."""
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
        shape = shape[0]
    return tuple(map(int, shape))


def _infer_shape(shape, numel):
    # the common case first: every extent given, none negative, and they multiply to the element count
    if -1 not in shape and math.prod(shape) == numel and (not shape or builtins.min(shape) >= 0):
        return tuple(shape)
    shape = list(shape)
    unknown = [i for i, s in enumerate(shape) if s == -1]
    if len(unknown) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = 1
    for s in shape:
        if s != -1:
            if s < 0:
                raise RuntimeError(f"invalid shape dimension {s}")
            known *= s
    if unknown:
        if known == 0 or numel % known != 0:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
        shape[unknown[0]] = numel // known
    elif known != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")
    return tuple(shape)


def reshape(input, *shape):
    """The same elements in a new shape (a view when the layout allows); one extent may be -1.

    >>> import dtorch
    >>> dtorch.arange(6).reshape(2, -1)
    tensor([[0, 1, 2],
            [3, 4, 5]])
    """
    try:
        out = _numpy_reshape(input._array, shape)
        if out is not None:
            if _outside_graph(input):
                return _wrap_view(input, out)
            return S.Reshape.apply(input, shape=out.shape)
        target = _infer_shape(_shape_arg(shape), input._array.size)
        return S.Reshape.apply(input, shape=target)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "reshape", "input", input)


def view(input, *shape):
    """Like ``reshape`` but never copies: a RuntimeError when the memory layout does not allow a view."""
    try:
        data = input._array
        if data.flags.c_contiguous:  # any shape of the same size is a view of it: NumPy parses the sizes
            out = _numpy_reshape(data, shape)
            if out is not None:
                if _outside_graph(input):
                    return _wrap_view(input, out)
                return S.Reshape.apply(input, shape=out.shape)
        if len(shape) == 1 and isinstance(shape[0], _backend.dtype):
            return _view_as_dtype(input, shape[0])
        target = _infer_shape(_shape_arg(shape), input._array.size)
        if not data.flags.c_contiguous and not _view_possible(data, target):
            raise RuntimeError(
                "view size is not compatible with input tensor's size and stride (at least one dimension spans across "
                "two contiguous subspaces). Use .reshape(...) instead."
            )
        return S.Reshape.apply(input, shape=target)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "view", "input", input)


def _view_as_dtype(input, dtype):
    """The same bytes read as ``dtype`` (``Tensor.view(dtype)``): the last dimension scales by the item-size ratio.
    Not differentiable, as in PyTorch (except to the same dtype, which is an ordinary view).

    >>> import dtorch
    >>> dtorch.tensor([1.0]).view(dtorch.int32)
    tensor([1065353216], dtype=dtorch.int32)
    """
    data = input._array
    target = dtype.numpy_dtype
    if target == data.dtype:
        return S.Reshape.apply(input, shape=data.shape)
    if target.itemsize != data.itemsize:
        if data.ndim == 0:
            raise RuntimeError("self.dim() cannot be 0 to view " + str(input.dtype) + " as " + str(dtype) +
                               " (different element sizes)")
        if data.strides[-1] != data.itemsize:
            raise RuntimeError("self.stride(-1) must be 1 to view " + str(input.dtype) + " as " + str(dtype) +
                               " (different element sizes)")
        if (data.shape[-1] * data.itemsize) % target.itemsize:
            raise RuntimeError(f"self.size(-1) must be divisible by {target.itemsize // data.itemsize} to view "
                               f"{input.dtype} as {dtype} (different element sizes), but got {data.shape[-1]}")
    result = _new(data.view(target), None)  # outside the graph, as in PyTorch
    result._base = input._base if input._base is not None else input  # shares memory: in-place changes show
    return result


def _view_possible(array, shape):
    if type(array) is np.ndarray:
        try:
            np.reshape(array, shape, copy=False)
            return True
        except ValueError:
            return False
    out = array.reshape(shape)
    return out.base is not None


def flatten(input, start_dim=0, end_dim=-1):
    try:
        data = input._array
        ndim = data.ndim
        if start_dim == 0 and end_dim == -1 and ndim > 1:  # everything into one dim (the default), spelled directly
            if _outside_graph(input):
                return _wrap_view(input, data.reshape(data.size))
            return S.Reshape.apply(input, shape=(data.size,))
        if ndim == 0:
            return reshape(input, 1)
        start = _wrap_dim(start_dim, ndim)
        end = _wrap_dim(end_dim, ndim)
        if start > end:
            raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
        shape = input._array.shape
        if start == end:  # nothing to merge: PyTorch returns the input itself
            return input
        middle = 1
        for extent in shape[start:end + 1]:
            middle *= extent
        return S.Reshape.apply(input, shape=shape[:start] + (middle,) + shape[end + 1:])
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "flatten", "input", input)


def unflatten(input, dim, sizes):
    try:
        axis = _wrap_dim(dim, input._array.ndim)
        shape = input._array.shape
        sizes = _infer_shape(tuple(sizes), shape[axis])
        return reshape(input, shape[:axis] + sizes + shape[axis + 1:])
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "unflatten", "input dim sizes", input, dim, sizes)


def squeeze(input, dim=None):
    try:
        shape = input._array.shape
        if type(dim) is int and shape:  # one dim, the common case: no set of axes to build
            axis = _wrap_dim(dim, len(shape))
            target = shape[:axis] + shape[axis + 1:] if shape[axis] == 1 else shape
            if _outside_graph(input):
                return _wrap_view(input, input._array.reshape(target))
            return S.Reshape.apply(input, shape=target, kind="squeeze_dim")
        if dim is None:
            target = tuple(s for s in shape if s != 1)
        else:
            axes = normalize_dims(dim, input._array.ndim) if input._array.ndim else ()
            target = tuple(s for i, s in enumerate(shape) if not (i in axes and s == 1))
        kind = "squeeze" if dim is None else ("squeeze_dim" if isinstance(dim, int) else "squeeze_dims")
        return S.Reshape.apply(input, shape=target, kind=kind)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "squeeze", "input", input)


def unsqueeze(input, dim):
    try:
        data = input._array
        axis = _wrap_dim(dim, data.ndim + 1)
        shape = data.shape
        target = shape[:axis] + (1,) + shape[axis:]
        if _outside_graph(input):
            return _wrap_view(input, data.reshape(target))
        return S.Reshape.apply(input, shape=target, kind="unsqueeze")
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "unsqueeze", "input", input)


def permute(input, *dims):
    try:
        # NumPy's transpose checks the dims as PyTorch does (one per dimension, each once, negative ones counted
        # from the end); it reads none, or None, as "reverse", which PyTorch rejects: those take the reference path
        if dims and dims[0] is not None and _outside_graph(input):
            try:
                return _wrap_view(input, input._array.transpose(*dims))
            except (TypeError, ValueError):  # (NumPy's AxisError is a ValueError)
                pass
        dims = _shape_arg(dims)
        ndim = input._array.ndim
        if len(dims) != ndim:
            raise RuntimeError(
                "permute(sparse_coo): number of dimensions in the tensor input does not match the "
                "length of the desired "
                f"ordering of dimensions i.e. input.dim() = {ndim} is not equal to len(dims) = {len(dims)}"
            )
        if sorted(dims) == list(range(ndim)):  # non-negative and each once: the dims as given
            return S.Permute.apply(input, dims=dims)
        axes = tuple(_wrap_dim(d, ndim) for d in dims)
        if len(set(axes)) != ndim:
            raise RuntimeError("permute(): duplicate dims are not allowed.")
        return S.Permute.apply(input, dims=axes)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "permute", "input", input)


def transpose(input, dim0, dim1):
    """Swap two dimensions (a view).

    >>> import dtorch
    >>> dtorch.zeros(2, 3, 4).transpose(0, 2).shape
    dtorch.Size([4, 3, 2])
    """
    try:
        ndim = input._array.ndim
        if ndim == 2 and dim0 in _MATRIX_AXES and dim1 in _MATRIX_AXES and (dim0 - dim1) % 2:  # a matrix's two axes
            if _outside_graph(input):
                return _wrap_view(input, input._array.T)
            return S.Permute.apply(input, dims=(1, 0))
        if ndim == 0:
            return input
        a, b = _wrap_dim(dim0, ndim), _wrap_dim(dim1, ndim)
        dims = list(range(ndim))
        dims[a], dims[b] = dims[b], dims[a]
        return S.Permute.apply(input, dims=tuple(dims))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "transpose", "input", input)


swapaxes = swapdims = transpose


_MATRIX_AXES = (0, 1, -1, -2)  # (``0 in (False,)`` is true too: a bool dim is an int in Python and in PyTorch)


def t(input):
    try:
        if input._array.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input._array.ndim}D")
        if input._array.ndim < 2:
            return input
        if _outside_graph(input):
            return _wrap_view(input, input._array.T)
        return S.Permute.apply(input, dims=(1, 0))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "t", "input", input)


def movedim(input, source, destination):
    try:
        ndim = input._array.ndim
        source = [source] if isinstance(source, int) else list(source)
        destination = [destination] if isinstance(destination, int) else list(destination)
        source = [_wrap_dim(d, ndim) for d in source]
        destination = [_wrap_dim(d, ndim) for d in destination]
        if len(source) != len(destination):
            raise RuntimeError(f"movedim: Invalid source or destination dims: source ({source} dims) "
                               "should contain the "
                               f"same number of dims as destination ({destination} dims)")
        for name, dims in (("source", source), ("destination", destination)):
            if len(set(dims)) != len(dims):
                raise RuntimeError(f"movedim: repeated dim in `{name}` ({dims})")
        order = [d for d in range(ndim) if d not in source]
        for dest, src in sorted(zip(destination, source)):
            order.insert(dest, src)
        return S.Permute.apply(input, dims=tuple(order))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "movedim", "input source destination", input, source, destination)


def expand(input, *sizes):
    """Broadcast to ``sizes`` without copying; -1 keeps an extent."""
    try:
        data = input._array
        if _function.capture is None:  # the sizes read with the layout (cached); a capture takes the reference parse
            layout = S.expand_layout(data, sizes[0] if len(sizes) == 1 and type(sizes[0]) is not int else sizes)
            if layout is not None:
                if type(data) is np.ndarray and data.flags.c_contiguous and _outside_graph(input):
                    return _wrap_view(input, S.read_only_view(data, layout))
                return S.Expand.apply(input, shape=layout[0])
        sizes = _shape_arg(sizes)
        shape = input._array.shape
        if len(sizes) < len(shape):
            raise RuntimeError(
                f"expand(torch.FloatTensor{{{list(shape)}}}, size=[{', '.join(map(str, sizes))}]): the number of sizes "
                f"provided ({len(sizes)}) must be greater or equal to the number of dimensions in the tensor "
                f"({len(shape)})"
            )
        lead = len(sizes) - len(shape)
        target = []
        for i, size in enumerate(sizes):
            if size == -1:
                if i < lead:
                    raise RuntimeError("expand: -1 is not allowed in a leading, non-existing dimension")
                size = shape[i - lead]
            elif i >= lead and shape[i - lead] != 1 and shape[i - lead] != size:
                raise RuntimeError(
                    f"The expanded size of the tensor ({size}) must match the existing size ({shape[i - lead]}) at "
                    f"non-singleton dimension {i}.  Target sizes: {list(sizes)}.  Tensor sizes: {list(shape)}"
                )
            target.append(size)
        return S.Expand.apply(input, shape=tuple(target))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "expand", "input", input)


def expand_as(input, other):
    return expand(input, other.shape)


def broadcast_to(input, shape):
    try:
        return expand(input, tuple(shape))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "broadcast_to", "input", input)


def repeat(input, *sizes):
    try:
        sizes = _shape_arg(sizes)
        if len(sizes) < input._array.ndim:
            raise RuntimeError(
                "Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor"
            )
        return S.Repeat.apply(input, repeats=sizes)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "repeat", "input", input)


def _same_dtype(tensors):
    result = tensors[0]._array.dtype
    mixed = False
    for t_ in tensors[1:]:
        if t_._array.dtype is not result:
            result = _backend.result_numpy_dtype(result, False, t_._array.dtype, False)
            mixed = True
    if not mixed:
        return tensors
    return [_cast(t_, result) for t_ in tensors]


def cat(tensors, dim=0):
    """Join tensors along an existing dimension; dtypes promote as in PyTorch.

    >>> import dtorch
    >>> dtorch.cat([dtorch.zeros(1, 2), dtorch.ones(2, 2)]).shape
    dtorch.Size([3, 2])
    """
    try:
        plain = _plain_join(tensors)
        if plain is not None:
            arrays, recorded = plain
            if not recorded:
                try:  # NumPy checks dim and the shapes; what it rejects takes the reference path and its error
                    return _new(np.concatenate(arrays, axis=dim), None)
                except (TypeError, ValueError):
                    pass
            elif _cat_needs_no_skip(arrays) and type(dim) is int:
                try:  # the op's apply as the reference path below calls it: nothing to skip, one dtype
                    return S.Cat.apply(*tensors, axis=_wrap_dim(dim, arrays[0].ndim))
                except (ValueError, IndexError):  # shapes or dim that do not fit: the reference path's error
                    pass
        tensors = [t_ for t_ in tensors]
        if not tensors:
            raise ValueError("torch.cat(): expected a non-empty list of Tensors")
        # PyTorch skips 1-D empty tensors in cat (legacy behaviour scripts rely on)
        non_empty = [t_ for t_ in tensors if not (t_._array.ndim == 1 and t_._array.shape[0] == 0)]
        if not non_empty:
            return tensors[0].clone()
        tensors = _same_dtype(non_empty)
        if tensors[0]._array.ndim == 0:
            _check_cat(tensors, dim)  # raises
        axis = _wrap_dim(dim, tensors[0]._array.ndim)
        try:  # NumPy checks the shapes; PyTorch's message is built only when they do not fit
            return S.Cat.apply(*tensors, axis=axis)
        except ValueError:
            _check_cat(tensors, dim)
            raise
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "cat", "tensors", tensors)


def _plain_join(tensors):
    """``(arrays, recorded)`` for ``cat``'s and ``stack``'s shortcuts when ``tensors`` is a list or tuple of CPU
    Tensors of one dtype and no capture runs (``recorded``: some input requires grad and grad mode is on). None
    otherwise: the reference path promotes dtypes, checks devices, and records every op under a capture."""
    if not isinstance(tensors, (list, tuple)) or not tensors or _function.capture is not None:
        return None
    requires_grad = False
    dtype = None
    arrays = []
    for tensor in tensors:
        if not isinstance(tensor, Tensor):
            return None
        data = tensor._array
        if type(data) is not np.ndarray:
            return None
        if dtype is None:
            dtype = data.dtype
        elif data.dtype is not dtype:
            return None
        if tensor.requires_grad:
            requires_grad = True
        arrays.append(data)
    return arrays, requires_grad and _grad_state["enabled"]


def _cat_needs_no_skip(arrays):
    """True when ``cat``'s reference path would keep every input: no 1-D empty tensor among them (it skips those),
    and not 0-dim (an error)."""
    ndim = arrays[0].ndim
    if ndim == 1:
        for array in arrays:
            if not array.size:
                return False
    return ndim > 0


def _check_cat(tensors, dim):
    """Raise PyTorch's error for tensors that ``cat`` cannot join along ``dim``."""
    for index, t_ in enumerate(tensors):
        if t_._array.ndim == 0:
            raise RuntimeError(f"zero-dimensional tensor (at position {index}) cannot be concatenated")
    ndim = tensors[0]._array.ndim
    axis = _wrap_dim(dim, ndim)
    reference = tensors[0]._array.shape
    for index, t_ in enumerate(tensors[1:], start=1):
        shape = t_._array.shape
        if len(shape) != ndim:
            raise RuntimeError(
                f"Tensors must have same number of dimensions: got {ndim} and {len(shape)}"
            )
        for d in range(ndim):
            if d != axis and shape[d] != reference[d]:
                raise RuntimeError(
                    f"Sizes of tensors must match except in dimension {axis}. Expected size {reference[d]} but got "
                    f"size {shape[d]} for tensor number {index} in the list."
                )


concat = concatenate = cat


def stack(tensors, dim=0):
    """Join same-shaped tensors along a new dimension."""
    try:
        plain = _plain_join(tensors)
        if plain is not None:
            arrays, recorded = plain
            shape = arrays[0].shape
            if type(dim) is int and -len(shape) - 1 <= dim <= len(shape):
                for array in arrays:
                    if array.shape != shape:  # the reference path raises PyTorch's error
                        break
                else:
                    axis = dim % (len(shape) + 1)
                    if recorded:  # the op's apply as the reference path below calls it
                        return S.Stack.apply(*tensors, axis=axis)
                    return _new(S.stack_arrays(np, arrays, axis), None)
        tensors = list(tensors)
        if not tensors:
            raise RuntimeError("stack expects a non-empty TensorList")
        tensors = _same_dtype(tensors)
        reference = tensors[0]._array.shape
        for index, t_ in enumerate(tensors[1:], start=1):
            if t_._array.shape != reference:
                raise RuntimeError(
                    f"stack expects each tensor to be equal size, but got {list(reference)} at entry 0 and "
                    f"{list(t_._array.shape)} at entry {index}"
                )
        axis = _wrap_dim(dim, len(reference) + 1)
        return S.Stack.apply(*tensors, axis=axis)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "stack", "tensors", tensors)


def hstack(tensors):
    try:
        tensors = list(tensors)
        return cat(tensors, 0 if tensors[0]._array.ndim == 1 else 1)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "hstack", "tensors", tensors)


def vstack(tensors):
    try:
        return cat([t_ if t_._array.ndim > 1 else unsqueeze(t_, 0) for t_ in tensors], 0)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "vstack", "tensors", tensors)


def narrow(input, dim, start, length):
    try:
        axis = _wrap_dim(dim, input._array.ndim)
        size = input._array.shape[axis]
        start = int(start)
        if length < 0:
            raise RuntimeError("narrow(): length must be non-negative.")
        if start < 0:
            start += size
        if start < 0 or start + length > size:
            raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({size}).")
        spec = tuple(("slice", None, None, None) for _ in range(axis)) + (("slice", start, start + length, None),)
        return I.Index.apply(input, spec=spec)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "narrow", "input", input)


def select(input, dim, index):
    try:
        axis = _wrap_dim(dim, input._array.ndim)
        size = input._array.shape[axis]
        if index < -size or index >= size:
            raise IndexError(f"select(): index {index} out of range for tensor of size {list(input.shape)} at "
                             f"dimension {axis}")
        spec = tuple(("slice", None, None, None) for _ in range(axis)) + (("int", int(index)),)
        return I.Index.apply(input, spec=spec)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "select", "input dim index", input, dim, index)


def split(tensor, split_size_or_sections, dim=0):
    """Split into pieces of ``split_size`` (the last may be smaller) or of the given section sizes."""
    try:
        if not tensor._array.ndim:
            raise RuntimeError("split expects at least a 1-dimensional tensor")
        axis = _wrap_dim(dim, tensor._array.ndim)
        size = tensor._array.shape[axis]
        if isinstance(split_size_or_sections, int):
            step = split_size_or_sections
            if step <= 0:
                raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {size}")
            sections = [builtins.min(step, size - start) for start in range(0, size, step)] or [0]
        else:
            sections = list(split_size_or_sections)
            if builtins.sum(sections) != size:
                raise RuntimeError(
                    f"split_with_sizes expects split_sizes to sum exactly to {size} (input tensor's size at dimension "
                    f"{axis}), but got split_sizes={sections}"
                )
        # each piece is ``narrow(tensor, axis, start, length)``, built here directly: the sections are known to fit
        if _outside_graph(tensor):
            return _split_outside_graph(tensor, axis, sections)
        lead = (("slice", None, None, None),) * axis
        pieces = []
        start = 0
        for length in sections:
            pieces.append(I.Index.apply(tensor, spec=lead + (("slice", start, start + length, None),)))
            start += length
        return tuple(pieces)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "split", "tensor", tensor)


def _split_outside_graph(tensor, axis, sections):
    """``split``'s no-grad shortcut: the pieces sliced from the array directly, each a view of ``tensor``."""
    data = tensor._array
    lead = (slice(None),) * axis
    pieces = []
    start = 0
    for length in sections:
        piece = slice(start, start + length)
        pieces.append(_wrap_view(tensor, data[lead + (piece,) if axis else piece]))
        start += length
    return tuple(pieces)


def chunk(input, chunks, dim=0):
    try:
        if chunks <= 0:
            raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
        if not input._array.ndim:
            raise RuntimeError("chunk expects at least a 1-dimensional tensor")
        axis = _wrap_dim(dim, input._array.ndim)
        size = input._array.shape[axis]
        if not size:  # PyTorch gives ``chunks`` empty pieces
            return tuple(narrow(input, axis, 0, 0) for _ in range(chunks))
        step = -(-size // chunks)
        if _outside_graph(input):  # pieces of ``step``, the last one shorter (``split``'s own checks hold for it)
            sections = [step] * (size // step)
            if size % step:
                sections.append(size % step)
            return _split_outside_graph(input, axis, sections)
        return split(input, step, axis)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "chunk", "input", input)


def tensor_split(input, indices_or_sections, dim=0):
    try:
        axis = _wrap_dim(dim, input._array.ndim)
        size = input._array.shape[axis]
        if isinstance(indices_or_sections, int):
            n = indices_or_sections
            sections = [size // n + (1 if i < size % n else 0) for i in range(n)]
            return split(input, sections, axis)
        bounds = [0] + [int(i) for i in indices_or_sections] + [size]
        return tuple(narrow(input, axis, a, builtins.max(b - a, 0)) for a, b in zip(bounds, bounds[1:]))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "tensor_split", "input indices_or_sections", input, indices_or_sections)


def _split_along(name, input, indices_or_sections, axis, least_dims):
    """``hsplit``/``vsplit``/``dsplit``: ``tensor_split`` along ``axis``, where a number of sections must divide
    the dimension evenly (PyTorch's RuntimeErrors for too few dimensions and for an uneven split)."""
    ndim = input._array.ndim
    if ndim < least_dims:
        raise RuntimeError(f"torch.{name} requires a tensor with at least {least_dims} dimension, but got a tensor "
                           f"with {ndim} dimensions!")
    if isinstance(indices_or_sections, int):
        size = input._array.shape[axis]
        if indices_or_sections == 0 or size % indices_or_sections:
            raise RuntimeError(f"torch.{name} attempted to split along dimension {axis}, but the size of the "
                               f"dimension {size} is not divisible by the split_size {indices_or_sections}!")
    return tensor_split(input, indices_or_sections, axis)


def hsplit(input, indices_or_sections):
    """Split along dimension 1 (dimension 0 of a 1-D tensor), as ``numpy.hsplit``: a number of equal sections,
    or the indices to split at.

    >>> import dtorch
    >>> [t.tolist() for t in dtorch.hsplit(dtorch.arange(6).reshape(2, 3), [1])]
    [[[0], [3]], [[1, 2], [4, 5]]]
    """
    try:
        axis = 0 if input._array.ndim == 1 else 1
        return _split_along("hsplit", input, indices_or_sections, axis, 1)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "hsplit", "input indices_or_sections", input, indices_or_sections)


def vsplit(input, indices_or_sections):
    """Split along dimension 0 of a tensor with at least 2 dimensions, as ``numpy.vsplit``.

    >>> import dtorch
    >>> [t.shape for t in dtorch.vsplit(dtorch.zeros(4, 2), 2)]
    [dtorch.Size([2, 2]), dtorch.Size([2, 2])]
    """
    try:
        return _split_along("vsplit", input, indices_or_sections, 0, 2)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "vsplit", "input indices_or_sections", input, indices_or_sections)


def dsplit(input, indices_or_sections):
    """Split along dimension 2 of a tensor with at least 3 dimensions, as ``numpy.dsplit``.

    >>> import dtorch
    >>> [t.shape for t in dtorch.dsplit(dtorch.zeros(1, 2, 4), [3])]
    [dtorch.Size([1, 2, 3]), dtorch.Size([1, 2, 1])]
    """
    try:
        return _split_along("dsplit", input, indices_or_sections, 2, 3)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "dsplit", "input indices_or_sections", input, indices_or_sections)


def unbind(input, dim=0):
    try:
        if not input._array.ndim:
            raise IndexError(f"Dimension specified as {dim} but tensor has no dimensions")
        axis = _wrap_dim(dim, input._array.ndim)
        return tuple(select(input, axis, i) for i in range(input._array.shape[axis]))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "unbind", "input", input)


def flip(input, dims):
    try:
        dims = (dims,) if isinstance(dims, int) else tuple(dims)
        axes = tuple(_wrap_dim(d, input._array.ndim) for d in dims)
        if len(set(axes)) != len(axes):
            raise RuntimeError(f"dim {builtins.min(d for d in axes if axes.count(d) > 1)} appears "
                               "multiple times in the "
                               f"list of dims")
        return S.Flip.apply(input, dims=axes if input._array.ndim else ())
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "flip", "input", input)


def roll(input, shifts, dims=None):
    try:
        if dims is None:
            shift = shifts if isinstance(shifts, int) else int(shifts[0])
            return S.Roll.apply(input, shifts=shift, dims=None)
        shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
        dims = (dims,) if isinstance(dims, int) else tuple(dims)
        if len(shifts) != len(dims):
            raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}")
        return S.Roll.apply(input, shifts=shifts, dims=tuple(_wrap_dim(d, input._array.ndim) for d in dims))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "roll", "input", input)


def contiguous(input, memory_format=None):
    try:
        if input._array.flags.c_contiguous:
            return input
        return S.Contiguous.apply(input)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "contiguous", "input memory_format", input, memory_format)


# ======================================================================================================================
# indexing


def _index_spec(input, key):
    """Turn a user key into a recorded spec plus the index tensors it names."""
    if not isinstance(key, tuple):
        key = (key,)
    spec = []
    tensors = []
    for entry in key:
        if isinstance(entry, Tensor):
            if entry._array.ndim == 0 and entry._array.dtype.kind in "iu":
                spec.append(("int", int(entry.item())))
                continue
            if entry._array.dtype.kind not in "iub":
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
            spec.append(("tensor", len(tensors)))
            tensors.append(entry)
        elif isinstance(entry, slice):
            start, stop, step = (
                _slice_bound(entry.start),
                _slice_bound(entry.stop),
                _slice_bound(entry.step),
            )
            if step is not None and step <= 0:
                raise ValueError("step must be greater than zero")
            spec.append(("slice", start, stop, step))
        elif entry is None:
            spec.append(("none",))
        elif entry is Ellipsis:
            spec.append(("ellipsis",))
        elif isinstance(entry, (bool, np.bool_)):
            spec.append(("tensor", len(tensors)))
            tensors.append(_new(np.asarray(entry), None))
        elif isinstance(entry, (int, np.integer)):
            spec.append(("int", int(entry)))
        elif isinstance(entry, (list, range, np.ndarray)) or _backend.is_cupy_array(entry):
            array = np.asarray(entry, dtype=np.int64 if isinstance(entry, range) else None) \
                if isinstance(entry, (list, range)) else entry
            if array.dtype.kind == "f":
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
            spec.append(("tensor", len(tensors)))
            tensors.append(_constant(array, input))
        else:
            raise IndexError(
                f"only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are valid indices "
                f"(got {type(entry).__name__})"
            )
    return tuple(spec), tensors


def _slice_bound(value):
    if value is None:
        return None
    return int(value)


def _selects_first(input, spec, tensors):
    """Split a key that mixes ints with index tensors into (the ints, as a basic key) and (the rest).

    PyTorch applies integer entries first, as selects, and then the rest of the key; NumPy counts an integer among
    the advanced indices, which can move the advanced result dims elsewhere (``x[1, None, mask]``). Returns None
    when the key has no such mix.
    """
    kinds = [entry[0] for entry in spec]
    if "int" not in kinds or "tensor" not in kinds:
        return None
    consumed = {"int": 1, "slice": 1, "none": 0, "ellipsis": 0}
    widths = [consumed[kind] if kind != "tensor" else
              (tensors[entry[1]]._array.ndim if tensors[entry[1]]._array.dtype == np.bool_ else 1)
              for kind, entry in zip(kinds, spec)]
    selects = []
    for kind, entry, width in zip(kinds, spec, widths):
        if kind == "int" or kind == "ellipsis":
            selects.append(entry)
        else:
            selects.extend([("slice", None, None, None)] * width)
    rest = tuple(entry for kind, entry in zip(kinds, spec) if kind != "int")
    return tuple(selects), rest


def getitem(input, key):
    """``input[key]`` with ints, slices, None, ``...``, integer and boolean tensors (PyTorch's rules: NumPy's, but
    integers are applied before the index tensors)."""
    kind = type(key)
    if _outside_graph(input):
        shortcut = _getitem_outside_graph(input, key, kind)
        if shortcut is not None:
            return shortcut
    if kind is int or kind is slice and _plain_slice(key):  # x[i], x[a:b]: the spec directly
        spec = (("int", key),) if kind is int else (("slice", key.start, key.stop, key.step),)
        try:
            return I.Index.apply(input, spec=spec)
        except IndexError as error:
            raise IndexError(f"{error} (indexing a tensor of shape {list(input.shape)})") from None
    if kind is tuple:  # x[:, 1], x[i, j], x[a:b, ::2]: ints and plain slices only need no conversion either
        spec = _basic_spec(key)
        if spec is not None:
            try:
                return I.Index.apply(input, spec=spec)
            except IndexError as error:
                raise IndexError(f"{error} (indexing a tensor of shape {list(input.shape)})") from None
    spec, tensors = _index_spec(input, key)
    split = _selects_first(input, spec, tensors) if tensors else None
    if split is not None:
        input = getitem(input, _spec_key(split[0], ()))
        spec = split[1]
    try:
        return I.Index.apply(input, *tensors, spec=spec)
    except IndexError as error:
        raise IndexError(f"{error} (indexing a tensor of shape {list(input.shape)})") from None


def _getitem_outside_graph(input, key, kind):
    """``getitem``'s no-grad shortcut for the common keys (an int, a plain slice, a tuple of those, one integer or
    boolean index tensor): NumPy indexes the array as ``Index.forward`` would. None for other keys and for keys
    NumPy rejects, which take the reference path (and its error)."""
    data = input._array
    try:
        if kind is int or kind is slice and _plain_slice(key) or kind is tuple and _basic_spec(key) is not None:
            return _wrap_view(input, I.basic_index(data, key))
        if kind is Tensor:
            index = key._array
            # a 0-dim integer tensor is an int to PyTorch (a view), not an index array: the reference path
            if type(index) is type(data) and index.ndim and index.dtype.kind in "iub":
                return _new(data[index], None)  # a copy: no base, as Index.apply gives
    except IndexError:
        pass
    return None


def _basic_spec(key):
    """The spec of a tuple key made of Python ints and plain slices (what ``_index_spec`` would give), else None."""
    spec = []
    for entry in key:
        kind = type(entry)
        if kind is int:
            spec.append(("int", entry))
        elif kind is slice and _plain_slice(entry):
            spec.append(("slice", entry.start, entry.stop, entry.step))
        else:
            return None
    return tuple(spec)


def _plain_slice(key):
    """True for a slice of Python ints or None with a positive step: its spec needs no conversion or check."""
    start, stop, step = type(key.start), type(key.stop), key.step
    return ((start is int or key.start is None) and (stop is int or key.stop is None)
            and (step is None or type(step) is int and step > 0))


def _spec_key(spec, tensors):
    """A user key for a recorded spec (for re-indexing a part of a key)."""
    return tuple(I.build_key(spec, tensors))


def setitem(input, key, value):
    """``input[key] = value``: in place, recorded for autograd when gradients are involved."""
    spec, tensors = _index_spec(input, key)
    split = _selects_first(input, spec, tensors) if input._array.size else None  # (an empty tensor takes no write)
    if split is not None:  # write through the view the integer entries select (PyTorch's order, see getitem)
        return setitem(getitem(input, _spec_key(split[0], ())), _spec_key(split[1], tensors), value)
    value_is_tensor = isinstance(value, Tensor)
    if not value_is_tensor and input._array.dtype.kind in "biu" and isinstance(value, numbers.Number):
        value = checked_fill_value(value, input._array.dtype)
    if value_is_tensor and type(value._array) is not type(input._array):
        E_ = RuntimeError(
            f"Expected all tensors to be on the same device, but found at least two devices, {input.device} and "
            f"{value.device}!"
        )
        raise E_
    needs_graph = _grad_state["enabled"] and (input.requires_grad or (value_is_tensor and value.requires_grad))
    if not needs_graph:
        key_arrays = I.build_key(spec, [t_._array for t_ in tensors])
        try:
            input._array[key_arrays] = value._array if value_is_tensor else value
        except ValueError:
            raise _setitem_shape_error(input, key_arrays, value) from None
        input._bump_version()
        return
    if not value_is_tensor:
        value = _new(np.asarray(value, dtype=input._array.dtype), None)
        if _backend.is_cupy_array(input._array):
            value = _new(_backend.to_device(value._array, input.device), None)
    if value._array.dtype != input._array.dtype:
        value = _cast(value, input._array.dtype)
    try:
        result = I.IndexPut.apply(input, value, *tensors, spec=spec, accumulate=False)
    except ValueError:
        raise _setitem_shape_error(input, I.build_key(spec, [t_._array for t_ in tensors]), value) from None
    _inplace_from(input, result)


def _setitem_shape_error(input, key_arrays, value):
    target = list(input._array[key_arrays].shape)
    return RuntimeError(
        f"shape mismatch: value tensor of shape {list(getattr(value, 'shape', ()))} cannot be broadcast to indexing "
        f"result of shape {target}"
    )


def index_select(input, dim, index):
    try:
        if input._array.ndim == 0:  # PyTorch reads a 0-dim input as one element and keeps the result 0-dim
            if index._array.size != 1:
                raise RuntimeError("index_select(): Index to scalar can have only 1 value, got "
                                   f"{index._array.size} value(s)")
            _wrap_dim(dim, 0)
            return reshape(index_select(reshape(input, 1), 0, reshape(index, 1)), ())
        if index._array.dtype.kind not in "iu":
            raise RuntimeError("index_select(): Expected dtype int32 or int64 for index")
        if index._array.ndim > 1:
            raise IndexError("index_select(): Index is supposed to be a vector")
        if index._array.ndim == 0:  # PyTorch keeps the dimension: a 0-dim index selects a slice of extent 1
            index = reshape(index, 1)
        axis = _wrap_dim(dim, input._array.ndim)
        indices = index._array
        # NumPy's take wraps negative indices around; PyTorch rejects them. (Checked on the CPU only: on a GPU the
        # check would wait for the device, and CuPy's take wraps every index anyway.)
        if type(indices) is np.ndarray and indices.size and indices.min() < 0:
            raise _index_select_error(input, axis, int(indices.min()))
        try:
            return I.IndexSelect.apply(input, index, axis=axis)
        except IndexError:
            raise _index_select_error(input, axis, int(indices.max())) from None
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "index_select", "input dim index", input, dim, index)


def _index_select_error(input, axis, index):
    """PyTorch's error for an index out of range: an IndexError along dim 0, a RuntimeError along the others."""
    if axis == 0:
        return IndexError("index out of range in self")
    return RuntimeError(f"INDICES element is out of DATA bounds, id={index} axis_dim={input._array.shape[axis]}")


def _apply_indexing(op, *inputs, **attrs):
    """Apply an op that reads at given indices: one out of range is PyTorch's RuntimeError (NumPy's IndexError)."""
    try:
        return op.apply(*inputs, **attrs)
    except IndexError as error:
        raise RuntimeError(str(error).replace(" axis ", " dimension ")) from None


def _check_index_rank(input, index, what):
    """PyTorch's rank rule for gather/scatter, under which a 0-dim tensor counts as 1-dim."""
    if builtins.max(index._array.ndim, 1) != builtins.max(input._array.ndim, 1):
        raise RuntimeError(f"Index tensor must have the same number of dimensions as {what} tensor")


def _reject_negative_indices(input, index, axis):
    """NumPy's indexing wraps negative indices around; PyTorch's gather and scatter reject them. (Checked on the
    CPU only: on a GPU the check would wait for the device.)"""
    indices = index._array
    if type(indices) is np.ndarray and indices.size and indices.min() < 0:
        raise RuntimeError(f"index {int(indices.min())} is out of bounds for dimension {axis} with size "
                           f"{input._array.shape[axis]}")


def _at_least_1d(tensor):
    return reshape(tensor, 1) if isinstance(tensor, Tensor) and tensor._array.ndim == 0 else tensor


def gather(input, dim, index):
    """``out[i][j] = input[i][index[i][j]]`` along ``dim``."""
    try:
        _check_index_rank(input, index, "input")
        if input._array.ndim == 0 or index._array.ndim == 0:  # the output has the index's shape
            out = gather(_at_least_1d(input), _wrap_dim(dim, 1), _at_least_1d(index))
            return reshape(out, ()) if index._array.ndim == 0 else out
        axis = _wrap_dim(dim, input._array.ndim)
        _reject_negative_indices(input, index, axis)
        return _apply_indexing(I.Gather, input, index, axis=axis)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "gather", "input dim index", input, dim, index)


def scatter(input, dim, index, src=None, *, value=None, reduce=None):
    """Write ``src`` (a tensor) or ``value`` into a copy of ``input`` at ``index`` along ``dim``."""
    try:
        if isinstance(src, (int, float)):
            value, src = src, None
        _check_index_rank(input, index, "self")
        if input._array.ndim == 0 or index._array.ndim == 0:  # the output has the input's shape
            out = scatter(_at_least_1d(input), _wrap_dim(dim, 1), _at_least_1d(index), _at_least_1d(src), value=value,
                          reduce=reduce)
            return reshape(out, ()) if input._array.ndim == 0 else out
        axis = _wrap_dim(dim, input._array.ndim)
        _reject_negative_indices(input, index, axis)
        if reduce not in (None, "add"):
            raise NotImplementedError(f"scatter: reduce='{reduce}' is not supported by dtorch")
        if src is None:
            if input._array.dtype.kind in "biu":
                value = checked_fill_value(value, input._array.dtype)
            return _apply_indexing(I.Scatter, input, index, axis=axis, reduce=reduce, value=value)
        if src._array.dtype != input._array.dtype:
            raise RuntimeError("scatter(): Expected self.dtype to be equal to src.dtype")
        return _apply_indexing(I.Scatter, input, index, src, axis=axis, reduce=reduce, value=None)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "scatter", "input dim index src", input, dim, index, src)


def scatter_add(input, dim, index, src):
    try:
        return scatter(input, dim, index, src, reduce="add")
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "scatter_add", "input dim index src", input, dim, index, src)


def masked_fill(input, mask, value):
    try:
        if mask._array.dtype != np.bool_:
            raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype {mask.dtype}")
        if isinstance(value, Tensor):
            if value._array.ndim:
                raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                                   f"{value._array.ndim} dimension(s).")
            if value.requires_grad and _grad_state["enabled"]:  # the value gets the gradient of the filled places
                return where(mask, _cast(value, input._array.dtype), input)
            value = value.item()
        if input._array.dtype.kind in "biu":  # PyTorch keeps the input dtype: the value is converted (and checked)
            value = checked_fill_value(value, input._array.dtype)
        try:
            return I.MaskedFill.apply(input, mask, value=value)
        except ValueError as error:
            raise _broadcast_error(input, mask, error) from None
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "masked_fill", "input mask", input, mask)


def masked_select(input, mask):
    try:
        if mask._array.dtype != np.bool_:
            raise RuntimeError("masked_select: expected BoolTensor for mask")
        input_b, mask_b = input, mask
        if input._array.shape != mask._array.shape:
            shape = np.broadcast_shapes(input._array.shape, mask._array.shape)
            input_b, mask_b = expand(input, shape), expand(mask, shape)
        return getitem(input_b, mask_b)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "masked_select", "input mask", input, mask)


def nonzero(input, *, as_tuple=False):
    try:
        xp = _backend.xp_of(input._array)
        indices = xp.nonzero(input._array)
        if as_tuple:
            return tuple(_new(i.astype(np.int64), None) for i in indices)
        return _new(xp.stack(indices, axis=1).astype(np.int64) if indices else xp.zeros((0, 0), np.int64), None)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "nonzero", "input", input)


def take_along_dim(input, indices, dim):
    try:
        return gather(input, dim, indices)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "take_along_dim", "input indices", input, indices)


# ======================================================================================================================
# products and sorting


def matmul(input, other):
    """Matrix product with PyTorch's rules for every shape: 1-D operands, batched and broadcast operands.

    >>> import dtorch
    >>> (dtorch.ones(2, 3) @ dtorch.ones(3)).shape
    dtorch.Size([2])
    """
    try:
        if not isinstance(input, Tensor) or not isinstance(other, Tensor):  # NumPy arrays or nested lists
            input, other = _constant(input, other if isinstance(other, Tensor) else None), _constant(other, input)
        if input._array.ndim == 0 or other._array.ndim == 0:
            raise RuntimeError(
                f"both arguments to matmul need to be at least 1D, but they are {input._array.ndim}D and "
                f"{other._array.ndim}D"
            )
        return _product(input, other)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "matmul", "input other", input, other)


def _product(input, other):
    """The ``MatMul`` of two Tensors whose ranks the caller (``matmul``, ``mm``, ``bmm``, ``dot``) has checked:
    autocast and bfloat16 (``_lower_precision``), then PyTorch's errors for mixed dtypes and mismatched shapes."""
    if _AUTOCAST.active or input._array.dtype is _BFLOAT16 and not _AUTOCAST.inner:
        return _lower_precision(_product, (input, other))
    if input._array.dtype is not other._array.dtype:
        if input._array.dtype != other._array.dtype:
            raise RuntimeError(
                f"expected m1 and m2 to have the same dtype, but got: {input.dtype} != {other.dtype}"
            )
    try:
        a, b = input._array, other._array
        if type(a) is np.ndarray and type(b) is np.ndarray and _both_outside_graph(input, other):
            return _wrap_result(L.product(np, a, b))
        return L.MatMul.apply(input, other)
    except ValueError:
        a, b = input._array.shape, other._array.shape
        raise RuntimeError(
            f"mat1 and mat2 shapes cannot be multiplied ({'x'.join(map(str, a))} and {'x'.join(map(str, b))})"
        ) from None


def mm(input, mat2):
    try:
        if input._array.ndim != 2 or mat2._array.ndim != 2:
            raise RuntimeError(f"mm: expected 2-D tensors, got {input._array.ndim}-D and {mat2._array.ndim}-D")
        return _product(input, mat2)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "mm", "input mat2", input, mat2)


def bmm(input, mat2):
    try:
        if input._array.ndim != 3 or mat2._array.ndim != 3:
            raise RuntimeError(f"bmm: expected 3-D tensors, got {input._array.ndim}-D and {mat2._array.ndim}-D")
        if input._array.shape[0] != mat2._array.shape[0]:
            raise RuntimeError(
                f"Expected size for first two dimensions of batch2 tensor to be: [{input._array.shape[0]}, "
                f"{input._array.shape[2]}] but got: [{mat2._array.shape[0]}, {mat2._array.shape[1]}]."
            )
        return _product(input, mat2)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "bmm", "input mat2", input, mat2)


def dot(input, other):
    try:
        if input._array.ndim != 1 or other._array.ndim != 1:
            raise RuntimeError(f"1D tensors expected, but got {input._array.ndim}D and {other._array.ndim}D tensors")
        if input._array.shape != other._array.shape:
            raise RuntimeError(
                f"inconsistent tensor size, expected tensor [{input._array.shape[0]}] and src "
                f"[{other._array.shape[0]}] to have "
                "the same number of elements, but got different"
            )
        return _product(input, other)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "dot", "input other", input, other)


inner = dot


def outer(input, vec2):
    try:
        for name, vector in (("self", input), ("vec2", vec2)):
            if vector._array.ndim != 1:
                raise RuntimeError(f"outer: Expected 1-D argument {name}, but got {vector._array.ndim}-D")
        return mul(unsqueeze(input, 1), unsqueeze(vec2, 0))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "outer", "input vec2", input, vec2)


ger = outer


def einsum(equation, *operands):
    """Einstein summation, e.g. ``einsum('bij,bjk->bik', a, b)``; ``...`` is supported."""
    try:
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = tuple(operands[0])
        operands = _same_dtype(list(operands))
        if operands and operands[0]._array.dtype is _BFLOAT16:  # NumPy's einsum has no bfloat16: float32, rounded once
            return _tensors_in_float32(lambda *cast: einsum(equation, *cast), tuple(operands))
        try:
            return L.Einsum.apply(*operands, equation=equation)
        except ValueError as error:
            shapes = " ".join(str(list(o.shape)) for o in operands)
            raise RuntimeError(f"einsum(): operands do not match the equation '{equation}' (shapes {shapes}): "
                               f"{error}") \
                from None
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "einsum", "equation tensors", equation, operands)


def sort(input, dim=-1, descending=False, stable=False):
    """Sorted values and their indices along ``dim``."""
    try:
        axis = _wrap_dim(dim, input._array.ndim) if input._array.ndim else 0
        if input._array.ndim == 0:
            return _return_type("sort")(input.clone(), zeros_like_int(input))
        values, indices = L.Sort.apply(input, axis=axis, descending=descending, stable=stable)
        return _return_type("sort")(values, indices)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "sort", "input", input)


def zeros_like_int(input):
    xp = _backend.xp_of(input._array)
    return _new(xp.zeros(input._array.shape, dtype=np.int64), None)


def argsort(input, dim=-1, descending=False, stable=False):
    try:
        return sort(input, dim, descending, stable).indices
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "argsort", "input", input)


def topk(input, k, dim=-1, largest=True, sorted=True):
    """The ``k`` largest (or smallest) elements along ``dim`` and their indices."""
    try:
        axis = _wrap_dim(dim, input._array.ndim) if input._array.ndim else 0
        if input._array.ndim and (k < 0 or k > input._array.shape[axis]):
            raise RuntimeError("selected index k out of range")
        if input._array.ndim == 0:
            if k not in (0, 1):
                raise RuntimeError("selected index k out of range")
            return _return_type("topk")(input.clone(), zeros_like_int(input))
        values, indices = L.TopK.apply(input, k=int(k), axis=axis, largest=largest, sorted=sorted)
        return _return_type("topk")(values, indices)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "topk", "input", input)


# ======================================================================================================================
# in-place versions


def _inplace_from(target, result):
    """Write an out-of-place ``result`` into ``target``'s memory and make ``target`` the recorded output.

    Rules (PyTorch's): a leaf that requires grad may not be modified while grad is recorded; the result's dtype
    must be castable to the target's; the result may not broadcast the target to a larger shape. If the recording
    node saved ``target`` itself, it keeps a snapshot of the old value.
    """
    recording = result.grad_fn is not None
    if recording and target.grad_fn is None and target.requires_grad:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
    if result._array.shape != target._array.shape:
        raise RuntimeError(
            f"output with shape {list(target._array.shape)} doesn't match the broadcast shape "
            f"{list(result._array.shape)}"
        )
    if result._array.dtype != target._array.dtype:
        if not np.can_cast(result._array.dtype, target._array.dtype, casting="same_kind"):
            raise RuntimeError(
                f"result type {_backend.from_numpy_dtype(result._array.dtype)} can't be cast to the desired output "
                f"type {target.dtype}"
            )
    if recording:
        node = result.grad_fn
        saved = node._saved
        if saved is not None:
            for position, (owner, array, version) in enumerate(saved):
                if owner is target:
                    snapshot = _new(array.copy(), target.grad_fn)
                    snapshot.requires_grad = target.requires_grad
                    saved[position] = (snapshot, snapshot._array, 0)
        if target._base is not None:
            return _inplace_on_view(target, result)
        target._array[...] = result._array
        target.grad_fn = node
        target.requires_grad = True
    else:
        target._array[...] = result._array
    target._bump_version()
    return target


def _inplace_on_view(target, result):
    """Record an in-place change of a view (``y.view(-1).add_(1)``, ``y.t().mul_(2)``, ``y[1:] += 1``) on its base.

    As PyTorch's CopySlices: the base becomes ``ViewScatter(base, result)`` at the view's layout in the base's
    memory, and the view is re-derived from the new base (``ViewOf``), so gradients reach both the old base values
    and ``result`` (see ``dtorch.ops.views``). A base whose memory is not C-contiguous has no such layout; views
    made by indexing such a base directly go through ``IndexPut`` instead, and others raise.
    """
    base = target._base
    if base.grad_fn is None and base.requires_grad:
        raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place operation.")
    value = _cast(result, target._array.dtype)
    layout = V.view_layout(target._array, base._array)
    if layout is None:
        return _inplace_on_indexed_view(target, value)
    shape, strides, offset = layout
    updated = V.ViewScatter.apply(base, value, shape=shape, strides=strides, offset=offset)  # writes base's memory
    base.grad_fn = updated.grad_fn
    base.requires_grad = True
    target.grad_fn = V.ViewOf.apply(base, shape=shape, strides=strides, offset=offset).grad_fn
    target.requires_grad = True
    target._bump_version()
    return target


def _inplace_on_indexed_view(target, value):
    """The in-place change of a view made by basic indexing of a base without a strided layout: ``IndexPut``."""
    base = target._base
    view_node = target.grad_fn
    if not (isinstance(view_node, I.Index) and view_node.is_view and base.grad_fn is not None
            and view_node.edges[0] is base.grad_fn):
        raise RuntimeError(
            "dtorch cannot record this in-place operation on a view of a non-contiguous tensor; apply the "
            "operation out of place (x = x.op(...)) or make the base contiguous first"
        )
    updated = I.IndexPut.apply(base, value, spec=view_node.spec, accumulate=False)
    target._array[...] = value._array  # the view's memory is the base's
    base.grad_fn = updated.grad_fn
    base.requires_grad = True
    target.grad_fn = I.Index.apply(base, spec=view_node.spec).grad_fn
    target.requires_grad = True
    target._bump_version()
    return target


# In-place arithmetic that needs no graph runs as one NumPy ufunc writing into the tensor's memory (``fast``
# below); the reference path computes out of place and copies the result in (``_inplace_from``).
_INPLACE_UFUNCS = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide}


def _inplace(function):
    ufunc = _INPLACE_UFUNCS.get(function.__name__)

    def fast(self, other):
        """``ufunc(self, other, out=self)`` for a float NumPy tensor and a same-dtype tensor or a Python number;
        None when the case is not that one (the reference path then runs, and raises what PyTorch raises)."""
        array = self._array
        if type(array) is not np.ndarray or array.dtype.kind != "f":
            return None
        kind = type(other)
        if kind is Tensor:
            if other._array.dtype is not array.dtype or type(other._array) is not np.ndarray:
                return None
            if _grad_state["enabled"] and (self.requires_grad or other.requires_grad):
                return None
            operand = other._array
        elif kind is float or kind is int:
            if _grad_state["enabled"] and self.requires_grad:
                return None
            operand = other
        else:
            return None
        try:
            ufunc(array, operand, out=array)
        except ValueError:  # ``other`` does not broadcast to ``self``'s shape: nothing was written
            return None
        self._bump_version()
        return self

    def method(self, *args, **kwargs):
        if ufunc is not None and len(args) == 1 and not kwargs:
            result = fast(self, args[0])
            if result is not None:
                return result
        needs_graph = _grad_state["enabled"] and (
            self.requires_grad or builtins.any(isinstance(a, Tensor) and a.requires_grad for a in args)
        )
        if needs_graph:
            return _inplace_from(self, function(self, *args, **kwargs))
        with grad_mode.no_grad():
            result = function(self, *args, **kwargs)
        return _inplace_from(self, result)

    method.__name__ = function.__name__ + "_"
    method.__doc__ = f"In-place version of ``{function.__name__}``: writes into this tensor, returns it."
    return method


def zero_(input):
    """Fill with zeros in place (recorded like ``fill_``: the old values get a zero gradient)."""
    try:
        return fill_(input, 0)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "zero_", "input", input)


def fill_(input, value):
    if _grad_state["enabled"] and input.requires_grad and input.grad_fn is None:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
    if isinstance(value, Tensor):
        if value._array.ndim:
            raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with {value._array.ndim} "
                               f"dimensions.")
        if value.requires_grad and _grad_state["enabled"]:  # recorded as a copy of the value, which gets the gradient
            return copy_(input, value)
        value = value.item()
    if input._array.dtype.kind in "biu":
        value = checked_fill_value(value, input._array.dtype)
    if input.requires_grad and _grad_state["enabled"]:
        return _inplace_from(input, E.Fill.apply(input, value=value))
    input._array[...] = value
    input._bump_version()
    return input


def copy_(input, src, non_blocking=False):
    """Copy ``src`` (broadcast, cast, moved across devices) into this tensor."""
    if not isinstance(src, Tensor):
        src = _constant(src, input)
    if src._array.shape != input._array.shape:  # src broadcasts to this tensor's shape, never beyond it
        try:
            shape = np.broadcast_shapes(input._array.shape, src._array.shape)
        except ValueError as error:
            raise _broadcast_error(input, src, error) from None
        if shape != input._array.shape:
            raise RuntimeError(f"output with shape {list(input.shape)} doesn't match the broadcast shape {list(shape)}")
    needs_graph = _grad_state["enabled"] and (input.requires_grad or src.requires_grad)
    if needs_graph:
        moved = src.to(input.device) if src.device != input.device else src
        moved = _cast(moved, input._array.dtype)
        if moved._array.shape != input._array.shape:
            moved = expand(moved, input.shape)
        # the old contents of ``input`` get no gradient: the result depends on ``src`` alone
        return _inplace_from(input, E.Clone.apply(moved))
    data = src._array
    if _backend.device_of(data) != input.device:
        data = _backend.to_device(data, input.device)
    input._array[...] = data
    input._bump_version()
    return input


# ======================================================================================================================
# more elementwise math


expm1 = _unary(E.Expm1)
exp2 = _unary(E.Exp2)
sinh = _unary(E.Sinh)
cosh = _unary(E.Cosh)
asin = arcsin = _unary(E.Asin)
acos = arccos = _unary(E.Acos)
atan = arctan = _unary(E.Atan)
frac = _unary(E.Frac)


def atan2(input, other):
    """The angle of the point ``(other, input)`` in radians, elementwise with broadcasting.

    >>> import dtorch
    >>> dtorch.atan2(dtorch.tensor([1.0]), dtorch.tensor([1.0]))
    tensor([0.7854])
    """
    try:
        return _binary(E.Atan2, *_float_operands(input, other))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "atan2", "input other", input, other)


arctan2 = atan2


def hypot(input, other):
    """``sqrt(input² + other²)`` elementwise, without intermediate overflow."""
    try:
        return _binary(E.Hypot, *_float_operands(input, other))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "hypot", "input other", input, other)


def logaddexp(input, other):
    """``log(exp(input) + exp(other))`` elementwise, without overflow.

    >>> import dtorch
    >>> dtorch.logaddexp(dtorch.tensor([0.0]), dtorch.tensor([0.0]))
    tensor([0.6931])
    """
    return _binary(E.LogAddExp, *_float_operands(input, other))


def sgn(input):
    """``sign`` for real tensors (PyTorch's ``sgn`` differs only for complex ones, which dtorch has not)."""
    return sign(input)


def signbit(input):
    """True where the sign bit is set (negative numbers and ``-0.0``); never requires grad."""
    try:
        return _new(_backend.xp_of(input._array).signbit(input._array), None)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "signbit", "input", input)


def lerp(input, end, weight):
    """``input + weight * (end - input)``; ``weight`` a number or a tensor.

    >>> import dtorch
    >>> dtorch.lerp(dtorch.tensor([0.0, 10.0]), dtorch.tensor([10.0, 20.0]), 0.5)
    tensor([ 5., 15.])
    """
    try:
        return add(input, mul(weight, sub(end, input)))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "lerp", "input end weight", input, end, weight)


def addcmul(input, tensor1, tensor2, *, value=1):
    """``input + value * tensor1 * tensor2``."""
    try:
        return add(input, mul(mul(tensor1, tensor2), value))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "addcmul", "input tensor1 tensor2", input, tensor1, tensor2)


def addcdiv(input, tensor1, tensor2, *, value=1):
    """``input + value * tensor1 / tensor2``."""
    try:
        return add(input, mul(div(tensor1, tensor2), value))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "addcdiv", "input tensor1 tensor2", input, tensor1, tensor2)


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """``beta * input + alpha * (mat1 @ mat2)`` (``input`` broadcasts to the product's shape).

    >>> import dtorch
    >>> dtorch.addmm(dtorch.zeros(2, 2), dtorch.eye(2), dtorch.ones(2, 2), alpha=2)
    tensor([[2., 2.],
            [2., 2.]])
    """
    try:
        if mat1._array.ndim != 2 or mat2._array.ndim != 2:
            raise RuntimeError(f"addmm: expected 2-D matrices, got shapes {list(mat1.shape)} and {list(mat2.shape)}")
        if _AUTOCAST.active or mat1._array.dtype is _BFLOAT16 and not _AUTOCAST.inner:
            return _lower_precision(lambda i, a, b: addmm(i, a, b, beta=beta, alpha=alpha), (input, mat1, mat2))
        return _scaled_sum(input, mm(mat1, mat2), beta, alpha)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "addmm", "input mat1 mat2", input, mat1, mat2)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """``beta * input + alpha * (batch1 @ batch2)`` over batches of matrices."""
    try:
        if batch1._array.ndim != 3 or batch2._array.ndim != 3:
            raise RuntimeError(
                f"baddbmm: expected 3-D tensors, got shapes {list(batch1.shape)} and {list(batch2.shape)}"
            )
        if _AUTOCAST.active or batch1._array.dtype is _BFLOAT16 and not _AUTOCAST.inner:
            return _lower_precision(lambda i, a, b: baddbmm(i, a, b, beta=beta, alpha=alpha), (input, batch1, batch2))
        return _scaled_sum(input, bmm(batch1, batch2), beta, alpha)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "baddbmm", "input batch1 batch2", input, batch1, batch2)


def _scaled_sum(input, product, beta, alpha):
    if alpha != 1:
        product = mul(product, alpha)
    if beta == 0:  # PyTorch ignores input then, NaNs included
        return product
    return add(mul(input, beta) if beta != 1 else input, product)


# ======================================================================================================================
# triangles and diagonals


def triu(input, diagonal=0):
    """The upper triangle of the last two dims, on and above the ``diagonal``-th diagonal; zeros elsewhere.

    >>> import dtorch
    >>> dtorch.triu(dtorch.ones(2, 3), diagonal=1)
    tensor([[0., 1., 1.],
            [0., 0., 1.]])
    """
    try:
        _need_matrix(input, "triu")
        return MX.Triangle.apply(input, diagonal=int(diagonal), upper=True)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "triu", "input", input)


def tril(input, diagonal=0):
    """The lower triangle of the last two dims, on and below the ``diagonal``-th diagonal; zeros elsewhere."""
    try:
        _need_matrix(input, "tril")
        return MX.Triangle.apply(input, diagonal=int(diagonal), upper=False)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "tril", "input", input)


def _need_matrix(input, name):
    if input._array.ndim < 2:
        raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions, got shape {list(input.shape)}")


def diagonal(input, offset=0, dim1=0, dim2=1):
    """The ``offset``-th diagonal of the planes ``(dim1, dim2)``, as the last dimension (a read-only view).

    >>> import dtorch
    >>> dtorch.diagonal(dtorch.arange(9).reshape(3, 3), 1)
    tensor([1, 5])
    """
    try:
        ndim = input._array.ndim
        dim1, dim2 = _wrap_dim(dim1, ndim), _wrap_dim(dim2, ndim)
        if dim1 == dim2:
            raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
        return MX.Diagonal.apply(input, offset=int(offset), dim1=dim1, dim2=dim2)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "diagonal", "input", input)


def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    """Matrices (in dims ``dim1, dim2`` of the result) with the last dimension of ``input`` on a diagonal."""
    try:
        ndim = input._array.ndim + 1
        dim1, dim2 = _wrap_dim(dim1, ndim), _wrap_dim(dim2, ndim)
        if dim1 == dim2:
            raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
        return MX.DiagEmbed.apply(input, offset=int(offset), dim1=dim1, dim2=dim2)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "diag_embed", "input", input)


def diag(input, diagonal=0):
    """A 1-D tensor becomes a square matrix with it on the ``diagonal``-th diagonal; a matrix gives that diagonal.

    >>> import dtorch
    >>> dtorch.diag(dtorch.tensor([1, 2]))
    tensor([[1, 0],
            [0, 2]])
    """
    try:
        if input._array.ndim == 1:
            return diag_embed(input, diagonal, 0, 1)
        if input._array.ndim == 2:
            return globals()["diagonal"](input, diagonal, 0, 1)
        raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input._array.ndim}D")
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "diag", "input", input)


def trace(input):
    """The sum of the main diagonal of a matrix."""
    try:
        if input._array.ndim != 2:
            raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input._array.ndim}")
        return sum(diagonal(input))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "trace", "input", input)


def fill_diagonal_(input, fill_value, wrap=False):
    """Fill the main diagonal (all dims equal indices) in place; ``wrap`` continues below a tall matrix's square.

    >>> import dtorch
    >>> dtorch.zeros(2, 2).fill_diagonal_(5)
    tensor([[5., 0.],
            [0., 5.]])
    """
    shape = input._array.shape
    if input._array.ndim < 2:
        raise RuntimeError("dimensions must larger than 1")
    if input._array.ndim > 2 and len(set(shape)) != 1:
        raise RuntimeError("all dimensions of input must be of equal length")
    xp = _backend.xp_of(input._array)
    mask = xp.zeros(shape, dtype=bool)
    if input._array.ndim == 2:
        rows, cols = shape
        stop = rows if wrap else builtins.min(rows, cols)
        flat = mask.reshape(-1)
        flat[: stop * cols : cols + 1] = True
    else:
        index = xp.arange(shape[0])
        mask[(index,) * input._array.ndim] = True
    return input.masked_fill_(_new(mask, None), fill_value)


# ======================================================================================================================
# search, counting and sampling (integer results: never require grad)


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """The distinct values (sorted), optionally with each element's index into them and each value's count.

    >>> import dtorch
    >>> dtorch.unique(dtorch.tensor([3, 1, 3]), return_counts=True)
    (tensor([1, 3]), tensor([1, 2]))
    """
    try:
        xp = _backend.xp_of(input._array)
        values, inverse, counts = xp.unique(input._array, return_inverse=True, return_counts=True, axis=dim)
        result = [_new(values, None)]
        if return_inverse:
            shape = input._array.shape if dim is None else (input._array.shape[_wrap_dim(dim, input._array.ndim)],)
            result.append(_new(inverse.reshape(shape).astype(np.int64), None))
        if return_counts:
            result.append(_new(counts.astype(np.int64), None))
        return result[0] if len(result) == 1 else tuple(result)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "unique", "input", input)


def bincount(input, weights=None, minlength=0):
    """How often each non-negative integer occurs in a 1-D tensor (summing ``weights`` instead when given)."""
    try:
        if input._array.ndim != 1 or input._array.dtype.kind not in "iub":
            raise RuntimeError(f"bincount only supports 1-d non-negative integral inputs, got {input.dtype} with "
                               f"shape {list(input.shape)}")
        xp = _backend.xp_of(input._array)
        if input._array.size and int(input._array.min()) < 0:
            raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
        if weights is None:
            return _new(xp.bincount(input._array, minlength=minlength).astype(np.int64), None)
        counts = xp.bincount(input._array, weights=weights._array, minlength=minlength)
        dtype = weights._array.dtype if weights._array.dtype.kind == "f" else np.float64
        return _new(counts.astype(dtype), None)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "bincount", "input weights", input, weights)


def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None, sorter=None):
    """Where ``input``'s values would go in the innermost dimension of ``sorted_sequence`` to keep it sorted.

    >>> import dtorch
    >>> dtorch.searchsorted(dtorch.tensor([1, 3, 5]), dtorch.tensor([3, 6]))
    tensor([1, 3])
    """
    try:
        side = side or ("right" if right else "left")
        xp = _backend.xp_of(sorted_sequence._array)
        values = input._array if isinstance(input, Tensor) else xp.asarray(input)
        boundaries = sorted_sequence._array
        if sorter is not None:
            boundaries = xp.take_along_axis(boundaries, sorter._array, axis=-1)
        if boundaries.ndim == 1:
            found = xp.searchsorted(boundaries, values, side=side)
        else:
            if boundaries.shape[:-1] != values.shape[:-1]:
                raise RuntimeError(
                    f"torch.searchsorted(): boundaries tensor should be 1 dimension or the first N-1 dimensions of "
                    f"boundaries tensor and input value tensor must match, but we got boundaries tensor "
                    f"{list(boundaries.shape)} and input value tensor {list(values.shape)}"
                )
            rows_b = boundaries.reshape(-1, boundaries.shape[-1])
            rows_v = values.reshape(-1, values.shape[-1])
            found = xp.stack([xp.searchsorted(b, v, side=side) for b, v in zip(rows_b, rows_v)]).reshape(values.shape)
        return _new(found.astype(np.int32 if out_int32 else np.int64), None)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "searchsorted", "sorted_sequence input", sorted_sequence, input)


def bucketize(input, boundaries, *, out_int32=False, right=False):
    """The index of the bucket of ``boundaries`` (1-D, sorted) each value falls in (``right``: open on the left)."""
    try:
        return searchsorted(boundaries, input, out_int32=out_int32, side="left" if not right else "right")
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "bucketize", "input boundaries", input, boundaries)


def multinomial(input, num_samples, replacement=False, *, generator=None):
    """Draw category indices with probabilities proportional to the rows of ``input`` (1-D or 2-D).

    >>> import dtorch
    >>> dtorch.multinomial(dtorch.tensor([0.0, 1.0, 0.0]), 2, replacement=True)
    tensor([1, 1])
    """

    weights = _backend.to_device(input._array, "cpu").astype(np.float64)
    if weights.ndim not in (1, 2):
        raise RuntimeError(f"prob_dist must be 1 or 2 dim, got shape {list(input.shape)}")
    if (weights < 0).any() or not np.isfinite(weights).all():
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    rows = weights.reshape(-1, weights.shape[-1])
    if not replacement and num_samples > rows.shape[1]:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    rng = numpy_generator(generator)
    drawn = []
    for row in rows:
        total = row.sum()
        if total <= 0:
            raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
        if not replacement and np.count_nonzero(row) < num_samples:
            raise RuntimeError("invalid multinomial distribution (with replacement=False, not enough non-negative "
                               "category to sample)")
        drawn.append(rng.choice(row.size, size=num_samples, replace=replacement, p=row / total))
    samples = np.array(drawn, dtype=np.int64).reshape(weights.shape[:-1] + (num_samples,))
    return _new(_backend.to_device(samples, input.device), None)


def bernoulli(input, p=None, *, generator=None):
    """0/1 samples: 1 with probability ``input`` elementwise (or ``p`` for every element), in ``input``'s dtype."""

    try:
        probabilities = _backend.to_device(input._array, "cpu") if p is None else p
        draws = numpy_generator(generator).random(input._array.shape) < probabilities
        return _new(_backend.to_device(draws.astype(input._array.dtype), input.device), None)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "bernoulli", "input", input)


# ======================================================================================================================
# more shape helpers


def tile(input, dims):
    """Repeat the tensor ``dims[i]`` times along dimension ``i``; missing leading dims count as 1 (NumPy's tile).

    >>> import dtorch
    >>> dtorch.tile(dtorch.tensor([1, 2]), (2,))
    tensor([1, 2, 1, 2])
    """
    try:
        dims = tuple(dims)
        ndim = input._array.ndim
        if len(dims) < ndim:
            dims = (1,) * (ndim - len(dims)) + dims
        return repeat(input, *dims)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "tile", "input", input)


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """Repeat each element ``repeats`` times (a number, or one count per element along ``dim``).

    >>> import dtorch
    >>> dtorch.repeat_interleave(dtorch.tensor([1, 2]), 2)
    tensor([1, 1, 2, 2])
    """
    try:
        if repeats is None:  # repeat_interleave(counts): the indices 0..n-1, each repeated counts[i] times
            counts = input._array
            xp = _backend.xp_of(counts)
            return _new(xp.repeat(xp.arange(counts.shape[0]), counts), None)
        if dim is None:
            input = reshape(input, (-1,))
            dim = 0
        axis = _wrap_dim(dim, input._array.ndim)
        xp = _backend.xp_of(input._array)
        if isinstance(repeats, Tensor):
            counts = repeats._array if repeats._array.ndim else xp.full(input._array.shape[axis], int(repeats.item()))
        else:
            counts = xp.full(input._array.shape[axis], int(repeats))
        if counts.shape[0] != input._array.shape[axis]:
            raise RuntimeError(f"repeats must have the same size as input along dim, but got repeats.size(0) = "
                               f"{counts.shape[0]} and input.size({dim}) = {input._array.shape[axis]}")
        index = xp.repeat(xp.arange(input._array.shape[axis]), counts)
        return index_select(input, axis, _new(index, None))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "repeat_interleave", "input repeats", input, repeats)


def meshgrid(*tensors, indexing="ij"):
    """Coordinate grids from 1-D tensors; ``indexing='ij'`` (matrix, PyTorch's default) or ``'xy'`` (Cartesian)."""
    try:
        if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
            tensors = tuple(tensors[0])
        if indexing not in ("ij", "xy"):
            raise ValueError(f"torch.meshgrid: indexing must be one of 'xy' or 'ij', but received: {indexing}")
        sizes = [t._array.shape[0] if t._array.ndim else 1 for t in tensors]
        if indexing == "xy" and len(tensors) >= 2:
            sizes[0], sizes[1] = sizes[1], sizes[0]
        grids = []
        for position, t in enumerate(tensors):
            axis = position
            if indexing == "xy" and len(tensors) >= 2 and position < 2:
                axis = 1 - position
            shape = [1] * len(tensors)
            shape[axis] = -1
            grids.append(expand(reshape(t, tuple(shape)), tuple(sizes)))
        return tuple(grids)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "meshgrid", "tensors", tensors)


def broadcast_tensors(*tensors):
    """The tensors expanded to their common broadcast shape (views)."""
    try:
        xp = _backend.xp_of(tensors[0]._array)
        try:
            shape = xp.broadcast_shapes(*[t._array.shape for t in tensors])
        except ValueError:
            shapes = ", ".join(str(list(t.shape)) for t in tensors)
            raise RuntimeError(f"broadcast_tensors: shapes {shapes} cannot be broadcast together") from None
        return tuple(expand(t, shape) for t in tensors)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "broadcast_tensors", "tensors", tensors)


def ravel(input):
    """The elements as a 1-D tensor (a view when the layout allows)."""
    try:
        return reshape(input, (-1,))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "ravel", "input", input)


moveaxis = movedim


def tensordot(a, b, dims=2):
    """Sum of products over ``dims`` (a count of trailing/leading dims, or two lists of dims), as NumPy's.

    >>> import dtorch
    >>> dtorch.tensordot(dtorch.ones(2, 3), dtorch.ones(3, 4), dims=1).shape
    dtorch.Size([2, 4])
    """
    try:
        if isinstance(dims, int):
            dims_a = list(range(a._array.ndim - dims, a._array.ndim))
            dims_b = list(range(dims))
        else:
            dims_a, dims_b = ([d] if isinstance(d, int) else list(d) for d in dims)
        dims_a = [_wrap_dim(d, a._array.ndim) for d in dims_a]
        dims_b = [_wrap_dim(d, b._array.ndim) for d in dims_b]
        letters = iter("abcdefghijklmnopqrstuvwxyz")
        subscripts_a = [next(letters) for _ in range(a._array.ndim)]
        subscripts_b = [next(letters) for _ in range(b._array.ndim)]
        for da, db in zip(dims_a, dims_b):
            subscripts_b[db] = subscripts_a[da]
        kept = [s for d, s in enumerate(subscripts_a) if d not in dims_a]
        kept += [s for d, s in enumerate(subscripts_b) if d not in dims_b]
        return einsum(f"{''.join(subscripts_a)},{''.join(subscripts_b)}->{''.join(kept)}", a, b)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "tensordot", "a b", a, b)


def cdist(x1, x2, p=2.0):
    """Pairwise ``p``-norm distances between the rows of ``x1`` (..., P, M) and ``x2`` (..., R, M)."""
    difference = sub(unsqueeze(x1, -2), unsqueeze(x2, -3))
    return norm(difference, p, dim=-1)


def dist(input, other, p=2):
    """The ``p``-norm of ``input - other``."""
    if not isinstance(other, Tensor):  # (sub would take an array, as the operator does)
        _raise_not_a_tensor("dist", "other", 2, other)
    return norm(sub(input, other), p)


def index_add(input, dim, index, source, *, alpha=1):
    """``input`` with ``alpha * source`` slices added at positions ``index`` along ``dim`` (repeats accumulate)."""
    try:
        axis = _wrap_dim(dim, input._array.ndim)
        shape = [1] * source._array.ndim
        shape[axis] = -1
        expanded = expand(reshape(index, tuple(shape)), tuple(source.shape))
        return scatter_add(input, axis, expanded, mul(source, alpha) if alpha != 1 else source)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "index_add", "input dim index source", input, dim, index, source)


def index_fill(input, dim, index, value):
    """``input`` with the slices at ``index`` along ``dim`` set to ``value``."""
    try:
        axis = _wrap_dim(dim, input._array.ndim)
        xp = _backend.xp_of(input._array)
        selected = xp.zeros(input._array.shape[axis], dtype=bool)
        selected[index._array] = True
        shape = [1] * input._array.ndim
        shape[axis] = -1
        return masked_fill(input, _new(selected.reshape(shape), None), value)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "index_fill", "input dim index", input, dim, index)


def index_copy(input, dim, index, source):
    """``input`` with the slices at ``index`` along ``dim`` replaced by ``source``'s slices."""
    try:
        axis = _wrap_dim(dim, input._array.ndim)
        shape = [1] * source._array.ndim
        shape[axis] = -1
        expanded = expand(reshape(index, tuple(shape)), tuple(source.shape))
        return scatter(input, axis, expanded, source)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "index_copy", "input dim index source", input, dim, index, source)


# ======================================================================================================================
# More of PyTorch's tensor functions (issue 16): scatter_reduce, index_put, triangle indices, median, quantiles, isin,
# diff, kron, rot90, stacking helpers, histc, cross, cummax/cummin, nan_to_num. Composed from the differentiable ops
# above where that is how the gradient flows (median and quantile through sort and gather, cummax through gather).


def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    """Reduce ``src`` into a copy of ``input`` at ``index`` along ``dim`` with ``reduce`` ('sum', 'prod', 'mean',
    'amax', 'amin'); ``include_self=False`` leaves the input's values out of every position written to.

    >>> import dtorch
    >>> x = dtorch.tensor([1.0, 2.0, 3.0])
    >>> x.scatter_reduce(0, dtorch.tensor([0, 0, 2]), dtorch.tensor([5.0, 7.0, 1.0]), reduce="amax")
    tensor([7., 2., 3.])
    """
    if reduce not in ("sum", "prod", "mean", "amax", "amin"):
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
    _check_index_rank(input, index, "self")
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_reduce(): argument 'src' must be Tensor, not {type(src).__name__}")
    if src._array.dtype != input._array.dtype:
        raise RuntimeError("scatter_reduce(): Expected self.dtype to be equal to src.dtype")
    if input._array.ndim == 0 or index._array.ndim == 0:
        out = scatter_reduce(_at_least_1d(input), _wrap_dim(dim, 1), _at_least_1d(index), _at_least_1d(src),
                             reduce, include_self=include_self)
        return reshape(out, ()) if input._array.ndim == 0 else out
    axis = _wrap_dim(dim, input._array.ndim)
    _reject_negative_indices(input, index, axis)
    return _apply_indexing(I.ScatterReduce, input, index, src, axis=axis, reduce=reduce,
                           include_self=builtins.bool(include_self))


def index_put(input, indices, values, accumulate=False):
    """``input`` with ``values`` put at ``input[indices]`` (a tuple of index tensors); ``accumulate=True`` adds
    them instead, repeated indices adding up.

    >>> import dtorch
    >>> dtorch.zeros(3).index_put((dtorch.tensor([0, 0, 2]),), dtorch.tensor(1.0), accumulate=True)
    tensor([2., 0., 1.])
    """
    if not isinstance(indices, (tuple, list)):
        raise TypeError(f"index_put(): argument 'indices' must be tuple of Tensors, not {type(indices).__name__}")
    for entry in indices:
        if not isinstance(entry, Tensor):
            raise TypeError(f"index_put(): argument 'indices' must be tuple of Tensors, not {type(entry).__name__}")
    if len(indices) > input._array.ndim:
        raise IndexError(f"too many indices for tensor of dimension {input._array.ndim} (got {len(indices)})")
    if not isinstance(values, Tensor):
        values = _scalar_tensor(values, input, input)
    if values._array.dtype != input._array.dtype:
        raise RuntimeError(f"Index put requires the source and destination dtypes match, got {input.dtype} for "
                           f"the destination and {values.dtype} for the source.")
    spec = tuple(("tensor", k) for k in range(len(indices)))
    try:
        return I.IndexPut.apply(input, values, *indices, spec=spec, accumulate=builtins.bool(accumulate))
    except (ValueError, IndexError) as error:
        raise RuntimeError(f"index_put: {error}") from None


def index_put_(input, indices, values, accumulate=False):
    """In-place ``index_put``: writes into ``input`` and returns it."""
    return _inplace(index_put)(input, indices, values, accumulate)


def _triangle_indices(row, col, offset, dtype, device, lower):
    if row < 0 or col < 0:
        raise RuntimeError(f"row must be non-negative, got{row}" if row < 0 else f"col must be non-negative, got{col}")
    rows, cols = (np.tril_indices if lower else np.triu_indices)(row, offset, col)
    array = np.stack([rows, cols]).astype(_backend.to_numpy_dtype(dtype) if dtype is not None else np.int64)
    if array.dtype.kind not in "iu":
        raise RuntimeError(f"\"{'tril' if lower else 'triu'}_indices\" not implemented for '{dtype}'")
    result = _new(array, None)
    return result if device is None else result.to(device)


def tril_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    """The ``(2, N)`` coordinates of the lower triangle of a ``row x col`` matrix (diagonal ``offset``), row by row.

    >>> import dtorch
    >>> dtorch.tril_indices(2, 2)
    tensor([[0, 1, 1],
            [0, 0, 1]])
    """
    return _triangle_indices(row, col, offset, dtype, device, lower=True)


def triu_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    """The ``(2, N)`` coordinates of the upper triangle of a ``row x col`` matrix (diagonal ``offset``), row by row.

    >>> import dtorch
    >>> dtorch.triu_indices(2, 3, 1)
    tensor([[0, 0, 1],
            [1, 2, 2]])
    """
    return _triangle_indices(row, col, offset, dtype, device, lower=False)


def _pick_sorted(input, dim, keepdim, pick_position, name):
    """Sort along ``dim`` (NaN last), pick one position per row (``pick_position(valid_count, n)`` gives an int
    array), return the values (differentiable through sort and gather) and the input's indices."""
    axis = _wrap_dim(dim, input._array.ndim) if input._array.ndim else 0
    single = input._array.ndim == 0
    source = reshape(input, (1,)) if single else input
    n = source._array.shape[axis]
    if n == 0:
        raise IndexError(f"{name}(): Expected reduction dim {dim} to have non-zero size.")
    ordered = sort(source, axis)
    xp = _backend.xp_of(source._array)
    valid = (~xp.isnan(source._array)).sum(axis=axis, keepdims=True) if source._array.dtype.kind == "f" else \
        xp.full(tuple(1 if a == axis else s for a, s in enumerate(source._array.shape)), n)
    position = _new(xp.asarray(pick_position(xp, valid, n), dtype=np.int64), None)
    values = gather(ordered.values, axis, position)
    indices = gather(ordered.indices, axis, position)
    if single:
        return reshape(values, ()), reshape(indices, ())
    if not keepdim:
        values, indices = squeeze(values, axis), squeeze(indices, axis)
    return values, indices


def _median_position(skip_nan):
    def pick(xp, valid, n):
        if skip_nan:  # the lower median of the numbers; a row of only NaNs reads its middle one, as PyTorch
            return xp.where(valid == 0, (n - 1) // 2, (valid - 1) // 2)
        return xp.where(valid < n, valid, (n - 1) // 2)  # any NaN: the first NaN (sorted last), as PyTorch

    return pick


def median(input, dim=None, keepdim=False):
    """The lower median (no averaging of the two middle values), NaN when a NaN is present; with ``dim`` also
    the index of the median in ``input``, as a ``(values, indices)`` tuple.

    >>> import dtorch
    >>> dtorch.median(dtorch.tensor([3.0, 1.0, 4.0, 2.0]))
    tensor(2.)
    """
    try:
        return _median(input, dim, keepdim, "median", skip_nan=False)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "median", "input", input)


def nanmedian(input, dim=None, keepdim=False):
    """``median`` ignoring NaN values (NaN only where a row holds nothing else).

    >>> import dtorch
    >>> dtorch.nanmedian(dtorch.tensor([3.0, float('nan'), 1.0]))
    tensor(1.)
    """
    try:
        return _median(input, dim, keepdim, "nanmedian", skip_nan=True)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "nanmedian", "input", input)


def _median(input, dim, keepdim, name, skip_nan):
    if dim is None:
        if input._array.size == 0:
            return _new(np.asarray(np.nan, dtype=input._array.dtype), None)
        values, _ = _pick_sorted(reshape(input, (-1,)), 0, False, _median_position(skip_nan), name)
        return values
    values, indices = _pick_sorted(input, dim, keepdim, _median_position(skip_nan), name)
    return _return_type(name)(values, indices)


_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """The ``q``-th quantiles (``q`` a number or a 1-D tensor in ``[0, 1]``) along ``dim`` (of the flattened input
    when None), interpolated as ``interpolation`` says; NaN where a row holds a NaN. A 1-D ``q`` adds a leading
    dimension. Differentiable through sort.

    >>> import dtorch
    >>> dtorch.quantile(dtorch.tensor([0.0, 1.0, 2.0, 3.0]), 0.5)
    tensor(1.5000)
    """
    try:
        return _quantile(input, q, dim, keepdim, interpolation, "quantile", skip_nan=False)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "quantile", "input q", input, q)


def nanquantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """``quantile`` ignoring NaN values.

    >>> import dtorch
    >>> dtorch.nanquantile(dtorch.tensor([0.0, float('nan'), 2.0]), 0.5)
    tensor(1.)
    """
    try:
        return _quantile(input, q, dim, keepdim, interpolation, "nanquantile", skip_nan=True)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "nanquantile", "input q", input, q)


def _quantile(input, q, dim, keepdim, interpolation, name, skip_nan):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be Tensor, not {type(input).__name__}")
    if input._array.dtype.kind != "f":
        raise RuntimeError(f"{name}() input tensor must be either float or double dtype")
    if interpolation not in _INTERPOLATIONS:
        raise RuntimeError(f"{name}() interpolation must be one of linear, lower, higher, midpoint or nearest. "
                           f"Got {interpolation}")
    scalar_q = not isinstance(q, Tensor)
    q_values = np.atleast_1d(np.asarray(q._array if not scalar_q else q, dtype=np.float64))
    if not scalar_q and q._array.ndim > 1:
        raise RuntimeError(f"{name}() q must be a scalar or 1D tensor")
    if q_values.size and (q_values.min() < 0 or q_values.max() > 1):
        raise RuntimeError(f"{name}() q values must be in the range [0, 1]")
    if input._array.size == 0:
        raise RuntimeError(f"{name}() input tensor must be non-empty")
    flat = dim is None
    source = reshape(input, (-1,)) if flat else input
    axis = 0 if flat else _wrap_dim(dim, builtins.max(source._array.ndim, 1))
    if source._array.ndim == 0:
        source = reshape(source, (1,))
    xp = _backend.xp_of(source._array)
    ordered = sort(source, axis).values
    n = source._array.shape[axis]
    nan_rows = xp.isnan(source._array).any(axis=axis, keepdims=True)
    count = (n - xp.isnan(source._array).sum(axis=axis, keepdims=True)) if skip_nan else xp.full(nan_rows.shape, n)
    results = []
    for value in q_values:
        rank = value * xp.maximum(count - 1, 0)
        low, high = xp.floor(rank), xp.ceil(rank)
        if interpolation == "nearest":
            low = high = xp.round(rank)  # half to even, as PyTorch's round
        elif interpolation == "lower":
            high = low
        elif interpolation == "higher":
            low = high
        lower = gather(ordered, axis, _new(low.astype(np.int64), None))
        upper = gather(ordered, axis, _new(high.astype(np.int64), None))
        if interpolation == "linear":
            weight = _new((rank - low).astype(input._array.dtype), None)
            picked = add(lower, mul(sub(upper, lower), weight))
        elif interpolation == "midpoint":
            picked = mul(add(lower, upper), 0.5)
        else:
            picked = lower
        invalid = nan_rows if not skip_nan else (count == 0)
        picked = where(_new(invalid, None), float("nan"), picked)
        if keepdim:
            if flat:
                picked = reshape(picked, (1,) * input._array.ndim)
        else:
            picked = squeeze(picked, axis)
        results.append(picked)
    if scalar_q:
        return results[0]
    return stack(results, 0)


def isin(elements, test_elements, *, assume_unique=False, invert=False):
    """True where an element of ``elements`` occurs in ``test_elements`` (either may be a number).

    >>> import dtorch
    >>> dtorch.isin(dtorch.tensor([1, 2, 3]), dtorch.tensor([2, 5]))
    tensor([False,  True, False])
    """
    try:
        if not isinstance(elements, Tensor) and not isinstance(test_elements, Tensor):
            raise TypeError("isin() received an invalid combination of arguments: at least one of elements and "
                            "test_elements must be a Tensor")
        like = elements if isinstance(elements, Tensor) else test_elements
        values = elements._array if isinstance(elements, Tensor) else np.asarray(elements)
        tests = test_elements._array if isinstance(test_elements, Tensor) else np.asarray(test_elements)
        xp = _backend.xp_of(like._array)
        return _new(xp.isin(values, tests, assume_unique=assume_unique, invert=invert), None)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "isin", "elements test_elements", elements, test_elements)


def diff(input, n=1, dim=-1, prepend=None, append=None):
    """The ``n``-th forward difference along ``dim``, after ``prepend``/``append`` are concatenated.

    >>> import dtorch
    >>> dtorch.diff(dtorch.tensor([1, 4, 9, 16]))
    tensor([3, 5, 7])
    """
    try:
        if input._array.ndim == 0:
            raise RuntimeError("diff expects input to be at least one-dimensional")
        axis = _wrap_dim(dim, input._array.ndim)
        pieces = [t_ for t_ in (prepend, input, append) if t_ is not None]
        pieces = [t_ if isinstance(t_, Tensor) else _scalar_tensor(t_, input, input) for t_ in pieces]
        for index, piece in enumerate(pieces):
            if piece._array.ndim == 0:  # a number broadcasts to one slice along dim
                shape = list(input.shape)
                shape[axis] = 1
                pieces[index] = expand(reshape(piece, (1,) * input._array.ndim), tuple(shape))
        result = cat(pieces, axis) if len(pieces) > 1 else input
        for _ in range(n):
            length = result._array.shape[axis]
            if length == 0:
                break
            if result._array.dtype == np.bool_:
                result = ne(narrow(result, axis, 1, length - 1), narrow(result, axis, 0, length - 1))
            else:
                result = sub(narrow(result, axis, 1, length - 1), narrow(result, axis, 0, length - 1))
        return result
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "diff", "input n dim prepend append", input, n, dim, prepend, append)


def kron(input, other):
    """The Kronecker product: blocks ``input[i] * other`` laid out on ``input``'s grid.

    >>> import dtorch
    >>> dtorch.kron(dtorch.tensor([1, 2]), dtorch.tensor([1, 10]))
    tensor([ 1, 10,  2, 20])
    """
    try:
        ndim = builtins.max(input._array.ndim, other._array.ndim)
        a_shape = (1,) * (ndim - input._array.ndim) + tuple(input.shape)
        b_shape = (1,) * (ndim - other._array.ndim) + tuple(other.shape)
        a = reshape(input, tuple(x for extent in a_shape for x in (extent, 1)))
        b = reshape(other, tuple(x for extent in b_shape for x in (1, extent)))
        return reshape(mul(a, b), tuple(p * q for p, q in zip(a_shape, b_shape)))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "kron", "input other", input, other)


def rot90(input, k=1, dims=(0, 1)):
    """Rotate by 90 degrees ``k`` times in the plane ``dims``, from the first axis towards the second.

    >>> import dtorch
    >>> dtorch.rot90(dtorch.tensor([[1, 2], [3, 4]]))
    tensor([[2, 4],
            [1, 3]])
    """
    try:
        dims = list(dims)
        if len(dims) != 2:
            raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
        if input._array.ndim < 2:
            raise RuntimeError(f"expected total dims >= 2, but got total dims = {input._array.ndim}")
        first, second = (_wrap_dim(d, input._array.ndim) for d in dims)
        if first == second:
            raise RuntimeError(f"expected rotation dims to be different, but got dim0 = {dims[0]} and dim1 = {dims[1]}")
        k %= 4
        if k == 1:
            return transpose(flip(input, (second,)), first, second)
        if k == 2:
            return flip(input, (first, second))
        if k == 3:
            return transpose(flip(input, (first,)), first, second)
        return clone(input)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "rot90", "input", input)


def atleast_1d(*tensors):
    """Each tensor with at least one dimension (a 0-d one becomes shape ``(1,)``)."""
    try:
        return _atleast(tensors, lambda t_: reshape(t_, (1,)) if t_._array.ndim == 0 else t_)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "atleast_1d", "tensors", tensors)


def atleast_2d(*tensors):
    """Each tensor with at least two dimensions (``(N,)`` becomes ``(1, N)``)."""
    try:
        return _atleast(tensors, lambda t_: reshape(t_, (1,) * (2 - t_._array.ndim) + tuple(t_.shape))
                        if t_._array.ndim < 2 else t_)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "atleast_2d", "tensors", tensors)


def atleast_3d(*tensors):
    """Each tensor with at least three dimensions: ``()`` -> ``(1, 1, 1)``, ``(N,)`` -> ``(1, N, 1)``,
    ``(M, N)`` -> ``(M, N, 1)``."""
    try:
        def lift(t_):
            shape = tuple(t_.shape)
            if len(shape) == 0:
                return reshape(t_, (1, 1, 1))
            if len(shape) == 1:
                return reshape(t_, (1,) + shape + (1,))
            if len(shape) == 2:
                return reshape(t_, shape + (1,))
            return t_

        return _atleast(tensors, lift)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "atleast_3d", "tensors", tensors)


def _atleast(tensors, lift):
    if len(tensors) == 1 and isinstance(tensors[0], (tuple, list)):
        return tuple(lift(t_) for t_ in tensors[0])
    if len(tensors) == 1:
        return lift(tensors[0])
    return tuple(lift(t_) for t_ in tensors)


def dstack(tensors):
    """Concatenate along the third axis after ``atleast_3d``.

    >>> import dtorch
    >>> dtorch.dstack([dtorch.tensor([1, 2]), dtorch.tensor([3, 4])]).shape
    dtorch.Size([1, 2, 2])
    """
    try:
        return cat([atleast_3d(t_) for t_ in tensors], 2)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "dstack", "tensors", tensors)


def column_stack(tensors):
    """Stack as columns: 0-d and 1-d tensors become ``(N, 1)`` columns, then concatenate along axis 1.

    >>> import dtorch
    >>> dtorch.column_stack([dtorch.tensor([1, 2]), dtorch.tensor([3, 4])])
    tensor([[1, 3],
            [2, 4]])
    """
    try:
        columns = [reshape(t_, (-1, 1)) if t_._array.ndim <= 1 else t_ for t_ in tensors]
        return cat(columns, 1)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "column_stack", "tensors", tensors)


def histc(input, bins=100, min=0, max=0):
    """A histogram of ``bins`` equal bins over ``[min, max]`` (the data's own range when both are 0); values
    outside are left out. Not differentiable, as in PyTorch.

    >>> import dtorch
    >>> dtorch.histc(dtorch.tensor([1.0, 2.0, 1.0]), bins=4, min=0, max=3)
    tensor([0., 2., 1., 0.])
    """
    try:
        if input._array.dtype.kind != "f":
            names = {"int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}
            raise RuntimeError(f"\"histogram_cpu\" not implemented for '{names.get(input._array.dtype.name)}'")
        if bins <= 0:
            raise RuntimeError(f"torch.histc: bins must be > 0, but got {bins} for bins")
        low, high = builtins.float(min), builtins.float(max)
        values = _backend.to_device(input._array, "cpu") if _backend.is_cupy_array(input._array) else input._array
        if low == high and values.size:
            low, high = builtins.float(values.min()), builtins.float(values.max())
        if low == high:
            low, high = low - 1, high + 1
        if low > high:
            raise RuntimeError(f"torch.histc: max must be larger than min, but got min {min} max {max}")
        if not (math.isfinite(low) and math.isfinite(high)):
            raise RuntimeError(f"torch.histc: range of [{low}, {high}] is not finite")
        counts, _ = np.histogram(values[~np.isnan(values)], bins=bins, range=(low, high))
        result = _new(counts.astype(values.dtype), None)
        return result if not _backend.is_cupy_array(input._array) else result.to(input.device)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "histc", "input", input)


def cross(input, other, dim=None):
    """The cross product of 3-vectors along ``dim`` (without ``dim``: the first axis of extent 3, with PyTorch's
    deprecation warning), broadcasting the other axes.

    >>> import dtorch
    >>> dtorch.cross(dtorch.tensor([1.0, 0.0, 0.0]), dtorch.tensor([0.0, 1.0, 0.0]), dim=0)
    tensor([0., 0., 1.])
    """
    try:
        if dim is None:
            _warn("Using torch.cross without specifying the dim arg is deprecated.\nPlease either pass the dim "
                  "explicitly or simply use torch.linalg.cross.\nThe default value of dim will change to agree with "
                  "that of linalg.cross in a future release.", UserWarning)
            shape = np.broadcast_shapes(tuple(input.shape), tuple(other.shape))
            dim = next((axis for axis, extent in enumerate(shape) if extent == 3), None)
            if dim is None:
                raise RuntimeError("no dimension of size 3 in input")
        return _linalg_cross(input, other, dim=dim)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "cross", "input other", input, other)


def _linalg_cross(input, other, *, dim=-1):
    """``dtorch.linalg.cross``: the cross product along ``dim`` (extent 3 in both inputs), broadcasting."""
    if input._array.ndim != other._array.ndim:
        raise RuntimeError(f"linalg.cross: inputs must have the same number of dimensions. Got {input._array.ndim} "
                           f"and {other._array.ndim}")
    axis = _wrap_dim(dim, input._array.ndim)
    if input._array.shape[axis] != 3 or other._array.shape[axis] != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {dim} must have length 3. Got {input._array.shape[axis]} "
                           f"and {other._array.shape[axis]}")
    a = [select(input, axis, i) for i in range(3)]
    b = [select(other, axis, i) for i in range(3)]
    parts = [sub(mul(a[1], b[2]), mul(a[2], b[1])), sub(mul(a[2], b[0]), mul(a[0], b[2])),
             sub(mul(a[0], b[1]), mul(a[1], b[0]))]
    return stack(parts, axis)


def _cumulative_extreme(input, dim, name, better):
    axis = _wrap_dim(dim, input._array.ndim) if input._array.ndim else 0
    source = reshape(input, (1,)) if input._array.ndim == 0 else input
    array = source._array
    xp = _backend.xp_of(array)
    moved = xp.moveaxis(array, axis, 0)
    indices = xp.zeros(moved.shape, dtype=np.int64)
    if moved.shape[0]:
        best = moved[0].copy()
        best_index = xp.zeros(best.shape, dtype=np.int64)
        for position in range(1, moved.shape[0]):
            value = moved[position]
            # ties and NaNs move the index forward, as PyTorch's kernel does (a NaN then stays the extreme)
            take = better(value, best) | (value == best) | (value != value) if array.dtype.kind == "f" else \
                better(value, best) | (value == best)
            if array.dtype.kind == "f":
                take &= best == best
            best = xp.where(take, value, best)
            best_index = xp.where(take, position, best_index)
            indices[position] = best_index
    indices = _new(xp.ascontiguousarray(xp.moveaxis(indices, 0, axis)), None)
    values = gather(source, axis, indices)
    if input._array.ndim == 0:
        values, indices = reshape(values, ()), reshape(indices, ())
    return _return_type(name)(values, indices)


def cummax(input, dim):
    """Running maximum along ``dim`` and the index where each was reached (the latest on ties; NaN propagates).

    >>> import dtorch
    >>> dtorch.cummax(dtorch.tensor([1, 3, 2, 5]), 0).values
    tensor([1, 3, 3, 5])
    """
    try:
        return _cumulative_extreme(input, dim, "cummax", np.greater)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "cummax", "input", input)


def cummin(input, dim):
    """Running minimum along ``dim`` and the index where each was reached (the latest on ties; NaN propagates).

    >>> import dtorch
    >>> dtorch.cummin(dtorch.tensor([3, 1, 2, 0]), 0).values
    tensor([3, 1, 1, 0])
    """
    try:
        return _cumulative_extreme(input, dim, "cummin", np.less)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "cummin", "input", input)


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    """NaN, +inf and -inf replaced (by 0 and the dtype's largest and lowest finite values unless given); the
    gradient passes where the input is finite.

    >>> import dtorch
    >>> dtorch.nan_to_num(dtorch.tensor([float('nan'), 1.0]))
    tensor([0., 1.])
    """
    try:
        if input._array.dtype.kind != "f":
            return clone(input)
        info = np.finfo(input._array.dtype)
        result = where(isnan(input), builtins.float(nan), input)
        result = where(eq(input, math.inf), builtins.float(info.max if posinf is None else posinf), result)
        return where(eq(input, -math.inf), builtins.float(info.min if neginf is None else neginf), result)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "nan_to_num", "input nan posinf neginf", input, nan, posinf, neginf)


# ======================================================================================================================
# Complex numbers (issue 16, for dtorch.fft): parts, conjugate, argument, construction, real-pair views.


def is_complex(input):
    """True for complex64/complex128 tensors."""
    try:
        return input._array.dtype.kind == "c"
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "is_complex", "input", input)


def real(input):
    """The real part: a complex tensor's real values (a copy: PyTorch's is a view), a real tensor itself.

    >>> import dtorch
    >>> dtorch.real(dtorch.tensor([1 + 2j]))
    tensor([1.])
    """
    try:
        return SP.Real.apply(input) if input._array.dtype.kind == "c" else input
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "real", "input", input)


def imag(input):
    """The imaginary part of a complex tensor (a copy); PyTorch's RuntimeError for a real one.

    >>> import dtorch
    >>> dtorch.imag(dtorch.tensor([1 + 2j]))
    tensor([2.])
    """
    try:
        if input._array.dtype.kind != "c":
            raise RuntimeError("imag is not implemented for tensors with non-complex dtypes.")
        return SP.Imag.apply(input)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "imag", "input", input)


def conj(input):
    """The complex conjugate (a real tensor is returned as it is).

    >>> import dtorch
    >>> dtorch.conj(dtorch.tensor([1 + 2j]))
    tensor([1.-2.j])
    """
    try:
        return SP.Conj.apply(input) if input._array.dtype.kind == "c" else input
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "conj", "input", input)


def resolve_conj(input):
    """The tensor itself: dtorch's ``conj`` computes the conjugate at once (PyTorch's may set a lazy conjugate bit
    that this resolves), so there is nothing left to resolve.

    >>> import dtorch
    >>> x = dtorch.tensor([1 + 2j]).conj()
    >>> x.resolve_conj() is x, x.is_conj()
    (True, False)
    """
    return input


def resolve_neg(input):
    """The tensor itself: dtorch keeps no lazy negative bit (see ``resolve_conj``).

    >>> import dtorch
    >>> x = dtorch.tensor([1.0])
    >>> x.resolve_neg() is x, x.is_neg()
    (True, False)
    """
    return input


def is_conj(input):
    """False: no dtorch tensor carries PyTorch's lazy conjugate bit (``conj`` computes the values)."""
    return False


def is_neg(input):
    """False: no dtorch tensor carries PyTorch's lazy negative bit."""
    return False


def angle(input):
    """The argument of each element in radians (0 or pi for real numbers).

    >>> import dtorch
    >>> dtorch.angle(dtorch.tensor([1j]))
    tensor([1.5708])
    """
    try:
        if input._array.dtype.kind in "biu":
            input = _cast(input, _default_float_numpy())
        return SP.Angle.apply(input)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "angle", "input", input)


def complex(real, imag):
    """A complex tensor from real and imaginary parts of one floating dtype (float32 -> complex64).

    >>> import dtorch
    >>> dtorch.complex(dtorch.tensor([1.0]), dtorch.tensor([2.0]))
    tensor([1.+2.j])
    """
    if real._array.dtype != imag._array.dtype or real._array.dtype.kind != "f":
        raise RuntimeError(f"Expected both inputs to be Half, Float or Double tensors but got {real.dtype} and "
                           f"{imag.dtype}")
    return SP.Complex.apply(real, imag)


def polar(abs, angle):
    """``abs * (cos(angle) + i sin(angle))``."""
    return complex(mul(abs, E.Cos.apply(angle)), mul(abs, E.Sin.apply(angle)))


def view_as_real(input):
    """A complex tensor as real pairs ``(..., 2)`` (a copy here; a view in PyTorch).

    >>> import dtorch
    >>> dtorch.view_as_real(dtorch.tensor([1 + 2j]))
    tensor([[1., 2.]])
    """
    try:
        if input._array.dtype.kind != "c":
            raise RuntimeError("view_as_real is only supported for complex tensors")
        return SP.ViewAsReal.apply(input)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "view_as_real", "input", input)


def view_as_complex(input):
    """Real pairs ``(..., 2)`` as a complex tensor (a copy here; a view in PyTorch)."""
    try:
        if input._array.ndim == 0 or input._array.shape[-1] != 2:
            raise RuntimeError("Tensor must have a last dimension of size 2")
        if input._array.dtype.kind != "f":
            raise RuntimeError(f"view_as_complex is only supported for float and double tensors, but got a tensor of "
                               f"scalar type: {input.dtype}")
        return SP.ViewAsComplex.apply(input)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "view_as_complex", "input", input)


# ---- softmax and log_softmax ------------------------------------------------------------------------------------------
# dtorch.softmax, Tensor.softmax and nn.functional.softmax all run softmax() below (likewise log_softmax); the
# fused ops live in dtorch/ops/nn.py.

_SCALAR_TYPE_NAMES = {
    "int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "uint16": "UInt16",
    "uint32": "UInt32", "uint64": "UInt64", "float64": "Double", "float32": "Float", "float16": "Half",
    "bfloat16": "BFloat16", "bool": "Bool", "complex64": "ComplexFloat", "complex128": "ComplexDouble",
}


def _scalar_type_name(tensor):
    """PyTorch's name of a tensor's scalar type (``Long``, ``Float``, ...), as its error messages print it."""
    name = str(tensor._array.dtype)
    return _SCALAR_TYPE_NAMES.get(name, name)


def _check_float(input, name):
    # PyTorch raises NotImplementedError (a RuntimeError) naming its scalar type: "... not implemented for 'Long'"
    if input._array.dtype.kind != "f" and input._array.dtype not in _backend.FLOATING_NUMPY:  # bfloat16 is kind 'V'
        raise NotImplementedError(f"\"{name}\" not implemented for '{_scalar_type_name(input)}'")


def _softmax_like(op, name, input, dim, dtype):
    if dim is None:
        _warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X as an "
              "argument.")
        dim = 0 if input._array.ndim in (0, 1, 3) else 1
    if dtype is not None:
        input = _cast(input, _backend.to_numpy_dtype(dtype))
    if _AUTOCAST.active:  # PyTorch's CUDA autocast runs softmax and log_softmax in float32
        (input,) = _autocast_float32((input,), ("cuda",))
    if input._array.dtype.kind != "f":
        if input._array.dtype is _BFLOAT16:
            return _in_float32(lambda x: _softmax_like(op, name, x, dim, None), input)
        _check_float(input, name)
    ndim = input._array.ndim
    axis = _wrap_dim(dim, ndim)
    if ndim == 0:
        return reshape(op.apply(reshape(input, 1), axis=0), ())
    if type(input._array) is np.ndarray and _outside_graph(input):
        return _forward_only(op, input._array, axis=axis)
    return op.apply(input, axis=axis)


def softmax(input, dim=None, dtype=None):
    """``exp(x) / sum(exp(x))`` along ``dim``, computed after subtracting the maximum (no overflow); with ``dtype``
    the input is cast first. Without ``dim`` PyTorch's implicit choice applies (0 for 0-, 1- and 3-D input, else 1)
    with a warning. ``dtorch.softmax`` and ``Tensor.softmax`` are this function; ``nn.functional.softmax`` calls it.

    >>> import dtorch
    >>> dtorch.softmax(dtorch.tensor([[0., 0.]]), 1)
    tensor([[0.5000, 0.5000]])
    """
    try:
        return _softmax_like(NN.Softmax, "softmax", input, dim, dtype)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "softmax", "input", input)


def log_softmax(input, dim=None, dtype=None):
    """``x - logsumexp(x)`` along ``dim``, fused and numerically stable (``dtorch.log_softmax``,
    ``Tensor.log_softmax`` and ``nn.functional.log_softmax``).

    >>> import dtorch
    >>> dtorch.tensor([0., 0.]).log_softmax(0)
    tensor([-0.6931, -0.6931])
    """
    try:
        return _softmax_like(NN.LogSoftmax, "log_softmax", input, dim, dtype)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "log_softmax", "input", input)
