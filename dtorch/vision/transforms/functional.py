"""Image functions behind the transforms, on NumPy images (PIL's layout: HxW or HxWxC) and on Tensors
(``[..., H, W]``, torchvision's tensor layout). Each returns the kind it was given. Geometry runs on the raw
array (no autograd); ``normalize`` on a Tensor uses dtorch ops, so it is differentiable.
"""
import numbers

import numpy as np

from dtorch import factories
from dtorch.tensor import Tensor

_PAD_MODES = {"constant": "constant", "edge": "edge", "reflect": "reflect", "symmetric": "symmetric"}


def _layout(img):
    """``(array, h_axis, w_axis, rewrap)`` for a NumPy image or a Tensor."""
    if isinstance(img, Tensor):
        if img.dim() < 2:
            raise ValueError(f"a tensor image needs at least 2 dimensions [..., H, W], got shape {tuple(img.shape)}")
        return img._array, img.dim() - 2, img.dim() - 1, factories.from_numpy
    if isinstance(img, np.ndarray):
        if img.ndim not in (2, 3):
            raise ValueError(f"a NumPy image must be HxW or HxWxC, got shape {img.shape}")
        return img, 0, 1, lambda a: a
    raise TypeError(f"img should be a NumPy array or a dtorch Tensor, got {type(img).__name__}")


def get_image_size(img):
    """``[width, height]``, as torchvision's ``get_image_size``."""
    array, h_axis, w_axis, _ = _layout(img)
    return [array.shape[w_axis], array.shape[h_axis]]


def to_tensor(pic):
    """HxW or HxWxC NumPy image to a CxHxW Tensor; uint8 becomes float32 in [0, 1], other dtypes keep theirs.

    Example:
        >>> to_tensor(np.full((2, 2, 3), 255, np.uint8)).shape
        dtorch.Size([3, 2, 2])
    """
    if not isinstance(pic, np.ndarray):
        raise TypeError(f"pic should be a NumPy ndarray (HxW or HxWxC). Got {type(pic).__name__}")
    if pic.ndim not in (2, 3):
        raise ValueError(f"pic should be 2 or 3 dimensional. Got {pic.ndim} dimensions.")
    array = pic[:, :, None] if pic.ndim == 2 else pic
    array = array.transpose(2, 0, 1)
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / np.float32(255)  # a division, as torchvision: bit-identical values
    return factories.from_numpy(np.ascontiguousarray(array))


def normalize(tensor, mean, std, inplace=False):
    """``(tensor - mean[c]) / std[c]`` per channel of a ``[..., C, H, W]`` float Tensor."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"tensor should be a dtorch Tensor, got {type(tensor).__name__}")
    if not tensor.is_floating_point():
        raise TypeError(f"Input tensor should be a float tensor. Got {tensor.dtype}.")
    if tensor.dim() < 3:
        raise ValueError(f"Expected tensor to be a tensor image of size (..., C, H, W). Got {tuple(tensor.shape)}.")
    dtype = tensor._array.dtype
    mean_a = np.asarray(mean, dtype=dtype).reshape(-1, 1, 1)
    std_a = np.asarray(std, dtype=dtype).reshape(-1, 1, 1)
    if (std_a == 0).any():
        raise ValueError(f"std evaluated to zero after conversion to {dtype}, leading to division by zero (std={std}).")
    if inplace:
        tensor._array -= mean_a
        tensor._array /= std_a
        return tensor
    return (tensor - factories.from_numpy(mean_a)) / factories.from_numpy(std_a)


def hflip(img):
    """Mirrors the image left to right."""
    array, _, w_axis, rewrap = _layout(img)
    return rewrap(np.ascontiguousarray(np.flip(array, axis=w_axis)))


def _padding4(padding):
    """``(left, top, right, bottom)`` from an int or a sequence of 1, 2 or 4 ints."""
    if isinstance(padding, numbers.Integral):
        return (int(padding),) * 4
    padding = [int(p) for p in padding]
    if len(padding) == 1:
        return tuple(padding * 4)
    if len(padding) == 2:
        return (padding[0], padding[1], padding[0], padding[1])
    if len(padding) == 4:
        return tuple(padding)
    raise ValueError(f"Padding must be an int or a 1, 2, or 4 element sequence, not a {len(padding)} element one")


def pad(img, padding, fill=0, padding_mode="constant"):
    """Pads the borders: ``padding`` is an int, ``(left/right, top/bottom)`` or ``(left, top, right, bottom)``."""
    if padding_mode not in _PAD_MODES:
        raise ValueError(f"padding_mode should be one of {sorted(_PAD_MODES)}, got {padding_mode!r}")
    left, top, right, bottom = _padding4(padding)
    array, h_axis, w_axis, rewrap = _layout(img)
    widths = [(0, 0)] * array.ndim
    widths[h_axis], widths[w_axis] = (top, bottom), (left, right)
    if padding_mode == "constant":
        return rewrap(np.pad(array, widths, mode="constant", constant_values=fill))
    return rewrap(np.pad(array, widths, mode=_PAD_MODES[padding_mode]))


def crop(img, top, left, height, width):
    """The ``height x width`` window at ``(top, left)``; parts outside the image are zero, as in torchvision."""
    array, h_axis, w_axis, rewrap = _layout(img)
    h, w = array.shape[h_axis], array.shape[w_axis]
    if top < 0 or left < 0 or top + height > h or left + width > w:
        padding = (max(-left, 0), max(-top, 0), max(left + width - w, 0), max(top + height - h, 0))
        img = pad(img, padding)
        array, h_axis, w_axis, rewrap = _layout(img)
        top, left = max(top, 0), max(left, 0)
    index = [slice(None)] * array.ndim
    index[h_axis], index[w_axis] = slice(top, top + height), slice(left, left + width)
    return rewrap(np.ascontiguousarray(array[tuple(index)]))


def _pair(size, name):
    if isinstance(size, numbers.Integral):
        return int(size), int(size)
    size = tuple(int(s) for s in size)
    if len(size) == 1:
        return size[0], size[0]
    if len(size) != 2:
        raise ValueError(f"{name} should be an int or a sequence of 1 or 2 ints, got {size}")
    return size


def center_crop(img, output_size):
    """The centred ``output_size`` window (an int for a square).

    An image smaller than the window is first zero-padded as torchvision does: ``(t - s) // 2`` before and
    ``(t - s + 1) // 2`` after along each short axis (so an odd excess puts the extra row or column after).
    """
    th, tw = _pair(output_size, "output_size")
    w, h = get_image_size(img)
    if th > h or tw > w:
        pad_w, pad_h = max(tw - w, 0), max(th - h, 0)
        img = pad(img, (pad_w // 2, pad_h // 2, (pad_w + 1) // 2, (pad_h + 1) // 2))
        w, h = get_image_size(img)
        if (h, w) == (th, tw):
            return img
    return crop(img, int(round((h - th) / 2.0)), int(round((w - tw) / 2.0)), th, tw)


def _bilinear_axis(in_size, out_size):
    """Source indices and weights along one axis (half-pixel centres, PyTorch's ``align_corners=False``)."""
    scale = in_size / out_size
    src = np.maximum((np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    hi = np.minimum(lo + 1, in_size - 1)
    return lo, hi, (src - lo)


def resize(img, size, interpolation="bilinear"):
    """Bilinear resize. ``size`` an int matches the shorter edge (keeping the aspect ratio); ``(h, w)`` is exact.

    Unlike torchvision's tensor default (``antialias=True``) no antialiasing filter runs when shrinking: this is
    ``interpolate(mode="bilinear", align_corners=False, antialias=False)``. uint8 images are rounded back to uint8.
    """
    mode = getattr(interpolation, "value", interpolation)
    if str(mode).lower() not in ("bilinear", "interpolationmode.bilinear"):
        raise ValueError(f"only bilinear interpolation is implemented, got {interpolation!r}")
    array, h_axis, w_axis, rewrap = _layout(img)
    h, w = array.shape[h_axis], array.shape[w_axis]
    if isinstance(size, numbers.Integral) or len(size) == 1:
        requested = int(size) if isinstance(size, numbers.Integral) else int(size[0])
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = requested, int(requested * long / short)
        out_h, out_w = (new_long, new_short) if w <= h else (new_short, new_long)
    else:
        out_h, out_w = int(size[0]), int(size[1])
    if (out_h, out_w) == (h, w):
        return img
    work = np.moveaxis(array, (h_axis, w_axis), (0, 1)).astype(np.float64)
    y0, y1, wy = _bilinear_axis(h, out_h)
    x0, x1, wx = _bilinear_axis(w, out_w)
    extra = (1,) * (work.ndim - 2)
    wy = wy.reshape((-1, 1) + extra)
    wx = wx.reshape((1, -1) + extra)
    top = work[y0][:, x0] * (1 - wx) + work[y0][:, x1] * wx
    bottom = work[y1][:, x0] * (1 - wx) + work[y1][:, x1] * wx
    out = top * (1 - wy) + bottom * wy
    out = np.moveaxis(out, (0, 1), (h_axis, w_axis))
    if array.dtype == np.uint8:
        out = np.clip(np.round(out), 0, 255)
    return rewrap(np.ascontiguousarray(out.astype(array.dtype)))
