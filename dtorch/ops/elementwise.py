"""Elementwise ops: arithmetic with broadcasting, unary math, activations, comparisons and logic.

Each op's forward and backward stand together. Backward formulas use only ``xp`` functions, operators and
``sum_to``, and read their saved *inputs*, so the same formula builds a graph in a ``create_graph`` backward.
"""

import math

import numpy as np

from dtorch.autograd.function import Op, graph_mode
from dtorch.autograd.grad_mode import _state as _grad_state
from dtorch import _backend
from dtorch.ops._util import constant
from dtorch.ops._util import TWO_OVER_SQRT_PI, erf, sum_to


_np_maximum = np.maximum
_np_minimum = np.minimum
try:  # NumPy's clip ufunc; private, so Clamp keeps np.clip where a NumPy release moves it
    from numpy._core.umath import clip as _clip_ufunc
except ImportError:
    _clip_ufunc = None


def _shape(value):
    return getattr(value, "shape", ())


def _conj(value):
    """A complex operand enters a product's gradient conjugated (PyTorch's convention for complex numbers: the
    gradient is dL/dx + i dL/dy); real operands, the common case, pass as they are."""
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return value.conjugate() if type(value) is complex else value
    if isinstance(dtype, np.dtype):
        return value.conj() if dtype.kind == "c" else value
    return value.conj() if dtype.is_complex else value


def _erf(xp, x):
    if xp is graph_mode.namespace:
        return xp.erf(x)
    return erf(xp, x)


# ---- binary arithmetic -----------------------------------------------------------------------------------------


class Add(Op):
    needs_input_shapes = True

    def forward(self, a, b):
        return a + b

    def backward(self, grad):
        a_shape, b_shape = self.input_shapes
        a_edge, b_edge = self.edges
        return (
            sum_to(self.xp, grad, a_shape) if a_edge is not None else None,
            sum_to(self.xp, grad, b_shape) if b_edge is not None else None,
        )


class Sub(Op):
    needs_input_shapes = True

    def forward(self, a, b):
        return a - b

    def backward(self, grad):
        a_shape, b_shape = self.input_shapes
        a_edge, b_edge = self.edges
        return (
            sum_to(self.xp, grad, a_shape) if a_edge is not None else None,
            sum_to(self.xp, -grad, b_shape) if b_edge is not None else None,
        )


class Mul(Op):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a * b

    def backward(self, grad):
        a, b = self.saved_tensors
        a_edge, b_edge = self.edges
        return (
            sum_to(self.xp, grad * _conj(b), _shape(a)) if a_edge is not None else None,
            sum_to(self.xp, grad * _conj(a), _shape(b)) if b_edge is not None else None,
        )


class Div(Op):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a / b

    def backward(self, grad):
        a, b = self.saved_tensors
        a_edge, b_edge = self.edges
        b = _conj(b)
        grad_a = grad / b
        return (
            sum_to(self.xp, grad_a, _shape(a)) if a_edge is not None else None,
            sum_to(self.xp, -grad_a * _conj(a) / b, _shape(b)) if b_edge is not None else None,
        )


class Pow(Op):
    """``a ** b`` for tensors or a scalar on either side."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a ** b

    def backward(self, grad):
        a, b = self.saved_tensors
        a_edge, b_edge = self.edges
        xp = self.xp
        grad_a = grad_b = None
        if a_edge is not None:
            # b a^(b-1) is 0 * inf at a = 0, b = 0: PyTorch defines the gradient there as 0
            if isinstance(b, (int, float)):
                grad_a = grad * 0 if b == 0 else grad * b * a ** (b - 1)
            else:
                grad_a = xp.where(b == 0, grad * 0, grad * b * a ** (b - 1))
            grad_a = sum_to(xp, grad_a, _shape(a))
        if b_edge is not None:
            # d(a^b)/db = a^b log a, taken as 0 where a == 0 (PyTorch's convention)
            if isinstance(a, (int, float)):  # a Python base: math.log keeps the gradient in the exponent's dtype
                safe_log = math.log(a) if a > 0 else 0.0
            else:
                safe_log = xp.log(xp.where(a == 0, 1.0, a))
            grad_b = sum_to(xp, grad * a ** b * safe_log, _shape(b))
        return grad_a, grad_b


class Maximum(Op):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return self.xp.maximum(a, b)

    def backward(self, grad):
        a, b = self.saved_tensors
        xp = self.xp
        # ties share the gradient equally, as in PyTorch; selecting from ``grad`` keeps its dtype
        grad_a = xp.where(a > b, grad, xp.where(a == b, grad * 0.5, grad * 0))
        a_edge, b_edge = self.edges
        return (
            sum_to(xp, grad_a, _shape(a)) if a_edge is not None else None,
            sum_to(xp, grad - grad_a, _shape(b)) if b_edge is not None else None,
        )


class Minimum(Op):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return self.xp.minimum(a, b)

    def backward(self, grad):
        a, b = self.saved_tensors
        xp = self.xp
        grad_a = xp.where(a < b, grad, xp.where(a == b, grad * 0.5, grad * 0))
        a_edge, b_edge = self.edges
        return (
            sum_to(xp, grad_a, _shape(a)) if a_edge is not None else None,
            sum_to(xp, grad - grad_a, _shape(b)) if b_edge is not None else None,
        )


class Where(Op):
    """``where(condition, a, b)``; the condition gets no gradient."""

    def forward(self, condition, a, b):
        self.save_for_backward(condition)
        self.shapes = (_shape(a), _shape(b))
        return self.xp.where(condition, a, b)

    def backward(self, grad):
        (condition,) = self.saved_tensors
        xp = self.xp
        a_shape, b_shape = self.shapes
        _, a_edge, b_edge = self.edges
        zero = grad * 0
        return (
            None,
            sum_to(xp, xp.where(condition, grad, zero), a_shape) if a_edge is not None else None,
            sum_to(xp, xp.where(condition, zero, grad), b_shape) if b_edge is not None else None,
        )


# ---- unary math ----------------------------------------------------------------------------------------------------


class Neg(Op):
    def forward(self, x):
        return -x

    def backward(self, grad):
        return (-grad,)


class Exp(Op):
    """Backward reads the output (``d exp(x) = exp(x)``), as PyTorch's does: changing the input in place later is
    fine, changing the output raises. A create_graph backward recomputes the output from the input instead, since
    the saved output array is a constant to autograd."""

    saves_output = True
    inputs_saved_for_graph_only = True

    def forward(self, x):
        self.save_for_backward(x)
        self.output = self.xp.exp(x)
        return self.output

    def backward(self, grad):
        (x,) = self.saved_tensors
        y = self.xp.exp(x) if graph_mode.active else self.output
        return (grad * y,)


class Log(Op):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.log(x)

    def backward(self, grad):
        (x,) = self.saved_tensors
        return (grad / x,)


class Log1p(Op):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.log1p(x)

    def backward(self, grad):
        (x,) = self.saved_tensors
        return (grad / (x + 1),)


class Logit(Op):
    """``log(z / (1 - z))`` with ``z`` clamped to ``[eps, 1 - eps]`` (``eps`` None: no clamp). Backward as
    PyTorch's: ``grad / (z (1 - z))``, 0 where the clamp applied, and NaN outside ``[0, 1]`` without ``eps``."""

    attr_names = ("eps",)

    def forward(self, x):
        self.save_for_backward(x)
        xp = self.xp
        z = x if self.eps is None else xp.clip(x, self.eps, 1 - self.eps)
        with np.errstate(divide="ignore", invalid="ignore"):  # (0 and 1 give -inf and inf, outside [0, 1] NaN)
            return (xp.log(z) - xp.log1p(-z)).astype(x.dtype, copy=False)

    def backward(self, grad):
        (x,) = self.saved_tensors
        xp = self.xp
        with np.errstate(divide="ignore", invalid="ignore"):  # (at 0 and 1, as PyTorch: inf or NaN, no warning)
            slope = grad / (x * (1 - x))
        if self.eps is None:
            return (xp.where((x < 0) | (x > 1), math.nan, slope),)
        return (xp.where((x >= self.eps) & (x <= 1 - self.eps), slope, 0),)


class Sqrt(Op):
    """Backward from the output, ``grad / (2 sqrt(x))``, as PyTorch's (see ``Exp``)."""

    saves_output = True
    inputs_saved_for_graph_only = True

    def forward(self, x):
        self.save_for_backward(x)
        self.output = self.xp.sqrt(x)
        return self.output

    def backward(self, grad):
        (x,) = self.saved_tensors
        y = self.xp.sqrt(x) if graph_mode.active else self.output
        return (grad / (2 * y),)


class Rsqrt(Op):
    """Backward from the output: ``d x^(-1/2) = -1/2 x^(-3/2) = -1/2 y^3`` (see ``Exp``)."""

    saves_output = True
    inputs_saved_for_graph_only = True

    def forward(self, x):
        self.save_for_backward(x)
        self.output = 1 / self.xp.sqrt(x)
        return self.output

    def backward(self, grad):
        (x,) = self.saved_tensors
        y = 1 / self.xp.sqrt(x) if graph_mode.active else self.output
        return (grad * (-0.5) * (y * y * y),)


class Abs(Op):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.abs(x)

    def backward(self, grad):
        (x,) = self.saved_tensors
        if self.xp is graph_mode.namespace and x.dtype.is_complex:
            # sgn(z) = z / |z| is not piecewise constant for complex z: differentiate through it
            size = Abs.apply(x)
            return (grad * self.xp.where(size == 0, 0.0, x / self.xp.where(size == 0, 1.0, size)),)
        return (grad * self.xp.sign(x),)


class Sin(Op):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.sin(x)

    def backward(self, grad):
        (x,) = self.saved_tensors
        return (grad * self.xp.cos(x),)


class Cos(Op):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.cos(x)

    def backward(self, grad):
        (x,) = self.saved_tensors
        return (-grad * self.xp.sin(x),)


class Tanh(Op):
    """Backward from the output, ``1 - tanh(x)^2`` (see ``Exp``)."""

    saves_output = True
    inputs_saved_for_graph_only = True

    def forward(self, x):
        self.save_for_backward(x)
        self.output = self.xp.tanh(x)
        return self.output

    def backward(self, grad):
        (x,) = self.saved_tensors
        y = self.xp.tanh(x) if graph_mode.active else self.output
        return (grad * (1 - y * y),)


def _sigmoid(xp, x):
    # exp(-softplus(-x)): no overflow for large |x| and full relative precision in the tails
    if x.dtype is _backend.BFLOAT16_NUMPY:  # three roundings in bfloat16 would drift 2-3 units: float32, rounded once
        return xp.exp(-xp.logaddexp(0, -x.astype(np.float32))).astype(x.dtype)
    return xp.exp(-xp.logaddexp(0, -x))


class Sigmoid(Op):
    """Backward from the output, ``s (1 - s)`` (see ``Exp``)."""

    saves_output = True
    inputs_saved_for_graph_only = True

    def forward(self, x):
        self.save_for_backward(x)
        # (a 0-d array: NumPy's ufuncs return scalars, which take no out=; the reference path)
        constants = _SIGMOID_CONSTANTS.get(x.dtype.char) if type(x) is np.ndarray and x.ndim else None
        if constants is None:
            self.output = _sigmoid(self.xp, x)
            return self.output
        # float32/float64 on NumPy: e / (1 + e) with e = exp(x), four cheap calls instead of logaddexp's many;
        # x is capped below exp's overflow (so no warning, and 1 for every large x), and full relative precision
        # remains in the negative tail (exp is exact there, down to the dtype's denormals)
        exp_limit, one = constants
        out = np.minimum(x, exp_limit)
        np.exp(out, out=out)
        np.divide(out, np.add(out, one), out=out)
        self.output = out
        return out

    def backward(self, grad):
        (x,) = self.saved_tensors
        if graph_mode.active:
            s = _sigmoid(self.xp, x)
            return (grad * s * (1 - s),)
        s = self.output
        slope = 1 - s  # (a new array: grad and s are not ours to change)
        slope *= s
        slope *= grad
        return (slope,)


# per dtype: the largest exp argument taken without overflow (float32 overflows past 88.72, float64 past 709.78)
# and 1, as 0-d arrays of the dtype: NumPy takes a 0-d array operand ~0.4 us faster than a Python float
_SIGMOID_CONSTANTS = {
    "f": (np.array(88.0, np.float32), np.array(1.0, np.float32)),
    "d": (np.array(709.0, np.float64), np.array(1.0, np.float64)),
}


class Relu(Op):
    """The gradient passes where the output is positive (the same places as the input; NaN passes nowhere).
    The mask is read from the output, as PyTorch's is, and is a constant even in a create_graph backward."""

    saves_output = True

    def forward(self, x):
        self.output = self.xp.maximum(x, 0)
        self.save_for_backward()  # nothing: only so a second backward without retain_graph raises
        return self.output

    def backward(self, grad):
        self.saved_tensors  # raises when the graph was freed by an earlier backward
        return (grad * (self.output > 0),)


class Silu(Op):
    def forward(self, x):
        self.save_for_backward(x)
        return x * _sigmoid(self.xp, x)

    def backward(self, grad):
        (x,) = self.saved_tensors
        s = _sigmoid(self.xp, x)
        return (grad * s * (1 + x * (1 - s)),)


class Softplus(Op):
    """``log(1 + exp(beta x)) / beta``, linear where ``beta x > threshold`` (PyTorch's definition)."""

    attr_names = ("beta", "threshold")

    def forward(self, x):
        self.save_for_backward(x)
        xp = self.xp
        scaled = x * self.beta
        return xp.where(scaled > self.threshold, x, xp.logaddexp(0, scaled) / self.beta).astype(x.dtype, copy=False)

    def backward(self, grad):
        (x,) = self.saved_tensors
        xp = self.xp
        scaled = x * self.beta
        s = xp.exp(-xp.logaddexp(0, -scaled))
        return (grad * xp.where(scaled > self.threshold, 1.0, s),)


class Gelu(Op):
    """``x Φ(x)``; ``approximate='tanh'`` uses PyTorch's tanh form."""

    attr_names = ("approximate",)
    derivative = None  # d out / d x, kept by the float32 NumPy fast path (``_gelu_pieces``) for backward
    keeps_derivative = True  # False from a front end that records nothing (its no-grad shortcut)

    def forward(self, x):
        self.save_for_backward(x)
        xp = self.xp
        if self.approximate == "none" and type(x) is np.ndarray and x.dtype == np.float32:
            out, self.derivative = _gelu_pieces(x, with_derivative=self.keeps_derivative and _grad_state["enabled"])
            return out
        if self.approximate == "tanh":
            inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)
            return 0.5 * x * (1 + xp.tanh(inner))
        return 0.5 * x * (1 + _erf(xp, x * (1 / math.sqrt(2))))

    def backward(self, grad):
        (x,) = self.saved_tensors
        xp = self.xp
        derivative = self.derivative
        if derivative is not None and xp is not graph_mode.namespace:
            self.derivative = None  # used once: a retained graph's second backward takes the formula below
            derivative *= grad  # (ours: no one else holds it)
            return (derivative,)
        if self.approximate == "tanh":
            k = math.sqrt(2 / math.pi)
            t = xp.tanh(k * (x + 0.044715 * x * x * x))
            derivative = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x)
        else:
            cdf = 0.5 * (1 + _erf(xp, x * (1 / math.sqrt(2))))
            pdf = xp.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))
            derivative = cdf + x * pdf
        return (grad * derivative,)


# PyTorch's own float32 erf on the CPU (ATen's vectorised ``erf``): Abramowitz and Stegun 7.1.26,
# ``erf(u) = 1 - t (p1 + p2 t + ... + p5 t^4) exp(-u^2)`` with ``t = 1 / (1 + p |u|)``, absolute error under 1.5e-7.
# Five coefficients instead of the ten of ``_util``'s erfc fit: ~20 passes per piece instead of ~37.
_AS_P = 0.3275911
_AS_COEFFICIENTS = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _gelu_tail_constants():
    """The A&S fit rewritten for ``_gelu_pieces``: in terms of ``x`` (``u = x / sqrt(2)``) and halved, so that it gives
    ``Φ(-|x|) = erfc(|u|) / 2`` directly, and in the scaled variable ``τ = λ t`` with ``λ = c5^(1/5)``, whose
    highest coefficient is 1: Horner then starts with an add instead of a multiply, and ``τ = λ / (1 + p' |x|)
    = (λ / p') / (|x| + 1 / p')`` costs one add and one division. Returns ``(1 / p', λ / p', (k1, k2, k3, k4))``,
    ``Φ(-|x|) = exp(-x^2 / 2) τ (k1 + τ (k2 + τ (k3 + τ (k4 + τ))))``."""
    halved = [0.5 * c for c in _AS_COEFFICIENTS]
    scale = halved[-1] ** (1 / len(halved))
    in_tau = [c / scale ** power for power, c in enumerate(halved, start=1)]  # the last one is 1
    offset = math.sqrt(2) / _AS_P
    return offset, scale * offset, in_tau[:-1]


# (constants as 0-d float32 arrays: NumPy takes those ~0.4 us per call faster than Python floats)
_offset, _numerator, _k = _gelu_tail_constants()
_GELU_T_OFFSET, _GELU_T_NUMERATOR = np.array(_offset, np.float32), np.array(_numerator, np.float32)
_GELU_TAU_COEFFICIENTS = tuple(np.array(k, np.float32) for k in _k)
del _offset, _numerator, _k
_HALF, _MINUS_HALF = np.array(0.5, np.float32), np.array(-0.5, np.float32)
_INV_SQRT_2PI = np.array(1 / math.sqrt(2 * math.pi), np.float32)
_SIGN_BIT = np.array(-0x80000000, np.int32)  # float32's sign bit, for the int32 view
# Pieces of 64K elements: the three float32 scratch pieces (768 KiB) outgrow the 512 KiB L2 cache, but measured on
# the layer bench (2M elements, 22 NumPy calls per piece) the fewer calls pay more than the cache misses cost: 16K
# pieces were ~10% slower, 32K about the same, whole arrays 2x slower.
_GELU_CHUNK = 65536


def _gelu_pieces(x, with_derivative):
    """``x Φ(x)`` and (when asked) its derivative ``Φ(x) + x φ(x)`` for a float32 NumPy array, computed piece by
    piece in place with PyTorch's float32 erf (above): 19 in-cache passes and one exp per piece (22 with the
    derivative) instead of ~40 whole-array passes that each allocate.

    ``Φ(x)`` is ``0.5 + copysign(0.5 - Φ(-|x|), x)``, so one tail value serves both signs (and ``x = -0.0``); the
    sign is or-ed into the int32 view of ``0.5 - Φ(-|x|) >= 0`` (``np.copysign`` costs as much as seven such
    passes). The output is ``x Φ(x)`` as PyTorch's (``inf`` at ``inf``, NaN at ``-inf`` and NaN).
    """
    x = x if x.flags.c_contiguous else x.copy()  # (ascontiguousarray would make a 0-d array 1-d)
    out = np.empty_like(x)
    derivative = np.empty_like(x) if with_derivative else None
    flat_x, flat_out = x.reshape(-1), out.reshape(-1)
    flat_derivative = derivative.reshape(-1) if with_derivative else None
    size = min(_GELU_CHUNK, flat_x.size)
    magnitude, tau, tail = (np.empty(size, x.dtype) for _ in range(3))
    sign_bits, tail_bits = tau.view(np.int32), tail.view(np.int32)  # (the sign takes τ's place once τ is spent)
    k1, k2, k3, k4 = _GELU_TAU_COEFFICIENTS
    absolute, bitwise_and, bitwise_or, add, subtract, multiply, divide, square, exp = (
        np.absolute, np.bitwise_and, np.bitwise_or, np.add, np.subtract, np.multiply, np.divide, np.square, np.exp)
    for start in range(0, flat_x.size, _GELU_CHUNK):
        stop = start + _GELU_CHUNK
        piece = flat_x[start:stop]
        n = piece.size
        if n < size:  # the last, shorter piece
            magnitude, tau, tail, sign_bits, tail_bits = (
                buffer[:n] for buffer in (magnitude, tau, tail, sign_bits, tail_bits))
        # (ufuncs called with positional outputs: the keyword costs ~0.1 us per call, ~20 calls per piece)
        absolute(piece, magnitude)
        add(magnitude, _GELU_T_OFFSET, tau)
        divide(_GELU_T_NUMERATOR, tau, tau)  # (NumPy's reciprocal loop is ~2x slower than its division)
        add(tau, k4, tail)  # Horner: τ (k1 + τ (k2 + τ (k3 + τ (k4 + τ))))
        for coefficient in (k3, k2, k1):
            multiply(tail, tau, tail)
            add(tail, coefficient, tail)
        multiply(tail, tau, tail)
        bitwise_and(piece.view(np.int32), _SIGN_BIT, sign_bits)
        gauss = square(magnitude, magnitude)  # |x| is no longer needed: exp(-x^2 / 2) in its place
        multiply(gauss, _MINUS_HALF, gauss)
        exp(gauss, gauss)
        multiply(tail, gauss, tail)  # Φ(-|x|)
        subtract(_HALF, tail, tail)
        bitwise_or(tail_bits, sign_bits, tail_bits)
        add(tail, _HALF, tail)  # Φ(x)
        multiply(piece, tail, flat_out[start:stop])
        if with_derivative:
            multiply(gauss, piece, gauss)
            multiply(gauss, _INV_SQRT_2PI, gauss)  # x φ(x)
            add(tail, gauss, flat_derivative[start:stop])
    return out, derivative


class Erf(Op):
    def forward(self, x):
        self.save_for_backward(x)
        return _erf(self.xp, x)

    def backward(self, grad):
        (x,) = self.saved_tensors
        return (grad * TWO_OVER_SQRT_PI * self.xp.exp(-x * x),)


class Expm1(Op):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.expm1(x)

    def backward(self, grad):
        (x,) = self.saved_tensors
        return (grad * self.xp.exp(x),)


class Exp2(Op):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.exp2(x)

    def backward(self, grad):
        (x,) = self.saved_tensors
        return (grad * (math.log(2.0) * self.xp.exp(x * math.log(2.0))),)


class Sinh(Op):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.sinh(x)

    def backward(self, grad):
        (x,) = self.saved_tensors
        xp = self.xp
        return (grad * ((xp.exp(x) + xp.exp(-x)) * 0.5),)  # cosh, spelled with exp so it also builds a graph


class Cosh(Op):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.cosh(x)

    def backward(self, grad):
        (x,) = self.saved_tensors
        xp = self.xp
        return (grad * ((xp.exp(x) - xp.exp(-x)) * 0.5),)  # sinh


class Asin(Op):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.arcsin(x)

    def backward(self, grad):
        (x,) = self.saved_tensors
        return (grad / self.xp.sqrt(1 - x * x),)


class Acos(Op):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.arccos(x)

    def backward(self, grad):
        (x,) = self.saved_tensors
        return (-grad / self.xp.sqrt(1 - x * x),)


class Atan(Op):
    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.arctan(x)

    def backward(self, grad):
        (x,) = self.saved_tensors
        return (grad / (1 + x * x),)


class Atan2(Op):
    """``atan2(y, x)``: the angle of the point ``(x, y)``; d/dy = x / r², d/dx = -y / r²."""

    def forward(self, y, x):
        self.save_for_backward(y, x)
        return self.xp.arctan2(y, x)

    def backward(self, grad):
        y, x = self.saved_tensors
        scaled = grad / (x * x + y * y)
        y_edge, x_edge = self.edges
        return (
            sum_to(self.xp, scaled * x, _shape(y)) if y_edge is not None else None,
            sum_to(self.xp, -scaled * y, _shape(x)) if x_edge is not None else None,
        )


class Hypot(Op):
    """``sqrt(a² + b²)``; d/da = a / hypot, d/db = b / hypot."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return self.xp.hypot(a, b)

    def backward(self, grad):
        a, b = self.saved_tensors
        scaled = grad / self.xp.sqrt(a * a + b * b)
        a_edge, b_edge = self.edges
        return (
            sum_to(self.xp, scaled * a, _shape(a)) if a_edge is not None else None,
            sum_to(self.xp, scaled * b, _shape(b)) if b_edge is not None else None,
        )


class LogAddExp(Op):
    """``log(exp(a) + exp(b))`` without overflow; d/da = exp(a - out), d/db = exp(b - out)."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return self.xp.logaddexp(a, b)

    def backward(self, grad):
        a, b = self.saved_tensors
        xp = self.xp
        out = xp.logaddexp(a, b)
        a_edge, b_edge = self.edges
        return (
            sum_to(xp, grad * xp.exp(a - out), _shape(a)) if a_edge is not None else None,
            sum_to(xp, grad * xp.exp(b - out), _shape(b)) if b_edge is not None else None,
        )


class Frac(Op):
    """``x - trunc(x)``: the gradient passes unchanged."""

    def forward(self, x):
        return x - self.xp.trunc(x)

    def backward(self, grad):
        return (grad,)


class Clamp(Op):
    """Clamp into ``[min, max]`` (either may be None); the gradient passes where ``min <= x <= max``."""

    attr_names = ("min", "max")

    def forward(self, x):
        self.save_for_backward(x)
        low, high = self.min, self.max
        if type(x) is np.ndarray and x.dtype.kind == "f" and _clip_ufunc is not None and (low, high) != (None, None):
            # the ufuncs np.clip ends in for a floating array (numpy/_core/_methods.py ``_clip``), without np.clip,
            # ndarray.clip and that function in between: the same result at half the cost for a small array
            if low is None:
                out = _np_minimum(x, high)
            elif high is None:
                out = _np_maximum(x, low)
            else:
                out = _clip_ufunc(x, low, high)
        else:
            out = self.xp.clip(x, low, high)
        # NumPy clips bfloat16 (ml_dtypes) with Python-float bounds in float32, and NumPy float64 bounds give
        # float64: keep the input's dtype
        return out if out.dtype is x.dtype else out.astype(x.dtype)

    def backward(self, grad):
        (x,) = self.saved_tensors
        inside = True
        if self.min is not None:
            inside = x >= self.min
        if self.max is not None:
            inside = (x <= self.max) & inside
        return (grad * inside,)


class ClampTensor(Op):
    """Clamp with tensor bounds: ``minimum(maximum(x, low), high)``."""

    def forward(self, x, low, high):
        self.save_for_backward(x, low, high)
        xp = self.xp
        out = x
        if low is not None:
            out = xp.maximum(out, low)
        if high is not None:
            out = xp.minimum(out, high)
        return out

    def backward(self, grad):
        x, low, high = self.saved_tensors
        xp = self.xp
        if xp is graph_mode.namespace:  # the masks are piecewise constant: constants of the graph
            x, low, high = (None if v is None else v._array for v in (x, low, high))
        below = (x < low) if low is not None else False
        above = (x > high) if high is not None else False
        if xp is graph_mode.namespace:
            below, above = (constant(_backend.xp_of(x).asarray(m)) for m in (below, above))
        grad_x = xp.where(below | above, 0.0, grad)
        x_edge, low_edge, high_edge = self.edges
        grad_low = grad_high = None
        if low_edge is not None:
            grad_low = sum_to(xp, xp.where(below & ~above, grad, 0.0), _shape(low))
        if high_edge is not None:
            grad_high = sum_to(xp, xp.where(above, grad, 0.0), _shape(high))
        return grad_x, grad_low, grad_high


class ZeroGradUnary(Op):
    """Piecewise-constant functions (floor, ceil, round, sign, trunc, frac is not one): gradient zero."""

    attr_names = ("function", "decimals")

    def forward(self, x):
        xp = self.xp
        if self.function == "round":
            return xp.round(x, self.decimals) if self.decimals else xp.rint(x)
        return getattr(xp, self.function)(x)

    def backward(self, grad):
        return (grad * 0,)


class Cast(Op):
    """Change dtype; the gradient is cast back to the input's dtype."""

    attr_names = ("dtype",)

    def forward(self, x):
        self.source_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, grad):
        if self.xp is graph_mode.namespace:
            if grad.dtype.is_complex and self.source_dtype.kind != "c":  # a real input keeps the real part
                grad = grad.real
            return (self.xp.astype(grad, self.source_dtype),)
        if grad.dtype.kind == "c" and self.source_dtype.kind != "c":
            grad = grad.real
        return (grad.astype(self.source_dtype),)


class Clone(Op):
    def forward(self, x):
        return x.copy()

    def backward(self, grad):
        return (grad,)


class Fill(Op):
    """Every element set to ``value`` (``fill_``/``zero_`` under autograd): the input gets a zero gradient."""

    attr_names = ("value",)

    def forward(self, x):
        return self.xp.full_like(x, self.value)

    def backward(self, grad):
        return (grad * 0,)


# ---- not differentiable ------------------------------------------------------------------------------------------


class Compare(Op):
    """Comparisons and logical/bitwise ops: ``function`` names the ``xp`` ufunc (``less``, ``logical_and``, ...)."""

    attr_names = ("function",)
    differentiable = False

    def forward(self, *arrays):
        return getattr(self.xp, self.function)(*arrays)


class IntegerArithmetic(Op):
    """``floor_divide``, ``remainder``, ``fmod``: piecewise. ``a - q b`` with ``q = floor(a/b)`` (remainder) or
    ``trunc(a/b)`` (fmod) gives ``a`` the gradient unchanged and ``b`` the gradient ``-q``."""

    attr_names = ("function",)

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return getattr(self.xp, self.function)(a, b)

    def backward(self, grad):
        a, b = self.saved_tensors
        xp = self.xp
        a_edge, b_edge = self.edges
        if self.function == "floor_divide":
            return (grad * 0 if a_edge is not None else None), None
        grad_b = None
        if b_edge is not None:
            if xp is graph_mode.namespace:  # the quotient is piecewise constant: a constant of the graph
                a_array, b_array = getattr(a, "_array", a), getattr(b, "_array", b)
                real_xp = _backend.xp_of(a_array if hasattr(a, "_array") else b_array)
                rounding = real_xp.floor if self.function == "remainder" else real_xp.trunc
                grad_b = sum_to(xp, -grad * constant(real_xp.asarray(rounding(a_array / b_array))), _shape(b))
            else:
                quotient = (xp.floor if self.function == "remainder" else xp.trunc)(a / b)
                grad_b = sum_to(xp, -grad * quotient, _shape(b))
        return (sum_to(xp, grad, _shape(a)) if a_edge is not None else None), grad_b
