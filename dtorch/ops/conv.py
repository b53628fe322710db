"""Convolution, pooling and resampling on raw arrays: ``Conv2d``, ``ConvTranspose2d``, ``MaxPool2d`` (and
``MaxPool2dWithIndices``), ``AvgPool2d``, ``AdaptiveAvgPool2d``, ``AdaptiveMaxPool2d``, ``Unfold``, ``Fold``,
``Resample``. One-dimensional versions are these ops on a height-1 image (the front end reshapes).

How the convolutions are fast on NumPy: they never build the full im2col matrix (``kh * kw`` times the input).
Their "row columns" (``_RowColumns``) copy each input row once per kernel column (``kw`` times the input, one
strided copy), laid out so that every kernel row's im2col matrix is a plain strided view of them; the output is
one GEMM per kernel row (a batched matmul over the images, straight into ``(N, O, OH, OW)``), summed. With few
input channels the kernel rows are stacked into one GEMM instead (``_kernel_row_blocks``). The row columns are kept
for the weight gradient; the input gradient is a convolution of the padded output gradient with the rotated
kernel where the stride is 1 and it pays, else weight-transpose GEMMs added back through the row columns'
adjoint (``kw`` strided adds). ``ConvTranspose2d`` is the same machinery run the other way round. Pooling
works on a strided view of the windows: one ``maximum`` or ``+=`` per kernel offset over every output pixel.

Padding is carried as ``(top, bottom, left, right)`` so that ``padding='same'`` with an even kernel (PyTorch puts
the odd extra pixel at the bottom/right) and ``ceil_mode`` pooling (extra pixels at the bottom/right) are plain
attributes. Every op keeps only ints and tuples as attrs, so ``Op(**attrs).forward(*arrays)`` replays it.

A ``create_graph`` backward (WGAN-GP penalties on conv critics, MAML) writes the same gradients with
differentiable ops (the ``_graph_*`` functions at the end): convolution as ``Unfold`` + matmul and its adjoint as
matmul + ``Fold`` (``Unfold`` and ``Fold`` are each other's backward), pooling as ``Fold`` or ``IndexScatter``.
"""

from dtorch._backend import xp_of
from dtorch.autograd.function import Op, graph_mode
from dtorch.ops._util import constant
from dtorch.ops.indexing import _scatter_add_into, index_scatter
from dtorch.ops.nn import ConstantPad


def _pad_hw(xp, x, padding, value=0):
    """Pad the last two axes by ``(top, bottom, left, right)`` with ``value``; no copy when all are zero."""
    top, bottom, left, right = padding
    if not (top or bottom or left or right):
        return x
    shape = x.shape[:-2] + (x.shape[-2] + top + bottom, x.shape[-1] + left + right)
    out = xp.full(shape, value, dtype=x.dtype)
    out[..., top:top + x.shape[-2], left:left + x.shape[-1]] = x
    return out


def _crop_hw(x, padding, height, width):
    top, _, left, _ = padding
    return x[..., top:top + height, left:left + width]


def _windows_last(xp, xpad, kernel, stride, dilation, out_hw):
    """Strided view ``(N, C, OH, OW, kh, kw)`` of the windows of ``xpad``: no copy."""
    n, c = xpad.shape[:2]
    sn, sc, sh, sw = xpad.strides
    shape = (n, c, out_hw[0], out_hw[1], kernel[0], kernel[1])
    strides = (sn, sc, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1])
    return xp.lib.stride_tricks.as_strided(xpad, shape=shape, strides=strides)


def _offset_slices(i, j, stride, dilation, out_hw):
    """The strided slices of the padded image that kernel offset ``(i, j)`` touches, one per output pixel."""
    h0, w0 = i * dilation[0], j * dilation[1]
    return (
        slice(h0, h0 + stride[0] * (out_hw[0] - 1) + 1, stride[0]),
        slice(w0, w0 + stride[1] * (out_hw[1] - 1) + 1, stride[1]),
    )


def conv_output_size(size, kernel, stride, pad_total, dilation):
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


class _RowColumns:
    """The geometry of "row columns", the im2col layout that ``Conv2d`` and ``ConvTranspose2d`` compute with.

    Full im2col copies every window, ``kh * kw`` times the input. Row columns copy each input row once per kernel
    column instead (``kw`` times the input): ``rows[n, c, j, r, m, ow] = xpad[n, c, r + sh * m, j * dw + sw * ow]``,
    the padded rows sorted by their phase ``r`` modulo the row stride ``sh``, ``M`` rows per phase. Kernel row ``i``
    reads padded rows ``i * dh + sh * oh`` (``oh < OH``): rows ``q .. q + OH - 1`` of phase ``r``, where
    ``(q, r) = divmod(i * dh, sh)``. Viewed as ``(C * kw, sh * M * OW)``, the im2col matrix of kernel row ``i`` is
    therefore one contiguous column range starting at ``(r * M + q) * OW`` (``offsets[i]``), ``OH * OW`` long: a
    strided view that BLAS takes as it is. A convolution is ``kh`` GEMMs, one per kernel row, summed.

    ``padding`` is ``(top, bottom, left, right)``; a negative side crops the image instead (the transposed
    convolution's ``output_padding`` rows, and the input gradient computed as a convolution, need that).
    """

    def __init__(self, size_hw, kernel, stride, dilation, padding):
        height, width = size_hw
        kh, kw = kernel
        top, bottom, left, right = padding
        self.size_hw, self.kernel, self.stride, self.dilation, self.padding = size_hw, kernel, stride, dilation, padding
        self.padded_hw = (height + top + bottom, width + left + right)
        self.out_hw = (conv_output_size(height, kh, stride[0], top + bottom, dilation[0]),
                       conv_output_size(width, kw, stride[1], left + right, dilation[1]))
        self.phase_rows = -(-self.padded_hw[0] // stride[0])  # M
        self.row_length = stride[0] * self.phase_rows * self.out_hw[1]  # columns of one row-columns row
        self.offsets = []
        for i in range(kh):
            start, phase = divmod(i * dilation[0], stride[0])
            self.offsets.append((phase * self.phase_rows + start) * self.out_hw[1])

    def _placement(self):
        """Rows and columns ``(source, destination)`` slices between the image and the padded buffer."""
        height, width = self.size_hw
        top, _, left, _ = self.padding
        padded_h, padded_w = self.padded_hw
        src_rows = slice(max(0, -top), min(height, padded_h - top))
        src_columns = slice(max(0, -left), min(width, padded_w - left))
        dst_rows = slice(src_rows.start + top, src_rows.stop + top)
        dst_columns = slice(src_columns.start + left, src_columns.stop + left)
        return (src_rows, src_columns), (dst_rows, dst_columns)

    def _view(self, xp, buffer):
        """The ``(N, C, kw, sh, M, OW)`` strided view of a padded buffer: which buffer element each entry is."""
        n, c = buffer.shape[:2]
        sn, sc, s_row, s_column = buffer.strides
        sh, sw = self.stride
        dh, dw = self.dilation
        shape = (n, c, self.kernel[1], sh, self.phase_rows, self.out_hw[1])
        strides = (sn, sc, dw * s_column, s_row, sh * s_row, sw * s_column)
        return xp.lib.stride_tricks.as_strided(buffer, shape=shape, strides=strides)

    def _buffer_shape(self, n, c):
        # sh * M rows (at least the padded height): the view reaches the last phase's last row
        return (n, c, self.stride[0] * self.phase_rows, self.padded_hw[1])

    def columns(self, xp, x):
        """The row columns of ``x`` (N, C, H, W): a contiguous ``(N, C * kw, sh * M * OW)`` array."""
        n, c = x.shape[:2]
        buffer_shape = self._buffer_shape(n, c)
        top, _, left, _ = self.padding
        if x.shape == buffer_shape and top == left == 0:
            buffer = x  # no padding and no cropping: the image itself
        else:
            buffer = xp.zeros(buffer_shape, dtype=x.dtype)
            (src_rows, src_columns), (dst_rows, dst_columns) = self._placement()
            buffer[:, :, dst_rows, dst_columns] = x[:, :, src_rows, src_columns]
        rows = xp.ascontiguousarray(self._view(xp, buffer))
        return rows.reshape(n, c * self.kernel[1], self.row_length)

    def image_gradient(self, xp, grad_rows, channels):
        """The adjoint of ``columns``: each row-column entry's gradient added back at its image pixel."""
        n = grad_rows.shape[0]
        buffer = xp.zeros(self._buffer_shape(n, channels), dtype=grad_rows.dtype)
        target = self._view(xp, buffer)
        source = grad_rows.reshape(target.shape)
        for j in range(self.kernel[1]):  # one kernel column at a time: within one, no two entries share a pixel
            target[:, :, j] += source[:, :, j]
        top, _, left, _ = self.padding
        if tuple(buffer.shape[2:]) == tuple(self.size_hw) and top == left == 0:
            return buffer  # the buffer is the image (rows past a negative bottom padding stayed zero)
        (src_rows, src_columns), (dst_rows, dst_columns) = self._placement()
        image = xp.zeros((n, channels) + tuple(self.size_hw), dtype=grad_rows.dtype)
        image[:, :, src_rows, src_columns] = buffer[:, :, dst_rows, dst_columns]
        return image


def _kernel_row_blocks(geometry, group_channels):
    """Which kernel rows share one GEMM, as ``(first, stop)`` ranges. Each kernel row's im2col matrix is a view of the
    row columns (no copy), but its GEMM has only ``C/g * kw`` terms per output: with a single input channel (LeNet's
    first layer, a depthwise convolution) or an RGB image's 3 and a small kernel such GEMMs run far below BLAS's
    speed, so there all ``kh`` matrices are stacked into one (a copy of ``kh`` times the row columns) for one GEMM.
    From about 30 terms (LeNet's 6-channel 5x5 layer) the per-row GEMMs are as fast and the copy is saved: a LeNet
    train step is 10-15% faster than with that layer stacked."""
    kh, kw = geometry.kernel
    if group_channels * kw < _STACK_BELOW_TERMS:
        return [(0, kh)]
    return [(i, i + 1) for i in range(kh)]


_STACK_BELOW_TERMS = 16  # C/g * kw under this: one stacked GEMM (measured on LeNet's and bench_layers' shapes)


def _block_columns(xp, rows, geometry, groups, block):
    """The im2col matrix ``(N, g, rows in block * C/g * kw, OH * OW)`` of kernel rows ``block`` (a view for one)."""
    n = rows.shape[0]
    length = geometry.out_hw[0] * geometry.out_hw[1]
    grouped = rows.reshape(n, groups, rows.shape[1] // groups, rows.shape[2])
    views = [grouped[..., offset:offset + length] for offset in geometry.offsets[block[0]:block[1]]]
    if len(views) == 1:
        return views[0]
    return xp.stack(views, axis=2).reshape(n, groups, len(views) * grouped.shape[2], length)


def _block_weight(weight, groups, block):
    """``weight`` (O, C/g, kh, kw)'s taps of kernel rows ``block`` as ``(g, O/g, rows * C/g * kw)`` matrices, in the
    order of ``_block_columns``'s rows: kernel row, then input channel, then kernel column."""
    out_channels, group_channels, kh, kw = weight.shape
    per_group = weight.reshape(groups, out_channels // groups, group_channels, kh, kw)
    taps = per_group[:, :, :, block[0]:block[1], :].transpose(0, 1, 3, 2, 4)
    return taps.reshape(groups, out_channels // groups, (block[1] - block[0]) * group_channels * kw)


def _correlate(xp, rows, weight, groups, geometry, blocks=None):
    """``Conv2d``'s output ``(N, O, OH, OW)`` from the row columns of its input: one GEMM per block of kernel rows,
    summed. ``blocks`` are ``_kernel_row_blocks`` with their im2col matrices, when the caller has them."""
    n = rows.shape[0]
    out_channels = weight.shape[0]
    if blocks is None:
        blocks = _blocks_with_columns(xp, rows, weight, groups, geometry)
    out = term = None
    for block, columns in blocks:
        matrix = _block_weight(weight, groups, block)
        if out is None:
            out = xp.matmul(matrix, columns)  # (N, g, O/g, OH * OW)
        else:
            # one temporary for every further block: fewer fresh pages for the allocator to fault in
            term = xp.matmul(matrix, columns, out=term)
            out += term
    return out.reshape((n, out_channels) + tuple(geometry.out_hw))


def _blocks_with_columns(xp, rows, weight, groups, geometry):
    """``[(block, im2col matrix of the block)]`` for every ``_kernel_row_blocks`` block."""
    return [(block, _block_columns(xp, rows, geometry, groups, block))
            for block in _kernel_row_blocks(geometry, weight.shape[1])]


def _weight_gradient(xp, blocks, grad, weight_shape, groups, geometry):
    """``Conv2d``'s weight gradient: per block of kernel rows, the output gradient times its im2col matrix."""
    n = grad.shape[0]
    out_channels, group_channels, kh, kw = weight_shape
    length = geometry.out_hw[0] * geometry.out_hw[1]
    grad_out = grad.reshape(n, groups, out_channels // groups, length)
    # written through the (g, O/g, kh, C/g, kw) view, the order of _block_weight
    grad_weight = xp.empty(weight_shape, dtype=grad.dtype)
    taps = grad_weight.reshape(groups, out_channels // groups, group_channels, kh, kw).transpose(0, 1, 3, 2, 4)
    for block, columns in blocks:
        per_image = xp.matmul(grad_out, columns.swapaxes(-1, -2))  # (N, g, O/g, rows * C/g * kw)
        taps[:, :, block[0]:block[1]] = per_image.sum(axis=0).reshape(taps[:, :, block[0]:block[1]].shape)
    return grad_weight


def _input_gradient_by_columns(xp, grad, weight, groups, geometry):
    """``Conv2d``'s input gradient, the reference way: the weight's transpose times the output gradient gives
    each row-column entry's gradient (one GEMM per kernel row, added at that row's offset), which ``image_gradient``
    adds back onto the image. This is also ``ConvTranspose2d``'s forward. (Kernel rows are not stacked here: the
    stacked product would be a ``kh`` times larger temporary, for GEMMs no faster, and on LeNet it pushed the
    step's memory peak to where glibc returned pages to the system and faulted them back in every step.)"""
    n = grad.shape[0]
    out_channels, group_channels, kh, kw = weight.shape
    length = geometry.out_hw[0] * geometry.out_hw[1]
    grad_out = grad.reshape(n, groups, out_channels // groups, length)
    grad_rows = xp.zeros((n, groups, group_channels * kw, geometry.row_length), dtype=grad.dtype)
    for i, offset in enumerate(geometry.offsets):
        matrix = _block_weight(weight, groups, (i, i + 1))
        grad_rows[..., offset:offset + length] += xp.matmul(matrix.swapaxes(-1, -2), grad_out)
    return geometry.image_gradient(xp, grad_rows, groups * group_channels)


def _input_gradient_as_convolution(geometry, weight, groups):
    """Whether ``_input_gradient_by_convolution`` applies and pays. It applies with stride 1 (any dilation) and with
    dilation 1 (any stride). It pays where its GEMMs are not starved: their rows are the input channels, their
    terms the output channels times the kernel's taps. With O > C per group and stride 1, as in LeNet's or an
    RGB input layer, ``_input_gradient_by_columns`` is 1.5-3x faster; with 32 -> 32 channels, 3x3, this is 2x
    faster (measured on ``bench/bench_layers.py``'s shapes). For a strided convolution it was never slower: 1.0-1.4x
    faster on ResNet-like 3x3 and 1x1 downsampling layers, 2.3-2.6x on the transposed convolution's forward (32 ->
    16 channels, 4x4, stride 2) and on a stride-2 3x3 with O < C."""
    if geometry.stride == (1, 1):
        return weight.shape[0] // groups <= weight.shape[1]
    return geometry.dilation == (1, 1)


def _phase_axis(phase, pad_before, stride, dilation, kernel, size, out_size):
    """Along one axis, the image positions ``phase, phase + stride, ...`` as a stride-1 correlation of the output
    gradient: ``(first tap, taps, gradient padding before, after, positions)``. Position ``y = phase + stride * b``
    is padded position ``y + pad_before``; the taps ``i`` that reach it are those with ``i * dilation`` congruent
    to it modulo the stride (every ``stride``-th tap from ``first``, when ``dilation`` is 1 or ``stride`` is 1), each
    from output position ``(y + pad_before - i * dilation) / stride``."""
    count = -(-(size - phase) // stride)
    shift, first = divmod(phase + pad_before, stride)
    taps = -(-(kernel - first) // stride) if first < kernel else 0
    before = dilation * (taps - 1) - shift
    after = count - 1 + shift - (out_size - 1)
    return first, taps, before, after, count


def _rotated_transpose(weight, groups):
    """The kernel rotated by 180 degrees with its channel axes swapped per group: ``(C, O/g, kh, kw)``, the weight
    of the correlation that maps an output gradient to the input gradient."""
    out_channels, group_channels, kh, kw = weight.shape
    per_group = weight.reshape(groups, out_channels // groups, group_channels, kh, kw)[..., ::-1, ::-1]
    return per_group.transpose(0, 2, 1, 3, 4).reshape(groups * group_channels, out_channels // groups, kh, kw)


def _input_gradient_by_convolution(xp, grad, weight, groups, geometry):
    """``Conv2d``'s input gradient as correlations of the output gradient with the rotated kernel, no scatter.

    With stride 1 it is one correlation: the gradient padded by the kernel's extent less the forward padding, row
    columns and ``kh`` GEMMs as in the forward. With stride ``s`` (dilation 1) each of the ``s * s`` phases of the
    image (``image[..., py::s, px::s]``, "sub-pixel" positions) is reached by every ``s``-th tap only: one stride-1
    correlation per phase with that sub-kernel, written into its phase."""
    out_channels, group_channels, kh, kw = weight.shape
    n = grad.shape[0]
    height, width = geometry.size_hw
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    top, _, left, _ = geometry.padding
    oh, ow = geometry.out_hw
    row_phases = [(py, _phase_axis(py, top, sh, dh, kh, height, oh)) for py in range(min(sh, height))]
    column_phases = [(px, _phase_axis(px, left, sw, dw, kw, width, ow)) for px in range(min(sw, width))]
    if (sh, sw) == (1, 1):
        image = None  # the one phase is the whole image
    elif all(plan[1] for _, plan in row_phases + column_phases):
        image = xp.empty((n, groups * group_channels, height, width), dtype=grad.dtype)  # every phase is written
    else:
        image = xp.zeros((n, groups * group_channels, height, width), dtype=grad.dtype)
    for py, (row_first, row_taps, pad_top, pad_bottom, _) in row_phases:
        for px, (column_first, column_taps, pad_left, pad_right, _) in column_phases:
            if row_taps == 0 or column_taps == 0:
                continue  # no tap reaches this phase: its gradient is zero
            sub_kernel = weight[:, :, row_first::sh, column_first::sw]
            adjoint = _RowColumns((oh, ow), (row_taps, column_taps), (1, 1), (dh, dw),
                                  (pad_top, pad_bottom, pad_left, pad_right))
            phase = _correlate(xp, adjoint.columns(xp, grad), _rotated_transpose(sub_kernel, groups), groups, adjoint)
            if image is None:
                return phase
            image[:, :, py::sh, px::sw] = phase
    return image


def _input_gradient(xp, grad, weight, groups, geometry):
    """``Conv2d``'s input gradient, ``(N, C, H, W)`` for the image ``geometry`` describes."""
    if _input_gradient_as_convolution(geometry, weight, groups):
        return _input_gradient_by_convolution(xp, grad, weight, groups, geometry)
    return _input_gradient_by_columns(xp, grad, weight, groups, geometry)


_KEEP_ROWS_BYTES = 64 * 2 ** 20  # the largest row columns a Conv2d holds from forward to backward


class Conv2d(Op):
    """2-D cross-correlation: ``out[n, o] = sum_c w[o, c] * x[n, c]`` over windows, in groups; bias optional.

    Inputs ``(x, weight, bias)`` with x ``(N, C, H, W)``, weight ``(O, C // groups, kh, kw)``, bias ``(O,)`` or None.
    The input's row columns (``_RowColumns``, ``kw`` times the input's size) are kept for the weight gradient (up to
    ``_KEEP_ROWS_BYTES``, else rebuilt in backward); the input and weight are saved as well (an in-place change of
    either is an error in backward, and a ``create_graph`` backward uses them).
    """

    attr_names = ("stride", "padding", "dilation", "groups")

    def forward(self, x, weight, bias):
        xp = self.xp
        geometry = _RowColumns(x.shape[2:], weight.shape[2:], self.stride, self.dilation, self.padding)
        rows = geometry.columns(xp, x)
        out = _correlate(xp, rows, weight, self.groups, geometry)
        if bias is not None:
            out += bias.reshape(1, -1, 1, 1)
        self.save_for_backward(x, weight)
        # the row columns (kw times the input) are kept for the weight gradient, which saves rebuilding them (5% of
        # a 32 -> 32 channel 3x3 step), up to a size where the memory matters more; not the stacked blocks (kh times
        # larger still: holding those raised LeNet's step peak until glibc faulted pages in at every step)
        self.geometry = geometry
        self.rows = rows if rows.nbytes <= _KEEP_ROWS_BYTES else None
        return out

    def backward(self, grad):
        xp = self.xp
        if xp is graph_mode.namespace:
            return _graph_conv_backward(self, grad)
        x, weight = self.saved_tensors
        x_edge, w_edge, b_edge = self.edges
        grad_x = grad_w = grad_b = None
        # the forward's row columns serve one backward and are let go as soon as the weight gradient has them
        # (the input gradient's own row columns then take their memory, already paged in); a second backward
        # through a retained graph rebuilds them from the saved input
        rows, self.rows = self.rows, None
        if w_edge is not None:
            if rows is None:
                rows = self.geometry.columns(xp, x)
            blocks = _blocks_with_columns(xp, rows, weight, self.groups, self.geometry)
            grad_w = _weight_gradient(xp, blocks, grad, weight.shape, self.groups, self.geometry)
            del rows, blocks
        else:
            del rows
        if b_edge is not None:
            grad_b = grad.sum(axis=(0, 2, 3))
        if x_edge is not None:
            grad_x = _input_gradient(xp, grad, weight, self.groups, self.geometry)
        return grad_x, grad_w, grad_b


class ConvTranspose2d(Op):
    """The adjoint of ``Conv2d`` in its input ("deconvolution"): each input pixel scatters ``weight`` windows.

    Inputs ``(x, weight, bias)`` with x ``(N, Cin, H, W)``, weight ``(Cin, Cout // groups, kh, kw)``.
    ``padding`` crops ``(ph, pw)`` from both sides of the full result; ``output_padding`` adds bottom/right rows.
    The forward is ``Conv2d``'s input gradient for the convolution that maps this op's output back to ``x`` (that
    convolution's padding is ``padding`` less ``output_padding`` at the bottom/right); the backward is that
    convolution's forward (input gradient) and weight gradient, on the row columns of the output gradient.
    """

    attr_names = ("stride", "padding", "output_padding", "dilation", "groups")

    def _geometry(self, x, weight):
        n, cin, h, w = x.shape
        kh, kw = weight.shape[2:]
        sh, sw = self.stride
        dh, dw = self.dilation
        ph, pw = self.padding
        oph, opw = self.output_padding
        out_hw = ((h - 1) * sh + dh * (kh - 1) + 1 + oph - 2 * ph, (w - 1) * sw + dw * (kw - 1) + 1 + opw - 2 * pw)
        return _RowColumns(out_hw, (kh, kw), self.stride, self.dilation, (ph, ph - oph, pw, pw - opw))

    def forward(self, x, weight, bias):
        xp = self.xp
        geometry = self._geometry(x, weight)
        out = _input_gradient(xp, x, weight, self.groups, geometry)
        if bias is not None:
            out += bias.reshape(1, -1, 1, 1)
        self.save_for_backward(x, weight)
        self.geometry = geometry
        # the uncropped output's extent, for the create_graph backward
        self.full_hw = (geometry.padded_hw[0] + self.output_padding[0], geometry.padded_hw[1] + self.output_padding[1])
        return out

    def backward(self, grad):
        xp = self.xp
        if xp is graph_mode.namespace:
            return _graph_conv_transpose_backward(self, grad)
        x, weight = self.saved_tensors
        x_edge, w_edge, b_edge = self.edges
        grad_x = grad_w = grad_b = None
        if x_edge is not None or w_edge is not None:
            rows = self.geometry.columns(xp, grad)
            blocks = _blocks_with_columns(xp, rows, weight, self.groups, self.geometry)
        if x_edge is not None:
            grad_x = _correlate(xp, rows, weight, self.groups, self.geometry, blocks)
        if w_edge is not None:
            grad_w = _weight_gradient(xp, blocks, x, weight.shape, self.groups, self.geometry)
        if b_edge is not None:
            grad_b = grad.sum(axis=(0, 2, 3))
        return grad_x, grad_w, grad_b


def pool_output_size(size, kernel, stride, padding, dilation, ceil_mode):
    """PyTorch's pooling output extent: with ``ceil_mode`` the last window must start inside input or left pad."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + padding:
            out -= 1
    else:
        out = span // stride + 1
    return out


def _pool_padding(size_hw, out_hw, kernel, stride, padding, dilation):
    """``(top, bottom, left, right)``: symmetric padding plus what the last ``ceil_mode`` window needs."""
    pads = []
    for axis in range(2):
        needed = (out_hw[axis] - 1) * stride[axis] + dilation[axis] * (kernel[axis] - 1) + 1
        after = max(needed - size_hw[axis] - padding[axis], padding[axis])
        pads += [padding[axis], after]
    return tuple(pads)


def _offset_views(windows):
    """The ``kh * kw`` strided views ``windows[..., i, j]`` (each of the output's shape), in row-major order."""
    kh, kw = windows.shape[-2:]
    return [(i, j, windows[..., i, j]) for i in range(kh) for j in range(kw)]


class MaxPool2d(Op):
    """Max over windows: one ``maximum`` per kernel offset over every output pixel at once (NaN propagates).

    The backward routes each output gradient to the first (row-major) position of its window that holds the
    maximum, as PyTorch's kernel does; ``MaxPool2dWithIndices`` also returns those positions.
    """

    attr_names = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")

    def _windows(self, x):
        xp = self.xp
        h, w = x.shape[2:]
        out_hw = tuple(
            pool_output_size((h, w)[a], self.kernel_size[a], self.stride[a], self.padding[a], self.dilation[a],
                             self.ceil_mode)
            for a in range(2)
        )
        pads = _pool_padding((h, w), out_hw, self.kernel_size, self.stride, self.padding, self.dilation)
        low = xp.iinfo(x.dtype).min if x.dtype.kind in "iub" else -xp.inf  # floating (bfloat16's kind is 'V')
        xpad = _pad_hw(xp, x, pads, low)
        self.pads, self.input_shape, self.padded_hw = pads, x.shape, xpad.shape[2:]
        return _windows_last(xp, xpad, self.kernel_size, self.stride, self.dilation, out_hw)

    def forward(self, x):
        views = _offset_views(self._windows(x))
        out = views[0][2].copy()
        for _, _, view in views[1:]:
            self.xp.maximum(out, view, out=out)
        self.views, self.out = views, out
        self.save_for_backward(x)  # the views read x in backward: an in-place change of x must be an error
        # the caller gets a copy: backward compares the windows with this node's maxima, and PyTorch lets the
        # output be changed in place (an in-place ReLU after pooling), which must not move the winners
        return out.copy()

    def _winner_masks(self):
        """Yield ``(i, j, mask)``: where offset (i, j) is the first position holding the window's maximum."""
        xp = xp_of(self.out)  # not self.xp: a create_graph backward calls this with the graph namespace there
        out = self.out
        # the NaN test per offset only where a maximum is NaN (one test of the output instead of one per offset)
        nan = bool((out != out).any())
        taken = None  # where an earlier offset won
        last = len(self.views) - 1
        for position, (i, j, view) in enumerate(self.views):
            hit = view == out
            if nan:
                hit |= view != view  # a NaN maximum goes to the first NaN
            if taken is None:
                taken = hit.copy() if position < last else None
            else:
                xp.greater(hit, taken, out=hit)  # hit and not taken (booleans)
                if position < last:
                    taken |= hit
            yield i, j, hit

    def backward(self, grad):
        xp = self.xp
        self.saved_tensors  # raises if the input was modified in place since forward
        if xp is graph_mode.namespace:
            return (_graph_max_pool_backward(self, grad),)
        out_hw = grad.shape[2:]
        padded = xp.zeros(self.input_shape[:2] + tuple(self.padded_hw), dtype=grad.dtype)
        # windows that do not overlap (stride >= their extent: MaxPool2d(2) and the like) touch each input position
        # at most once: the gradient is written, not added
        disjoint = all(s >= (k - 1) * d + 1 for s, k, d in zip(self.stride, self.kernel_size, self.dilation))
        for i, j, hit in self._winner_masks():
            rows, columns = _offset_slices(i, j, self.stride, self.dilation, out_hw)
            if disjoint:
                xp.multiply(grad, hit, out=padded[:, :, rows, columns])
            else:
                padded[:, :, rows, columns] += grad * hit
        return (_crop_hw(padded, self.pads, *self.input_shape[2:]),)


class MaxPool2dWithIndices(MaxPool2d):
    """``MaxPool2d`` that also returns, not differentiable, each maximum's flat index into the unpadded ``H * W``."""

    n_outputs = 2

    def forward(self, x):
        xp = self.xp
        out = super().forward(x)
        w = self.input_shape[3]
        out_hw = out.shape[2:]
        base_rows = xp.arange(out_hw[0]).reshape(-1, 1) * self.stride[0] - self.padding[0]
        base_cols = xp.arange(out_hw[1]) * self.stride[1] - self.padding[1]
        indices = xp.zeros(out.shape, dtype=xp.int64)
        for i, j, hit in self._winner_masks():
            flat = (base_rows + i * self.dilation[0]) * w + base_cols + j * self.dilation[1]
            indices += hit * flat
        return out, indices


class AvgPool2d(Op):
    """Mean over windows with PyTorch's divisor rules (``count_include_pad``, ``ceil_mode``, ``divisor_override``).

    The window sums are one ``+=`` per kernel offset over every output pixel at once.
    """

    attr_names = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")

    def forward(self, x):
        xp = self.xp
        n, c, h, w = x.shape
        ones = (1, 1)
        out_hw = tuple(
            pool_output_size((h, w)[a], self.kernel_size[a], self.stride[a], self.padding[a], 1, self.ceil_mode)
            for a in range(2)
        )
        pads = _pool_padding((h, w), out_hw, self.kernel_size, self.stride, self.padding, ones)
        xpad = _pad_hw(xp, x, pads)
        views = _offset_views(_windows_last(xp, xpad, self.kernel_size, self.stride, ones, out_hw))
        total = views[0][2].copy()
        for _, _, view in views[1:]:
            total += view
        self.divisor = self._divisor(xp, (h, w), out_hw, x.dtype)
        self.pads = pads
        self.input_shape = x.shape
        self.padded_hw = xpad.shape[2:]
        total /= self.divisor
        return total

    def _divisor(self, xp, size_hw, out_hw, dtype):
        if self.divisor_override:
            return dtype.type(self.divisor_override)
        counts = []
        for a in range(2):
            start = xp.arange(out_hw[a]) * self.stride[a] - self.padding[a]
            end = xp.minimum(start + self.kernel_size[a], size_hw[a] + self.padding[a])
            if not self.count_include_pad:
                start = xp.maximum(start, 0)
                end = xp.minimum(end, size_hw[a])
            counts.append(end - start)
        return (counts[0].reshape(-1, 1) * counts[1]).astype(dtype)

    def backward(self, grad):
        xp = self.xp
        if xp is graph_mode.namespace:
            return (_graph_avg_pool_backward(self, grad),)
        kh, kw = self.kernel_size
        out_hw = grad.shape[2:]
        share = grad / self.divisor
        padded = xp.zeros(self.input_shape[:2] + tuple(self.padded_hw), dtype=grad.dtype)
        for i in range(kh):
            for j in range(kw):
                rows, columns = _offset_slices(i, j, self.stride, (1, 1), out_hw)
                padded[:, :, rows, columns] += share
        return (_crop_hw(padded, self.pads, *self.input_shape[2:]),)


def adaptive_matrix(xp, size, out_size, dtype):
    """``(out_size, size)`` averaging matrix: row i averages ``[floor(i*size/out), ceil((i+1)*size/out))``."""
    matrix = xp.zeros((out_size, size), dtype=dtype)
    for i in range(out_size):
        start = (i * size) // out_size
        end = -(-((i + 1) * size) // out_size)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


class AdaptiveAvgPool2d(Op):
    """Average pooling to a fixed output size: ``out = Ph @ x @ Pw^T`` with two averaging matrices."""

    attr_names = ("output_size",)

    def forward(self, x):
        xp = self.xp
        lead = x.shape[:-2]
        h, w = x.shape[-2:]
        oh, ow = self.output_size
        if (oh, ow) == (1, 1):
            self.input_shape = x.shape
            return x.mean(axis=(-2, -1), keepdims=True)
        ph = adaptive_matrix(xp, h, oh, x.dtype)
        pw = adaptive_matrix(xp, w, ow, x.dtype)
        rows = (x.reshape(-1, w) @ pw.T).reshape(-1, h, ow)  # (NC, H, OW)
        out = xp.tensordot(ph, rows, axes=(1, 1))  # (OH, NC, OW): one gemm
        self.matrices = (ph, pw)
        self.input_shape = x.shape
        return xp.ascontiguousarray(out.transpose(1, 0, 2)).reshape(lead + (oh, ow))

    def backward(self, grad):
        xp = self.xp
        h, w = self.input_shape[-2:]
        if xp is graph_mode.namespace:
            if tuple(self.output_size) == (1, 1):
                return (grad.expand(*self.input_shape) / (h * w),)
            ph, pw = self.matrices
            return (constant(ph.T) @ (grad @ constant(pw)),)
        if tuple(self.output_size) == (1, 1):
            return (xp.broadcast_to(grad / (h * w), self.input_shape).copy(),)
        ph, pw = self.matrices
        oh, ow = self.output_size
        rows = (grad.reshape(-1, ow) @ pw).reshape(-1, oh, w)  # (NC, OH, W)
        full = xp.tensordot(ph.T, rows, axes=(1, 1))  # (H, NC, W)
        return (xp.ascontiguousarray(full.transpose(1, 0, 2)).reshape(self.input_shape),)


def adaptive_bounds(size, out_size):
    """``(start, end)`` of each adaptive window: ``[floor(i*size/out), ceil((i+1)*size/out))``."""
    return [((i * size) // out_size, -(-((i + 1) * size) // out_size)) for i in range(out_size)]


class AdaptiveMaxPool2d(Op):
    """Max over adaptive windows (PyTorch's bounds), two stages: rows within each output row, then columns.

    A second, non-differentiable output holds the flat ``H * W`` index of each maximum. The loops run over
    output rows and output columns (``OH + OW`` slices), never over pixels.
    """

    attr_names = ("output_size",)
    n_outputs = 2

    def forward(self, x):
        xp = self.xp
        lead = x.shape[:-2]
        h, w = x.shape[-2:]
        oh, ow = self.output_size
        flat = x.reshape((-1, h, w))
        m = flat.shape[0]
        row_values = xp.empty((m, oh, w), dtype=x.dtype)
        row_index = xp.empty((m, oh, w), dtype=xp.int64)
        for i, (start, end) in enumerate(adaptive_bounds(h, oh)):
            arg = xp.argmax(flat[:, start:end, :], axis=1)
            row_index[:, i, :] = arg + start
            row_values[:, i, :] = xp.take_along_axis(flat[:, start:end, :], arg[:, None, :], axis=1)[:, 0, :]
        out = xp.empty((m, oh, ow), dtype=x.dtype)
        index = xp.empty((m, oh, ow), dtype=xp.int64)
        for j, (start, end) in enumerate(adaptive_bounds(w, ow)):
            arg = xp.argmax(row_values[:, :, start:end], axis=2)
            out[:, :, j] = xp.take_along_axis(row_values[:, :, start:end], arg[:, :, None], axis=2)[:, :, 0]
            rows = xp.take_along_axis(row_index[:, :, start:end], arg[:, :, None], axis=2)[:, :, 0]
            index[:, :, j] = rows * w + arg + start
        self.index = index
        self.input_shape = x.shape
        return out.reshape(lead + (oh, ow)), index.reshape(lead + (oh, ow))

    def backward(self, grad):
        xp = self.xp
        h, w = self.input_shape[-2:]
        m = self.index.shape[0]
        if xp is graph_mode.namespace:
            rows = xp_of(self.index).arange(m).reshape(-1, 1, 1)
            spec = (("tensor", 0), ("tensor", 1))
            flat = index_scatter(grad.reshape(self.index.shape), spec, (rows, self.index), (m, h * w))
            return (flat.reshape(self.input_shape),)
        grad_flat = xp.zeros((m, h * w), dtype=grad.dtype)
        rows = xp.broadcast_to(xp.arange(m).reshape(-1, 1, 1), self.index.shape)
        _scatter_add_into(xp, grad_flat, (rows, self.index), grad.reshape(self.index.shape))
        return (grad_flat.reshape(self.input_shape),)


def resample_matrix(xp, size, out_size, mode, align_corners, scale, dtype):
    """``(out_size, size)`` matrix taking one axis from ``size`` to ``out_size`` samples (PyTorch's source-index
    rules); ``scale`` is the output-to-input step, or None for ``size / out_size``."""
    step = size / out_size if scale is None else scale
    dst = xp.arange(out_size, dtype=xp.float64)
    if mode in ("nearest", "nearest-exact"):
        offset = 0.5 if mode == "nearest-exact" else 0.0
        src = xp.minimum(xp.floor((dst + offset) * step).astype(xp.int64), size - 1)
        return (xp.arange(size) == src.reshape(-1, 1)).astype(dtype)
    if align_corners:
        src = dst * ((size - 1) / (out_size - 1)) if out_size > 1 else dst * 0
    elif mode == "bicubic":
        src = (dst + 0.5) * step - 0.5  # not clamped at 0: the cubic taps reach past the edge (and are clamped)
    else:
        src = xp.maximum((dst + 0.5) * step - 0.5, 0)
    if mode == "bicubic":
        return _bicubic_matrix(xp, src, size, dtype)
    low = xp.minimum(xp.floor(src).astype(xp.int64), size - 1)
    high = xp.minimum(low + 1, size - 1)
    frac = (src - low).reshape(-1, 1)
    columns = xp.arange(size)
    matrix = (columns == low.reshape(-1, 1)) * (1 - frac) + (columns == high.reshape(-1, 1)) * frac
    return matrix.astype(dtype)


def _bicubic_matrix(xp, src, size, dtype):
    """Keys' cubic convolution (``A = -0.75``, PyTorch's) at source positions ``src``: four taps per output at
    ``floor(src) - 1 .. floor(src) + 2``, indices clamped to the edge (so edge taps add up there)."""
    a = -0.75
    base = xp.floor(src)
    t = (src - base).reshape(-1, 1)

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    weights = xp.concatenate([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=1)  # (out, 4)
    taps = xp.clip(base.astype(xp.int64).reshape(-1, 1) + xp.arange(-1, 3), 0, size - 1)
    matrix = xp.zeros((src.shape[0], size), dtype=xp.float64)
    rows = xp.broadcast_to(xp.arange(src.shape[0]).reshape(-1, 1), taps.shape)
    _scatter_add_into(xp, matrix, (rows, taps), weights)
    return matrix.astype(dtype)


class Resample(Op):
    """``interpolate``'s nearest, (bi/tri)linear and bicubic modes: one small matrix per resized axis, applied by
    ``tensordot`` (the backward applies the transposes). Axes are the trailing ``len(out_sizes)`` ones."""

    attr_names = ("out_sizes", "mode", "align_corners", "scales")

    def forward(self, x):
        xp = self.xp
        first = x.ndim - len(self.out_sizes)
        matrices = []
        out = x
        for offset, out_size in enumerate(self.out_sizes):
            axis = first + offset
            scale = None if self.scales is None or self.scales[offset] is None else self.scales[offset]
            matrix = resample_matrix(xp, x.shape[axis], out_size, self.mode, self.align_corners, scale, x.dtype)
            matrices.append(matrix)
            out = xp.moveaxis(xp.tensordot(out, matrix, axes=([axis], [1])), -1, axis)
        self.matrices = matrices
        self.first = first
        return xp.ascontiguousarray(out)

    def backward(self, grad):
        xp = self.xp
        if xp is graph_mode.namespace:
            for offset, matrix in enumerate(self.matrices):
                axis = self.first + offset
                grad = (grad.movedim(axis, -1) @ constant(matrix)).movedim(-1, axis)
            return (grad,)
        for offset, matrix in enumerate(self.matrices):
            axis = self.first + offset
            grad = xp.moveaxis(xp.tensordot(grad, matrix, axes=([axis], [0])), -1, axis)
        return (xp.ascontiguousarray(grad),)


def _unfold(xp, x, kernel, stride, dilation, padding, out_hw):
    """``(N, C * kh * kw, OH * OW)`` patches of ``x`` (N, C, H, W), PyTorch's ``unfold`` layout."""
    n, c = x.shape[:2]
    xpad = _pad_hw(xp, x, padding)
    sn, sc, sh, sw = xpad.strides
    shape = (n, c, kernel[0], kernel[1], out_hw[0], out_hw[1])
    strides = (sn, sc, sh * dilation[0], sw * dilation[1], sh * stride[0], sw * stride[1])
    patches = xp.lib.stride_tricks.as_strided(xpad, shape=shape, strides=strides)
    return xp.ascontiguousarray(patches).reshape(n, c * kernel[0] * kernel[1], out_hw[0] * out_hw[1])


def _fold(xp, cols, channels, size_hw, kernel, stride, dilation, padding, out_hw):
    """Sum ``(N, C * kh * kw, OH * OW)`` patches back onto ``(N, C, H, W)``: the adjoint of ``_unfold``."""
    n = cols.shape[0]
    kh, kw = kernel
    patches = cols.reshape(n, channels, kh, kw, out_hw[0], out_hw[1])
    top, bottom, left, right = padding
    padded = xp.zeros((n, channels, size_hw[0] + top + bottom, size_hw[1] + left + right), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _offset_slices(i, j, stride, dilation, out_hw)
            padded[:, :, rows, columns] += patches[:, :, i, j]
    return xp.ascontiguousarray(_crop_hw(padded, padding, *size_hw))


class Unfold(Op):
    """Sliding local blocks of ``(N, C, H, W)`` as columns ``(N, C * kh * kw, L)`` (im2col); backward is fold."""

    attr_names = ("kernel_size", "stride", "dilation", "padding")

    def forward(self, x):
        h, w = x.shape[2:]
        pads = (self.padding[0], self.padding[0], self.padding[1], self.padding[1])
        self.out_hw = tuple(conv_output_size((h, w)[a], self.kernel_size[a], self.stride[a], 2 * self.padding[a],
                                             self.dilation[a]) for a in range(2))
        self.input_shape = x.shape
        return _unfold(self.xp, x, self.kernel_size, self.stride, self.dilation, pads, self.out_hw)

    def backward(self, grad):
        pads = (self.padding[0], self.padding[0], self.padding[1], self.padding[1])
        n, c, h, w = self.input_shape
        if self.xp is graph_mode.namespace:
            return (Fold.apply(grad, output_size=(h, w), kernel_size=self.kernel_size, stride=self.stride,
                               dilation=self.dilation, padding=self.padding),)
        return (_fold(self.xp, grad, c, (h, w), self.kernel_size, self.stride, self.dilation, pads, self.out_hw),)


class Fold(Op):
    """Columns ``(N, C * kh * kw, L)`` summed into an ``output_size`` image (col2im); backward is unfold."""

    attr_names = ("output_size", "kernel_size", "stride", "dilation", "padding")

    def _geometry(self):
        pads = (self.padding[0], self.padding[0], self.padding[1], self.padding[1])
        out_hw = tuple(conv_output_size(self.output_size[a], self.kernel_size[a], self.stride[a], 2 * self.padding[a],
                                        self.dilation[a]) for a in range(2))
        return pads, out_hw

    def forward(self, cols):
        pads, out_hw = self._geometry()
        channels = cols.shape[1] // (self.kernel_size[0] * self.kernel_size[1])
        return _fold(self.xp, cols, channels, self.output_size, self.kernel_size, self.stride, self.dilation, pads,
                     out_hw)

    def backward(self, grad):
        pads, out_hw = self._geometry()
        if self.xp is graph_mode.namespace:
            return (Unfold.apply(grad, kernel_size=self.kernel_size, stride=self.stride, dilation=self.dilation,
                                 padding=self.padding),)
        return (_unfold(self.xp, grad, self.kernel_size, self.stride, self.dilation, pads, out_hw),)


# ---- create_graph backward: the same gradients written with differentiable ops ----------------------------------------


def _graph_pad(x, pads, sign=1):
    """``ConstantPad`` of the last two axes by ``(top, bottom, left, right)`` (``sign=-1`` crops)."""
    if not any(pads):
        return x
    top, bottom, left, right = (sign * p for p in pads)
    return ConstantPad.apply(x, pads=((0, 0), (0, 0), (top, bottom), (left, right)), value=0)


def _graph_conv_backward(node, grad):
    """``Conv2d``'s gradients: ``grad_w = grad @ unfold(x)^T``, ``grad_x = fold(w^T @ grad)``, per group."""
    x, weight = node.saved_tensors
    x_edge, w_edge, b_edge = node.edges
    o, cg, kh, kw = weight.shape
    g = node.groups
    n, _, oh, ow = grad.shape
    grad_rows = grad.reshape(n, g, o // g, oh * ow)
    geometry = {"kernel_size": (kh, kw), "stride": node.stride, "dilation": node.dilation, "padding": (0, 0)}
    grad_x = grad_w = grad_b = None
    if w_edge is not None:
        cols = Unfold.apply(_graph_pad(x, node.padding), **geometry).reshape(n, g, cg * kh * kw, oh * ow)
        grad_w = (grad_rows @ cols.transpose(-1, -2)).sum(0).reshape(o, cg, kh, kw)
    if b_edge is not None:
        grad_b = grad.sum((0, 2, 3))
    if x_edge is not None:
        top, bottom, left, right = node.padding
        h, w = x.shape[2:]
        cols = weight.reshape(g, o // g, cg * kh * kw).transpose(-1, -2) @ grad_rows
        padded = Fold.apply(cols.reshape(n, g * cg * kh * kw, oh * ow), output_size=(h + top + bottom, w + left + right),
                            **geometry)
        grad_x = _graph_pad(padded, node.padding, -1)
    return grad_x, grad_w, grad_b


def _graph_conv_transpose_backward(node, grad):
    """``ConvTranspose2d``'s gradients: windows of the (padded back) gradient against the weight and the input."""
    x, weight = node.saved_tensors
    x_edge, w_edge, b_edge = node.edges
    cin, coutg, kh, kw = weight.shape
    g = node.groups
    n, _, h, w = x.shape
    ph, pw = node.padding
    full_h, full_w = node.full_hw
    grad_full = _graph_pad(grad, (ph, full_h - ph - grad.shape[2], pw, full_w - pw - grad.shape[3]))
    cols = Unfold.apply(grad_full, kernel_size=(kh, kw), stride=node.stride, dilation=node.dilation, padding=(0, 0))
    cols = cols.reshape(n, g, coutg * kh * kw, h * w)
    grad_x = grad_w = grad_b = None
    if x_edge is not None:
        grad_x = (weight.reshape(g, cin // g, coutg * kh * kw) @ cols).reshape(n, cin, h, w)
    if w_edge is not None:
        grad_w = (x.reshape(n, g, cin // g, h * w) @ cols.transpose(-1, -2)).sum(0).reshape(cin, coutg, kh, kw)
    if b_edge is not None:
        grad_b = grad.sum((0, 2, 3))
    return grad_x, grad_w, grad_b


def _graph_max_pool_backward(node, grad):
    """Each output gradient added at its window's winner (``IndexScatter``), then the padding cropped."""
    xp = xp_of(node.out)
    n, c, oh, ow = node.out.shape
    rows = xp.zeros(node.out.shape, dtype=xp.int64)
    columns = xp.zeros(node.out.shape, dtype=xp.int64)
    base_rows = xp.arange(oh).reshape(-1, 1) * node.stride[0]
    base_columns = xp.arange(ow) * node.stride[1]
    for i, j, hit in node._winner_masks():
        rows += hit * (base_rows + i * node.dilation[0])
        columns += hit * (base_columns + j * node.dilation[1])
    key = (xp.arange(n).reshape(-1, 1, 1, 1), xp.arange(c).reshape(1, -1, 1, 1), rows, columns)
    spec = tuple(("tensor", k) for k in range(4))
    padded = index_scatter(grad, spec, key, (n, c) + tuple(node.padded_hw))
    return _graph_pad(padded, node.pads, -1)


def _graph_avg_pool_backward(node, grad):
    """Each output's share spread over its window: ``Fold`` of the shares, then the padding cropped."""
    n, c, oh, ow = grad.shape
    kh, kw = node.kernel_size
    divisor = node.divisor
    share = grad / float(divisor) if getattr(divisor, "ndim", 0) == 0 else grad / constant(divisor)
    cols = share.reshape(n, c, 1, oh * ow).expand(n, c, kh * kw, oh * ow).reshape(n, c * kh * kw, oh * ow)
    padded = Fold.apply(cols, output_size=tuple(node.padded_hw), kernel_size=(kh, kw), stride=node.stride,
                        dilation=(1, 1), padding=(0, 0))
    return _graph_pad(padded, node.pads, -1)
