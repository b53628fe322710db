"""``dtorch.nn.functional``: PyTorch's functional layers, activations and losses with PyTorch's signatures.

Each function checks its arguments up front (RuntimeErrors that name the shapes involved, as PyTorch's do), turns
them into plain data and calls one op from ``dtorch.ops`` (``conv``, ``norm``, ``loss``, ``nn``) or, where a
composition costs nothing, composes ops of ``dtorch.functional``. The activations that ``dtorch`` itself has
(``relu``, ``gelu``, ``silu``, ``sigmoid``, ``tanh``, ``softplus``) run the very same op here.

Deliberate differences from PyTorch, all documented at the function: ``embedding(scale_grad_by_freq=True)`` is
not supported; ``embedding(sparse=True)`` gives a dense gradient; dropout draws from dtorch's generator, so its
masks are not PyTorch's; ``interpolate`` has no ``antialias``. The fused ops (conv, pooling, norms, softmax,
losses, attention, recurrent layers) have double-backward formulas (``create_graph=True``: gradient penalties,
MAML); ``ctc_loss`` has none, as in PyTorch, and a ``create_graph=True`` backward through it raises naming the op.
"""

import math

import numpy as np

from dtorch import _backend
from dtorch._errors import (
    CAUGHT as _NOT_A_TENSOR, not_a_tensor as _not_a_tensor, raise_not_a_tensor as _raise_not_a_tensor,
)
from dtorch import functional as _F
from dtorch import random as _random
from dtorch.autograd import grad_mode
from dtorch.ops import conv as _conv
from dtorch.ops import elementwise as _E
from dtorch.ops import loss as _loss
from dtorch.ops import nn as _nn
from dtorch.ops import norm as _norm
from dtorch.tensor import Size, Tensor, _wrap_dim
from dtorch._warnings import warn as _warn

_new = Tensor._from_array
_grad_state = grad_mode._state
_AUTOCAST = grad_mode.autocast_state  # read by linear, the convolutions and the ops autocast runs in float32
_BFLOAT16 = _backend.BFLOAT16_NUMPY

# ======================================================================================================================
# argument helpers


def _tuple(value, n, name):
    """An int or a sequence of ``n`` ints (a 1-sequence is repeated) as a tuple of ``n`` ints."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return value * n
    if len(value) != n:
        raise RuntimeError(f"expected {name} to be a single integer value or a list of {n} values, got {list(value)}")
    return value


def _shape_text(tensor):
    return str(list(tensor.shape))


def _check_conv_ranks(input, weight, spatial, name):
    """A convolution's input is ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``; its weight has
    ``2 + spatial`` dims. Raises PyTorch's RuntimeError naming the shapes otherwise."""
    _check_rank(input, (spatial + 1, spatial + 2), name)
    if weight._array.ndim != spatial + 2:
        raise RuntimeError(f"{name}: expected a {spatial + 2}-D weight, got weight of size {_shape_text(weight)}")


def _check_rank(input, ranks, name):
    if input._array.ndim not in ranks:
        lo, hi = ranks
        raise RuntimeError(
            f"Expected {lo}D (unbatched) or {hi}D (batched) input to {name}, but got input of size: "
            f"{_shape_text(input)}"
        )


def _same_dtype(name, input, *others):
    for other in others:
        if other is not None and other._array.dtype != input._array.dtype:
            raise RuntimeError(
                f"{name}: expected input and parameters to have the same dtype, but got input of dtype "
                f"{input.dtype} and a parameter of dtype {other.dtype}"
            )


def _inplace(input, compute):
    """Run ``compute(input)`` and write the result into ``input`` (PyTorch's ``inplace=True``)."""
    return _F._inplace(compute)(input)


# ======================================================================================================================
# linear and convolution


def linear(input, weight, bias=None):
    """``input @ weight.T + bias``.

    Args:
        input: ``(*, in_features)``. weight: ``(out_features, in_features)``. bias: ``(out_features,)`` or None.
    Returns:
        ``(*, out_features)``.

    >>> import dtorch
    >>> linear(dtorch.ones(2, 3), dtorch.ones(4, 3), dtorch.zeros(4)).shape
    dtorch.Size([2, 4])
    """
    try:
        if _AUTOCAST.active or input._array.dtype is _BFLOAT16 and not _AUTOCAST.inner:
            return _F._lower_precision(linear, (input, weight, bias))
        if weight._array.ndim != 2 or input._array.ndim == 0:
            out = _F.matmul(input, _F.t(weight))
            return out if bias is None else out + bias
        if input._array.shape[-1] != weight._array.shape[1]:
            a = input._array.shape
            rows = int(np.prod(a[:-1])) if len(a) > 1 else 1
            raise RuntimeError(
                f"mat1 and mat2 shapes cannot be multiplied ({rows}x{a[-1]} and "
                f"{weight._array.shape[1]}x{weight._array.shape[0]})"
            )
        if input._array.dtype != weight._array.dtype or (bias is not None and bias._array.dtype != weight._array.dtype):
            other = bias if input._array.dtype == weight._array.dtype else input
            raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got {other.dtype} and {weight.dtype}")
        if bias is not None and bias._array.shape not in ((weight._array.shape[0],), ()):
            return _nn.Linear.apply(input, weight, None) + bias
        return _nn.Linear.apply(input, weight, bias)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "linear", "input weight bias", input, weight, bias)


def _conv_padding(padding, kernel, dilation, stride, name):
    """``(top, bottom, left, right)`` from an int, a pair, ``'valid'`` or ``'same'`` (odd extra at the end)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding != "same":
            raise ValueError(f"Invalid padding string '{padding}', should be one of {{'valid', 'same'}}")
        if any(s != 1 for s in stride):
            raise ValueError("padding='same' is not supported for strided convolutions")
        pads = []
        for k, d in zip(kernel, dilation):
            total = d * (k - 1)
            pads += [total // 2, total - total // 2]
        return tuple(pads)
    ph, pw = _tuple(padding, 2, "padding")
    if ph < 0 or pw < 0:
        raise RuntimeError(f"{name}: negative padding is not supported")
    return (ph, ph, pw, pw)


def _conv2d_checked(input, weight, bias, stride, padding, dilation, groups, name):
    """The shared body of conv1d/conv2d on a batched 4-D input and 4-D weight."""
    n, c, h, w = input._array.shape
    o, cg, kh, kw = weight._array.shape
    if groups <= 0:
        raise RuntimeError("non-positive groups is not supported")
    if o % groups != 0:
        raise RuntimeError(
            f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, but got weight of "
            f"size {_shape_text(weight)} instead"
        )
    if c != cg * groups:
        raise RuntimeError(
            f"Given groups={groups}, weight of size {_shape_text(weight)}, expected input{_shape_text(input)} to have "
            f"{cg * groups} channels, but got {c} channels instead"
        )
    if bias is not None and tuple(bias._array.shape) != (o,):
        raise RuntimeError(
            f"Given weight of size {_shape_text(weight)}, expected bias to be 1-dimensional with {o} elements, but "
            f"got bias of size {_shape_text(bias)} instead"
        )
    if stride[0] <= 0 or stride[1] <= 0:
        raise RuntimeError("non-positive stride is not supported")
    if dilation[0] <= 0 or dilation[1] <= 0:
        raise RuntimeError("dilation should be greater than zero")
    pads = padding
    if (h + pads[0] + pads[1] < dilation[0] * (kh - 1) + 1) or (w + pads[2] + pads[3] < dilation[1] * (kw - 1) + 1):
        raise RuntimeError(
            f"Calculated padded input size per channel: ({h + pads[0] + pads[1]} x {w + pads[2] + pads[3]}). "
            f"Kernel size: ({dilation[0] * (kh - 1) + 1} x {dilation[1] * (kw - 1) + 1}). Kernel size can't be "
            "greater than actual input size"
        )
    _same_dtype(name, input, weight, bias)
    return _conv.Conv2d.apply(input, weight, bias, stride=stride, padding=pads, dilation=dilation, groups=groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) over ``(N, C, H, W)`` or unbatched ``(C, H, W)`` input.

    Args:
        weight: ``(out_channels, in_channels // groups, kH, kW)``. stride, dilation: int or pair.
        padding: int, pair, ``'valid'`` or ``'same'`` (stride 1 only).
    Returns:
        ``(N, out_channels, H_out, W_out)``.

    >>> import dtorch
    >>> conv2d(dtorch.ones(1, 2, 5, 5), dtorch.ones(3, 2, 3, 3), padding='same').shape
    dtorch.Size([1, 3, 5, 5])
    """
    try:
        _check_conv_ranks(input, weight, 2, "conv2d")
        if _AUTOCAST.active or input._array.dtype is _BFLOAT16 and not _AUTOCAST.inner:
            return _F._lower_precision(conv2d, (input, weight, bias), stride, padding, dilation, groups)
        unbatched = input._array.ndim == 3
        if unbatched:
            input = _F.unsqueeze(input, 0)
        stride = _tuple(stride, 2, "stride")
        dilation = _tuple(dilation, 2, "dilation")
        pads = _conv_padding(padding, weight._array.shape[2:], dilation, stride, "conv2d")
        out = _conv2d_checked(input, weight, bias, stride, pads, dilation, groups, "conv2d")
        return _F.squeeze(out, 0) if unbatched else out
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "conv2d", "input weight bias", input, weight, bias)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution over ``(N, C, L)`` or unbatched ``(C, L)`` input (a height-1 ``conv2d``).

    Args:
        weight: ``(out_channels, in_channels // groups, k)``. padding: int, ``'valid'`` or ``'same'``.

    >>> import dtorch
    >>> conv1d(dtorch.ones(2, 4, 10), dtorch.ones(6, 4, 3), stride=2).shape
    dtorch.Size([2, 6, 4])
    """
    try:
        _check_conv_ranks(input, weight, 1, "conv1d")
        if _AUTOCAST.active or input._array.dtype is _BFLOAT16 and not _AUTOCAST.inner:
            return _F._lower_precision(conv1d, (input, weight, bias), stride, padding, dilation, groups)
        unbatched = input._array.ndim == 2
        if unbatched:
            input = _F.unsqueeze(input, 0)
        (s,) = _tuple(stride, 1, "stride")
        (d,) = _tuple(dilation, 1, "dilation")
        if isinstance(padding, str):
            pads = _conv_padding(padding, (1, weight._array.shape[2]), (1, d), (1, s), "conv1d")
        else:
            (p,) = _tuple(padding, 1, "padding")
            pads = (0, 0, p, p)
        n, c, length = input._array.shape
        if c != weight._array.shape[1] * groups:
            raise RuntimeError(
                f"Given groups={groups}, weight of size {_shape_text(weight)}, expected "
                f"input{_shape_text(input)} to have "
                f"{weight._array.shape[1] * groups} channels, but got {c} channels instead"
            )
        out = _conv2d_checked(_F.unsqueeze(input, 2), _F.unsqueeze(weight, 2), bias, (1, s), pads, (1, d), groups,
                              "conv1d")
        out = _F.squeeze(out, 2)
        return _F.squeeze(out, 0) if unbatched else out
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "conv1d", "input weight bias", input, weight, bias)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 2-D convolution ("deconvolution"), the gradient of ``conv2d`` with respect to its input.

    Args:
        weight: ``(in_channels, out_channels // groups, kH, kW)``. output_padding: extra rows/columns at the
        bottom/right (smaller than stride or dilation).
    Returns:
        ``(N, out_channels, (H - 1) * stride - 2 * padding + dilation * (kH - 1) + output_padding + 1, ...)``.

    >>> import dtorch
    >>> conv_transpose2d(dtorch.ones(1, 4, 3, 3), dtorch.ones(4, 2, 3, 3), stride=2).shape
    dtorch.Size([1, 2, 7, 7])
    """
    try:
        _check_conv_ranks(input, weight, 2, "conv_transpose2d")
        if _AUTOCAST.active or input._array.dtype is _BFLOAT16 and not _AUTOCAST.inner:
            return _F._lower_precision(conv_transpose2d, (input, weight, bias), stride, padding, output_padding, groups,
                                       dilation)
        unbatched = input._array.ndim == 3
        if unbatched:
            input = _F.unsqueeze(input, 0)
        stride = _tuple(stride, 2, "stride")
        padding = _tuple(padding, 2, "padding")
        output_padding = _tuple(output_padding, 2, "output_padding")
        dilation = _tuple(dilation, 2, "dilation")
        c = input._array.shape[1]
        cin, coutg = weight._array.shape[:2]
        if c != cin or cin % groups != 0:
            raise RuntimeError(
                f"Given transposed=1, weight of size {_shape_text(weight)}, expected input{_shape_text(input)} to have "
                f"{cin} channels, but got {c} channels instead"
            )
        if bias is not None and tuple(bias._array.shape) != (coutg * groups,):
            raise RuntimeError(
                f"Given transposed=1, weight of size {_shape_text(weight)}, expected bias to be 1-dimensional with "
                f"{coutg * groups} elements, but got bias of size {_shape_text(bias)} instead"
            )
        for a in range(2):
            if output_padding[a] >= stride[a] and output_padding[a] >= dilation[a]:
                raise RuntimeError(
                    f"output padding must be smaller than either stride or dilation, but got output_padding="
                    f"{list(output_padding)}, stride={list(stride)}, dilation={list(dilation)}"
                )
        h, w = input._array.shape[2:]
        kh, kw = weight._array.shape[2:]
        out_h = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1
        out_w = (w - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1
        if out_h <= 0 or out_w <= 0:
            raise RuntimeError(
                f"Given input size per channel: ({h} x {w}). Calculated output size per channel: ({out_h} x {out_w}). "
                "Output size is too small"
            )
        _same_dtype("conv_transpose2d", input, weight, bias)
        out = _conv.ConvTranspose2d.apply(input, weight, bias, stride=stride, padding=padding,
                                          output_padding=output_padding, dilation=dilation, groups=groups)
        return _F.squeeze(out, 0) if unbatched else out
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "conv_transpose2d", "input weight bias", input, weight, bias)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 1-D convolution of ``(N, C, L)`` or ``(C, L)`` input (a height-1 ``conv_transpose2d``).

    >>> import dtorch
    >>> conv_transpose1d(dtorch.ones(1, 4, 5), dtorch.ones(4, 2, 3), stride=2).shape
    dtorch.Size([1, 2, 11])
    """
    try:
        _check_conv_ranks(input, weight, 1, "conv_transpose1d")
        if _AUTOCAST.active or input._array.dtype is _BFLOAT16 and not _AUTOCAST.inner:
            return _F._lower_precision(conv_transpose1d, (input, weight, bias), stride, padding, output_padding, groups,
                                       dilation)
        args = [(1,) + _tuple(v, 1, name) for v, name in ((stride, "stride"), (padding, "padding"),
                                                          (output_padding, "output_padding"), (dilation, "dilation"))]
        args[1] = (0,) + args[1][1:]
        args[2] = (0,) + args[2][1:]
        out = conv_transpose2d(_F.unsqueeze(input, -2), _F.unsqueeze(weight, 2), bias, args[0], args[1], args[2],
                               groups, args[3])
        return _F.squeeze(out, -2)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "conv_transpose1d", "input weight bias", input, weight, bias)


def bilinear(input1, input2, weight, bias=None):
    """``out[..., k] = input1[..., i] * weight[k, i, j] * input2[..., j] + bias[k]``.

    >>> import dtorch
    >>> bilinear(dtorch.ones(2, 3), dtorch.ones(2, 4), dtorch.ones(5, 3, 4)).shape
    dtorch.Size([2, 5])
    """
    try:
        if weight._array.ndim != 3 or input1._array.shape[-1] != weight._array.shape[1] or \
                input2._array.shape[-1] != weight._array.shape[2]:
            raise RuntimeError(
                f"bilinear: expected input1 [*, {weight._array.shape[1]}] and input2 [*, {weight._array.shape[2]}] for "
                f"weight of size {_shape_text(weight)}, got {_shape_text(input1)} and {_shape_text(input2)}"
            )
        out = _F.einsum("...i,kij,...j->...k", input1, weight, input2)
        return out if bias is None else _F.add(out, bias)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "bilinear", "input1 input2 weight bias", input1, input2, weight, bias)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Sliding ``kernel_size`` blocks of ``(N, C, H, W)`` input as columns ``(N, C * kH * kW, L)`` (im2col).

    >>> import dtorch
    >>> unfold(dtorch.ones(2, 3, 4, 5), 2).shape
    dtorch.Size([2, 12, 12])
    """
    try:
        _check_rank(input, (3, 4), "unfold")
        unbatched = input._array.ndim == 3
        x = _F.unsqueeze(input, 0) if unbatched else input
        kernel, dilation = _tuple(kernel_size, 2, "kernel_size"), _tuple(dilation, 2, "dilation")
        padding, stride = _tuple(padding, 2, "padding"), _tuple(stride, 2, "stride")
        h, w = x._array.shape[2:]
        for a, size in enumerate((h, w)):
            if _conv.conv_output_size(size, kernel[a], stride[a], 2 * padding[a], dilation[a]) <= 0:
                raise RuntimeError(
                    f"Given input with spatial size ({h}, {w}), kernel_size={list(kernel)}, dilation={list(dilation)}, "
                    f"padding={list(padding)}, calculated shape of the array of sliding blocks is non-positive"
                )
        out = _conv.Unfold.apply(x, kernel_size=kernel, stride=stride, dilation=dilation, padding=padding)
        return _F.squeeze(out, 0) if unbatched else out
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "unfold", "input kernel_size", input, kernel_size)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Sum columns ``(N, C * kH * kW, L)`` back into an ``(N, C, *output_size)`` image (col2im; overlapping
    blocks add up), the adjoint of ``unfold``.

    >>> import dtorch
    >>> fold(dtorch.ones(1, 4, 4), (3, 3), 2)
    tensor([[[[1., 2., 1.],
              [2., 4., 2.],
              [1., 2., 1.]]]])
    """
    try:
        _check_rank(input, (2, 3), "fold")
        unbatched = input._array.ndim == 2
        x = _F.unsqueeze(input, 0) if unbatched else input
        size = _tuple(output_size, 2, "output_size")
        kernel, dilation = _tuple(kernel_size, 2, "kernel_size"), _tuple(dilation, 2, "dilation")
        padding, stride = _tuple(padding, 2, "padding"), _tuple(stride, 2, "stride")
        blocks = 1
        for a in range(2):
            blocks *= _conv.conv_output_size(size[a], kernel[a], stride[a], 2 * padding[a], dilation[a])
        rows, columns = x._array.shape[1:]
        if rows % (kernel[0] * kernel[1]) or columns != blocks:
            raise RuntimeError(
                f"fold: expected input of size [N, C * {kernel[0] * kernel[1]}, {blocks}] for "
                f"output_size={list(size)}, "
                f"kernel_size={list(kernel)}, got input of size {_shape_text(input)}"
            )
        out = _conv.Fold.apply(x, output_size=size, kernel_size=kernel, stride=stride, dilation=dilation,
                               padding=padding)
        return _F.squeeze(out, 0) if unbatched else out
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "fold", "input output_size kernel_size", input, output_size, kernel_size)


# ======================================================================================================================
# pooling


def _pool_args(kernel_size, stride, padding, dilation, n):
    kernel = _tuple(kernel_size, n, "kernel_size")
    stride = kernel if stride is None or (not isinstance(stride, int) and len(stride) == 0) else _tuple(
        stride, n, "stride")
    padding = _tuple(padding, n, "padding")
    dilation = _tuple(dilation, n, "dilation")
    for k, p, s in zip(kernel, padding, stride):
        if k <= 0 or s <= 0:
            raise RuntimeError(f"kernel size and stride should be greater than zero, but got kernel_size={kernel}, "
                               f"stride={stride}")
        if p > k // 2:
            raise RuntimeError(
                f"pad should be smaller than or equal to half of kernel size, but got padding={list(padding)} and "
                f"kernel_size={list(kernel)}"
            )
    return kernel, stride, padding, dilation


def _check_pool_output(input, kernel, stride, padding, dilation, ceil_mode, name):
    h, w = input._array.shape[-2:]
    oh = _conv.pool_output_size(h, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    ow = _conv.pool_output_size(w, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    if oh <= 0 or ow <= 0:
        raise RuntimeError(
            f"{name}: Given input size: ({'x'.join(map(str, input._array.shape[-3:]))}). Calculated output size: "
            f"({input._array.shape[-3]}x{oh}x{ow}). Output size is too small"
        )


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over ``kernel_size`` windows of ``(N, C, H, W)`` or ``(C, H, W)`` input.

    Args:
        stride: defaults to ``kernel_size``. padding: implicit ``-inf`` on both sides, at most half the kernel.
        ceil_mode: round the output size up. return_indices: also return each maximum's flat ``H * W`` index.

    >>> import dtorch
    >>> max_pool2d(dtorch.arange(16.).reshape(1, 1, 4, 4), 2)
    tensor([[[[ 5.,  7.],
              [13., 15.]]]])
    """
    try:
        _check_rank(input, (3, 4), "max_pool2d")
        kernel, stride, padding, dilation = _pool_args(kernel_size, stride, padding, dilation, 2)
        _check_pool_output(input, kernel, stride, padding, dilation, ceil_mode, "max_pool2d")
        unbatched = input._array.ndim == 3
        x = _F.unsqueeze(input, 0) if unbatched else input
        result = _max_pool(x, kernel, stride, padding, dilation, ceil_mode, return_indices)
        if unbatched:
            result = tuple(_F.squeeze(t_, 0) for t_ in result)
        return result if return_indices else result[0]
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "max_pool2d", "input kernel_size", input, kernel_size)


def _max_pool(x, kernel, stride, padding, dilation, ceil_mode, return_indices):
    """``(out,)`` or ``(out, indices)`` of the max-pool op on a 4-D input."""
    op = _conv.MaxPool2dWithIndices if return_indices else _conv.MaxPool2d
    result = op.apply(x, kernel_size=tuple(kernel), stride=tuple(stride), padding=tuple(padding),
                      dilation=tuple(dilation), ceil_mode=bool(ceil_mode))
    return result if return_indices else (result,)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max over windows of ``(N, C, L)`` or ``(C, L)`` input; same arguments as ``max_pool2d`` in one dimension.

    >>> import dtorch
    >>> max_pool1d(dtorch.tensor([[[1., 3., 2., 5.]]]), 2)
    tensor([[[3., 5.]]])
    """
    try:
        _check_rank(input, (2, 3), "max_pool1d")
        kernel, stride, padding, dilation = _pool_args(kernel_size, stride, padding, dilation, 1)
        x = _F.unsqueeze(input, -2)
        args = ((1,) + kernel, (1,) + stride, (0,) + padding, (1,) + dilation)
        _check_pool_output(x, *args, ceil_mode, "max_pool1d")
        unbatched = x._array.ndim == 3
        if unbatched:
            x = _F.unsqueeze(x, 0)
        result = tuple(_F.squeeze(t_, -2) for t_ in _max_pool(x, *args, ceil_mode, return_indices))
        if unbatched:
            result = tuple(_F.squeeze(t_, 0) for t_ in result)
        return result if return_indices else result[0]
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "max_pool1d", "input kernel_size", input, kernel_size)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over ``kernel_size`` windows of ``(N, C, H, W)`` or ``(C, H, W)`` input.

    Args:
        count_include_pad: count the zero padding in the divisor. divisor_override: use this divisor instead.

    >>> import dtorch
    >>> avg_pool2d(dtorch.arange(16.).reshape(1, 1, 4, 4), 2)
    tensor([[[[ 2.5000,  4.5000],
              [10.5000, 12.5000]]]])
    """
    try:
        _check_rank(input, (3, 4), "avg_pool2d")
        _F._check_float(input, "avg_pool2d")
        kernel, stride, padding, _ = _pool_args(kernel_size, stride, padding, 1, 2)
        if divisor_override is not None and divisor_override == 0:
            raise RuntimeError("divisor must be not zero")
        _check_pool_output(input, kernel, stride, padding, (1, 1), ceil_mode, "avg_pool2d")
        unbatched = input._array.ndim == 3
        x = _F.unsqueeze(input, 0) if unbatched else input
        out = _conv.AvgPool2d.apply(x, kernel_size=kernel, stride=stride, padding=padding, ceil_mode=bool(ceil_mode),
                                    count_include_pad=bool(count_include_pad), divisor_override=divisor_override)
        return _F.squeeze(out, 0) if unbatched else out
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "avg_pool2d", "input", input)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Mean over windows of ``(N, C, L)`` or ``(C, L)`` input.

    >>> import dtorch
    >>> avg_pool1d(dtorch.tensor([[[1., 3., 2., 6.]]]), 2)
    tensor([[[2., 4.]]])
    """
    try:
        _check_rank(input, (2, 3), "avg_pool1d")
        kernel, stride, padding, _ = _pool_args(kernel_size, stride, padding, 1, 1)
        out = avg_pool2d(_F.unsqueeze(input, -2), (1,) + kernel, (1,) + stride, (0,) + padding, ceil_mode,
                         count_include_pad)
        return _F.squeeze(out, -2)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "avg_pool1d", "input kernel_size", input, kernel_size)


def _adaptive_size(output_size, shape):
    """``output_size`` (an int, or one entry per extent of ``shape``, None keeping that extent) as ints."""
    n = len(shape)
    if output_size is None or isinstance(output_size, (int, np.integer)):
        sizes = (output_size,) * n
    else:
        sizes = tuple(output_size)
        if len(sizes) == 1:
            sizes = sizes * n
        if len(sizes) != n:
            raise RuntimeError(f"adaptive pooling: output_size must be {n} values, got {list(sizes)}")
    return tuple(shape[i] if s is None else int(s) for i, s in enumerate(sizes))


def adaptive_avg_pool2d(input, output_size):
    """Average pooling of ``(N, C, H, W)`` or ``(C, H, W)`` input to ``output_size`` (an int, or a pair whose
    entries may be None to keep that extent); window i spans ``[floor(i*H/out), ceil((i+1)*H/out))``.

    >>> import dtorch
    >>> adaptive_avg_pool2d(dtorch.ones(2, 3, 7, 5), (2, None)).shape
    dtorch.Size([2, 3, 2, 5])
    """
    try:
        _check_rank(input, (3, 4), "adaptive_avg_pool2d")
        _F._check_float(input, "adaptive_avg_pool2d")
        if 0 in input._array.shape[-2:]:
            raise RuntimeError(
                f"adaptive_avg_pool2d(): Expected input to have non-zero size for non-batch dimensions, but input has "
                f"sizes {_shape_text(input)} with dimension {list(input._array.shape).index(0)} being empty"
            )
        size = _adaptive_size(output_size, input._array.shape[-2:])
        return _conv.AdaptiveAvgPool2d.apply(input, output_size=size)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "adaptive_avg_pool2d", "input", input)


def adaptive_avg_pool1d(input, output_size):
    """Average pooling of ``(N, C, L)`` or ``(C, L)`` input to ``output_size`` elements.

    >>> import dtorch
    >>> adaptive_avg_pool1d(dtorch.ones(2, 3, 7), 3).shape
    dtorch.Size([2, 3, 3])
    """
    try:
        _check_rank(input, (2, 3), "adaptive_avg_pool1d")
        _F._check_float(input, "adaptive_avg_pool1d")
        (size,) = _tuple(output_size, 1, "output_size")
        out = _conv.AdaptiveAvgPool2d.apply(_F.unsqueeze(input, -2), output_size=(1, size))
        return _F.squeeze(out, -2)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "adaptive_avg_pool1d", "input", input)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max pooling of ``(N, C, H, W)`` or ``(C, H, W)`` input to ``output_size`` (None keeps an extent), with
    PyTorch's adaptive window bounds; ``return_indices`` also gives each maximum's flat ``H * W`` index.

    >>> import dtorch
    >>> adaptive_max_pool2d(dtorch.arange(16.).reshape(1, 4, 4), 1)
    tensor([[[15.]]])
    """
    try:
        _check_rank(input, (3, 4), "adaptive_max_pool2d")
        size = _adaptive_size(output_size, input._array.shape[-2:])
        h, w = input._array.shape[-2:]
        if h % size[0] == 0 and w % size[1] == 0 and input._array.ndim == 4:
            kernel = (h // size[0], w // size[1])
            result = _max_pool(input, kernel, kernel, (0, 0), (1, 1), False, return_indices)
            return result if return_indices else result[0]
        out, indices = _conv.AdaptiveMaxPool2d.apply(input, output_size=size)
        return (out, indices) if return_indices else out
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "adaptive_max_pool2d", "input", input)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Max pooling of ``(N, C, L)`` or ``(C, L)`` input to ``output_size`` elements.

    >>> import dtorch
    >>> adaptive_max_pool1d(dtorch.tensor([[1., 5., 2., 0., 3.]]), 2)
    tensor([[5., 3.]])
    """
    try:
        _check_rank(input, (2, 3), "adaptive_max_pool1d")
        (size,) = _tuple(output_size, 1, "output_size")
        out, indices = _conv.AdaptiveMaxPool2d.apply(_F.unsqueeze(input, -2), output_size=(1, size))
        out, indices = _F.squeeze(out, -2), _F.squeeze(indices, -2)
        return (out, indices) if return_indices else out
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "adaptive_max_pool1d", "input", input)


_LINEAR_MODES = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None,
                antialias=False):
    """Resize the spatial dimensions of ``(N, C, *spatial)`` input to ``size`` or by ``scale_factor``.

    Modes: ``'nearest'``, ``'nearest-exact'``, ``'linear'`` (3-D), ``'bilinear'`` and ``'bicubic'`` (4-D; Keys'
    cubic with ``A = -0.75`` as PyTorch's, values may overshoot the input's range), ``'trilinear'`` (5-D) and
    ``'area'`` (adaptive average pooling); ``align_corners`` for the interpolating modes. dtorch does not
    implement ``antialias=True`` (NotImplementedError).

    >>> import dtorch
    >>> interpolate(dtorch.ones(1, 2, 3, 4), scale_factor=2, mode='bilinear').shape
    dtorch.Size([1, 2, 6, 8])
    """
    try:
        ndim = input._array.ndim
        spatial = ndim - 2
        if spatial < 1:
            raise ValueError("interpolate: expected input of at least 3 dimensions (N, C, *), got "
                             f"{_shape_text(input)}")
        if mode in _LINEAR_MODES and _LINEAR_MODES[mode] != spatial:
            raise NotImplementedError(
                f"Got {ndim}D input, but {mode} mode needs {_LINEAR_MODES[mode] + 2}D input"
            )
        if mode not in ("nearest", "nearest-exact", "area") and mode not in _LINEAR_MODES:
            raise NotImplementedError(f"interpolate: mode '{mode}' is not supported by dtorch")
        if antialias:
            raise NotImplementedError("interpolate: antialias=True is not supported by dtorch")
        if mode != "nearest":
            _F._check_float(input, f"upsample_{mode}")
        if align_corners is not None and mode not in _LINEAR_MODES:
            raise ValueError(
                "align_corners option can only be set with the interpolating modes: linear | bilinear | "
                "bicubic | trilinear"
            )
        if (size is None) == (scale_factor is None):
            raise ValueError("either size or scale_factor should be defined" if size is None else
                             "only one of size or scale_factor should be defined")
        in_sizes = input._array.shape[2:]
        scales = None
        if size is not None:
            out_sizes = _tuple(size, spatial, "size")
        else:
            factors = tuple(float(f) for f in (scale_factor if isinstance(scale_factor, (list, tuple))
                                               else [scale_factor] * spatial))
            if len(factors) != spatial:
                raise ValueError("Input and scale_factor must have the same number of spatial "
                                 "dimensions, but got input "
                                 f"with spatial dimensions of {list(in_sizes)} and scale_factor of shape "
                                 f"{list(factors)}.")
            out_sizes = tuple(int(math.floor(s * f)) for s, f in zip(in_sizes, factors))
            if not recompute_scale_factor:
                scales = tuple(1.0 / f for f in factors)
        if mode == "area":
            if spatial == 1:
                return adaptive_avg_pool1d(input, out_sizes)
            if spatial == 2:
                return adaptive_avg_pool2d(input, out_sizes)
            raise NotImplementedError("interpolate: mode 'area' supports 3-D and 4-D input in dtorch")
        if mode in _LINEAR_MODES and align_corners:
            scales = None
        return _conv.Resample.apply(input, out_sizes=out_sizes, mode=mode, align_corners=bool(align_corners),
                                    scales=scales)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "interpolate", "input", input)


# ======================================================================================================================
# normalisation


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-05):
    """Batch normalisation over every axis but the channel axis 1 of ``(N, C, *)`` input.

    With ``training=True`` the batch statistics normalise and ``running_mean``/``running_var`` (when given) are
    updated in place: ``running = (1 - momentum) * running + momentum * batch`` (the unbiased variance). Otherwise
    the running statistics normalise.

    >>> import dtorch
    >>> x = dtorch.randn(8, 3); rm, rv = dtorch.zeros(3), dtorch.ones(3)
    >>> y = batch_norm(x, rm, rv, training=True)
    >>> bool(rm.abs().sum() > 0)
    True
    """
    try:
        if input._array.ndim < 2:
            raise ValueError(f"expected 2D or higher input (got {input._array.ndim}D input)")
        c = input._array.shape[1]
        for name, t_ in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                         ("bias", bias)):
            if t_ is not None and t_._array.size != c:
                raise RuntimeError(f"{name} should contain {c} elements not {t_._array.size}")
        use_batch = training or running_mean is None or running_var is None
        if training and input._array.size // max(c, 1) <= 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size {Size(input.shape)!r}"
                .replace("dtorch.Size", "torch.Size")
            )
        if input._array.dtype is _BFLOAT16:
            return _batch_norm_reduced(input, running_mean, running_var, weight, bias, training, momentum, eps)
        _F._check_float(input, "batch_norm")
        if weight is not None and weight._array.dtype is not input._array.dtype and input._array.dtype == np.float16 \
                and weight._array.dtype == np.float32:  # a float16 input beside float32 parameters (autocast): allowed
            return _batch_norm_reduced(input, running_mean, running_var, weight, bias, training, momentum, eps)
        _same_dtype("batch_norm", input, weight, bias)
        out, mean, var = _norm.BatchNorm.apply(
            input, weight, bias,
            None if use_batch else running_mean, None if use_batch else running_var,
            training=bool(use_batch), eps=float(eps),
        )
        if training:
            if momentum is None:
                raise TypeError("batch_norm: momentum=None (cumulative average) is handled by the module; pass a float")
            for buffer, stat in ((running_mean, mean), (running_var, var)):
                if buffer is not None:
                    data = buffer._array
                    data *= 1 - momentum
                    data += (momentum * stat._array).astype(data.dtype, copy=False)
                    buffer._bump_version()
        return out
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "batch_norm", "input running_mean running_var weight bias",
                      input, running_mean, running_var, weight, bias)


def _batch_norm_reduced(input, running_mean, running_var, weight, bias, training, momentum, eps):
    """``batch_norm`` of a bfloat16 or float16 input as PyTorch's CPU kernel: statistics in float32, the output
    rounded once to the input's dtype; the parameters and running statistics may be in the input's dtype or float32
    (autocast leaves a BatchNorm's float32)."""
    float32 = np.dtype(np.float32)
    stats = [None if s is None else (s if s._array.dtype == float32 else _F._cast(s.detach(), float32))
             for s in (running_mean, running_var)]
    low = input._array.dtype
    cast = tuple(None if t_ is None else _F._cast(t_, float32) for t_ in (input, weight, bias))
    out = _F._cast(batch_norm(cast[0], stats[0], stats[1], cast[1], cast[2], training, momentum, eps), low)
    for buffer, updated in zip((running_mean, running_var), stats):
        if training and buffer is not None and updated is not buffer:  # a bfloat16 buffer: the update written back
            buffer._array[...] = updated._array.astype(buffer._array.dtype)
            buffer._bump_version()
    return out


def _normalized_shape(input, normalized_shape):
    """``normalized_shape`` as a tuple of ints, checked against the input's trailing dimensions (layer/RMS norm)."""
    shape = (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) else tuple(
        int(s) for s in normalized_shape)
    k = len(shape)
    if k == 0 or input._array.ndim < k or tuple(input._array.shape[input._array.ndim - k:]) != shape:
        raise RuntimeError(
            f"Given normalized_shape={list(shape)}, expected input with shape [*, {', '.join(map(str, shape))}], "
            f"but got input of size{_shape_text(input)}"
        )
    return shape


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-05):
    """Normalise over the trailing ``normalized_shape`` axes, then scale by ``weight`` and shift by ``bias``.

    >>> import dtorch
    >>> y = layer_norm(dtorch.randn(4, 10), (10,))
    >>> bool(y.mean(-1).abs().max() < 1e-5)
    True
    """
    try:
        shape = _normalized_shape(input, normalized_shape)
        k = len(shape)
        for name, t_ in (("weight", weight), ("bias", bias)):
            if t_ is not None and tuple(t_._array.shape) != shape:
                raise RuntimeError(
                    f"Expected {name} to be of same shape as normalized_shape, but got {name} of shape "
                    f"{_shape_text(t_)} and normalized_shape = {list(shape)}"
                )
        if _AUTOCAST.active:  # float32 under CUDA autocast, as PyTorch
            input, weight, bias = _F._autocast_float32((input, weight, bias), ("cuda",))
        if input._array.dtype is _BFLOAT16:  # computed in float32, rounded once (PyTorch's CPU kernel)
            return _F._tensors_in_float32(lambda x, w, b: layer_norm(x, normalized_shape, w, b, eps),
                                          (input, weight, bias))
        _F._check_float(input, "layer_norm")
        _same_dtype("layer_norm", input, weight, bias)
        return _norm.LayerNorm.apply(input, weight, bias, normalized_ndim=k, eps=float(eps))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "layer_norm", "input normalized_shape weight bias",
                      input, normalized_shape, weight, bias)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-05):
    """Normalise each sample over groups of ``C // num_groups`` channels, then scale and shift per channel.

    >>> import dtorch
    >>> group_norm(dtorch.randn(2, 6, 4, 4), 3).shape
    dtorch.Size([2, 6, 4, 4])
    """
    try:
        if input._array.ndim < 2:
            raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received {input._array.ndim}")
        c = input._array.shape[1]
        if num_groups <= 0 or c % num_groups != 0:
            raise RuntimeError(
                f"Expected number of channels in input to be divisible by num_groups, but got input of shape "
                f"{_shape_text(input)} and num_groups={num_groups}"
            )
        for name, t_ in (("weight", weight), ("bias", bias)):
            if t_ is not None and tuple(t_._array.shape) != (c,):
                raise RuntimeError(
                    f"Expected {name} to be a vector of size equal to the number of channels in input, but got {name} "
                    f"of shape {_shape_text(t_)} and input of shape {_shape_text(input)}"
                )
        if _AUTOCAST.active:  # float32 under CUDA autocast, as PyTorch
            input, weight, bias = _F._autocast_float32((input, weight, bias), ("cuda",))
        if input._array.dtype is _BFLOAT16:  # computed in float32, rounded once (PyTorch's CPU kernel)
            return _F._tensors_in_float32(lambda x, w, b: group_norm(x, num_groups, w, b, eps), (input, weight, bias))
        _F._check_float(input, "group_norm")
        _same_dtype("group_norm", input, weight, bias)
        return _norm.GroupNorm.apply(input, weight, bias, num_groups=int(num_groups), eps=float(eps))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "group_norm", "input num_groups weight bias", input, num_groups, weight, bias)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-05):
    """Normalise each channel of each sample of ``(N, C, *)`` input over its spatial extent.

    With ``use_input_stats`` the per-instance statistics normalise and the running buffers (if given) move towards
    their mean over the batch; otherwise the running statistics normalise (as ``batch_norm`` in eval mode).

    >>> import dtorch
    >>> instance_norm(dtorch.randn(2, 3, 8)).shape
    dtorch.Size([2, 3, 8])
    """
    try:
        if input._array.ndim < 3:
            raise ValueError("instance_norm: expected input of at least 3 dimensions (N, C, *), got "
                             f"{_shape_text(input)}")
        if not use_input_stats:
            return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
        n, c = input._array.shape[:2]
        if input._array[0, 0].size <= 1:
            raise ValueError(
                f"Expected more than 1 spatial element when training, got input size {list(input._array.shape)}"
            )
        merged = _F.reshape(input, (1, n * c) + input._array.shape[2:])
        out, mean, var = _norm.BatchNorm.apply(merged, None, None, None, None, training=True, eps=float(eps))
        out = _F.reshape(out, input._array.shape)
        shape = (1, c) + (1,) * (input._array.ndim - 2)
        if weight is not None:
            out = _F.mul(out, _F.reshape(weight, shape))
        if bias is not None:
            out = _F.add(out, _F.reshape(bias, shape))
        for buffer, stat in ((running_mean, mean), (running_var, var)):
            if buffer is not None:
                data = buffer._array
                data *= 1 - momentum
                data += (momentum * stat._array.reshape(n, c).mean(axis=0)).astype(data.dtype, copy=False)
                buffer._bump_version()
        return out
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "instance_norm", "input running_mean running_var weight bias",
                      input, running_mean, running_var, weight, bias)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """``x / sqrt(mean(x**2) + eps) * weight`` over the trailing ``normalized_shape`` axes; ``eps`` defaults to
    the dtype's machine epsilon.

    >>> import dtorch
    >>> rms_norm(dtorch.ones(2, 4), (4,))
    tensor([[1., 1., 1., 1.],
            [1., 1., 1., 1.]])
    """
    try:
        shape = _normalized_shape(input, normalized_shape)
        k = len(shape)
        if eps is None:
            eps = float(np.finfo(input._array.dtype).eps)
        dims = tuple(range(input._array.ndim - k, input._array.ndim))
        out = _F.mul(input, _F.rsqrt(_F.add(_F.mean(_F.mul(input, input), dims, keepdim=True), eps)))
        return out if weight is None else _F.mul(out, weight)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "rms_norm", "input normalized_shape weight eps", input, normalized_shape, weight, eps)


# ======================================================================================================================
# dropout


def _check_p(p):
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _dropout_mask(input, p, shape):
    """``keep / (1 - p)`` drawn from dtorch's default generator, on the input's device."""
    rng = _random.numpy_generator()
    keep = rng.random(shape, dtype=np.float32) >= p
    mask = keep.astype(input._array.dtype) * input._array.dtype.type(1.0 / (1.0 - p))
    if _backend.is_cupy_array(input._array):
        mask = _backend.to_device(mask, input.device)
    return _new(mask, None)


def _apply_mask(input, p, shape, inplace):
    if p == 1.0:
        mask = _new(_backend.xp_of(input._array).zeros(shape, dtype=input._array.dtype), None)
    else:
        mask = _dropout_mask(input, p, shape)
    if inplace:
        return _inplace(input, lambda x: _F.mul(x, mask))
    return _F.mul(input, mask)


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``; identity unless training.

    The mask comes from dtorch's default generator (``dtorch.manual_seed`` governs it), not PyTorch's.

    >>> import dtorch
    >>> _ = dtorch.manual_seed(0)
    >>> y = dropout(dtorch.ones(1000), 0.5)
    >>> sorted(set(y.tolist()))
    [0.0, 2.0]
    """
    try:
        _check_p(p)
        if not training or p == 0.0:
            if not isinstance(input, Tensor):  # the identity still takes Tensors only, as PyTorch's
                _raise_not_a_tensor("dropout", "input", 1, input)
            return input
        return _apply_mask(input, p, input._array.shape, inplace)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "dropout", "input", input)


def _feature_dropout(input, p, training, inplace, batched_ndim, name):
    _check_p(p)
    ndim = input._array.ndim
    if ndim not in (batched_ndim - 1, batched_ndim):
        raise RuntimeError(
            f"{name}: Expected {batched_ndim - 1}D or {batched_ndim}D input, but received a {ndim}D input of size "
            f"{_shape_text(input)}"
        )
    if not training or p == 0.0:
        return input
    channel_axes = 2 if ndim == batched_ndim else 1
    shape = input._array.shape[:channel_axes] + (1,) * (ndim - channel_axes)
    return _apply_mask(input, p, shape, inplace)


def dropout1d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of ``(N, C, L)`` or ``(C, L)`` input with probability ``p``.

    >>> import dtorch
    >>> dropout1d(dtorch.ones(2, 3, 4), training=False).shape
    dtorch.Size([2, 3, 4])
    """
    try:
        return _feature_dropout(input, p, training, inplace, 3, "dropout1d")
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "dropout1d", "input", input)


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of ``(N, C, H, W)`` input with probability ``p`` (3-D input: channels of ``(N, C, L)``,
    as PyTorch does after its warning).

    >>> import dtorch
    >>> dropout2d(dtorch.ones(2, 3, 4, 4), training=False).shape
    dtorch.Size([2, 3, 4, 4])
    """
    try:
        _check_p(p)
        if input._array.ndim not in (3, 4):
            raise RuntimeError(f"dropout2d: Expected 3D or 4D input, but received a {input._array.ndim}D input")
        if not training or p == 0.0:
            return input
        shape = input._array.shape[:2] + (1,) * (input._array.ndim - 2)
        return _apply_mask(input, p, shape, inplace)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "dropout2d", "input", input)


def dropout3d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input with probability ``p``.

    >>> import dtorch
    >>> dropout3d(dtorch.ones(2, 3, 2, 2, 2), training=False).shape
    dtorch.Size([2, 3, 2, 2, 2])
    """
    try:
        return _feature_dropout(input, p, training, inplace, 5, "dropout3d")
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "dropout3d", "input", input)


# ======================================================================================================================
# embedding


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False):
    """Rows of ``weight`` at the integer indices ``input``; row ``padding_idx`` receives no gradient.

    ``max_norm`` renormalises the looked-up rows of ``weight`` in place, as PyTorch does. dtorch differs in that
    ``scale_grad_by_freq=True`` raises NotImplementedError and ``sparse=True`` still gives a dense gradient.

    >>> import dtorch
    >>> embedding(dtorch.tensor([[0, 2]]), dtorch.eye(3)).tolist()
    [[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]]
    """
    try:
        if input._array.dtype.kind not in "iu":
            raise RuntimeError(
                "Expected tensor for argument #1 'indices' to have one of the following scalar types: "
                "Long, Int; but got "
                f"{input.dtype} instead (while checking arguments for embedding)"
            )
        if weight._array.ndim != 2:
            raise RuntimeError(f"'weight' must be 2-D, got weight of size {_shape_text(weight)}")
        rows = weight._array.shape[0]
        if padding_idx is not None:
            if padding_idx >= rows or padding_idx < -rows:
                raise AssertionError("Padding_idx must be within num_embeddings")
            if padding_idx < 0:
                padding_idx += rows
            padding_idx = int(padding_idx)
        if scale_grad_by_freq:
            raise NotImplementedError("embedding: scale_grad_by_freq=True is not supported by dtorch")
        if input._array.size:
            low, high = int(input._array.min()), int(input._array.max())
            if low < 0 or high >= rows:
                raise IndexError(f"index out of range in self (index {low if low < 0 else high}, {rows} embeddings)")
        if max_norm is not None:
            _embedding_renorm(weight, input, float(max_norm), float(norm_type))
        return _nn.Embedding.apply(input, weight, padding_idx=padding_idx)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "embedding", "weight indices", weight, input)


def _embedding_renorm(weight, input, max_norm, norm_type):
    xp = _backend.xp_of(weight._array)
    index = xp.unique(input._array.reshape(-1))
    rows = weight._array[index]
    norms = (xp.abs(rows) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
    scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(weight._array.dtype)
    weight._array[index] = rows * scale[:, None]
    weight._bump_version()


# ======================================================================================================================
# activations


def relu(input, inplace=False):
    """``max(x, 0)`` (the op behind ``dtorch.relu`` and ``Tensor.relu``).

    >>> import dtorch
    >>> relu(dtorch.tensor([-1., 2.]))
    tensor([0., 2.])
    """
    try:
        if inplace:
            return input.relu_()
        return _E.Relu.apply(input)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "relu", "input", input)


def relu_(input):
    """In-place ``relu``.

    >>> import dtorch
    >>> relu_(dtorch.tensor([-1., 2.]))
    tensor([0., 2.])
    """
    try:
        return input.relu_()
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "relu_", "input", input)


def relu6(input, inplace=False):
    """``min(max(x, 0), 6)``.

    >>> import dtorch
    >>> relu6(dtorch.tensor([-1., 7.]))
    tensor([0., 6.])
    """
    try:
        return hardtanh(input, 0.0, 6.0, inplace)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "relu6", "input", input)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """Clamp to ``[min_val, max_val]``; the gradient passes strictly inside.

    >>> import dtorch
    >>> hardtanh(dtorch.tensor([-2., 0.5]))
    tensor([-1.0000,  0.5000])
    """
    try:
        if min_val > max_val:
            raise ValueError("min_val cannot be greater than max_val")

        def compute(x):
            return _nn.Hardtanh.apply(x, min_val=float(min_val), max_val=float(max_val))

        return _inplace(input, compute) if inplace else compute(input)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "hardtanh", "input", input)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """``x`` where positive, ``negative_slope * x`` elsewhere.

    >>> import dtorch
    >>> leaky_relu(dtorch.tensor([-1., 2.]), 0.1)
    tensor([-0.1000,  2.0000])
    """
    try:
        def compute(x):
            return _nn.LeakyRelu.apply(x, negative_slope=float(negative_slope))

        return _inplace(input, compute) if inplace else compute(input)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "leaky_relu", "input", input)


def _elu_family(input, alpha, scale, input_scale, inplace):
    def compute(x):
        if x._array.dtype is _BFLOAT16:  # exp(x) - 1 cancels: PyTorch computes in float32 and rounds once
            return _F._in_float32(compute, x)
        return _nn.Elu.apply(x, alpha=float(alpha), scale=float(scale), input_scale=float(input_scale))

    return _inplace(input, compute) if inplace else compute(input)


def elu(input, alpha=1.0, inplace=False):
    """``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere.

    >>> import dtorch
    >>> elu(dtorch.tensor([0., 1.]))
    tensor([0., 1.])
    """
    try:
        return _elu_family(input, alpha, 1.0, 1.0, inplace)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "elu", "input", input)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input, inplace=False):
    """``scale * elu(x, alpha)`` with SELU's fixed constants.

    >>> import dtorch
    >>> selu(dtorch.tensor([0.]))
    tensor([0.])
    """
    try:
        return _elu_family(input, _SELU_ALPHA, _SELU_SCALE, 1.0, inplace)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "selu", "input", input)


def celu(input, alpha=1.0, inplace=False):
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``.

    >>> import dtorch
    >>> celu(dtorch.tensor([0.]))
    tensor([0.])
    """
    try:
        return _elu_family(input, alpha, 1.0, 1.0 / alpha, inplace)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "celu", "input", input)


def gelu(input, approximate="none"):
    """``x * Φ(x)``; ``approximate='tanh'`` uses the tanh approximation.

    >>> import dtorch
    >>> gelu(dtorch.tensor([0.]))
    tensor([0.])
    """
    try:
        return _F.gelu(input, approximate=approximate)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "gelu", "input", input)


def silu(input, inplace=False):
    """``x * sigmoid(x)``.

    >>> import dtorch
    >>> silu(dtorch.tensor([0.]))
    tensor([0.])
    """
    try:
        if inplace:
            return _inplace(input, _F.silu)
        return _F.silu(input)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "silu", "input", input)


def mish(input, inplace=False):
    """``x * tanh(softplus(x))``.

    >>> import dtorch
    >>> mish(dtorch.tensor([0.]))
    tensor([0.])
    """
    try:
        def compute(x):
            return _F.mul(x, _F.tanh(_F.softplus(x)))

        return _inplace(input, compute) if inplace else compute(input)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "mish", "input", input)


def sigmoid(input):
    """``1 / (1 + exp(-x))``, stable for large ``|x|``.

    >>> import dtorch
    >>> sigmoid(dtorch.tensor([0.]))
    tensor([0.5000])
    """
    try:
        return _F.sigmoid(input)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "sigmoid", "input", input)


def tanh(input):
    """Hyperbolic tangent.

    >>> import dtorch
    >>> tanh(dtorch.tensor([0.]))
    tensor([0.])
    """
    try:
        return _F.tanh(input)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "tanh", "input", input)


def softplus(input, beta=1.0, threshold=20.0):
    """``log(1 + exp(beta * x)) / beta``, linear where ``beta * x > threshold``.

    >>> import dtorch
    >>> softplus(dtorch.tensor([30.]))
    tensor([30.])
    """
    try:
        return _F.softplus(input, beta, threshold)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "softplus", "input", input)


def logsigmoid(input):
    """``log(sigmoid(x)) = -softplus(-x)``.

    >>> import dtorch
    >>> logsigmoid(dtorch.tensor([0.]))
    tensor([-0.6931])
    """
    try:
        return _F.neg(_F.softplus(_F.neg(input)))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "logsigmoid", "input", input)


def hardsigmoid(input, inplace=False):
    """``relu6(x + 3) / 6``.

    >>> import dtorch
    >>> hardsigmoid(dtorch.tensor([0.]))
    tensor([0.5000])
    """
    try:
        def compute(x):
            return _F.div(_nn.Hardtanh.apply(_F.add(x, 3.0), min_val=0.0, max_val=6.0), 6.0)

        return _inplace(input, compute) if inplace else compute(input)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "hardsigmoid", "input", input)


def hardswish(input, inplace=False):
    """``x * relu6(x + 3) / 6``.

    >>> import dtorch
    >>> hardswish(dtorch.tensor([0.]))
    tensor([0.])
    """
    try:
        def compute(x):
            return _F.mul(x, hardsigmoid(x))

        return _inplace(input, compute) if inplace else compute(input)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "hardswish", "input", input)


def softsign(input):
    """``x / (1 + |x|)``.

    >>> import dtorch
    >>> softsign(dtorch.tensor([1.]))
    tensor([0.5000])
    """
    try:
        return _F.div(input, _F.add(_F.abs(input), 1.0))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "softsign", "input", input)


def tanhshrink(input):
    """``x - tanh(x)``.

    >>> import dtorch
    >>> tanhshrink(dtorch.tensor([0.]))
    tensor([0.])
    """
    try:
        return _F.sub(input, _F.tanh(input))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "tanhshrink", "input", input)


def threshold(input, threshold, value, inplace=False):
    """``x`` where ``x > threshold``, else ``value``.

    >>> import dtorch
    >>> threshold(dtorch.tensor([0.5, 2.]), 1.0, -1.0)
    tensor([-1.,  2.])
    """
    try:
        def compute(x):
            return _F.where(_F.gt(x, threshold), x, float(value))

        return _inplace(input, compute) if inplace else compute(input)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "threshold", "input threshold", input, threshold)


def glu(input, dim=-1):
    """``a * sigmoid(b)`` where ``a, b`` are the halves of ``input`` along ``dim``.

    >>> import dtorch
    >>> glu(dtorch.ones(2, 4)).shape
    dtorch.Size([2, 2])
    """
    try:
        size = input._array.shape[_wrap_dim(dim, input._array.ndim)]
        if size % 2:
            raise RuntimeError(f"Halving dimension must be even, but dimension {dim} is size {size}")
        a, b = _F.chunk(input, 2, dim)
        return _F.mul(a, _F.sigmoid(b))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "glu", "input", input)


def prelu(input, weight):
    """``x`` where positive, ``weight * x`` elsewhere; ``weight`` has one entry or one per channel (dim 1).

    >>> import dtorch
    >>> prelu(dtorch.tensor([[-1., 2.]]), dtorch.tensor([0.25]))
    tensor([[-0.2500,  2.0000]])
    """
    try:
        if weight._array.size != 1:
            channels = (input._array.shape[1] if input._array.ndim >= 2
                        else input._array.shape[0] if input._array.ndim else 1)
            if weight._array.size != channels:
                raise RuntimeError(
                    "Mismatch of parameter numbers and input channel size. Found parameter numbers = "
                    f"{weight._array.size} "
                    f"and channel size = {channels}."
                )
            if input._array.ndim >= 2:
                weight = _F.reshape(weight, (channels,) + (1,) * (input._array.ndim - 2))
        elif weight._array.ndim:
            weight = _F.reshape(weight, ())
        return _F.where(_F.gt(input, 0), input, _F.mul(input, weight))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "prelu", "input weight", input, weight)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    """Leaky ReLU whose negative slope is drawn uniformly from ``[lower, upper]`` per element when training
    (from dtorch's generator) and is ``(lower + upper) / 2`` otherwise.

    >>> import dtorch
    >>> rrelu(dtorch.tensor([-1., 2.]), 0.1, 0.3)
    tensor([-0.2000,  2.0000])
    """
    try:
        if not training:
            return leaky_relu(input, (lower + upper) / 2, inplace)
        slopes = _random.numpy_generator().uniform(lower, upper, size=input._array.shape).astype(input._array.dtype)
        if _backend.is_cupy_array(input._array):
            slopes = _backend.to_device(slopes, input.device)
        slope_tensor = _new(slopes, None)

        def compute(x):
            return _F.where(_F.ge(x, 0), x, _F.mul(x, slope_tensor))

        return _inplace(input, compute) if inplace else compute(input)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "rrelu", "input", input)


def hardshrink(input, lambd=0.5):
    """``x`` where ``|x| > lambd``, else 0.

    >>> import dtorch
    >>> hardshrink(dtorch.tensor([-1., 0.2]))
    tensor([-1.,  0.])
    """
    try:
        return _F.where(_F.gt(_F.abs(input), lambd), input, 0.0)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "hardshrink", "input", input)


def softshrink(input, lambd=0.5):
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, else 0.

    >>> import dtorch
    >>> softshrink(dtorch.tensor([-1., 0.2, 2.]))
    tensor([-0.5000,  0.0000,  1.5000])
    """
    try:
        shrunk = _F.sub(input, _F.mul(_F.sign(input), lambd))
        return _F.where(_F.gt(_F.abs(input), lambd), shrunk, 0.0)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "softshrink", "input", input)


def elu_(input, alpha=1.0):
    """In-place ``elu``.

    >>> import dtorch
    >>> elu_(dtorch.tensor([1.]))
    tensor([1.])
    """
    try:
        return elu(input, alpha, inplace=True)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "elu_", "input", input)


def leaky_relu_(input, negative_slope=0.01):
    """In-place ``leaky_relu``.

    >>> import dtorch
    >>> leaky_relu_(dtorch.tensor([-1.]), 0.5)
    tensor([-0.5000])
    """
    try:
        return leaky_relu(input, negative_slope, inplace=True)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "leaky_relu_", "input", input)


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    """In-place ``hardtanh``.

    >>> import dtorch
    >>> hardtanh_(dtorch.tensor([3.]))
    tensor([1.])
    """
    try:
        return hardtanh(input, min_val, max_val, inplace=True)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "hardtanh_", "input", input)


def threshold_(input, threshold_value, value):
    """In-place ``threshold`` (``threshold_value`` is PyTorch's ``threshold``, renamed not to hide the function).

    >>> import dtorch
    >>> threshold_(dtorch.tensor([0.5]), 1.0, 0.0)
    tensor([0.])
    """
    try:
        return threshold(input, threshold_value, value, inplace=True)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "threshold_", "input threshold_value", input, threshold_value)


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False):
    """In-place ``rrelu``.

    >>> import dtorch
    >>> rrelu_(dtorch.tensor([2.]))
    tensor([2.])
    """
    return rrelu(input, lower, upper, training, inplace=True)


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """``exp(x) / sum(exp(x))`` along ``dim``: ``dtorch.functional.softmax`` (the one path; this keeps
    ``nn.functional``'s signature, whose ``_stacklevel`` is accepted and unused).

    >>> import dtorch
    >>> softmax(dtorch.tensor([[0., 0.]]), dim=1)
    tensor([[0.5000, 0.5000]])
    """
    try:
        return _F.softmax(input, dim, dtype=dtype)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "softmax", "input", input)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """``x - logsumexp(x)`` along ``dim``: ``dtorch.functional.log_softmax`` under ``nn.functional``'s signature.

    >>> import dtorch
    >>> log_softmax(dtorch.tensor([0., 0.]), dim=0)
    tensor([-0.6931, -0.6931])
    """
    try:
        return _F.log_softmax(input, dim, dtype=dtype)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "log_softmax", "input", input)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    """``softmax(-x)`` along ``dim``.

    >>> import dtorch
    >>> softmin(dtorch.tensor([0., 0.]), dim=0)
    tensor([0.5000, 0.5000])
    """
    try:
        return _F._softmax_like(_nn.Softmax, "softmin", _F.neg(input), dim, dtype)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "softmin", "input", input)


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """``x / max(||x||_p, eps)`` along ``dim``.

    >>> import dtorch
    >>> normalize(dtorch.tensor([[3., 4.]]))
    tensor([[0.6000, 0.8000]])
    """
    try:
        norm = _F.clamp(_F.norm(input, p, dim, keepdim=True), min=eps)
        return _F.div(input, norm)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "normalize", "input", input)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """``x1 . x2 / max(||x1|| * ||x2||, eps)`` along ``dim``.

    >>> import dtorch
    >>> cosine_similarity(dtorch.tensor([[1., 0.]]), dtorch.tensor([[1., 0.]]))
    tensor([1.])
    """
    try:
        dot = _F.sum(_F.mul(x1, x2), dim)
        norms = _F.mul(_F.norm(x1, 2, dim), _F.norm(x2, 2, dim))
        return _F.div(dot, _F.clamp(norms, min=eps))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "cosine_similarity", "x1 x2", x1, x2)


# ======================================================================================================================
# padding, one_hot, attention


def pad(input, pad, mode="constant", value=None):
    """Pad the last ``len(pad) // 2`` dimensions: ``pad = (left_last, right_last, left_2nd_last, ...)``.

    Args:
        mode: ``'constant'`` (negative pads crop), ``'reflect'``, ``'replicate'`` or ``'circular'``.
        value: the fill for ``'constant'`` (0 by default).

    >>> import dtorch
    >>> pad(dtorch.tensor([[1., 2.]]), (1, 1), mode='reflect')
    tensor([[2., 1., 2., 1.]])
    """
    try:
        pad = tuple(int(p) for p in pad)
        ndim = input._array.ndim
        if len(pad) % 2:
            raise RuntimeError("Padding length must be divisible by 2")
        if len(pad) // 2 > ndim:
            raise RuntimeError(
                f"Padding length should be less than or equal to two times the input dimension but got padding length "
                f"{len(pad)} and input of dimension {ndim}"
            )
        pads = [(0, 0)] * ndim
        for i in range(len(pad) // 2):
            pads[ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
        pads = tuple(pads)
        if mode == "constant":
            for axis, (before, after) in enumerate(pads):
                if input._array.shape[axis] + before + after < 0:
                    raise RuntimeError(
                        f"The input size {input._array.shape[axis]}, plus negative padding {before} and "
                        f"{after} resulted "
                        f"in a negative output size, which is invalid. Check dimension {axis} of your input."
                    )
            return _nn.ConstantPad.apply(input, pads=pads, value=0.0 if value is None else value)
        if mode not in ("reflect", "replicate", "circular"):
            raise NotImplementedError(f"Unsupported padding mode: {mode}")
        if value is not None and value != 0:
            raise ValueError(f"Padding mode \"{mode}\" doesn't take in value argument")
        n = len(pad) // 2
        if ndim not in (n + 1, n + 2):
            raise NotImplementedError(
                f"Only 2D, 3D, 4D, 5D padding with non-constant padding are supported for now (got a {ndim}D input and "
                f"{n} padded dimensions in mode '{mode}')"
            )
        for axis, (before, after) in enumerate(pads):
            size = input._array.shape[axis]
            if before < 0 or after < 0:
                raise RuntimeError(f"negative padding is only supported in constant mode, got {pad}")
            if mode == "reflect" and (before >= size or after >= size) and (before or after):
                raise RuntimeError(
                    "Argument #4: Padding size should be less than the corresponding input dimension, "
                    "but got: padding "
                    f"({before}, {after}) at dimension {axis} of input {_shape_text(input)}"
                )
            if mode == "circular" and (before > size or after > size):
                raise RuntimeError("Padding value causes wrapping around more than once.")
        return _nn.IndexPad.apply(input, pads=pads, mode=mode)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "pad", "input", input)


def one_hot(tensor, num_classes=-1):
    """Integer class indices to a one-hot int64 tensor with one more (last) dimension of ``num_classes``.

    >>> import dtorch
    >>> one_hot(dtorch.tensor([0, 2]), 3)
    tensor([[1, 0, 0],
            [0, 0, 1]])
    """
    try:
        data = tensor._array
        if data.dtype != np.int64:
            raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
        xp = _backend.xp_of(data)
        if num_classes == -1:
            if data.size == 0:
                raise RuntimeError("Can not infer total number of classes from empty tensor.")
            num_classes = int(data.max()) + 1
        if data.size:
            if int(data.min()) < 0:
                raise RuntimeError("Class values must be non-negative.")
            if int(data.max()) >= num_classes:
                raise RuntimeError("Class values must be smaller than num_classes.")
        return _new((data[..., None] == xp.arange(num_classes)).astype(np.int64), None)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "one_hot", "input", tensor)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    """``softmax(query @ key^T * scale + mask) @ value`` over the last two dimensions.

    Args:
        query: ``(..., L, E)``; key: ``(..., S, E)``; value: ``(..., S, Ev)``.
        attn_mask: bool (True = take part) or float (added to the scores), broadcastable to ``(..., L, S)``.
        dropout_p: dropout on the attention weights (always applied when > 0, as in PyTorch).
        is_causal: mask out future positions (the upper triangle); not with ``attn_mask``. A query whose every
            key is masked attends to nothing: its output and gradients are 0, as in PyTorch.
        scale: defaults to ``1 / sqrt(E)``. enable_gqa: key/value heads (dim -3) are repeated to match query's.

    >>> import dtorch
    >>> q = dtorch.randn(2, 4, 5, 8)
    >>> scaled_dot_product_attention(q, q, q, is_causal=True).shape
    dtorch.Size([2, 4, 5, 8])
    """
    try:
        if _AUTOCAST.active or query._array.dtype is _BFLOAT16 and not _AUTOCAST.inner:
            return _F._lower_precision(
                lambda q, k, v: scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal, scale,
                                                             enable_gqa),
                (query, key, value))
        if is_causal and attn_mask is not None:
            raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set "
                               "when is_causal=True")
        if query._array.shape[-1] != key._array.shape[-1]:
            raise RuntimeError(
                f"scaled_dot_product_attention: query and key must have the same embedding size, got query "
                f"{_shape_text(query)} and key {_shape_text(key)}"
            )
        if enable_gqa and query._array.ndim >= 3 and key._array.shape[-3] != query._array.shape[-3]:
            repeats = query._array.shape[-3] // key._array.shape[-3]
            key, value = _repeat_heads(key, repeats), _repeat_heads(value, repeats)
        scale = 1.0 / math.sqrt(query._array.shape[-1]) if scale is None else float(scale)
        dtype = query._array.dtype
        if key._array.dtype != dtype or value._array.dtype != dtype:
            raise RuntimeError(
                f"Expected query, key, and value to have the same dtype, but got query.dtype: {query.dtype} key.dtype: "
                f"{key.dtype} and value.dtype: {value.dtype} instead."
            )
        if attn_mask is not None:
            if attn_mask._array.dtype.kind == "f" and attn_mask._array.dtype != dtype:
                attn_mask = _F._cast(attn_mask, dtype)
            elif attn_mask._array.dtype.kind != "f" and attn_mask._array.dtype != np.bool_:
                raise RuntimeError(f"Expected attn_mask dtype to be bool or float or to match query dtype, but got "
                                   f"attn_mask.dtype: {attn_mask.dtype}")
        dropout_mask = None
        if dropout_p > 0.0:
            _check_p(dropout_p)
            batch = np.broadcast_shapes(query._array.shape[:-2], key._array.shape[:-2])
            shape = batch + (query._array.shape[-2], key._array.shape[-2])
            if attn_mask is not None:
                shape = np.broadcast_shapes(shape, attn_mask._array.shape)
            if dropout_p == 1.0:
                dropout_mask = _new(_backend.xp_of(query._array).zeros(shape, dtype=dtype), None)
            else:
                dropout_mask = _dropout_mask(query, dropout_p, shape)
        try:
            return _nn.ScaledDotProductAttention.apply(query, key, value, attn_mask, dropout_mask, scale=scale,
                                                       is_causal=bool(is_causal))
        except ValueError as error:
            raise RuntimeError(
                f"scaled_dot_product_attention: shapes do not broadcast: query {_shape_text(query)}, key "
                f"{_shape_text(key)}, value {_shape_text(value)}"
                + ("" if attn_mask is None else f", attn_mask {_shape_text(attn_mask)}") + f" ({error})"
            ) from None
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "scaled_dot_product_attention", "query key value attn_mask",
                      query, key, value, attn_mask)


def _repeat_heads(t_, repeats):
    shape = t_._array.shape
    expanded = _F.expand(_F.unsqueeze(t_, -3), shape[:-2] + (repeats,) + shape[-2:])
    return _F.reshape(expanded, shape[:-3] + (shape[-3] * repeats,) + shape[-2:])


# ======================================================================================================================
# losses

_REDUCTIONS = ("none", "mean", "sum")


def _legacy_reduction(size_average, reduce, reduction):
    """PyTorch's deprecated ``size_average``/``reduce`` pair mapped to a ``reduction`` string."""
    if size_average is None and reduce is None:
        return reduction
    _warn("size_average and reduce args will be deprecated, please use reduction='mean' instead.")
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def _check_reduction(reduction, allowed=_REDUCTIONS):
    if reduction not in allowed:
        raise ValueError(f"{reduction} is not a valid value for reduction")


def _as_operand(value, like):
    if isinstance(value, Tensor):
        return value
    return _F._constant(value, like)


def _promote(input, target):
    target = _as_operand(target, input)
    if input._array.dtype != target._array.dtype:
        input, target = _F._promote_pair(input, target)
    return input, target


def _warn_size(input, target):
    if input._array.shape != target._array.shape:
        _warn(
            f"Using a target size ({Size(target.shape)}) that is different to the input size ({Size(input.shape)}). "
            "This will likely lead to incorrect results due to broadcasting. Please ensure they have the same size.",
        )
        try:
            np.broadcast_shapes(input._array.shape, target._array.shape)
        except ValueError:
            raise RuntimeError(
                f"The size of tensor a ({input._array.shape}) must match the size of tensor b ({target._array.shape}): "
                "input and target do not broadcast"
            ) from None


def _pointwise_loss(kind, input, target, reduction, beta, weight, weighted_mean_by_sum):
    _check_reduction(reduction)
    if _AUTOCAST.active:  # the losses run in float32 under autocast (CPU and CUDA), as PyTorch
        input, target, weight = _F._autocast_float32((input, target, weight))
    input, target = _promote(input, target)
    if input._array.dtype is _BFLOAT16:  # accumulated in float32, rounded once (PyTorch's CPU kernel)
        return _F._tensors_in_float32(
            lambda x, t, w: _pointwise_loss(kind, x, t, reduction, beta, w, weighted_mean_by_sum),
            (input, target, weight))
    _warn_size(input, target)
    if weight is not None:
        if tuple(weight._array.shape) != tuple(input._array.shape):
            raise ValueError("Weights and input must have the same size.")
        if reduction == "mean" and weighted_mean_by_sum:
            total = _loss.PointwiseLoss.apply(input, target, weight, kind=kind, reduction="sum", beta=beta)
            return _F.div(total, _F.sum(weight))
    return _loss.PointwiseLoss.apply(input, target, weight, kind=kind, reduction=reduction, beta=float(beta))


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error ``(input - target) ** 2``; a ``weight`` mean divides by ``weight.sum()``.

    >>> import dtorch
    >>> mse_loss(dtorch.tensor([1., 2.]), dtorch.tensor([1., 4.]))
    tensor(2.)
    """
    try:
        reduction = _legacy_reduction(size_average, reduce, reduction)
        return _pointwise_loss("mse", input, target, reduction, 0.0, weight, True)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "mse_loss", "input target size_average reduce reduction weight",
                      input, target, size_average, reduce, reduction, weight)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean absolute error ``|input - target|``; a ``weight`` mean divides by ``weight.sum()``.

    >>> import dtorch
    >>> l1_loss(dtorch.tensor([1., 2.]), dtorch.tensor([1., 4.]))
    tensor(1.)
    """
    try:
        reduction = _legacy_reduction(size_average, reduce, reduction)
        return _pointwise_loss("l1", input, target, reduction, 0.0, weight, True)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "l1_loss", "input target size_average reduce reduction weight",
                      input, target, size_average, reduce, reduction, weight)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """``0.5 * d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 * beta`` (``d = input - target``).

    >>> import dtorch
    >>> smooth_l1_loss(dtorch.tensor([0., 3.]), dtorch.tensor([0.5, 0.]), reduction='sum')
    tensor(2.6250)
    """
    try:
        reduction = _legacy_reduction(size_average, reduce, reduction)
        if beta < 0:
            raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
        return _pointwise_loss("smooth_l1", input, target, reduction, float(beta), None, False)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "smooth_l1_loss", "input target", input, target)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """``0.5 * d**2`` where ``|d| < delta``, else ``delta * (|d| - 0.5 * delta)``.

    >>> import dtorch
    >>> huber_loss(dtorch.tensor([0., 3.]), dtorch.tensor([0.5, 0.]), reduction='sum')
    tensor(2.6250)
    """
    try:
        if delta <= 0:
            raise RuntimeError("huber_loss does not support non-positive values for delta.")
        return _pointwise_loss("huber", input, target, reduction, float(delta), weight, False)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "huber_loss", "input target reduction delta weight",
                      input, target, reduction, delta, weight)


def _class_axis(input, name):
    if input._array.ndim == 0:
        raise ValueError(f"Expected input to have at least 1 dimension for {name}, got a 0-D input")
    return 0 if input._array.ndim == 1 else 1


# PyTorch's names of scalar types, which its loss errors use ("expected target dtype to be Long or Byte, but got Int")
def _unbatched_target(input, target, axis):
    """A 1-D (unbatched) input takes its class index as a 0-d target or a one-element 1-D one, as PyTorch."""
    if axis == 0 and input._array.ndim == 1 and target._array.shape == (1,):
        return _F.reshape(target, ())
    return target


def _check_class_target(input, target, axis):
    """Class-index targets: the input's shape without the class axis, then int64 or uint8 (PyTorch's order and
    errors: a batch-size mismatch is a ValueError, every other mismatch a RuntimeError)."""
    shape, target_shape = input._array.shape, tuple(target._array.shape)
    expected = shape[:axis] + shape[axis + 1:]
    if target_shape != expected:
        if axis == 0:
            if len(target_shape) == 1:
                raise ValueError(
                    f"For 1D input, 1D target must have size 1, but got target size: {target_shape[0]}"
                )
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        if not target_shape or target_shape[0] != shape[0]:
            raise ValueError(
                f"Expected input batch_size ({shape[0]}) to match target batch_size "
                f"({target_shape[0] if target_shape else 0})."
            )
        if len(shape) == 2:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        raise RuntimeError(f"Expected target size {list(expected)}, got {list(target_shape)}")
    dtype = target._array.dtype
    if dtype != np.int64 and dtype != np.uint8:
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got {_F._scalar_type_name(target)}")


def _check_class_weight(weight, c, name=""):
    if weight is not None and tuple(weight._array.shape) != (c,):
        raise RuntimeError(
            f"{name}weight tensor should be defined either for all {c} classes or no classes but got weight tensor "
            f"of shape: {_shape_text(weight)}"
        )


def _check_labels(target, ignore_index, c):
    _loss.check_labels(target._array.reshape(-1), ignore_index, c)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0):
    """Fused log-softmax and negative log-likelihood over the class axis (1, or 0 for unbatched input).

    Args:
        input: logits ``(N, C)``, ``(N, C, d1, ...)`` or ``(C,)``.
        target: class indices of shape ``(N, d1, ...)`` (int64 or uint8, as PyTorch: int32 targets raise), or
            class probabilities of the input's shape (float dtype).
        weight: ``(C,)`` class weights. ignore_index: target value that contributes nothing (class indices only).
        label_smoothing: mix the target with the uniform distribution by this amount.
    Returns:
        The loss, reduced by ``reduction``; ``'mean'`` over class indices divides by the summed target weights.

    >>> import dtorch
    >>> cross_entropy(dtorch.zeros(2, 4), dtorch.tensor([1, 3]))
    tensor(1.3863)
    """
    try:
        reduction = _legacy_reduction(size_average, reduce, reduction)
        _check_reduction(reduction)
        if _AUTOCAST.active:  # float32 under autocast (CPU and CUDA), as PyTorch
            input, target, weight = _F._autocast_float32((input, _as_operand(target, input), weight))
        if input._array.dtype is _BFLOAT16:  # computed in float32, rounded once (PyTorch's CPU kernel)
            return _F._tensors_in_float32(
                lambda x, t, w: cross_entropy(x, t, w, None, ignore_index, None, reduction, label_smoothing),
                (input, target, weight))
        _F._check_float(input, "log_softmax")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
        axis = _class_axis(input, "cross_entropy")
        target = _as_operand(target, input)
        c = input._array.shape[axis]
        # as PyTorch: a target of the input's shape holds class probabilities, any other one class indices
        probabilities = target._array.shape == input._array.shape
        if probabilities:
            if target._array.dtype.kind != "f":
                raise RuntimeError(
                    "Expected floating point type for target with class probabilities, got "
                    f"{_F._scalar_type_name(target)}"
                )
            if ignore_index != -100:
                raise RuntimeError("ignore_index is not supported for floating point target")
            _check_class_weight(weight, c, "cross_entropy: ")
            if target._array.dtype != input._array.dtype:
                target = _F._cast(target, input._array.dtype)
        else:
            target = _unbatched_target(input, target, axis)
            _check_class_target(input, target, axis)
            _check_class_weight(weight, c)  # (the labels are checked in the op: _loss.check_labels)
        _same_dtype("cross_entropy", input, weight)
        attrs = {"axis": axis, "probabilities": probabilities, "ignore_index": int(ignore_index),
                 "reduction": reduction, "label_smoothing": float(label_smoothing)}
        if type(input._array) is np.ndarray and type(target._array) is np.ndarray and (
                _F._outside_graph(input) if weight is None
                else type(weight._array) is np.ndarray and _F._both_outside_graph(input, weight)):
            return _F._forward_only(_loss.CrossEntropy, input._array, target._array,
                                    None if weight is None else weight._array, **attrs)
        return _loss.CrossEntropy.apply(input, target, weight, **attrs)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "cross_entropy_loss", "input target weight", input, target, weight)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """Negative log-likelihood of class indices given log-probabilities (class axis 1, or 0 unbatched).

    >>> import dtorch
    >>> nll_loss(dtorch.tensor([[-1., -2.]]), dtorch.tensor([1]))
    tensor(2.)
    """
    try:
        reduction = _legacy_reduction(size_average, reduce, reduction)
        _check_reduction(reduction)
        if _AUTOCAST.active:  # float32 under autocast (CPU and CUDA), as PyTorch
            input, weight = _F._autocast_float32((input, weight))
        if input._array.dtype is _BFLOAT16:  # computed in float32, rounded once (PyTorch's CPU kernel)
            return _F._tensors_in_float32(
                lambda x, w: nll_loss(x, target, w, None, ignore_index, None, reduction), (input, weight))
        axis = _class_axis(input, "nll_loss")
        _F._check_float(input, "nll_loss")
        target = _unbatched_target(input, _as_operand(target, input), axis)
        _check_class_target(input, target, axis)
        _check_class_weight(weight, input._array.shape[axis])
        _check_labels(target, ignore_index, input._array.shape[axis])
        _same_dtype("nll_loss", input, weight)
        return _loss.NLLLoss.apply(input, target, weight, axis=axis, ignore_index=int(ignore_index),
                                   reduction=reduction)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "nll_loss_nd", "input target weight", input, target, weight)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """``-w * (t * log(x) + (1 - t) * log(1 - x))`` for probabilities ``x``; logs are clamped at -100.

    >>> import dtorch
    >>> binary_cross_entropy(dtorch.tensor([0.5]), dtorch.tensor([1.]))
    tensor(0.6931)
    """
    try:
        reduction = _legacy_reduction(size_average, reduce, reduction)
        _check_reduction(reduction)
        target = _as_operand(target, input)
        if _AUTOCAST.active:  # float32 under autocast (CPU and CUDA), as PyTorch
            input, target, weight = _F._autocast_float32((input, target, weight))
        if tuple(target._array.shape) != tuple(input._array.shape):
            raise ValueError(
                f"Using a target size ({Size(target.shape)}) that is different to the input size ({Size(input.shape)}) "
                "is deprecated. Please ensure they have the same size."
            )
        data = input._array
        if data.size and (float(data.min()) < 0 or float(data.max()) > 1):
            raise RuntimeError("all elements of input should be between 0 and 1")
        input, target = _promote(input, target)
        if weight is not None:
            weight = _F._cast(_as_operand(weight, input), input._array.dtype)
        return _loss.BinaryCrossEntropy.apply(input, target, weight, reduction=reduction)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "binary_cross_entropy", "input target weight", input, target, weight)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    """Sigmoid and binary cross-entropy fused and stable:
    ``w * ((1 - t) * x + (1 + (pos_weight - 1) * t) * log(1 + exp(-x)))``.

    Args:
        weight: broadcast over the elements. pos_weight: weight of the positive class, broadcast over the last
        (class) dimension.

    >>> import dtorch
    >>> binary_cross_entropy_with_logits(dtorch.tensor([0.]), dtorch.tensor([1.]))
    tensor(0.6931)
    """
    try:
        reduction = _legacy_reduction(size_average, reduce, reduction)
        _check_reduction(reduction)
        target = _as_operand(target, input)
        if _AUTOCAST.active:  # float32 under autocast (CPU and CUDA), as PyTorch
            input, target, weight, pos_weight = _F._autocast_float32((input, target, weight, pos_weight))
        if tuple(target._array.shape) != tuple(input._array.shape):
            raise ValueError(
                f"Target size ({Size(target.shape)}) must be the same as input size ({Size(input.shape)})"
            )
        input, target = _promote(input, target)
        for name, value in (("weight", weight), ("pos_weight", pos_weight)):
            if isinstance(value, Tensor) and value.requires_grad and _grad_state["enabled"]:
                raise RuntimeError(
                    f"The function 'binary_cross_entropy_with_logits' is not differentiable with respect to argument "
                    f"'{name}'. This input cannot have requires_grad True."
                )
        if weight is not None:
            weight = _F._cast(_as_operand(weight, input), input._array.dtype)
        if pos_weight is not None:
            pos_weight = _F._cast(_as_operand(pos_weight, input), input._array.dtype)
        return _loss.BinaryCrossEntropyWithLogits.apply(input, target, weight, pos_weight, reduction=reduction)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "binary_cross_entropy_with_logits", "input target weight", input, target, weight)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """Kullback-Leibler divergence ``target * (log(target) - input)`` with ``input`` given as log-probabilities.

    Args:
        reduction: also ``'batchmean'`` (the sum divided by the batch size: the true KL divergence).
        log_target: ``target`` is given as log-probabilities too.

    dtorch differs in one corner: the gradient with respect to a target entry equal to 0 is ``-input`` (the limit
    from above) where PyTorch gives NaN.

    >>> import dtorch
    >>> kl_div(dtorch.tensor([[0., 0.]]), dtorch.tensor([[1., 0.]]), reduction='batchmean')
    tensor(0.)
    """
    try:
        if size_average is not None or reduce is not None:
            reduction = _legacy_reduction(size_average, reduce, reduction)
        elif reduction == "mean":
            _warn(
                "reduction: 'mean' divides the total loss by both the batch size and the support size.'batchmean' "
                "divides only by the batch size, and aligns with the KL div math definition.'mean' will be changed to "
                "behave the same as 'batchmean' in the next major release.",
            )
        _check_reduction(reduction, _REDUCTIONS + ("batchmean",))
        if _AUTOCAST.active:  # float32 under autocast (CPU and CUDA), as PyTorch
            input, target = _F._autocast_float32((input, _as_operand(target, input)))
        input, target = _promote(input, target)
        return _loss.KLDiv.apply(input, target, reduction=reduction, log_target=bool(log_target))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "kl_div", "input target", input, target)



# ---- losses composed from tensor ops (no fused op: they are rare and cheap) -------------------------------------


def _reduce_loss(loss, reduction):
    _check_reduction(reduction)
    if reduction == "none":
        return loss
    return _F.sum(loss) if reduction == "sum" else _F.mean(loss)


def pairwise_distance(x1, x2, p=2.0, eps=1e-06, keepdim=False):
    """``||x1 - x2 + eps||_p`` over the last dimension.

    >>> import dtorch
    >>> pairwise_distance(dtorch.tensor([[3., 0.]]), dtorch.tensor([[0., 4.]]), eps=0.0)
    tensor([5.])
    """
    try:
        if not isinstance(x1, Tensor) or not isinstance(x2, Tensor):  # the subtraction would take an array
            _raise_not_a_tensor("pairwise_distance", *(("x1", 1, x1) if not isinstance(x1, Tensor) else ("x2", 2, x2)))
        return _F.norm(_F.add(_F.sub(x1, x2), eps), p, -1, keepdim)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "pairwise_distance", "x1 x2", x1, x2)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-08, reduce=None,
                     reduction="mean"):
    """Poisson negative log-likelihood: ``exp(input) - target * input`` (``log_input``), else
    ``input - target * log(input + eps)``; ``full`` adds Stirling's term where ``target > 1``.

    >>> import dtorch
    >>> poisson_nll_loss(dtorch.tensor([0.]), dtorch.tensor([1.]))
    tensor(1.)
    """
    try:
        reduction = _legacy_reduction(size_average, reduce, reduction)
        if log_input:
            loss = _F.sub(_F.exp(input), _F.mul(target, input))
        else:
            loss = _F.sub(input, _F.mul(target, _F.log(_F.add(input, eps))))
        if full:
            safe = _F.where(_F.gt(target, 1), target, 1.0)
            stirling = _F.add(_F.sub(_F.mul(safe, _F.log(safe)), safe), _F.mul(_F.log(_F.mul(safe, 2 * math.pi)), 0.5))
            loss = _F.add(loss, _F.where(_F.gt(target, 1), stirling, 0.0))
        return _reduce_loss(loss, reduction)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "poisson_nll_loss", "input target", input, target)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-06, reduction="mean"):
    """Gaussian negative log-likelihood ``0.5 * (log(var) + (input - target)**2 / var)`` (plus
    ``0.5 * log(2 pi)`` with ``full``); ``var`` is clamped below at ``eps`` with its gradient passing unchanged.

    >>> import dtorch
    >>> gaussian_nll_loss(dtorch.tensor([1.]), dtorch.tensor([1.]), dtorch.tensor([1.]))
    tensor(0.)
    """
    try:
        if not isinstance(var, Tensor):
            var = _new(_backend.xp_of(input._array).full(input._array.shape, float(var), dtype=input._array.dtype),
                       None)
        if tuple(var.shape) != tuple(input.shape):
            if tuple(input.shape[:-1]) == tuple(var.shape):
                var = _F.unsqueeze(var, -1)
            elif not (tuple(input.shape[:-1]) == tuple(var.shape[:-1]) and var.shape[-1] == 1):
                raise ValueError("var is of incorrect size")
        _check_reduction(reduction)
        if bool((var._array < 0).any()):
            raise ValueError("var has negative entry/entries")
        # clamp the value only: the gradient reaches var as if unclamped (PyTorch clamps in place under no_grad)
        raised = _new(_backend.xp_of(var._array).maximum(var._array, eps) - var._array, None)
        var = _F.add(var, raised)
        diff = _F.sub(input, target)
        loss = _F.mul(_F.add(_F.log(var), _F.div(_F.mul(diff, diff), var)), 0.5)
        if full:
            loss = _F.add(loss, 0.5 * math.log(2 * math.pi))
        return _reduce_loss(loss, reduction)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "gaussian_nll_loss", "input target var", input, target, var)


def margin_ranking_loss(input1, input2, target, margin=0, size_average=None, reduce=None, reduction="mean"):
    """``max(0, -target * (input1 - input2) + margin)``.

    >>> import dtorch
    >>> margin_ranking_loss(dtorch.tensor([1.]), dtorch.tensor([2.]), dtorch.tensor([1.]))
    tensor(1.)
    """
    try:
        reduction = _legacy_reduction(size_average, reduce, reduction)
        loss = _F.clamp(_F.add(_F.mul(_F.neg(target), _F.sub(input1, input2)), float(margin)), min=0.0)
        return _reduce_loss(loss, reduction)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "margin_ranking_loss", "input1 input2 target", input1, input2, target)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """``log(1 + exp(-target * input))``.

    >>> import dtorch
    >>> soft_margin_loss(dtorch.tensor([0.]), dtorch.tensor([1.]))
    tensor(0.6931)
    """
    try:
        reduction = _legacy_reduction(size_average, reduce, reduction)
        return _reduce_loss(_F.softplus(_F.neg(_F.mul(target, input))), reduction)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "soft_margin_loss", "input target", input, target)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None, reduction="mean"):
    """``input`` where ``target == 1``, ``max(0, margin - input)`` where ``target == -1``.

    >>> import dtorch
    >>> hinge_embedding_loss(dtorch.tensor([0.3, 0.3]), dtorch.tensor([1., -1.]), reduction='none')
    tensor([0.3000, 0.7000])
    """
    try:
        reduction = _legacy_reduction(size_average, reduce, reduction)
        margin_part = _F.where(_F.ne(target, 1), _F.clamp(_F.sub(float(margin), input), min=0.0), 0.0)
        self_part = _F.where(_F.ne(target, -1), input, 0.0)
        return _reduce_loss(_F.add(margin_part, self_part), reduction)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "hinge_embedding_loss", "input target", input, target)


def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None, reduce=None, reduction="mean"):
    """``1 - cos(x1, x2)`` where ``target == 1``, ``max(0, cos(x1, x2) - margin)`` where ``target == -1``.

    >>> import dtorch
    >>> cosine_embedding_loss(dtorch.tensor([[1., 0.]]), dtorch.tensor([[1., 0.]]), dtorch.tensor([1.]))
    tensor(0.)
    """
    try:
        reduction = _legacy_reduction(size_average, reduce, reduction)
        dim = input1._array.ndim - 1
        tiny = 1e-12
        dot = _F.sum(_F.mul(input1, input2), dim)
        squares = _F.mul(_F.add(_F.sum(_F.mul(input1, input1), dim), tiny),
                         _F.add(_F.sum(_F.mul(input2, input2), dim), tiny))
        cos = _F.div(dot, _F.sqrt(squares))
        positive = _F.where(_F.eq(target, 1), _F.sub(1.0, cos), 0.0)
        negative = _F.where(_F.eq(target, -1), _F.clamp(_F.sub(cos, float(margin)), min=0.0), 0.0)
        return _reduce_loss(_F.add(positive, negative), reduction)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "cosine_embedding_loss", "input1 input2 target", input1, input2, target)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-06, swap=False, size_average=None,
                        reduce=None, reduction="mean"):
    """``max(0, d(anchor, positive) - d(anchor, negative) + margin)`` with ``d = pairwise_distance``; ``swap`` uses
    the smaller of ``d(anchor, negative)`` and ``d(positive, negative)``.

    >>> import dtorch
    >>> triplet_margin_loss(dtorch.zeros(1, 2), dtorch.zeros(1, 2), dtorch.ones(1, 2), margin=0.5)
    tensor(0.)
    """
    try:
        reduction = _legacy_reduction(size_average, reduce, reduction)
        d_positive = pairwise_distance(anchor, positive, p, eps)
        d_negative = pairwise_distance(anchor, negative, p, eps)
        if swap:
            d_negative = _F.minimum(d_negative, pairwise_distance(positive, negative, p, eps))
        loss = _F.clamp(_F.add(_F.sub(d_positive, d_negative), float(margin)), min=0.0)
        return _reduce_loss(loss, reduction)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "triplet_margin_loss", "anchor positive negative", anchor, positive, negative)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """Per-class binary cross-entropy on logits, averaged over the classes (the last dimension).

    >>> import dtorch
    >>> multilabel_soft_margin_loss(dtorch.zeros(1, 2), dtorch.tensor([[1., 0.]]))
    tensor(0.6931)
    """
    try:
        reduction = _legacy_reduction(size_average, reduce, reduction)
        loss = _F.neg(_F.add(_F.mul(target, logsigmoid(input)), _F.mul(_F.sub(1.0, target), logsigmoid(_F.neg(input)))))
        if weight is not None:
            loss = _F.mul(loss, weight)
        dim = input._array.ndim - 1
        loss = _F.div(_F.sum(loss, dim), float(input._array.shape[dim]))
        return _reduce_loss(loss, reduction)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "multilabel_soft_margin_loss", "input target weight", input, target, weight)


# ======================================================================================================================
# further ops of torch.nn.functional, composed from the ops above


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    """``max_pool1d`` returning ``(output, indices)``.

    >>> import dtorch
    >>> max_pool1d_with_indices(dtorch.tensor([[1., 3., 2., 0.]]), 2)[1]
    tensor([[1, 2]])
    """
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    """``max_pool2d`` returning ``(output, indices)``.

    >>> import dtorch
    >>> max_pool2d_with_indices(dtorch.arange(4.).reshape(1, 2, 2), 2)[1]
    tensor([[[3]]])
    """
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices=True):
    """``adaptive_max_pool1d`` returning ``(output, indices)``.

    >>> import dtorch
    >>> adaptive_max_pool1d_with_indices(dtorch.tensor([[1., 5., 2., 0.]]), 2)[1]
    tensor([[1, 2]])
    """
    return adaptive_max_pool1d(input, output_size, return_indices=True)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=True):
    """``adaptive_max_pool2d`` returning ``(output, indices)``.

    >>> import dtorch
    >>> adaptive_max_pool2d_with_indices(dtorch.arange(4.).reshape(1, 2, 2), 1)[1]
    tensor([[[3]]])
    """
    return adaptive_max_pool2d(input, output_size, return_indices=True)


def celu_(input, alpha=1.0):
    """In-place ``celu``.

    >>> import dtorch
    >>> celu_(dtorch.tensor([1.]))
    tensor([1.])
    """
    try:
        return celu(input, alpha, inplace=True)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "celu_", "input", input)


def selu_(input):
    """In-place ``selu``.

    >>> import dtorch
    >>> selu_(dtorch.tensor([0.]))
    tensor([0.])
    """
    try:
        return selu(input, inplace=True)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "selu_", "input", input)


def pixel_shuffle(input, upscale_factor):
    """Rearrange ``(*, C * r**2, H, W)`` into ``(*, C, H * r, W * r)`` (``r = upscale_factor``).

    >>> import dtorch
    >>> pixel_shuffle(dtorch.arange(4.).reshape(1, 4, 1, 1), 2)
    tensor([[[[0., 1.],
              [2., 3.]]]])
    """
    try:
        if input._array.ndim < 3:
            raise RuntimeError(
                f"pixel_shuffle expects input to have at least 3 dimensions, but got input with {input._array.ndim} "
                "dimension(s)"
            )
        r = int(upscale_factor)
        *batch, c, h, w = input._array.shape
        if r <= 0 or c % (r * r):
            raise RuntimeError(
                "pixel_shuffle expects its input's 'channel' dimension to be divisible by the square of "
                "upscale_factor, "
                f"but input.size(-3)={c} is not divisible by {r * r}"
            )
        nb = len(batch)
        x = _F.reshape(input, (*batch, c // (r * r), r, r, h, w))
        x = _F.permute(x, (*range(nb), nb, nb + 3, nb + 1, nb + 4, nb + 2))
        return _F.reshape(x, (*batch, c // (r * r), h * r, w * r))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "pixel_shuffle", "input upscale_factor", input, upscale_factor)


def pixel_unshuffle(input, downscale_factor):
    """Rearrange ``(*, C, H * r, W * r)`` into ``(*, C * r**2, H, W)``: the inverse of ``pixel_shuffle``.

    >>> import dtorch
    >>> pixel_unshuffle(dtorch.arange(4.).reshape(1, 1, 2, 2), 2).flatten()
    tensor([0., 1., 2., 3.])
    """
    try:
        if input._array.ndim < 3:
            raise RuntimeError(
                f"pixel_unshuffle expects input to have at least 3 dimensions, but got input with {input._array.ndim} "
                "dimension(s)"
            )
        r = int(downscale_factor)
        *batch, c, h, w = input._array.shape
        if r <= 0 or h % r or w % r:
            raise RuntimeError(
                f"pixel_unshuffle expects height and width to be divisible by downscale_factor, but got height={h}, "
                f"width={w} and downscale_factor={r}"
            )
        nb = len(batch)
        x = _F.reshape(input, (*batch, c, h // r, r, w // r, r))
        x = _F.permute(x, (*range(nb), nb, nb + 2, nb + 4, nb + 1, nb + 3))
        return _F.reshape(x, (*batch, c * r * r, h // r, w // r))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "pixel_unshuffle", "input downscale_factor", input, downscale_factor)


def channel_shuffle(input, groups):
    """Split the channels of ``(N, C, *)`` input into ``groups`` and interleave them (ShuffleNet).

    >>> import dtorch
    >>> channel_shuffle(dtorch.arange(4.).reshape(1, 4, 1), 2).flatten()
    tensor([0., 2., 1., 3.])
    """
    try:
        shape = input._array.shape
        if len(shape) < 3:
            raise RuntimeError(f"channel_shuffle expects input to have at least 3 dimensions, but got input with "
                               f"{len(shape)} dimension(s)")
        if groups <= 0:
            raise RuntimeError(f"Number of groups to divide channels in must be positive. Value of groups:{groups}")
        if shape[1] % groups:
            raise RuntimeError(f"Number of channels must be divisible by groups. Got {shape[1]} channels and "
                               f"{groups} groups.")
        x = _F.reshape(input, (shape[0], groups, shape[1] // groups) + shape[2:])
        return _F.reshape(_F.transpose(x, 1, 2), shape)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "channel_shuffle", "input groups", input, groups)


native_channel_shuffle = channel_shuffle


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """Divide each element by ``(k + alpha * mean of x**2 over size neighbouring channels) ** beta``.

    The window covers channels ``c - size // 2`` to ``c + (size - 1) // 2`` (zeros beyond the edges), as PyTorch's.

    >>> import dtorch
    >>> local_response_norm(dtorch.ones(1, 3, 2), 2, alpha=1.0, beta=1.0, k=0.0)[0, :, 0]
    tensor([2., 1., 1.])
    """
    try:
        dim = input._array.ndim
        if dim < 3:
            raise ValueError(f"Expected 3D or higher dimensionality input (got {dim} dimensions)")
        if input._array.size == 0:
            return input
        c = input._array.shape[1]
        squares = _F.mul(input, input)
        zeros = _new(_backend.xp_of(input._array).zeros(
            (input._array.shape[0], size - 1) + input._array.shape[2:], dtype=input._array.dtype), None)
        before, after = size // 2, (size - 1) // 2
        padded = _F.cat([_F.narrow(zeros, 1, 0, before), squares, _F.narrow(zeros, 1, 0, after)], 1)
        window = _F.narrow(padded, 1, 0, c)
        for shift in range(1, size):
            window = _F.add(window, _F.narrow(padded, 1, shift, c))
        div = _F.pow(_F.add(_F.mul(window, alpha / size), k), beta)
        return _F.div(input, div)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "local_response_norm", "input", input)


def _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, pool, count):
    out = pool(_F.pow(input, norm_type), kernel_size, stride, 0, ceil_mode)
    return _F.pow(_F.mul(_F.mul(_F.sign(out), relu(_F.abs(out))), float(count)), 1.0 / norm_type)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Power-average pooling ``(sum over the window of x**p) ** (1 / p)`` of ``(N, C, L)`` input.

    >>> import dtorch
    >>> lp_pool1d(dtorch.tensor([[3., 4.]]), 2, 2)
    tensor([[5.]])
    """
    try:
        return _lp_pool(input, float(norm_type), kernel_size, stride, ceil_mode, avg_pool1d, kernel_size)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "lp_pool1d", "input norm_type kernel_size", input, norm_type, kernel_size)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Power-average pooling ``(sum over the window of x**p) ** (1 / p)`` of ``(N, C, H, W)`` input.

    >>> import dtorch
    >>> lp_pool2d(dtorch.tensor([[[3., 4.]]]), 2, (1, 2))
    tensor([[[5.]]])
    """
    try:
        kh, kw = _tuple(kernel_size, 2, "kernel_size")
        return _lp_pool(input, float(norm_type), kernel_size, stride, ceil_mode, avg_pool2d, kh * kw)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "lp_pool2d", "input norm_type kernel_size", input, norm_type, kernel_size)


def _max_unpool(input, indices, kernel_size, stride, padding, output_size, n, name):
    kernel = _tuple(kernel_size, n, "kernel_size")
    stride = kernel if stride is None else _tuple(stride, n, "stride")
    padding = _tuple(padding, n, "padding")
    spatial = input._array.shape[-n:]
    default = tuple((spatial[i] - 1) * stride[i] - 2 * padding[i] + kernel[i] for i in range(n))
    if output_size is None:
        size = default
    else:
        size = tuple(output_size)[-n:]
        for i in range(n):
            low, high = default[i] - stride[i], default[i] + stride[i]
            if not low < size[i] < high:
                raise ValueError(
                    f"invalid output_size \"{list(output_size)}\" (dim {i} must be between {low} and {high})"
                )
    if tuple(indices._array.shape) != tuple(input._array.shape):
        raise RuntimeError(f"Expected shape of indices to be same as that of the input tensor "
                           f"({_shape_text(input)}) but got indices tensor with shape: {_shape_text(indices)}")
    lead = input._array.shape[:-n]
    plane = math.prod(size)
    if indices._array.size and (int(indices._array.min()) < 0 or int(indices._array.max()) >= plane):
        raise RuntimeError(f"Found an invalid max index: {int(indices._array.max())} (output volumes are of size "
                           f"{'x'.join(str(s) for s in size)}")
    flat_input = _F.reshape(input, lead + (-1,))
    flat_index = _F.reshape(indices, lead + (-1,))
    zeros = _new(_backend.xp_of(input._array).zeros(lead + (plane,), dtype=input._array.dtype), None)
    out = _F.scatter(zeros, len(lead), flat_index, flat_input)
    return _F.reshape(out, lead + size)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Put each value of ``(N, C, L)`` input back at its ``max_pool1d`` index; zeros elsewhere.

    >>> import dtorch
    >>> out, idx = max_pool1d(dtorch.tensor([[1., 3., 2., 0.]]), 2, return_indices=True)
    >>> max_unpool1d(out, idx, 2)
    tensor([[0., 3., 2., 0.]])
    """
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 1, "max_unpool1d")


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Put each value of ``(N, C, H, W)`` input back at its ``max_pool2d`` index; zeros elsewhere.

    >>> import dtorch
    >>> out, idx = max_pool2d(dtorch.arange(4.).reshape(1, 2, 2), 2, return_indices=True)
    >>> max_unpool2d(out, idx, 2)
    tensor([[[0., 0.],
             [0., 3.]]])
    """
    try:
        return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 2, "max_unpool2d")
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "max_unpool2d", "input indices kernel_size", input, indices, kernel_size)


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
                      reduction="mean"):
    """Multi-class hinge loss: ``sum over j != y of max(0, margin - x[y] + x[j]) ** p / C`` (times ``weight[y]``).

    >>> import dtorch
    >>> multi_margin_loss(dtorch.tensor([[0.1, 0.2, 0.4, 0.8]]), dtorch.tensor([3]))
    tensor(0.3250)
    """
    try:
        reduction = _legacy_reduction(size_average, reduce, reduction)
        _check_reduction(reduction)
        if p not in (1, 2):
            raise ValueError("only p == 1 and p == 2 supported")
        if weight is not None and weight._array.ndim != 1:
            raise ValueError("weight must be one-dimensional")
        unbatched = input._array.ndim <= 1
        x = _F.reshape(input, (1, -1)) if unbatched else input
        if x._array.ndim != 2 or (input._array.size == 0 and input._array.ndim != 2):
            raise RuntimeError(f"Expected non-empty vector or matrix with optional 0-dim batch size, but got: "
                               f"{_shape_text(input)}")
        n, c = x._array.shape
        labels = _F.reshape(target, (-1,))
        if tuple(labels._array.shape) != (n,):
            raise RuntimeError(f"inconsistent target size, expected {n} but got {_shape_text(target)}")
        if labels._array.size and (int(labels._array.min()) < 0 or int(labels._array.max()) >= c):
            raise IndexError("target out of range")
        index = _F.reshape(labels, (n, 1))
        picked = _F.gather(x, 1, index)
        hinge = _F.clamp(_F.add(_F.sub(x, picked), float(margin)), min=0.0)
        if p == 2:
            hinge = _F.mul(hinge, hinge)
        if weight is not None:
            hinge = _F.mul(hinge, _F.reshape(_F.index_select(weight, 0, labels), (n, 1)))
        not_target = np.arange(c)[None, :] != _backend.to_device(labels._array, "cpu")[:, None]
        hinge = _F.mul(hinge, _new(_backend.xp_of(x._array).asarray(not_target.astype(x._array.dtype)), None))
        loss = _F.div(_F.sum(hinge, 1), float(c))
        if unbatched:
            loss = _F.reshape(loss, ())
        return _reduce_loss(loss, reduction)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "multi_margin_loss", "input target p margin weight", input, target, p, margin, weight)


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Multi-label hinge loss: for each target class ``j`` (the leading entries of ``target`` before the first -1)
    and each non-target class ``i``, ``max(0, 1 - (x[j] - x[i]))``, summed and divided by ``C``.

    >>> import dtorch
    >>> multilabel_margin_loss(dtorch.tensor([[0.1, 0.2, 0.4, 0.8]]), dtorch.tensor([[3, 0, -1, 1]]))
    tensor(0.8500)
    """
    try:
        reduction = _legacy_reduction(size_average, reduce, reduction)
        _check_reduction(reduction)
        unbatched = input._array.ndim <= 1
        x = _F.reshape(input, (1, -1)) if unbatched else input
        n, c = x._array.shape
        labels = _backend.to_device(target._array, "cpu").reshape(n, -1)
        if labels.shape != (n, c):
            raise RuntimeError(f"inconsistent target size: {_shape_text(target)} for input of size: "
                               f"{_shape_text(input)}")
        counts = np.zeros((n, c), dtype=np.int64)  # how often class j is listed before the first -1
        for row in range(n):
            for label in labels[row]:
                if label < 0:
                    break
                if label >= c:
                    raise IndexError(f"target {label} out of range for {c} classes")
                counts[row, label] += 1
        is_target = counts > 0
        xp = _backend.xp_of(x._array)
        pair_weight = (counts[:, :, None] * ~is_target[:, None, :]).astype(x._array.dtype)  # [n, target j, other i]
        margins = _F.add(_F.sub(_F.unsqueeze(x, 1), _F.unsqueeze(x, 2)), 1.0)  # 1 - x[j] + x[i]
        hinge = _F.mul(_F.clamp(margins, min=0.0), _new(xp.asarray(pair_weight), None))
        loss = _F.div(_F.sum(hinge, (1, 2)), float(c))
        if unbatched:
            loss = _F.reshape(loss, ())
        return _reduce_loss(loss, reduction)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "multilabel_margin_loss", "input target", input, target)


def pdist(input, p=2):
    """The ``p``-norm distance between every pair of rows ``i < j`` of an ``(N, M)`` input: ``N * (N - 1) / 2``
    values in row-major order of the upper triangle.

    >>> import dtorch
    >>> pdist(dtorch.tensor([[0., 0.], [3., 4.], [6., 8.]]))
    tensor([ 5., 10.,  5.])
    """
    try:
        if input._array.ndim != 2:
            raise RuntimeError(f"pdist only supports 2D tensors, got: {input._array.ndim}D")
        first, second = np.triu_indices(input._array.shape[0], 1)
        xp = _backend.xp_of(input._array)
        a = _F.index_select(input, 0, _new(xp.asarray(first), None))
        b = _F.index_select(input, 0, _new(xp.asarray(second), None))
        return _F.norm(_F.sub(a, b), p, -1)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "pdist", "input", input)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None, margin=1.0, swap=False,
                                      reduction="mean"):
    """``max(0, d(anchor, positive) - d(anchor, negative) + margin)`` for any distance ``d`` (default
    ``pairwise_distance``); ``swap`` uses the smaller of ``d(anchor, negative)`` and ``d(positive, negative)``.

    >>> import dtorch
    >>> triplet_margin_with_distance_loss(dtorch.zeros(1, 2), dtorch.zeros(1, 2), dtorch.ones(1, 2), margin=2.0)
    tensor(0.5858)
    """
    _check_reduction(reduction)
    if margin <= 0:
        raise ValueError(f"TripletMarginWithDistanceLoss: expected margin to be greater than 0, got {margin} instead")
    dims = (anchor._array.ndim, positive._array.ndim, negative._array.ndim)
    if len(set(dims)) != 1:
        raise RuntimeError(f"The anchor, positive, and negative tensors are expected to have the same number of "
                           f"dimensions, but got: anchor {dims[0]}D, positive {dims[1]}D, and negative {dims[2]}D "
                           "inputs")
    distance = pairwise_distance if distance_function is None else distance_function
    d_positive = distance(anchor, positive)
    d_negative = distance(anchor, negative)
    if swap:
        d_negative = _F.minimum(d_negative, distance(positive, negative))
    loss = _F.clamp(_F.add(_F.sub(d_positive, d_negative), float(margin)), min=0.0)
    return _reduce_loss(loss, reduction)


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated spelling of ``interpolate`` (warns, as PyTorch does).

    >>> import dtorch, warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     upsample(dtorch.ones(1, 1, 2), scale_factor=2).shape
    dtorch.Size([1, 1, 4])
    """
    try:
        _warn("`nn.functional.upsample` is deprecated. Use `nn.functional.interpolate` instead.")
        return interpolate(input, size, scale_factor, mode, align_corners)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "upsample", "input", input)


def upsample_nearest(input, size=None, scale_factor=None):
    """Deprecated: ``interpolate(..., mode='nearest')`` (warns).

    >>> import dtorch, warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     upsample_nearest(dtorch.ones(1, 1, 2), scale_factor=2).shape
    dtorch.Size([1, 1, 4])
    """
    try:
        _warn("`nn.functional.upsample_nearest` is deprecated. Use `nn.functional.interpolate` instead.")
        return interpolate(input, size, scale_factor, mode="nearest")
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "upsample_nearest", "input", input)


def upsample_bilinear(input, size=None, scale_factor=None):
    """Deprecated: ``interpolate(..., mode='bilinear', align_corners=True)`` (warns).

    >>> import dtorch, warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     upsample_bilinear(dtorch.ones(1, 1, 2, 2), scale_factor=2).shape
    dtorch.Size([1, 1, 4, 4])
    """
    try:
        _warn("`nn.functional.upsample_bilinear` is deprecated. Use `nn.functional.interpolate` instead.")
        return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "upsample_bilinear", "input", input)


_SELU_ALPHA_SCALED = 1.7580993408473766  # SELU's scale * alpha: the value dropped units of alpha dropout go to


def _alpha_dropout(input, p, training, inplace, shape):
    _check_p(p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return _F.mul(input, 0.0)
    rng = _random.numpy_generator()
    keep = (rng.random(shape, dtype=np.float32) >= p).astype(input._array.dtype)
    a = 1.0 / math.sqrt((_SELU_ALPHA_SCALED ** 2 * p + 1) * (1 - p))
    # kept units: a * x + a * alpha * p; dropped units: a * alpha * (p - 1), so mean and variance are kept
    xp = _backend.xp_of(input._array)
    scale = _new(xp.asarray(keep * input._array.dtype.type(a)), None)
    shift = _new(xp.asarray(((keep - 1) * _SELU_ALPHA_SCALED * a + _SELU_ALPHA_SCALED * a * p).astype(
        input._array.dtype)), None)
    if inplace:
        return _inplace(input, lambda x: _F.add(_F.mul(x, scale), shift))
    return _F.add(_F.mul(input, scale), shift)


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Dropout for SELU networks: dropped units take SELU's negative saturation value and the result is rescaled
    so that zero-mean, unit-variance inputs keep their mean and variance. Identity when not ``training``.

    >>> import dtorch
    >>> alpha_dropout(dtorch.ones(3), 0.5, training=False)
    tensor([1., 1., 1.])
    """
    try:
        return _alpha_dropout(input, p, training, inplace, input._array.shape)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "alpha_dropout", "input", input)


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    """``alpha_dropout`` of whole channels of ``(N, C, *)`` input (one draw per sample and channel).

    >>> import dtorch
    >>> feature_alpha_dropout(dtorch.ones(1, 2, 3), 0.5, training=False).shape
    dtorch.Size([1, 2, 3])
    """
    try:
        shape = input._array.shape[:2] + (1,) * (input._array.ndim - 2)
        return _alpha_dropout(input, p, training, inplace, shape)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "feature_alpha_dropout", "input", input)


def gumbel_softmax(logits, tau=1.0, hard=False, eps=1e-10, dim=-1):
    """A sample of the Gumbel-softmax distribution: ``softmax((logits + gumbel noise) / tau)``; with ``hard`` the
    one-hot of its argmax, with the soft sample's gradient (straight-through).

    >>> import dtorch
    >>> gumbel_softmax(dtorch.zeros(2, 3), hard=True).sum(-1)
    tensor([1., 1.])
    """
    try:
        rng = _random.numpy_generator()
        xp = _backend.xp_of(logits._array)
        gumbels = -np.log(rng.exponential(size=logits._array.shape)).astype(logits._array.dtype)
        y_soft = softmax(_F.div(_F.add(logits, _new(xp.asarray(gumbels), None)), tau), dim)
        if not hard:
            return y_soft
        axis = _wrap_dim(dim, logits._array.ndim)
        index = xp.expand_dims(xp.argmax(y_soft._array, axis=axis), axis)
        y_hard = xp.zeros_like(y_soft._array)
        xp.put_along_axis(y_hard, index, 1.0, axis=axis)
        return _F.add(_F.sub(_new(y_hard, None), _new(y_soft._array, None)), y_soft)
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "gumbel_softmax", "logits", logits)


def affine_grid(theta, size, align_corners=None):
    """Sampling grid ``(N, H, W, 2)`` for ``grid_sample`` from affine matrices ``theta`` ``(N, 2, 3)``.

    Pixel centres lie at ``-1 + (2 i + 1) / W`` (``align_corners=False``, the default) or at ``-1 + 2 i / (W - 1)``
    (``align_corners=True``).

    >>> import dtorch
    >>> affine_grid(dtorch.tensor([[[1., 0., 0.], [0., 1., 0.]]]), (1, 1, 1, 2), align_corners=False)[0, 0]
    tensor([[-0.5000,  0.0000],
            [ 0.5000,  0.0000]])
    """
    try:
        if align_corners is None:
            align_corners = False
        if not theta._array.dtype.kind == "f":
            raise ValueError(f"Expected theta to have floating point type, but got {theta.dtype}")
        if len(size) != 4:
            raise NotImplementedError(
                f"affine_grid only supports 4D sizes, for 2D affine transforms. Got size {list(size)}. (dtorch has no "
                "volumetric affine_grid)"
            )
        n, _, h, w = size
        if theta._array.ndim != 3 or tuple(theta._array.shape[1:]) != (2, 3):
            raise ValueError(
                f"Expected a batch of 2D affine matrices of shape Nx2x3 for size {list(size)}. Got "
                f"{_shape_text(theta)}."
            )
        if min(size) <= 0:
            raise ValueError(f"Expected non-zero, positive output size. Got {list(size)}")

        def coords(steps):
            if steps == 1:
                return np.zeros(1)
            line = np.linspace(-1.0, 1.0, steps)
            return line if align_corners else line * (steps - 1) / steps

        ys, xs = np.meshgrid(coords(h), coords(w), indexing="ij")
        base = np.stack([xs, ys, np.ones_like(xs)], -1).reshape(1, h * w, 3).astype(theta._array.dtype)
        base = _new(_backend.xp_of(theta._array).asarray(base), None)
        grid = _F.matmul(base, _F.transpose(theta, 1, 2))
        return _F.reshape(grid, (n, h, w, 2))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "affine_grid", "theta", theta)


def _unnormalize(coord, extent, align_corners):
    if align_corners:
        return _F.mul(_F.add(coord, 1.0), (extent - 1) / 2)
    return _F.div(_F.sub(_F.mul(_F.add(coord, 1.0), extent), 1.0), 2.0)


def _reflect_coordinates(coord, extent, align_corners):
    """Pixel coordinates mirrored into ``[0, extent - 1]`` (about the pixel centres with ``align_corners``, about
    the image edges without), PyTorch's ``reflect_coordinates``; differentiable (the flips are piecewise constant)."""
    low, high = (0.0, 2.0 * (extent - 1)) if align_corners else (-1.0, 2.0 * extent - 1)
    if low == high:
        return _F.mul(coord, 0.0)
    start, span = low / 2, (high - low) / 2
    distance = _F.abs(_F.sub(coord, start))
    extra = _F.fmod(distance, span)
    even = _backend.xp_of(distance._array).floor(distance._array / span) % 2 == 0
    return _F.where(_new(even, None), _F.add(extra, start), _F.sub(span + start, extra))


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """Sample ``(N, C, H, W)`` input at the normalised ``(x, y)`` locations of ``grid`` ``(N, Ho, Wo, 2)``.

    ``mode`` ``'bilinear'`` or ``'nearest'``; ``padding_mode`` ``'zeros'``, ``'border'`` or ``'reflection'``
    (coordinates mirrored at the edges, as PyTorch's; dtorch has no ``'bicubic'`` mode); ``align_corners`` as in
    ``affine_grid``. Gradients reach ``input`` and, for bilinear sampling, ``grid``.

    >>> import dtorch
    >>> grid_sample(dtorch.tensor([[[[1., 3.]]]]), dtorch.zeros(1, 1, 1, 2), align_corners=False)
    tensor([[[[2.]]]])
    """
    try:
        if align_corners is None:
            _warn("Default grid_sample and affine_grid behavior has changed to align_corners=False since 1.3.0. Please "
                  "specify align_corners=True if the old behavior is desired. See the documentation of grid_sample for "
                  "details.", UserWarning)
            align_corners = False
        if mode not in ("bilinear", "nearest"):
            raise NotImplementedError(f"grid_sample: dtorch supports mode 'bilinear' and 'nearest', got '{mode}'")
        if padding_mode not in ("zeros", "border", "reflection"):
            raise ValueError(f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
                             f"'reflection', but got: '{padding_mode}'")
        if input._array.ndim != 4 or grid._array.ndim != 4 or grid._array.shape[-1] != 2:
            raise RuntimeError(f"grid_sample: dtorch supports 4-D input and grid (N, Ho, Wo, 2), got input of shape "
                               f"{_shape_text(input)} and grid of shape {_shape_text(grid)}")
        if input._array.shape[0] != grid._array.shape[0]:
            raise RuntimeError(f"grid_sampler(): expected grid and input to have same batch size, but got input with "
                               f"sizes {_shape_text(input)} and grid with sizes {_shape_text(grid)}")
        _same_dtype("grid_sample", input, grid)
        n, c, h, w = input._array.shape
        ho, wo = grid._array.shape[1:3]
        xp = _backend.xp_of(input._array)
        x = _unnormalize(_F.getitem(grid, (Ellipsis, 0)), w, align_corners)
        y = _unnormalize(_F.getitem(grid, (Ellipsis, 1)), h, align_corners)
        if padding_mode == "reflection":
            x = _reflect_coordinates(x, w, align_corners)
            y = _reflect_coordinates(y, h, align_corners)
        if padding_mode != "zeros":
            x = _F.clamp(x, 0.0, float(w - 1))
            y = _F.clamp(y, 0.0, float(h - 1))
        flat = _F.reshape(input, (n, c, h * w))

        def gather(ix, iy):
            """input at integer pixels ``(iy, ix)`` (arrays of shape (N, Ho, Wo)), zero outside."""
            valid = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
            index = xp.where(valid, xp.clip(iy, 0, h - 1) * w + xp.clip(ix, 0, w - 1), 0).reshape(n, 1, ho * wo)
            values = _F.gather(flat, 2, _new(xp.broadcast_to(index, (n, c, ho * wo)).copy(), None))
            mask = _new(valid.reshape(n, 1, ho * wo).astype(input._array.dtype), None)
            return _F.reshape(_F.mul(values, mask), (n, c, ho, wo))

        if mode == "nearest":
            # PyTorch rounds half to even (nearbyint)
            return gather(xp.rint(x._array).astype(np.int64), xp.rint(y._array).astype(np.int64))
        x0, y0 = xp.floor(x._array), xp.floor(y._array)
        wx1 = _F.unsqueeze(_F.sub(x, _new(x0, None)), 1)  # weight of the right neighbours, (N, 1, Ho, Wo)
        wy1 = _F.unsqueeze(_F.sub(y, _new(y0, None)), 1)
        wx0, wy0 = _F.sub(1.0, wx1), _F.sub(1.0, wy1)
        ix0, iy0 = x0.astype(np.int64), y0.astype(np.int64)
        out = _F.mul(gather(ix0, iy0), _F.mul(wx0, wy0))
        out = _F.add(out, _F.mul(gather(ix0 + 1, iy0), _F.mul(wx1, wy0)))
        out = _F.add(out, _F.mul(gather(ix0, iy0 + 1), _F.mul(wx0, wy1)))
        return _F.add(out, _F.mul(gather(ix0 + 1, iy0 + 1), _F.mul(wx1, wy1)))
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "grid_sample", "input grid", input, grid)


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False, mode="mean",
                  sparse=False, per_sample_weights=None, include_last_offset=False, padding_idx=None):
    """Sum, mean or max of the ``weight`` rows of each bag of indices, without building the per-index embeddings'
    batch: ``(B, N)`` input holds B bags of N indices; 1-D input is split into bags at ``offsets``.

    Entries equal to ``padding_idx`` are left out (and not counted by the mean); an empty bag gives zeros.
    ``per_sample_weights`` (``mode='sum'`` only) scales each index's row.

    >>> import dtorch
    >>> embedding_bag(dtorch.tensor([0, 1, 2]), dtorch.eye(3), dtorch.tensor([0, 1]), mode='sum')
    tensor([[1., 0., 0.],
            [0., 1., 1.]])
    """
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"mode has to be one of sum, mean or max, but got {mode}")
    if weight._array.ndim != 2:
        raise ValueError(f"weight has to be a 2D Tensor, but got Tensor of dimension {weight._array.ndim}")
    if per_sample_weights is not None:
        if mode != "sum":
            raise NotImplementedError(
                f"embedding_bag: per_sample_weights was not None. per_sample_weights is only supported for "
                f"mode='sum' (got mode='{mode}'). Please open a feature request on GitHub."
            )
        if tuple(per_sample_weights.shape) != tuple(input.shape):
            raise ValueError(f"embedding_bag: If per_sample_weights ({_shape_text(per_sample_weights)}) is not None, "
                             f"then it must have the same shape as the input ({_shape_text(input)})")
    rows = weight._array.shape[0]
    if padding_idx is not None:
        if not -rows <= padding_idx < rows:
            raise AssertionError("padding_idx must be within the number of embeddings")
        padding_idx = int(padding_idx) % rows
    indices = _backend.to_device(input._array, "cpu")
    if indices.ndim == 2:
        if offsets is not None:
            raise ValueError(
                "if input is 2D, then offsets has to be None, as input is treated is a mini-batch of fixed length "
                f"sequences. However, found offsets of type {type(offsets)}"
            )
        bags, length = indices.shape
        bag_of = np.repeat(np.arange(bags), length)
    elif indices.ndim == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        if offsets._array.ndim != 1:
            raise ValueError("offsets has to be a 1D Tensor")
        starts = _backend.to_device(offsets._array, "cpu").astype(np.int64)
        end = indices.shape[0]
        if include_last_offset:
            starts, end = starts[:-1], int(starts[-1])
        bags = starts.shape[0]
        if bags and (starts[0] != 0 or (np.diff(starts) < 0).any() or starts[-1] > indices.shape[0]):
            raise RuntimeError("offsets must start at 0, be non-decreasing and not exceed the number of indices")
        positions = np.arange(indices.shape[0])
        bag_of = np.searchsorted(starts, positions, side="right") - 1
        bag_of[positions >= end] = -1
    else:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension {indices.ndim}")
    flat = indices.reshape(-1)
    keep = bag_of >= 0
    if padding_idx is not None:
        keep &= flat != padding_idx
    kept = np.nonzero(keep)[0]
    xp = _backend.xp_of(weight._array)
    dim = weight._array.shape[1]
    looked_up = embedding(_new(xp.asarray(flat[kept]), None), weight, max_norm=max_norm, norm_type=norm_type,
                          scale_grad_by_freq=scale_grad_by_freq)
    bag_index = bag_of[kept]
    if mode == "max":
        counts = np.bincount(bag_index, minlength=bags)
        width = max(int(counts.max()) if counts.size else 0, 1)
        slot = np.arange(kept.size) - np.concatenate([[0], np.cumsum(counts)[:-1]])[bag_index]
        table = np.zeros((bags, width), dtype=np.int64)  # per bag: positions in looked_up, padded with 0
        table[bag_index, slot] = np.arange(kept.size)
        filled = np.zeros((bags, width), dtype=bool)
        filled[bag_index, slot] = True
        if kept.size == 0:  # every bag empty: zeros that still depend on weight, as PyTorch's do
            return _F.add(_new(xp.zeros((bags, dim), dtype=weight._array.dtype), None), _F.mul(_F.sum(weight), 0.0))
        gathered = _F.reshape(_F.index_select(looked_up, 0, _new(xp.asarray(table.reshape(-1)), None)),
                              (bags, width, dim))
        mask = _new(xp.asarray(filled[:, :, None]), None)
        best = _F.amax(_F.where(mask, gathered, -math.inf), 1)
        return _F.where(_new(xp.asarray((counts > 0)[:, None]), None), best, 0.0)
    if per_sample_weights is not None:
        scale = _F.index_select(_F.reshape(per_sample_weights, (-1,)), 0, _new(xp.asarray(kept), None))
        looked_up = _F.mul(looked_up, _F.unsqueeze(scale, 1))
    zeros = _new(xp.zeros((bags, dim), dtype=weight._array.dtype), None)
    target = _new(xp.asarray(np.broadcast_to(bag_index[:, None], (kept.size, dim)).copy()), None)
    out = _F.scatter_add(zeros, 0, target, looked_up)
    if mode == "mean":
        counts = np.maximum(np.bincount(bag_index, minlength=bags), 1).astype(weight._array.dtype)
        out = _F.div(out, _new(xp.asarray(counts[:, None]), None))
    return out


# ---- volumetric (3-D) ops, composed from the 1-D and 2-D ones ----------------------------------------------------
# Pooling over a box is separable: the mean (with PyTorch's divisor, a product of per-axis counts) and the max of a
# box are the mean and max along each axis in turn, so the 3-D pools run the 1-D ones along D, H and W.


def _along(input, axis, fn):
    """Apply a 1-D op ``fn`` on ``(M, 1, L)`` to every line of ``input`` along ``axis``."""
    moved = _F.movedim(input, axis, -1)
    lead = moved._array.shape[:-1]
    out = fn(_F.reshape(moved, (-1, 1, moved._array.shape[-1])))
    return _F.movedim(_F.reshape(out, lead + (out._array.shape[-1],)), -1, axis)


def _pool3d_input(input, name):
    if input._array.ndim not in (4, 5):
        raise RuntimeError(f"{name}: Expected 4D or 5D (batch mode) tensor for input, got {_shape_text(input)}")


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Average pooling of ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input (same options as ``avg_pool2d``).

    >>> import dtorch
    >>> avg_pool3d(dtorch.ones(1, 1, 4, 4, 4), 2).shape
    dtorch.Size([1, 1, 2, 2, 2])
    """
    try:
        _pool3d_input(input, "avg_pool3d")
        _F._check_float(input, "avg_pool3d")
        kernel = _tuple(kernel_size, 3, "kernel_size")
        stride = kernel if stride is None or (not isinstance(stride, int) and len(stride) == 0) else \
            _tuple(stride, 3, "stride")
        padding = _tuple(padding, 3, "padding")
        out = input
        for i in range(3):
            # per-axis sums when the divisor is overridden, per-axis means otherwise
            out = _along(out, input._array.ndim - 3 + i, lambda t, i=i: avg_pool2d(
                _F.unsqueeze(t, 2), (1, kernel[i]), (1, stride[i]), (0, padding[i]), ceil_mode, count_include_pad,
                1 if divisor_override else None)[:, :, 0])
        if divisor_override:
            out = _F.div(out, float(divisor_override))
        return out
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "avg_pool3d", "input", input)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Max pooling of ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input; ``return_indices`` also gives each maximum's
    flat ``D * H * W`` index (the first in scan order among ties), for ``max_unpool3d``.

    >>> import dtorch
    >>> max_pool3d(dtorch.arange(8.).reshape(1, 1, 2, 2, 2), 2, return_indices=True)[1].flatten()
    tensor([7])
    """
    try:
        _pool3d_input(input, "max_pool3d")
        kernel = _tuple(kernel_size, 3, "kernel_size")
        stride = kernel if stride is None or (not isinstance(stride, int) and len(stride) == 0) else \
            _tuple(stride, 3, "stride")
        padding = _tuple(padding, 3, "padding")
        dilation = _tuple(dilation, 3, "dilation")
        if return_indices:
            # the maxima at PyTorch's indices (first in scan order among ties), the gradient flowing to them
            out_size = tuple(_pool_output_size(size, k, s, p, d, ceil_mode) for size, k, s, p, d in zip(
                input._array.shape[-3:], kernel, stride, padding, dilation))
            indices = _max_pool3d_indices(input, out_size, kernel, stride, padding, dilation)
            lead = input._array.shape[:-3]
            out = _F.gather(_F.reshape(input, lead + (-1,)), len(lead), _F.reshape(indices, lead + (-1,)))
            return _F.reshape(out, lead + out_size), indices
        out = input  # separable: tied maxima may get the gradient in another order than PyTorch's
        for i in range(3):
            out = _along(out, input._array.ndim - 3 + i, lambda t, i=i: max_pool1d(
                t, kernel[i], stride[i], padding[i], dilation[i], ceil_mode))
        return out
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "max_pool3d", "input kernel_size", input, kernel_size)


def _pool_output_size(size, kernel, stride, padding, dilation, ceil_mode):
    """PyTorch's pooling output extent (a ceil-mode window must start inside the input or its left padding)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _max_pool3d_indices(input, out_size, kernel, stride, padding, dilation):
    """The flat ``D * H * W`` index of each window's maximum (first in scan order), computed on the host."""
    data = _backend.to_device(input._array, "cpu")
    spatial = data.shape[-3:]
    span = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    # pad with -inf: before by ``padding``, after as far as the last window reaches
    needed = [(o - 1) * s + e for o, s, e in zip(out_size, stride, span)]
    pads = [(0, 0)] * (data.ndim - 3) + [(p, max(n - p - size, 0)) for p, n, size in zip(padding, needed, spatial)]
    padded = np.pad(data.astype(np.float64), pads, constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, span, axis=(-3, -2, -1))
    windows = windows[..., ::stride[0], ::stride[1], ::stride[2], ::dilation[0], ::dilation[1], ::dilation[2]]
    windows = windows[..., :out_size[0], :out_size[1], :out_size[2], :, :, :]
    best = windows.reshape(windows.shape[:-3] + (-1,)).argmax(-1)
    kd, kh, kw = np.unravel_index(best, kernel)
    grids = np.meshgrid(*[np.arange(o) for o in out_size], indexing="ij")
    z = grids[0] * stride[0] - padding[0] + kd * dilation[0]
    y = grids[1] * stride[1] - padding[1] + kh * dilation[1]
    x = grids[2] * stride[2] - padding[2] + kw * dilation[2]
    flat = (z * spatial[1] + y) * spatial[2] + x
    return _new(_backend.xp_of(input._array).asarray(flat.astype(np.int64)), None)


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=True):
    """``max_pool3d`` returning ``(output, indices)``.

    >>> import dtorch
    >>> max_pool3d_with_indices(dtorch.arange(8.).reshape(1, 2, 2, 2), 2)[1].flatten()
    tensor([7])
    """
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def adaptive_avg_pool3d(input, output_size):
    """Mean pooling of ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input to ``output_size`` (None keeps an extent).

    >>> import dtorch
    >>> adaptive_avg_pool3d(dtorch.ones(1, 2, 5, 6, 7), (2, None, 3)).shape
    dtorch.Size([1, 2, 2, 6, 3])
    """
    try:
        _pool3d_input(input, "adaptive_avg_pool3d")
        _F._check_float(input, "adaptive_avg_pool3d")
        size = _adaptive_size(output_size, input._array.shape[-3:])
        out = input
        for i in range(3):
            out = _along(out, input._array.ndim - 3 + i, lambda t, i=i: adaptive_avg_pool1d(t, size[i]))
        return out
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "adaptive_avg_pool3d", "input", input)


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """Max pooling of ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input to ``output_size``. No ``return_indices``.

    >>> import dtorch
    >>> adaptive_max_pool3d(dtorch.ones(1, 2, 5, 6, 7), 2).shape
    dtorch.Size([1, 2, 2, 2, 2])
    """
    try:
        if return_indices:
            raise NotImplementedError("adaptive_max_pool3d: return_indices=True is not supported by dtorch")
        _pool3d_input(input, "adaptive_max_pool3d")
        size = _adaptive_size(output_size, input._array.shape[-3:])
        out = input
        for i in range(3):
            out = _along(out, input._array.ndim - 3 + i, lambda t, i=i: adaptive_max_pool1d(t, size[i]))
        return out
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "adaptive_max_pool3d", "input", input)


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Power-average pooling of ``(N, C, D, H, W)`` input.

    >>> import dtorch
    >>> lp_pool3d(dtorch.ones(1, 1, 2, 2, 2), 1, 2).flatten()
    tensor([8.])
    """
    kd, kh, kw = _tuple(kernel_size, 3, "kernel_size")
    return _lp_pool(input, float(norm_type), kernel_size, stride, ceil_mode, avg_pool3d, kd * kh * kw)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """3-D convolution of ``(N, C, D, H, W)`` (or ``(C, D, H, W)``) input with ``(O, C / groups, kD, kH, kW)``
    weights: one batched ``conv2d`` per kernel depth, summed.

    >>> import dtorch
    >>> conv3d(dtorch.ones(1, 2, 4, 5, 6), dtorch.ones(3, 2, 3, 3, 3), padding=1).shape
    dtorch.Size([1, 3, 4, 5, 6])
    """
    try:
        _check_conv_ranks(input, weight, 3, "conv3d")
        if _AUTOCAST.active or input._array.dtype is _BFLOAT16 and not _AUTOCAST.inner:
            return _F._lower_precision(conv3d, (input, weight, bias), stride, padding, dilation, groups)
        if input._array.ndim == 4:
            return _F.squeeze(conv3d(_F.unsqueeze(input, 0), weight, bias, stride, padding, dilation, groups), 0)
        _same_dtype("conv3d", input, weight, bias)
        kernel = weight._array.shape[2:]
        stride = _tuple(stride, 3, "stride")
        dilation = _tuple(dilation, 3, "dilation")
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"Invalid padding string '{padding}', should be one of {{'valid', 'same'}}")
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            totals = [d * (k - 1) if padding == "same" else 0 for k, d in zip(kernel, dilation)]
            pads = [(t // 2, t - t // 2) for t in totals]
        else:
            pads = [(p, p) for p in _tuple(padding, 3, "padding")]
        n, c = input._array.shape[:2]
        if c != weight._array.shape[1] * groups:
            raise RuntimeError(
                f"Given groups={groups}, weight of size {_shape_text(weight)}, expected input{_shape_text(input)} to "
                f"have {weight._array.shape[1] * groups} channels, but got {c} channels instead"
            )
        x = pad(input, (pads[2][0], pads[2][1], pads[1][0], pads[1][1], pads[0][0], pads[0][1]))
        depth = x._array.shape[2]
        d_out = (depth - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
        if d_out <= 0:
            raise RuntimeError(f"conv3d: the kernel of depth {kernel[0]} (dilation {dilation[0]}) does "
                               "not fit the padded "
                               f"input depth {depth}")
        xp = _backend.xp_of(input._array)
        out = None
        for kd in range(kernel[0]):
            rows = _new(xp.asarray(np.arange(d_out) * stride[0] + kd * dilation[0]), None)
            slices = _F.movedim(_F.index_select(x, 2, rows), 2, 1)  # (N, D_out, C, H, W)
            slices = _F.reshape(slices, (n * d_out,) + slices._array.shape[2:])
            term = conv2d(slices, _F.getitem(weight, (slice(None), slice(None), kd)), None, stride[1:], 0,
                          dilation[1:], groups)
            out = term if out is None else _F.add(out, term)
        out = _F.movedim(_F.reshape(out, (n, d_out) + out._array.shape[1:]), 1, 2)
        if bias is not None:
            out = _F.add(out, _F.reshape(bias, (1, -1, 1, 1, 1)))
        return out
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "conv3d", "input weight bias", input, weight, bias)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed 3-D convolution of ``(N, C, D, H, W)`` (or ``(C, D, H, W)``) input with ``(C, O / groups, kD, kH,
    kW)`` weights: one batched ``conv_transpose2d`` per kernel depth, each placed at its output depths.

    >>> import dtorch
    >>> conv_transpose3d(dtorch.ones(1, 4, 2, 3, 3), dtorch.ones(4, 2, 3, 3, 3), stride=2).shape
    dtorch.Size([1, 2, 5, 7, 7])
    """
    try:
        _check_conv_ranks(input, weight, 3, "conv_transpose3d")
        if _AUTOCAST.active or input._array.dtype is _BFLOAT16 and not _AUTOCAST.inner:
            return _F._lower_precision(conv_transpose3d, (input, weight, bias), stride, padding, output_padding, groups,
                                       dilation)
        if input._array.ndim == 4:
            return _F.squeeze(conv_transpose3d(_F.unsqueeze(input, 0), weight, bias, stride, padding, output_padding,
                                               groups, dilation), 0)
        stride = _tuple(stride, 3, "stride")
        padding = _tuple(padding, 3, "padding")
        output_padding = _tuple(output_padding, 3, "output_padding")
        dilation = _tuple(dilation, 3, "dilation")
        if output_padding[0] >= stride[0] and output_padding[0] >= dilation[0]:
            raise RuntimeError(
                f"output padding must be smaller than either stride or dilation, but got output_padding="
                f"{list(output_padding)}, stride={list(stride)}, dilation={list(dilation)}"
            )
        n, c, depth = input._array.shape[:3]
        k_depth = weight._array.shape[2]
        d_out = (depth - 1) * stride[0] - 2 * padding[0] + dilation[0] * (k_depth - 1) + output_padding[0] + 1
        if d_out <= 0:
            raise RuntimeError(f"conv_transpose3d: calculated output depth {d_out} is too small")
        planes = _F.reshape(_F.movedim(input, 2, 1), (n * depth, c) + input._array.shape[3:])
        xp = _backend.xp_of(input._array)
        out = None
        for kd in range(k_depth):
            y = conv_transpose2d(planes, _F.getitem(weight, (slice(None), slice(None), kd)), None, stride[1:],
                                 padding[1:], output_padding[1:], groups, dilation[1:])
            y = _F.movedim(_F.reshape(y, (n, depth) + y._array.shape[1:]), 1, -1)  # (N, O, Ho, Wo, D)
            # input depth d lands at output depth d * stride + kd * dilation - padding (when inside the output)
            place = np.zeros((depth, d_out), dtype=input._array.dtype)
            target = np.arange(depth) * stride[0] + kd * dilation[0] - padding[0]
            inside = (target >= 0) & (target < d_out)
            place[np.arange(depth)[inside], target[inside]] = 1
            term = _F.matmul(y, _new(xp.asarray(place), None))
            out = term if out is None else _F.add(out, term)
        out = _F.movedim(out, -1, 2)
        if bias is not None:
            out = _F.add(out, _F.reshape(bias, (1, -1, 1, 1, 1)))
        return out
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "conv_transpose3d", "input weight bias", input, weight, bias)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Put each value of ``(N, C, D, H, W)`` input back at its ``max_pool3d`` index; zeros elsewhere.

    >>> import dtorch
    >>> max_unpool3d(dtorch.ones(1, 1, 1, 1, 1), dtorch.tensor([[[[[7]]]]]), 2).flatten().tolist()
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    """
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 3, "max_unpool3d")


# ======================================================================================================================
# connectionist temporal classification


def _lengths(value, name, count):
    """Per-sample lengths from a tensor or a sequence of ints, as a tuple of Python ints."""
    if isinstance(value, Tensor):
        if value._array.dtype.kind not in "iu":
            raise RuntimeError(f"ctc_loss: {name} must be integral, got {value.dtype}")
        values = _backend.to_device(value._array, "cpu").reshape(-1).tolist()
    elif isinstance(value, int):
        values = [value]
    else:
        values = [int(v) for v in value]
    if len(values) != count:
        raise RuntimeError(f"ctc_loss: expected {name} to have {count} values (one per sample), got {len(values)}")
    return tuple(int(v) for v in values)


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean", zero_infinity=False):
    """The CTC loss of ``log_probs`` ``(T, N, C)`` (or ``(T, C)`` unbatched; log-softmax outputs) against
    ``targets``: ``(N, S)`` padded or 1-D concatenated class indices (never ``blank``). ``reduction='mean'``
    divides each loss by its target length, then averages over the batch; ``zero_infinity`` turns impossible
    alignments into a zero loss and gradient.

    >>> import dtorch
    >>> lp = dtorch.tensor([[[0.0, -100.0]], [[-100.0, 0.0]]])  # T=2, N=1, C=2: blank then class 1
    >>> ctc_loss(lp, dtorch.tensor([[1]]), [2], [1]).item()
    0.0
    """
    try:
        if reduction not in ("none", "mean", "sum"):
            raise ValueError(f"{reduction} is not a valid value for reduction")
        _F._check_float(log_probs, "ctc_loss")
        unbatched = log_probs._array.ndim == 2
        if unbatched:
            log_probs = _F.unsqueeze(log_probs, 1)
            if targets._array.ndim == 1:
                targets = _F.unsqueeze(targets, 0)
        if log_probs._array.ndim != 3:
            raise RuntimeError("ctc_loss: expected log_probs of shape (T, N, C) or (T, C), got "
                               f"{_shape_text(log_probs)}")
        steps, batch, classes = log_probs._array.shape
        inputs = _lengths(input_lengths, "input_lengths", batch)
        lengths = _lengths(target_lengths, "target_lengths", batch)
        if not 0 <= blank < classes:
            raise RuntimeError("blank must be in label range")
        for n, length in enumerate(inputs):
            if not 0 <= length <= steps:
                raise RuntimeError(f"Expected input_lengths to have value at most {steps}, but got value {length} "
                                   f"(while checking arguments for ctc_loss_cpu)")
        labels = _backend.to_device(targets._array, "cpu").astype(np.int64)
        if labels.ndim == 1:  # concatenated targets: pad them into rows
            if sum(lengths) > labels.shape[0]:
                raise RuntimeError(f"ctc_loss: target_lengths sum to {sum(lengths)} but targets hold {labels.shape[0]}")
            padded = np.zeros((batch, max(lengths, default=0)), dtype=np.int64)
            offset = 0
            for n, length in enumerate(lengths):
                padded[n, :length] = labels[offset:offset + length]
                offset += length
            labels = padded
        for n, length in enumerate(lengths):
            if length > labels.shape[1]:
                raise RuntimeError(f"Expected tensor to have size at least {length} at dimension 1, but got size "
                                   f"{labels.shape[1]} for argument #2 'targets' (while checking arguments for "
                                   f"ctc_loss_cpu)")
        labels = np.ascontiguousarray(labels[:, :max(lengths, default=0)])
        target_tensor = _new(_backend.to_device(labels, log_probs.device), None)
        loss = _loss.CTCLoss.apply(log_probs, target_tensor, input_lengths=inputs, target_lengths=lengths,
                                   blank=int(blank), reduction=reduction, zero_infinity=bool(zero_infinity))
        if unbatched and reduction == "none":
            loss = _F.squeeze(loss, 0)
        return loss
    except _NOT_A_TENSOR as error:  # a non-Tensor argument (a NumPy array): PyTorch's TypeError
        _not_a_tensor(error, "ctc_loss", "log_probs targets input_lengths target_lengths",
                      log_probs, targets, input_lengths, target_lengths)
