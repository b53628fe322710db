"""Normalisation layers as fused ops: ``BatchNorm``, ``LayerNorm``, ``GroupNorm``.

Each forward keeps the normalised input ``xhat`` and ``1 / sqrt(var + eps)``; each backward is the closed form
``dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))`` over the normalised axes (``dxhat`` is
the output gradient times the weight), which costs a few passes over the input instead of the dozen small ops
a composition would record. Statistics use the biased variance, as PyTorch's do.

On NumPy two fast paths stand beside these reference steps (tests/ops/test_fast_paths.py holds them equal):
LayerNorm over large C-contiguous rows works block by block of rows that stay in the cache (``_layer_norm_rows``),
and BatchNorm in training takes its per-channel sums as matrix-vector products and keeps the centred input
instead of ``xhat`` (``BatchNorm._channels_forward``), folding ``inv_std`` into per-channel factors.

A ``create_graph`` backward (gradient penalties, MAML) recomputes ``xhat`` and ``inv_std`` with differentiable ops
from the input (rebuilt as ``xhat / inv_std + mean`` and hung on the input's place in the graph, so no input Tensor
is kept between forward and backward) and applies the same closed form with ``self.xp`` (the graph namespace): the
gradient is differentiable in the input, the weight and the upstream gradient.
"""

import numpy as np

from dtorch import _kernels
from dtorch.autograd.function import Op, graph_mode
from dtorch.ops._util import attached, constant


def _normalise_backward(xp, dxhat, xhat, inv_std, axes):
    mean_dxhat = xp.mean(dxhat, axis=axes, keepdims=True)
    mean_dxhat_xhat = xp.mean(dxhat * xhat, axis=axes, keepdims=True)
    return inv_std * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat)


def _graph_statistics(xp, x, axes, eps):
    """``(xhat, inv_std)`` of Tensor ``x`` over ``axes``, built from differentiable ops."""
    centred = x - xp.mean(x, axis=axes, keepdims=True)
    inv_std = 1.0 / xp.sqrt(xp.mean(centred * centred, axis=axes, keepdims=True) + eps)
    return centred * inv_std, inv_std


def _sum_over(xp, value, axes):
    """``value`` summed over ``axes``; no axes leaves it as it is (``sum(dim=())`` would sum everything)."""
    return xp.sum(value, axis=axes) if axes else value


class BatchNorm(Op):
    """Inputs ``(x, weight, bias, running_mean, running_var)``; x is ``(N, C, *)``, the rest ``(C,)`` or None.

    ``training=True`` normalises with the batch statistics and also returns them (mean and the unbiased variance,
    not differentiable) so the front end can update the running buffers; otherwise the running statistics are used.
    """

    attr_names = ("training", "eps")
    saved_inputs_for_check_only = True  # (backward reads its own attributes; see check_saved)
    n_outputs = 3

    centred = None  # kept instead of ``xhat`` by the channel-sum path (``_batch_norm_channels``)

    def forward(self, x, weight, bias, running_mean, running_var):
        xp = self.xp
        c = x.shape[1]
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, c) + (1,) * (x.ndim - 2)
        self.weight, self.axes, self.shape = weight, axes, shape
        # (backward reads the weight: changing it in place before then must raise, as in PyTorch)
        self.save_for_backward(weight)
        if self.training and _channel_sums_apply(x):
            return self._channels_forward(x, weight, bias)
        if self.training:
            mean = self.centre = x.mean(axis=axes, keepdims=True)
            centred = x - mean
            var = (centred * centred).mean(axis=axes, keepdims=True)
            count = x.size // c
            unbiased = var.reshape(c) * (count / max(count - 1, 1))
            batch_stats = (mean.reshape(c), unbiased)
        else:
            self.centre = running_mean.reshape(shape)
            centred = x - self.centre
            var = running_var.reshape(shape)
            batch_stats = (xp.zeros(0, x.dtype), xp.zeros(0, x.dtype))
        inv_std = (1.0 / xp.sqrt(var + self.eps)).astype(x.dtype, copy=False)
        xhat = centred * inv_std
        # never hand out xhat itself: backward reads it, and the output may be changed in place (ReLU(inplace=True))
        out = xhat if weight is not None or bias is not None else xhat.copy()
        if weight is not None:
            out = out * weight.reshape(shape)
        if bias is not None:
            out = out + bias.reshape(shape)
        self.xhat = xhat
        self.inv_std = inv_std
        self.weight = weight
        self.axes = axes
        self.shape = shape
        return (out,) + batch_stats

    def _channels_forward(self, x, weight, bias):
        """Training forward on a C-contiguous float32/float64 NumPy ``(N, C, *)``: the per-channel sums as
        matrix-vector products over the ``(N, C, L)`` view (NumPy's reduction over axes (0, 2, ...) is ~3x
        slower), and the output as ``centred * (inv_std * weight) + bias`` in two passes. Keeps ``centred`` and
        ``inv_std`` ``(C,)``; backward folds ``xhat = centred * inv_std`` into per-channel factors."""
        n, c = x.shape[:2]
        grouped = x.reshape(n, c, -1)
        count = grouped.shape[0] * grouped.shape[2]
        mean = _channel_sums(grouped) / count
        centred = grouped - mean[:, None]
        var = np.einsum("ncl,ncl->c", centred, centred) / count
        inv_std = 1.0 / np.sqrt(var + self.eps)
        scale = inv_std * weight if weight is not None else inv_std
        out = centred * scale[:, None]
        if bias is not None:
            out += bias[:, None]
        self.centred, self.inv_std, self.centre = centred, inv_std, mean
        unbiased = var * (count / max(count - 1, 1))
        return out.reshape(x.shape), mean, unbiased

    def _channels_backward(self, grad):
        x_edge, w_edge, b_edge = self.edges[:3]
        centred, inv_std, weight = self.centred, self.inv_std, self.weight
        upstream = grad.reshape(centred.shape)
        count = centred.shape[0] * centred.shape[2]
        grad_sum = _channel_sums(upstream)
        grad_centred_sum = np.einsum("ncl,ncl->c", upstream, centred)
        grad_x = grad_w = grad_b = None
        if w_edge is not None:
            grad_w = grad_centred_sum * inv_std
        if b_edge is not None:
            grad_b = grad_sum
        if x_edge is not None:
            # inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) with dxhat = grad * weight and
            # xhat = centred * inv_std: per channel, a * grad + b * centred + c
            a = inv_std * weight if weight is not None else inv_std
            b = -a * inv_std * inv_std * (grad_centred_sum / count)
            c = -a * (grad_sum / count)
            grad_x = upstream * a[:, None]
            correction = centred * b[:, None]
            correction += c[:, None]
            grad_x += correction
            grad_x = grad_x.reshape(grad.shape)
        return grad_x, grad_w, grad_b, None, None

    def backward(self, grad):
        x_edge, w_edge, b_edge = self.edges[:3]
        self.check_saved()
        if self.xp is graph_mode.namespace:
            return self._graph_backward(grad) + (None, None)
        if self.centred is not None:
            return self._channels_backward(grad)
        xhat, inv_std, axes = self.xhat, self.inv_std, self.axes
        grad_x = grad_w = grad_b = None
        if w_edge is not None:
            grad_w = (grad * xhat).sum(axis=axes)
        if b_edge is not None:
            grad_b = grad.sum(axis=axes)
        if x_edge is not None:
            dxhat = grad if self.weight is None else grad * self.weight.reshape(self.shape)
            if self.training:
                grad_x = _normalise_backward(self.xp, dxhat, xhat, inv_std, axes)
            else:
                grad_x = dxhat * inv_std
        return grad_x, grad_w, grad_b, None, None

    def _graph_backward(self, grad):
        xp = self.xp
        if self.centred is not None:  # the channel-sum path kept (N, C, L) and per-channel vectors
            rebuilt = (self.centred + self.centre[:, None]).reshape(grad.shape)
        else:
            rebuilt = self.xhat / self.inv_std + self.centre
        x = attached(rebuilt, self, 0)
        weight = attached(self.weight, self, 1)
        x_edge, w_edge, b_edge = self.edges[:3]
        axes = self.axes
        if self.training:
            xhat, inv_std = _graph_statistics(xp, x, axes, self.eps)
        else:
            inv_std = constant(self.inv_std)
            xhat = (x - constant(self.centre)) * inv_std
        grad_x = grad_w = grad_b = None
        if w_edge is not None:
            grad_w = xp.sum(grad * xhat, axis=axes)
        if b_edge is not None:
            grad_b = xp.sum(grad, axis=axes)
        if x_edge is not None:
            dxhat = grad if weight is None else grad * xp.reshape(weight, self.shape)
            grad_x = _normalise_backward(xp, dxhat, xhat, inv_std, axes) if self.training else dxhat * inv_std
        return grad_x, grad_w, grad_b


def _channel_sums_apply(x):
    """True where ``BatchNorm._channels_forward`` runs: a C-contiguous float32/float64 NumPy input."""
    return type(x) is np.ndarray and x.dtype.kind == "f" and x.dtype.itemsize >= 4 and x.flags.c_contiguous


def _channel_sums(grouped):
    """Sums of ``(N, C, L)`` over N and L: a matrix-vector product per sample, then the sum over samples."""
    return np.add.reduce(grouped @ np.ones(grouped.shape[2], dtype=grouped.dtype), 0)


def _fused_layer_norm(xp, rows, weight, bias):
    """True when kernels/layer_norm.cu can run this LayerNorm: CuPy float32 rows with a weight and a bias (the
    kernel's references are ``_kernels.layer_norm_forward_reference``/``backward_reference``, this op's math)."""
    return (xp is not np and weight is not None and bias is not None
            and _kernels.select_kernel(rows, weight, bias) == "kernel")


class LayerNorm(Op):
    """Inputs ``(x, weight, bias)``: normalise over the last ``normalized_ndim`` axes, then scale and shift.

    Works on the ``(rows, features)`` view: the row means are one matrix-vector product and the row sums of
    products one ``einsum``, which NumPy runs far faster than ``mean(axis=-1)`` over short rows; the normalised
    values are built in place, so forward makes three passes over the data and backward five.
    """

    attr_names = ("normalized_ndim", "eps")
    saved_inputs_for_check_only = True  # (backward reads its own attributes; see check_saved)

    def forward(self, x, weight, bias):
        xp = self.xp
        features = 1
        for extent in x.shape[x.ndim - self.normalized_ndim:]:
            features *= extent
        rows = x.reshape(-1, features)
        self.weight, self.input_shape = weight, x.shape
        if _fused_layer_norm(xp, rows, weight, bias):
            self.save_for_backward(x, weight)  # the fused backward reads the input itself
            # one kernel launch for the statistics and the output; backward takes two (kernels/layer_norm.cu)
            out, mean, rstd = _kernels.layer_norm_forward(rows, weight.reshape(-1), bias.reshape(-1), self.eps)
            self.fused = (rows, mean, rstd)
            return out.reshape(x.shape)
        self.fused = None
        self.save_for_backward(weight)  # (the other paths keep xhat, not x; backward reads the weight)
        averager = xp.full(features, 1.0 / features, dtype=x.dtype)
        if type(rows) is np.ndarray and rows.size > ROW_BLOCK and rows.flags.c_contiguous:
            out, self.xhat, self.inv_std, self.row_mean = _layer_norm_rows(rows, weight, bias, averager, self.eps)
            self.averager = averager
            return out.reshape(x.shape)
        self.row_mean = (rows @ averager)[:, None]
        xhat = rows - self.row_mean
        var = xp.einsum("ij,ij->i", xhat, xhat) / features
        inv_std = (1.0 / xp.sqrt(var + self.eps)).astype(x.dtype, copy=False)[:, None]
        xhat *= inv_std
        out = xhat * weight.reshape(-1) if weight is not None else xhat.copy()
        if bias is not None:
            out += bias.reshape(-1)
        self.xhat, self.inv_std, self.averager = xhat, inv_std, averager
        return out.reshape(x.shape)

    def backward(self, grad):
        xp = self.xp
        x_edge, w_edge, b_edge = self.edges
        self.check_saved()
        if xp is graph_mode.namespace:
            rows = self.fused[0] if self.fused is not None else self.xhat / self.inv_std + self.row_mean
            x = attached(rows.reshape(self.input_shape), self, 0)
            weight = attached(self.weight, self, 1)
            lead = tuple(range(x.ndim - self.normalized_ndim))
            axes = tuple(range(x.ndim - self.normalized_ndim, x.ndim))
            xhat, inv_std = _graph_statistics(xp, x, axes, self.eps)
            grad_x = grad_w = grad_b = None
            if w_edge is not None:
                grad_w = _sum_over(xp, grad * xhat, lead)
            if b_edge is not None:
                grad_b = _sum_over(xp, grad, lead)
            if x_edge is not None:
                grad_x = _normalise_backward(xp, grad if weight is None else grad * weight, xhat, inv_std, axes)
            return grad_x, grad_w, grad_b
        if self.fused is not None:
            rows, mean, rstd = self.fused
            grad_rows = xp.ascontiguousarray(grad.reshape(rows.shape))
            dx, dw, db = _kernels.layer_norm_backward(rows, grad_rows, self.weight.reshape(-1), mean, rstd)
            return (dx.reshape(grad.shape) if x_edge is not None else None,
                    dw.reshape(self.weight.shape) if w_edge is not None else None,
                    db.reshape(self.weight.shape) if b_edge is not None else None)
        xhat = self.xhat
        grad_rows = grad.reshape(xhat.shape)
        if type(xhat) is np.ndarray and xhat.size > ROW_BLOCK and grad_rows.flags.c_contiguous:
            grad_x, grad_w, grad_b = _layer_norm_rows_backward(
                grad_rows, xhat, self.inv_std, self.weight, self.averager, x_edge is not None,
                w_edge is not None, b_edge is not None)
            return (grad_x.reshape(grad.shape) if grad_x is not None else None,
                    grad_w.reshape(self.weight.shape) if grad_w is not None else None,
                    grad_b.reshape(grad.shape[grad.ndim - self.normalized_ndim:]) if grad_b is not None else None)
        grad_x = grad_w = grad_b = None
        if w_edge is not None:
            grad_w = xp.einsum("ij,ij->j", grad_rows, xhat).reshape(self.weight.shape)
        if b_edge is not None:
            grad_b = grad_rows.sum(axis=0).reshape(grad.shape[grad.ndim - self.normalized_ndim:])
        if x_edge is not None:
            dxhat = grad_rows * self.weight.reshape(-1) if self.weight is not None else grad_rows.copy()
            mean_dxhat = dxhat @ self.averager
            mean_dxhat_xhat = xp.einsum("ij,ij->i", dxhat, xhat) / xhat.shape[1]
            dxhat -= mean_dxhat[:, None]
            dxhat -= xhat * mean_dxhat_xhat[:, None]
            dxhat *= self.inv_std
            grad_x = dxhat.reshape(grad.shape)
        return grad_x, grad_w, grad_b


ROW_BLOCK = 32768  # elements per block of rows: the few float32 blocks a step touches stay in the L2 cache


def _row_blocks(count, features):
    """Slices of whole rows holding about ``ROW_BLOCK`` elements each."""
    step = max(1, ROW_BLOCK // max(features, 1))
    return [slice(start, start + step) for start in range(0, count, step)]


def _layer_norm_rows(rows, weight, bias, averager, eps):
    """LayerNorm's forward on C-contiguous NumPy ``(rows, features)``, block by block of rows: the same steps as
    ``LayerNorm.forward``'s (row means and variances as matrix-vector products), each block staying in the cache,
    so the data goes through memory once (read x, write xhat and the output) instead of once per step. The squares
    go to a scratch block, so the output's memory is first written by its final values; the weight and bias are
    tiled to a block's shape once (NumPy runs a same-shape product ~1.5x faster than a row-broadcast one).
    Returns ``(out, xhat, inv_std, row_mean)``, the last two ``(rows, 1)``."""
    count, features = rows.shape
    out = np.empty_like(rows)
    xhat = np.empty_like(rows)
    row_mean = np.empty((count, 1), dtype=rows.dtype)
    inv_std = np.empty((count, 1), dtype=rows.dtype)
    blocks = _row_blocks(count, features)
    block_rows = blocks[0].stop - blocks[0].start
    squares = np.empty((block_rows, features), dtype=rows.dtype)
    weight_tile = _tiled(weight, block_rows, rows.dtype)
    bias_tile = _tiled(bias, block_rows, rows.dtype)
    for block in blocks:
        source, centred, target = rows[block], xhat[block], out[block]
        height = source.shape[0]
        mean = np.matmul(source, averager, out=row_mean[block, 0])
        np.subtract(source, mean[:, None], out=centred)
        np.multiply(centred, centred, out=squares[:height])
        std = np.matmul(squares[:height], averager, out=inv_std[block, 0])
        std += eps
        np.sqrt(std, out=std)
        np.reciprocal(std, out=std)
        centred *= inv_std[block]
        if weight_tile is not None:
            np.multiply(centred, weight_tile[:height], out=target)
        else:
            target[...] = centred
        if bias_tile is not None:
            target += bias_tile[:height]
    return out, xhat, inv_std, row_mean


def _tiled(vector, rows, dtype):
    """``vector`` (any shape, ``features`` elements) repeated as ``rows`` rows, or None for None."""
    if vector is None:
        return None
    return np.tile(vector.reshape(1, -1).astype(dtype, copy=False), (rows, 1))


def _layer_norm_rows_backward(grad, xhat, inv_std, weight, averager, want_x, want_w, want_b):
    """LayerNorm's backward (the closed form of the module docstring) block by block of rows, as
    ``_layer_norm_rows``: ``grad`` and ``xhat`` C-contiguous ``(rows, features)``.

    With ``dxhat = grad * weight``: ``grad_x = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))``. The
    product ``grad * xhat`` serves twice: its column sums are the weight's gradient, and its row products with
    ``weight / features`` are ``mean(dxhat * xhat)``; ``mean(dxhat)`` is ``grad @ (weight / features)``."""
    count, features = xhat.shape
    grad_x = np.empty_like(xhat) if want_x else None
    grad_w = np.zeros(features, dtype=xhat.dtype) if want_w else None
    grad_b = np.zeros(features, dtype=xhat.dtype) if want_b else None
    blocks = _row_blocks(count, features)
    block_rows = blocks[0].stop - blocks[0].start
    scratch = np.empty((block_rows, features), dtype=xhat.dtype)
    ones = np.ones(block_rows, dtype=xhat.dtype)
    weight_tile = _tiled(weight, block_rows, xhat.dtype) if want_x else None
    weight_mean = averager if weight is None else averager * weight.reshape(-1)
    for block in blocks:
        upstream, normalised = grad[block], xhat[block]
        rows = normalised.shape[0]
        work = scratch[:rows]
        # (column sums as vector-matrix products, as the row sums: faster than NumPy's reductions)
        if want_w or want_x:
            np.multiply(upstream, normalised, out=work)
        if want_w:
            grad_w += ones[:rows] @ work
        if want_b:
            grad_b += ones[:rows] @ upstream
        if not want_x:
            continue
        mean_dxhat_xhat = work @ weight_mean
        mean_dxhat = upstream @ weight_mean
        dxhat = grad_x[block]
        if weight_tile is not None:
            np.multiply(upstream, weight_tile[:rows], out=dxhat)
        else:
            dxhat[...] = upstream
        np.multiply(normalised, mean_dxhat_xhat[:, None], out=work)
        dxhat -= work
        dxhat -= mean_dxhat[:, None]
        dxhat *= inv_std[block]
    return grad_x, grad_w, grad_b


class GroupNorm(Op):
    """Inputs ``(x, weight, bias)``; x ``(N, C, *)`` is normalised per sample over each of ``num_groups``
    channel groups, then scaled and shifted per channel."""

    attr_names = ("num_groups", "eps")
    saved_inputs_for_check_only = True  # (backward reads its own attributes; see check_saved)

    def forward(self, x, weight, bias):
        xp = self.xp
        n, c = x.shape[:2]
        grouped = x.reshape(n, self.num_groups, -1)
        mean = self.group_mean = grouped.mean(axis=2, keepdims=True)
        centred = grouped - mean
        var = (centred * centred).mean(axis=2, keepdims=True)
        inv_std = (1.0 / xp.sqrt(var + self.eps)).astype(x.dtype, copy=False)
        xhat = centred * inv_std
        shape = (1, c) + (1,) * (x.ndim - 2)
        # never hand out (a view of) xhat: backward reads it, and the output may be changed in place
        out = xhat.reshape(x.shape) if weight is not None or bias is not None else xhat.reshape(x.shape).copy()
        if weight is not None:
            out = out * weight.reshape(shape)
        if bias is not None:
            out = out + bias.reshape(shape)
        self.xhat, self.inv_std, self.weight, self.shape = xhat, inv_std, weight, shape
        self.save_for_backward(weight)  # (backward reads the weight)
        self.input_shape = x.shape
        return out

    def backward(self, grad):
        x_edge, w_edge, b_edge = self.edges
        self.check_saved()
        xhat = self.xhat
        axes = (0,) + tuple(range(2, grad.ndim))
        if self.xp is graph_mode.namespace:
            return self._graph_backward(grad, axes)
        grad_x = grad_w = grad_b = None
        if w_edge is not None:
            grad_w = (grad * xhat.reshape(grad.shape)).sum(axis=axes)
        if b_edge is not None:
            grad_b = grad.sum(axis=axes)
        if x_edge is not None:
            dxhat = grad if self.weight is None else grad * self.weight.reshape(self.shape)
            dxhat = dxhat.reshape(xhat.shape)
            grad_x = _normalise_backward(self.xp, dxhat, xhat, self.inv_std, 2).reshape(grad.shape)
        return grad_x, grad_w, grad_b

    def _graph_backward(self, grad, axes):
        xp = self.xp
        x = attached((self.xhat / self.inv_std + self.group_mean).reshape(self.input_shape), self, 0)
        weight = attached(self.weight, self, 1)
        x_edge, w_edge, b_edge = self.edges
        grouped_shape = (x.shape[0], self.num_groups, -1)
        xhat, inv_std = _graph_statistics(xp, xp.reshape(x, grouped_shape), (2,), self.eps)
        grad_x = grad_w = grad_b = None
        if w_edge is not None:
            grad_w = xp.sum(grad * xp.reshape(xhat, tuple(x.shape)), axis=axes)
        if b_edge is not None:
            grad_b = xp.sum(grad, axis=axes)
        if x_edge is not None:
            dxhat = grad if weight is None else grad * xp.reshape(weight, self.shape)
            grad_x = _normalise_backward(xp, xp.reshape(dxhat, grouped_shape), xhat, inv_std, (2,))
            grad_x = xp.reshape(grad_x, tuple(x.shape))
        return grad_x, grad_w, grad_b
