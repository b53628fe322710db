"""``dtorch.fft`` and complex tensors against PyTorch: every transform's values and gradients (float64 and
float32, every norm, ``n``/``s`` padding and cropping, chosen ``dim``), second order, frequencies and shifts, and
the complex ops around them (real, imag, conj, angle, complex, polar, view_as_real/complex, products)."""

import numpy as np
import pytest
import torch

import dtorch
from helpers import check_op


def lib(x):
    return torch if isinstance(x, torch.Tensor) else dtorch


def as_complex(a, b):
    """A complex input built from two real ones, so gradients reach both parts."""
    return lib(a).complex(a, b)


def loss_of(z):
    """A real function of a complex result that depends on both parts (abs alone hides the phase)."""
    return z.abs() ** 2 + z.real * 0.5 - z.imag if z.is_complex() else z


NORMS = [None, "ortho", "forward", "backward"]


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name, kwargs, shapes", [
    ("fft", {}, [(3, 8)]), ("fft", {"n": 11}, [(3, 8)]), ("fft", {"n": 5, "dim": 0}, [(7, 2)]),
    ("ifft", {}, [(3, 8)]), ("ifft", {"n": 6}, [(3, 8)]),
    ("fft2", {}, [(2, 4, 6)]), ("ifft2", {"s": (3, 7)}, [(2, 4, 6)]),
    ("fftn", {}, [(3, 4, 5)]), ("fftn", {"s": (6, 2), "dim": (0, 2)}, [(3, 4, 5)]), ("ifftn", {"dim": (1,)}, [(3, 4)]),
    ("rfft", {}, [(3, 8)]), ("rfft", {"n": 7}, [(3, 8)]), ("rfft", {"dim": 0}, [(5, 3)]),
    ("rfft2", {}, [(2, 4, 6)]), ("rfftn", {"s": (5, 9)}, [(3, 4, 6)]),
])
def test_real_input_transforms(name, kwargs, shapes, norm):
    check_op(lambda x: loss_of(getattr(lib(x).fft, name)(x, norm=norm, **kwargs)), None, shapes, dtype="float64")


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name, kwargs, shape", [
    ("fft", {}, (3, 8)), ("ifft", {"n": 10}, (3, 8)), ("fft2", {"s": (3, 3)}, (2, 4, 5)), ("ifftn", {}, (3, 4)),
    ("irfft", {}, (3, 5)), ("irfft", {"n": 9}, (3, 5)), ("irfft", {"n": 4, "dim": 0}, (6, 2)),
    ("irfft2", {}, (2, 4, 5)), ("irfftn", {"s": (3, 10)}, (2, 4, 5)), ("irfftn", {"dim": (0, 1)}, (4, 3)),
])
def test_complex_input_transforms(name, kwargs, shape, norm):
    check_op(lambda a, b: loss_of(getattr(lib(a).fft, name)(as_complex(a, b), norm=norm, **kwargs)), None,
             [shape, shape], dtype="float64")


def test_float32_gives_complex64_and_integers_the_default_float():
    check_op(lambda x: loss_of(lib(x).fft.rfft(x)), None, [(4, 6)])
    check_op(lambda x: lib(x).fft.fft(x), None, [np.arange(6)], grad=False)
    check_op(lambda x: lib(x).fft.fft(x).dtype == lib(x).complex64, None, [(3,)], grad=False)


@pytest.mark.parametrize("name, shapes", [("fft", [(2, 6)]), ("rfft", [(2, 6)]), ("irfft", [(2, 4)]),
                                          ("fft2", [(2, 3, 4)])])
def test_second_order(name, shapes):
    check_op(lambda x: (getattr(lib(x).fft, name)(x * x).abs() ** 2 if name != "irfft"
                        else lib(x).fft.irfft(x * x) ** 3), None, shapes, dtype="float64", second_order=True)


def test_frequencies_and_shifts():
    for n, d in ((8, 1.0), (7, 0.5), (1, 2.0)):
        check_op(lambda x: lib(x).fft.fftfreq(n, d), None, [()], grad=False)
        check_op(lambda x: lib(x).fft.rfftfreq(n, d, dtype=lib(x).float64), None, [()], grad=False)
    check_op(lambda x: lib(x).fft.fftshift(x) * 2, None, [(4, 5)])
    check_op(lambda x: lib(x).fft.ifftshift(x, dim=1) * 2, None, [(4, 5)])
    check_op(lambda x: lib(x).fft.ifftshift(lib(x).fft.fftshift(x, dim=(0,)), dim=(0,)), None, [(5, 2)])


def test_errors_as_pytorch():
    with pytest.raises(ValueError, match="Invalid normalization mode"):
        dtorch.fft.fft(dtorch.ones(4), norm="unitary")
    with pytest.raises(RuntimeError, match="rfft expects a real input tensor, but got ComplexFloat"):
        dtorch.fft.rfft(dtorch.ones(4) * (1 + 1j))
    with pytest.raises(RuntimeError, match="Invalid number of data points"):
        dtorch.fft.fft(dtorch.ones(4), n=0)


# ---- complex tensors ---------------------------------------------------------------------------------------------------


def test_complex_parts_and_products():
    check_op(lambda a, b: (as_complex(a, b) * as_complex(b, a)).real + as_complex(a, b).imag ** 2, None,
             [(3, 4), (3, 4)], dtype="float64")
    check_op(lambda a, b, c: loss_of(as_complex(a, b) / as_complex(c, a)), None, [(3,), (3,), (3,)],
             dtype="float64", low=0.5)
    check_op(lambda a, b, c: loss_of(as_complex(a, b) * c + c), None, [(3,), (3,), (3,)], dtype="float64")
    check_op(lambda a, b: loss_of(as_complex(a, b).conj() * 2), None, [(3,), (3,)], dtype="float64")
    check_op(lambda a, b: as_complex(a, b).angle() * 3, None, [(4,), (4,)], dtype="float64")
    check_op(lambda a, b: lib(a).polar(a, b).real + lib(a).polar(a, b).imag, None, [(4,), (4,)], dtype="float64",
             low=0.5)
    check_op(lambda a, b: lib(a).view_as_real(as_complex(a, b)) ** 2, None, [(2, 3), (2, 3)], dtype="float64")
    check_op(lambda x: loss_of(lib(x).view_as_complex(x)), None, [(3, 2)], dtype="float64")
    check_op(lambda a, b: loss_of(as_complex(a, b).sum(0) + as_complex(a, b).mean()), None, [(3, 2), (3, 2)],
             dtype="float64")


def test_complex_dtypes_promotion_and_printing():
    assert dtorch.tensor([1 + 2j]).dtype == dtorch.complex64 and dtorch.cdouble is dtorch.complex128
    assert dtorch.promote_types(dtorch.float64, dtorch.complex64) == dtorch.complex128
    assert (dtorch.ones(2) + dtorch.tensor([1j])).dtype == dtorch.complex64
    assert dtorch.tensor([1j]).is_complex() and not dtorch.ones(1).is_complex()
    assert dtorch.complex64.is_complex and not dtorch.complex64.is_floating_point
    for values in ([1 + 2j, 3 - 1.5j], [[0.001 + 2j, 30000 - 1j], [1j, -1]], [1e-5 + 1j, 1e5], [1.0 + 0j, 2.0 + 0j],
                   [float("nan") + 1j], list(np.arange(30) * (1 + 1j))):
        for dtype in ("complex64", "complex128"):
            expected = repr(torch.tensor(values, dtype=getattr(torch, dtype))).replace("torch.", "dtorch.")
            assert repr(dtorch.tensor(values, dtype=getattr(dtorch, dtype))) == expected
    for name, make in (("fft", lambda L: L.arange(4.0, requires_grad=True)),
                       ("rfft", lambda L: L.arange(4.0, requires_grad=True)),
                       ("fft", lambda L: L.arange(4.0, requires_grad=True) * (1 + 1j)),
                       ("irfft", lambda L: L.arange(4.0, requires_grad=True) * (1 + 1j))):
        assert repr(getattr(dtorch.fft, name)(make(dtorch))) == repr(
            getattr(torch.fft, name)(make(torch))).replace("torch.", "dtorch."), name
