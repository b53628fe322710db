"""Fourier transforms and the complex-number ops around them: ``FFT`` (complex to complex), ``RFFT`` (real to
half spectrum), ``IRFFT`` (half spectrum to real), ``Real``, ``Imag``, ``Conj``, ``Angle``, ``Complex``,
``ViewAsReal``, ``ViewAsComplex``.

Gradients follow PyTorch's convention for complex numbers: for a real loss L and z = x + iy the gradient is
``dL/dx + i dL/dy``; a real input of an op with a complex result gets the real part of it. The adjoint of a
transform is the opposite transform with the dual normalisation (``backward`` <-> ``forward``, ``ortho`` stays),
with any zero-padding or cropping of the input undone. In a ``create_graph`` backward these adjoints are these
very ops on Tensors, so gradients of any order follow.
"""

import numpy as np

from dtorch.autograd.function import Op, graph_mode
from dtorch.ops._util import array_module, constant, sum_to
from dtorch.ops.nn import ConstantPad

_DUAL = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def complex_dtype_for(dtype):
    """complex64 for float32/complex64 (and smaller) inputs, complex128 for 64-bit ones."""
    return np.complex128 if dtype in (np.float64, np.complex128) else np.complex64


def resize(xp, x, axes, sizes):
    """``x`` zero-padded or cropped (at the end) to ``sizes`` along ``axes``: what a transform's ``s`` does."""
    for axis, size in zip(axes, sizes):
        current = x.shape[axis]
        if size < current:
            key = [slice(None)] * x.ndim
            key[axis] = slice(0, size)
            x = x[tuple(key)]
        elif size > current:
            pads = [(0, 0)] * x.ndim
            pads[axis] = (0, size - current)
            x = xp.pad(x, pads)
    return x


def resize_graph(x, axes, sizes):
    """``resize`` on a Tensor with differentiable ops (``ConstantPad`` crops with negative pads)."""
    pads = [(0, 0)] * x.ndim
    for axis, size in zip(axes, sizes):
        pads[axis] = (0, size - x.shape[axis])
    if not any(after for _, after in pads):
        return x
    return ConstantPad.apply(x, pads=tuple(pads), value=0)


def _real_part(xp, grad, graph, dtype):
    if graph:
        return Real.apply(grad)
    return grad.real.astype(dtype, copy=False)


class FFT(Op):
    """``fftn`` (``inverse=False``) or ``ifftn`` over ``axes`` after resizing to ``sizes``; norm as NumPy's."""

    attr_names = ("axes", "sizes", "norm", "inverse")

    def name(self):
        return "FftR2CBackward0" if getattr(self, "input_dtype", None) is not None and \
            self.input_dtype.kind != "c" else "FftC2CBackward0"

    def forward(self, x):
        xp = self.xp
        self.input_shape, self.input_dtype = x.shape, x.dtype
        transform = xp.fft.ifftn if self.inverse else xp.fft.fftn
        out = transform(x, s=self.sizes, axes=self.axes, norm=self.norm)
        return out.astype(complex_dtype_for(x.dtype), copy=False)

    def backward(self, grad):
        graph = self.xp is graph_mode.namespace
        dual, axes = _DUAL[self.norm], self.axes
        sizes = [self.input_shape[axis] for axis in axes]
        if graph:
            adjoint = FFT.apply(grad, axes=axes, sizes=None, norm=dual, inverse=not self.inverse)
            adjoint = resize_graph(adjoint, axes, sizes)
        else:
            transform = self.xp.fft.fftn if self.inverse else self.xp.fft.ifftn
            adjoint = resize(self.xp, transform(grad, axes=axes, norm=dual), axes, sizes)
            adjoint = adjoint.astype(complex_dtype_for(self.input_dtype), copy=False)
        if self.input_dtype.kind != "c":
            adjoint = _real_part(self.xp, adjoint, graph, self.input_dtype)
        return (adjoint,)


class RFFT(Op):
    """``rfftn`` of a real input over ``axes`` (the last one halved to ``n // 2 + 1`` bins) after resizing."""

    attr_names = ("axes", "sizes", "norm")

    def name(self):
        return "FftR2CBackward0"

    def forward(self, x):
        self.input_shape, self.input_dtype = x.shape, x.dtype
        out = self.xp.fft.rfftn(x, s=self.sizes, axes=self.axes, norm=self.norm)
        self.full_last = self.sizes[-1] if self.sizes is not None else x.shape[self.axes[-1]]
        return out.astype(complex_dtype_for(x.dtype), copy=False)

    def backward(self, grad):
        # the adjoint of "keep the first n//2+1 bins of the full transform": zero-fill the rest, inverse transform
        graph = self.xp is graph_mode.namespace
        axes, dual = self.axes, _DUAL[self.norm]
        sizes = [self.input_shape[axis] for axis in axes]
        if graph:
            full = resize_graph(grad, axes[-1:], [self.full_last])
            adjoint = FFT.apply(full, axes=axes, sizes=None, norm=dual, inverse=True)
            return (resize_graph(Real.apply(adjoint), axes, sizes),)
        xp = self.xp
        full = resize(xp, grad, axes[-1:], [self.full_last])
        adjoint = xp.fft.ifftn(full, axes=axes, norm=dual).real.astype(self.input_dtype, copy=False)
        return (resize(xp, adjoint, axes, sizes),)


class IRFFT(Op):
    """``irfftn`` of a half spectrum over ``axes`` to real output of ``sizes`` (the last one ``2 * (m - 1)``
    unless given)."""

    attr_names = ("axes", "sizes", "norm")

    def name(self):
        return "FftC2RBackward0"

    def forward(self, x):
        self.input_shape, self.input_dtype = x.shape, x.dtype
        out = self.xp.fft.irfftn(x, s=self.sizes, axes=self.axes, norm=self.norm)
        self.output_last = out.shape[self.axes[-1]]
        real = np.float64 if x.dtype in (np.float64, np.complex128) else np.float32
        return out.astype(real, copy=False)

    def backward(self, grad):
        # the forward reads bins 1 .. n - m of the half spectrum twice (once mirrored): PyTorch's gradient is the
        # rfft of the output gradient with those bins doubled
        graph = self.xp is graph_mode.namespace
        axes, dual = self.axes, _DUAL[self.norm]
        n = self.output_last
        bins = n // 2 + 1
        weights_xp = array_module(grad) if graph else self.xp
        weights = weights_xp.ones(bins, dtype=np.float64 if self.input_dtype in (np.float64, np.complex128)
                                  else np.float32)
        weights[1:1 + n - bins] = 2
        shape = [1] * len(grad.shape)
        shape[axes[-1]] = bins
        weights = weights.reshape(shape)
        sizes = [self.input_shape[axis] for axis in axes]
        if graph:
            spectrum = RFFT.apply(grad, axes=axes, sizes=None, norm=dual) * constant(weights)
            spectrum = resize_graph(spectrum, axes, sizes)
        else:
            spectrum = self.xp.fft.rfftn(grad, axes=axes, norm=dual) * weights
            spectrum = resize(self.xp, spectrum, axes, sizes).astype(complex_dtype_for(self.input_dtype), copy=False)
        if self.input_dtype.kind != "c":
            spectrum = _real_part(self.xp, spectrum, graph, self.input_dtype)
        return (spectrum,)


# ---- complex numbers ---------------------------------------------------------------------------------------------------


class Real(Op):
    """The real part (a copy; PyTorch's is a view). Gradient: the real gradient as a complex one."""

    def forward(self, x):
        self.input_dtype = x.dtype
        return x.real.copy()

    def backward(self, grad):
        if self.xp is graph_mode.namespace:
            return (Complex.apply(grad, grad * 0),)
        return (grad.astype(self.input_dtype),)


class Imag(Op):
    """The imaginary part (a copy). Gradient: ``i`` times the real gradient."""

    def forward(self, x):
        self.input_dtype = x.dtype
        return x.imag.copy()

    def backward(self, grad):
        if self.xp is graph_mode.namespace:
            return (Complex.apply(grad * 0, grad),)
        return ((grad * 1j).astype(self.input_dtype),)


class Conj(Op):
    def forward(self, x):
        return x.conj()

    def backward(self, grad):
        if self.xp is graph_mode.namespace:
            return (Conj.apply(grad),)
        return (grad.conj(),)


class Angle(Op):
    """The argument ``atan2(imag, real)``; for a real input 0 or pi, with a zero gradient, as PyTorch's."""

    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.angle(x).astype(x.real.dtype, copy=False)

    def backward(self, grad):
        (x,) = self.saved_tensors
        if self.xp is graph_mode.namespace:
            if not x.dtype.is_complex:
                return (grad * 0,)
            real, imag = Real.apply(x), Imag.apply(x)
            squared = real * real + imag * imag
            return (Complex.apply(-grad * imag / squared, grad * real / squared),)
        if x.dtype.kind != "c":
            return (grad * 0,)
        with np.errstate(invalid="ignore", divide="ignore"):
            squared = x.real * x.real + x.imag * x.imag
            return ((grad * (-x.imag + 1j * x.real) / squared).astype(x.dtype),)


class Complex(Op):
    """``real + i imag`` from two real tensors of one dtype."""

    def forward(self, real, imag):
        out = self.xp.empty(np.broadcast_shapes(real.shape, imag.shape), dtype=complex_dtype_for(real.dtype))
        out.real, out.imag = real, imag
        self.shapes = (real.shape, imag.shape)
        return out

    def backward(self, grad):
        graph = self.xp is graph_mode.namespace
        real = Real.apply(grad) if graph else grad.real.copy()
        imag = Imag.apply(grad) if graph else grad.imag.copy()
        real_edge, imag_edge = self.edges
        return (sum_to(self.xp, real, self.shapes[0]) if real_edge is not None else None,
                sum_to(self.xp, imag, self.shapes[1]) if imag_edge is not None else None)


class ViewAsReal(Op):
    """A complex tensor as real pairs, shape ``(..., 2)`` (a copy here)."""

    def forward(self, x):
        return self.xp.stack([x.real, x.imag], axis=-1)

    def backward(self, grad):
        if self.xp is graph_mode.namespace:
            return (ViewAsComplex.apply(grad),)
        return (ViewAsComplex.complex_of(self.xp, grad),)


class ViewAsComplex(Op):
    """Real pairs ``(..., 2)`` as a complex tensor (a copy here)."""

    @staticmethod
    def complex_of(xp, pairs):
        out = xp.empty(pairs.shape[:-1], dtype=complex_dtype_for(pairs.dtype))
        out.real, out.imag = pairs[..., 0], pairs[..., 1]
        return out

    def forward(self, x):
        return self.complex_of(self.xp, x)

    def backward(self, grad):
        if self.xp is graph_mode.namespace:
            return (ViewAsReal.apply(grad),)
        return (self.xp.stack([grad.real, grad.imag], axis=-1),)
