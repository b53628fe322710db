"""``Conv2d`` and ``ConvTranspose2d`` (dtorch/ops/conv.py) through each of their paths, against PyTorch.

The convolutions choose per layer between two ways of running the GEMMs (one per kernel row on views of the row
columns, or the kernel rows stacked into one GEMM when the input channels are few) and between two ways of
computing the input gradient (a convolution of the padded output gradient, or the reference: weight-transpose
GEMMs added back through the row columns' adjoint). These tests force every combination on the same inputs and
compare outputs and gradients with PyTorch's, float32 and float64, over strides, paddings (asymmetric and
'same'), dilations, groups, bias or none, transposed convolutions with output padding, non-contiguous inputs
and an empty batch.
"""

import numpy as np
import pytest
import torch

import dtorch
from dtorch.ops import conv as conv_ops

pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel lengths")

TOLERANCES = {np.float32: (2e-4, 1e-4), np.float64: (1e-10, 1e-10)}


@pytest.fixture(params=["per kernel row", "stacked"])
def blocks(request, monkeypatch):
    """Force one way of grouping the kernel rows into GEMMs."""
    monkeypatch.setattr(conv_ops, "_STACK_BELOW_TERMS", 0 if request.param == "per kernel row" else 10 ** 9)
    return request.param


@pytest.fixture(params=["by convolution where it applies", "by columns"])
def input_gradient(request, monkeypatch):
    """Force the input gradient's reference path, or take the convolution path wherever it applies (stride 1 or
    dilation 1)."""
    if request.param == "by columns":
        monkeypatch.setattr(conv_ops, "_input_gradient_as_convolution", lambda geometry, weight, groups: False)
    else:
        monkeypatch.setattr(conv_ops, "_input_gradient_as_convolution",
                            lambda geometry, weight, groups: geometry.stride == (1, 1) or geometry.dilation == (1, 1))
    return request.param


def _compare(function_name, x_shape, w_shape, dtype, bias=True, transpose_input=False, **kwargs):
    """Run ``function_name`` in both libraries on the same seeded inputs; compare output and all gradients."""
    rng = np.random.default_rng(sum(x_shape) + sum(w_shape))
    x = rng.standard_normal(x_shape).astype(dtype)
    if transpose_input:  # the same values through a non-contiguous (H, W-swapped) view
        x = np.ascontiguousarray(x.swapaxes(-1, -2)).swapaxes(-1, -2)
    weight = rng.standard_normal(w_shape).astype(dtype)
    out_channels = w_shape[0] if function_name.startswith("conv2d") or function_name == "conv1d" else (
        w_shape[1] * kwargs.get("groups", 1))
    b = rng.standard_normal(out_channels).astype(dtype) if bias else None
    results = []
    for lib in (dtorch, torch):
        inputs = [lib.tensor(x, requires_grad=True), lib.tensor(weight, requires_grad=True)]
        if b is not None:
            inputs.append(lib.tensor(b, requires_grad=True))
        if transpose_input:
            inputs[0] = lib.tensor(np.ascontiguousarray(x.swapaxes(-1, -2)), requires_grad=True)
            view = inputs[0].transpose(-1, -2)
        else:
            view = inputs[0]
        out = getattr(lib.nn.functional, function_name)(view, *inputs[1:], **kwargs)
        upstream = np.random.default_rng(7).standard_normal(tuple(out.shape)).astype(dtype)
        out.backward(lib.tensor(upstream))
        results.append([out.detach().numpy()] + [t.grad.numpy() for t in inputs])
    atol, rtol = TOLERANCES[dtype]
    for ours, theirs in zip(*results):
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        np.testing.assert_allclose(ours, theirs, atol=atol * max(1.0, np.abs(theirs).max(initial=0)), rtol=rtol)


CONV2D_CASES = [
    ((2, 4, 9, 10), (4, 4, 3, 3), dict(padding=1)),  # same-size 3x3, O <= C
    ((2, 2, 8, 7), (5, 2, 3, 3), dict(padding=1)),  # O > C
    ((2, 3, 9, 8), (4, 3, 3, 2), dict(stride=2, padding=(1, 2))),
    ((2, 3, 11, 9), (4, 3, 3, 3), dict(stride=(3, 1), dilation=(2, 1))),
    ((1, 2, 10, 11), (3, 2, 4, 2), dict(padding="same")),  # even kernel: the extra pixel bottom/right
    ((1, 2, 10, 11), (3, 2, 3, 3), dict(padding="same", dilation=(2, 3))),
    ((2, 4, 7, 8), (6, 2, 3, 3), dict(groups=2, padding=1)),
    ((2, 6, 7, 6), (6, 1, 3, 3), dict(groups=6, stride=(1, 2))),  # depthwise
    ((2, 8, 5, 5), (4, 8, 1, 1), dict()),  # 1x1
    ((2, 8, 7, 6), (4, 8, 1, 1), dict(stride=2)),  # ResNet's shortcut: phases no tap reaches
    ((2, 3, 13, 11), (4, 3, 3, 2), dict(stride=(4, 3), padding=(2, 1))),  # stride over the kernel's extent
    ((1, 4, 9, 9), (4, 4, 3, 3), dict(stride=2, padding=1)),  # ResNet's downsampling 3x3, O <= C
    ((2, 1, 12, 12), (6, 1, 5, 5), dict(padding=2)),  # LeNet's first layer
    ((3, 3, 6, 6), (2, 3, 6, 6), dict()),  # the kernel covers the image: one output pixel
    ((0, 3, 6, 6), (2, 3, 3, 3), dict(padding=1)),  # an empty batch
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV2D_CASES)
def test_conv2d_every_path_matches_torch(blocks, input_gradient, x_shape, w_shape, kwargs, dtype):
    _compare("conv2d", x_shape, w_shape, dtype, **kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_without_bias_and_with_a_non_contiguous_input(blocks, input_gradient, dtype):
    _compare("conv2d", (2, 3, 7, 9), (4, 3, 3, 3), dtype, bias=False, transpose_input=True, padding=1)
    _compare("conv1d", (2, 4, 11), (4, 2, 3), dtype, stride=2, padding=2, dilation=2, groups=2)


CONV_TRANSPOSE_CASES = [
    ((2, 4, 5, 6), (4, 3, 4, 4), dict(stride=2, padding=1)),  # the usual 2x upsampling
    ((2, 4, 4, 5), (4, 3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ((2, 3, 4, 4), (3, 2, 3, 3), dict()),  # stride 1
    ((1, 4, 3, 4), (4, 3, 2, 3), dict(stride=(2, 1), groups=2, dilation=(1, 2))),
    ((1, 2, 3, 3), (2, 2, 3, 3), dict(stride=2, dilation=3, output_padding=2)),  # output padding >= stride
    ((2, 2, 4, 4), (2, 3, 3, 3), dict(stride=3, padding=2)),
    ((0, 3, 4, 4), (3, 2, 3, 3), dict(stride=2)),
    ((2, 3, 4, 5), (3, 2, 1, 1), dict(stride=2, output_padding=1)),  # 1x1: every other output pixel is bias
    ((1, 2, 5, 4), (2, 3, 5, 3), dict(stride=(3, 2), padding=(2, 1), output_padding=(1, 0))),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV_TRANSPOSE_CASES)
def test_conv_transpose2d_every_path_matches_torch(blocks, input_gradient, x_shape, w_shape, kwargs, dtype):
    _compare("conv_transpose2d", x_shape, w_shape, dtype, **kwargs)
    _compare("conv_transpose2d", x_shape, w_shape, dtype, bias=False, **kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_transpose1d_with_output_padding_matches_torch(blocks, input_gradient, dtype):
    # height 1, no padding: the output padding column is the only part of the output no input reaches
    _compare("conv_transpose1d", (2, 4, 5), (4, 2, 3), dtype, stride=2, output_padding=1)
    _compare("conv_transpose1d", (2, 4, 5), (4, 1, 3), dtype, stride=3, padding=1, output_padding=2, groups=2)


def test_row_columns_adjoint_is_the_transpose():
    """``image_gradient`` is the adjoint of ``columns``: <columns(x), r> == <x, image_gradient(r)>, for strided,
    dilated, padded and cropped (negative padding) geometries."""
    rng = np.random.default_rng(3)
    for size, kernel, stride, dilation, padding in [((7, 8), (3, 2), (2, 3), (1, 2), (1, 0, 2, 1)),
                                                    ((9, 6), (2, 3), (3, 1), (2, 1), (-1, 2, 0, -2)),
                                                    ((9, 6), (2, 3), (1, 1), (1, 1), (1, -1, 2, -2)),  # same size
                                                    ((8, 6), (2, 2), (2, 1), (1, 1), (0, 0, 0, -1))]:
        geometry = conv_ops._RowColumns(size, kernel, stride, dilation, padding)
        x = rng.standard_normal((2, 3) + size)
        rows = geometry.columns(np, x)
        other = rng.standard_normal(rows.shape)
        back = geometry.image_gradient(np, other, 3)
        assert back.shape == x.shape
        np.testing.assert_allclose(np.vdot(rows, other), np.vdot(x, back), rtol=1e-12)


def test_second_backward_through_a_retained_graph_rebuilds_the_row_columns():
    """The forward's row columns are let go after the first backward; a retained graph's second backward rebuilds
    them and accumulates the same gradients again, as PyTorch does."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 6, 7)).astype(np.float32)
    weight = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    results = []
    for lib in (dtorch, torch):
        inputs = lib.tensor(x, requires_grad=True), lib.tensor(weight, requires_grad=True)
        loss = (lib.nn.functional.conv2d(*inputs, stride=(2, 1), padding=1) ** 2).sum()
        loss.backward(retain_graph=True)
        first = [t.grad.numpy().copy() for t in inputs]
        loss.backward()
        results.append(first + [t.grad.numpy() for t in inputs])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("function_name, shapes, kwargs", [
    ("conv2d", [(2, 3, 7, 6), (4, 3, 3, 2)], dict(stride=2, padding=(1, 0), dilation=(1, 2))),
    ("conv2d", [(1, 4, 6, 6), (4, 2, 3, 3)], dict(groups=2, padding="same")),
    ("conv_transpose2d", [(2, 4, 3, 4), (4, 3, 3, 3)], dict(stride=2, padding=1, output_padding=1)),
])
def test_create_graph_backward_matches_torch(function_name, shapes, kwargs):
    """Double backward (gradients of gradients, as in a WGAN-GP penalty) of the convolutions, float64."""
    from helpers import check_op

    check_op(lambda x, w: getattr(dtorch.nn.functional if isinstance(x, dtorch.Tensor) else torch.nn.functional,
                                  function_name)(x, w, **kwargs), None, shapes, dtype="float64", second_order=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_columns_too_large_to_keep_are_rebuilt_in_backward(monkeypatch, dtype):
    monkeypatch.setattr(conv_ops, "_KEEP_ROWS_BYTES", 0)
    _compare("conv2d", (2, 3, 8, 7), (4, 3, 3, 3), dtype, stride=(1, 2), padding=1)
