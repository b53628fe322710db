"""``dtorch.fft``: PyTorch's discrete Fourier transforms, differentiable, on NumPy's (or CuPy's) FFT.

``fft``/``ifft`` (one axis), ``fft2``/``ifft2``, ``fftn``/``ifftn``, and the real-input variants ``rfft``,
``irfft``, ``rfft2``, ``irfft2``, ``rfftn``, ``irfftn``; ``n``/``s`` zero-pad or crop the input first, ``dim``
picks the axes, ``norm`` is ``'backward'`` (the default: no scaling forward, ``1/n`` inverse), ``'ortho'`` or
``'forward'``. Real inputs give complex64 (float32) or complex128 (float64) results; integer inputs are taken
as the default float. Also ``fftfreq``, ``rfftfreq``, ``fftshift`` and ``ifftshift``.

>>> import dtorch
>>> dtorch.fft.fft(dtorch.arange(4.0))
tensor([ 6.+0.j, -2.+2.j, -2.+0.j, -2.-2.j])
"""

import numpy as np

from dtorch import _backend
from dtorch._errors import raise_not_a_tensor
from dtorch import factories
from dtorch import functional as F
from dtorch.ops import spectral as SP
from dtorch.tensor import Tensor, _wrap_dim

__all__ = ["fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2", "rfftn", "irfftn",
           "fftfreq", "rfftfreq", "fftshift", "ifftshift"]


def _norm(norm):
    if norm is None:
        return "backward"
    if norm not in ("backward", "ortho", "forward"):
        raise ValueError(f"Invalid normalization mode: {norm}")
    return norm


def _prepare(input, name, real_only=False):
    if not isinstance(input, Tensor):
        raise TypeError(f"fft_{name}(): argument 'input' must be Tensor, not {type(input).__name__}")
    kind = input._array.dtype.kind
    if kind in "biu":
        return F._cast(input, _backend.get_default_dtype().numpy_dtype)
    if kind == "c" and real_only:
        raise RuntimeError(f"{name} expects a real input tensor, but got {_complex_name(input)}")
    if input._array.dtype == np.float16:
        raise RuntimeError("Unsupported dtype Half")
    return input


def _complex_name(input):
    return "ComplexDouble" if input._array.dtype == np.complex128 else "ComplexFloat"


def _axes_and_sizes(input, s, dim, name):
    """PyTorch's rules: ``dim`` None means the last ``len(s)`` axes (all axes without ``s``)."""
    ndim = input._array.ndim
    if dim is None:
        axes = tuple(range(ndim - len(s), ndim)) if s is not None else tuple(range(ndim))
    else:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        axes = tuple(_wrap_dim(d, ndim) for d in dims)
        if len(set(axes)) != len(axes):
            raise RuntimeError(f"{name} dims must be unique")
    if s is not None:
        s = tuple(int(n) for n in s)
        if len(s) != len(axes):
            raise RuntimeError(f"When given, dim and shape arguments must have the same length. Got {len(s)} and "
                               f"{len(axes)}")
        sizes = tuple(input._array.shape[a] if n == -1 else n for a, n in zip(axes, s))
        for n in sizes:
            if n <= 0:
                raise RuntimeError(f"Invalid number of data points ({n}) specified")
    else:
        sizes = None
    if not axes:
        raise RuntimeError(f"{name} must transform at least one axis")
    return axes, sizes


def _c2c(input, s, dim, norm, inverse, name):
    input = _prepare(input, name)
    axes, sizes = _axes_and_sizes(input, s, dim, name)
    return SP.FFT.apply(input, axes=axes, sizes=sizes, norm=_norm(norm), inverse=inverse)


def _r2c(input, s, dim, norm, name):
    input = _prepare(input, name, real_only=True)
    axes, sizes = _axes_and_sizes(input, s, dim, name)
    return SP.RFFT.apply(input, axes=axes, sizes=sizes, norm=_norm(norm))


def _c2r(input, s, dim, norm, name):
    input = _prepare(input, name)
    axes, sizes = _axes_and_sizes(input, s, dim, name)
    if sizes is None:
        last = 2 * (input._array.shape[axes[-1]] - 1)
        if last <= 0:
            raise RuntimeError(f"Invalid number of data points ({last}) specified")
        sizes = tuple(input._array.shape[a] for a in axes[:-1]) + (last,)
    return SP.IRFFT.apply(input, axes=axes, sizes=sizes, norm=_norm(norm))


def _one(n):
    return None if n is None else (n,)


def fft(input, n=None, dim=-1, norm=None):
    """The 1-D discrete Fourier transform along ``dim`` (zero-padded or cropped to ``n`` first)."""
    return _c2c(input, _one(n), dim, norm, False, "fft")


def ifft(input, n=None, dim=-1, norm=None):
    """The inverse of ``fft``."""
    return _c2c(input, _one(n), dim, norm, True, "ifft")


def fft2(input, s=None, dim=(-2, -1), norm=None):
    """The 2-D transform over ``dim`` (the last two axes)."""
    return _c2c(input, s, dim, norm, False, "fft2")


def ifft2(input, s=None, dim=(-2, -1), norm=None):
    """The inverse of ``fft2``."""
    return _c2c(input, s, dim, norm, True, "ifft2")


def fftn(input, s=None, dim=None, norm=None):
    """The N-D transform over ``dim`` (every axis, or the last ``len(s)`` ones)."""
    return _c2c(input, s, dim, norm, False, "fftn")


def ifftn(input, s=None, dim=None, norm=None):
    """The inverse of ``fftn``."""
    return _c2c(input, s, dim, norm, True, "ifftn")


def rfft(input, n=None, dim=-1, norm=None):
    """The transform of a real signal: the ``n // 2 + 1`` non-negative frequencies.

    >>> import dtorch
    >>> rfft(dtorch.tensor([1.0, 0.0, 0.0, 0.0]))
    tensor([1.+0.j, 1.+0.j, 1.+0.j])
    """
    return _r2c(input, _one(n), dim, norm, "rfft")


def irfft(input, n=None, dim=-1, norm=None):
    """The real signal of a half spectrum (``n`` samples; ``2 * (m - 1)`` by default)."""
    return _c2r(input, _one(n), dim, norm, "irfft")


def rfft2(input, s=None, dim=(-2, -1), norm=None):
    """``rfftn`` over the last two axes."""
    return _r2c(input, s, dim, norm, "rfft2")


def irfft2(input, s=None, dim=(-2, -1), norm=None):
    """``irfftn`` over the last two axes."""
    return _c2r(input, s, dim, norm, "irfft2")


def rfftn(input, s=None, dim=None, norm=None):
    """The N-D transform of a real input, halved along the last transformed axis."""
    return _r2c(input, s, dim, norm, "rfftn")


def irfftn(input, s=None, dim=None, norm=None):
    """The inverse of ``rfftn``."""
    return _c2r(input, s, dim, norm, "irfftn")


def fftfreq(n, d=1.0, *, dtype=None, device=None, requires_grad=False, layout=None):
    """The sample frequencies of an ``n``-point transform with spacing ``d``: ``[0, 1, ..., -1] / (d * n)``.

    >>> import dtorch
    >>> fftfreq(4)
    tensor([ 0.0000,  0.2500, -0.5000, -0.2500])
    """
    values = np.fft.fftfreq(int(n), d)
    return _frequencies(values, dtype, device, requires_grad)


def rfftfreq(n, d=1.0, *, dtype=None, device=None, requires_grad=False, layout=None):
    """The non-negative sample frequencies of an ``n``-point real transform.

    >>> import dtorch
    >>> rfftfreq(4)
    tensor([0.0000, 0.2500, 0.5000])
    """
    values = np.fft.rfftfreq(int(n), d)
    return _frequencies(values, dtype, device, requires_grad)


def _frequencies(values, dtype, device, requires_grad):
    numpy_dtype = _backend.to_numpy_dtype(dtype) if dtype is not None else _backend.get_default_dtype().numpy_dtype
    return factories.tensor(values.astype(numpy_dtype), device=device, requires_grad=requires_grad)


def _shift(input, dim, sign):
    ndim = input._array.ndim
    axes = tuple(range(ndim)) if dim is None else tuple(_wrap_dim(d, ndim) for d in
                                                       ((dim,) if isinstance(dim, int) else dim))
    if not axes:
        return F.clone(input)
    shifts = tuple(sign * (input._array.shape[a] // 2) for a in axes)
    return F.roll(input, shifts, axes)


def fftshift(input, dim=None):
    """Move the zero frequency to the middle (a roll by ``n // 2`` along ``dim``, every axis by default).

    >>> import dtorch
    >>> fftshift(fftfreq(4))
    tensor([-0.5000, -0.2500,  0.0000,  0.2500])
    """
    if not isinstance(input, Tensor):
        raise_not_a_tensor("fft_fftshift", "input", 1, input)
    return _shift(input, dim, 1)


def ifftshift(input, dim=None):
    """The inverse of ``fftshift``."""
    if not isinstance(input, Tensor):
        raise_not_a_tensor("fft_ifftshift", "input", 1, input)
    return _shift(input, dim, -1)

