"""Neural-network ops that are not convolution, pooling, normalisation or losses (those live in ``conv.py``,
``norm.py`` and ``loss.py``): ``Linear``, activations that ``elementwise.py`` lacks, fused ``Softmax`` and
``LogSoftmax``, ``Embedding`` and ``Pad``.

Softmax and log-softmax subtract the maximum along the axis before exponentiating, so no input overflows; their
backward uses the saved softmax ``p`` (``p * g - p * sum(p * g)`` and ``g - p * sum(g)``), no ``exp`` again.
Softmax over the last axis of a large C-contiguous NumPy array runs the same formulas block by block of rows
(``_softmax_rows``), so each direction streams the data through memory once; there the maximum is subtracted
only from the first block on whose row sums show that the plain exponentials were unsafe. ``_shifted_exp_rows``
runs the log-softmax of cross entropy (``loss.py``) block by block too, always subtracting the maximum.
"""

import numpy as np

from dtorch.autograd.function import Op, graph_mode
from dtorch.ops._util import array_module, attached, constant, sum_to
from dtorch.ops.indexing import _scatter_add_into, along_axis_spec, index_scatter


def sum_last(xp, a):
    """``a.sum(axis=-1, keepdims=True)`` as a matrix-vector product: NumPy's reductions over short contiguous
    rows run several times slower than BLAS. Falls back to ``sum`` for non-contiguous arrays."""
    if not a.flags.c_contiguous or a.ndim == 0 or a.size <= 4096:
        # (small arrays: allocating the vector of ones costs more than the reduction saves; on NumPy the ufunc's
        # own reduce, without ``ndarray.sum``'s Python layer)
        if type(a) is np.ndarray and a.ndim:
            return np.add.reduce(a, a.ndim - 1, keepdims=True)
        return a.sum(axis=-1, keepdims=True)
    n = a.shape[-1]
    return (a.reshape(-1, n) @ xp.ones(n, dtype=a.dtype)).reshape(a.shape[:-1] + (1,))


def sum_axis(xp, a, axis):
    """``a.sum(axis=axis, keepdims=True)``, through ``sum_last`` when ``axis`` is the last one."""
    if axis == a.ndim - 1 or axis == -1:
        return sum_last(xp, a)
    return a.sum(axis=axis, keepdims=True)


class Linear(Op):
    """``x @ weight.T + bias`` in one op; x has any number of leading dimensions, weight is ``(out, in)``.

    The backward is written with ``xp`` names only, so it also runs in a ``create_graph`` backward (gradient
    penalties through MLPs).
    """

    scalar_bias = False  # a 0-dim bias (broadcast over every output): its gradient sums over all of grad

    def forward(self, x, weight, bias):
        out = x @ weight.T
        if bias is not None:
            out += bias
            if not bias.ndim:
                self.scalar_bias = True
        self.save_for_backward(x, weight)
        return out

    def backward(self, grad):
        x_edge, w_edge, b_edge = self.edges
        xp = self.xp
        x, weight = self.saved_tensors
        grad_x = grad_w = grad_b = None
        if type(grad) is np.ndarray and grad.ndim == 2:
            # a plain backward of a 2-d input (most calls): the same products through the array methods and
            # operators, without NumPy's module-level wrappers (np.reshape, np.swapaxes, np.sum)
            if x_edge is not None:
                grad_x = grad @ weight
            if w_edge is not None:
                grad_w = grad.T @ x
            if b_edge is not None:
                grad_b = grad.sum(axis=0)
                if self.scalar_bias:
                    grad_b = grad_b.sum(axis=0, keepdims=True).reshape(())  # a 0-d array, not a NumPy scalar
            return grad_x, grad_w, grad_b
        if x_edge is not None:
            grad_x = xp.matmul(grad, weight)
        if w_edge is not None or b_edge is not None:
            grad2d = xp.reshape(grad, (-1, grad.shape[-1]))
            if w_edge is not None:
                grad_w = xp.matmul(xp.swapaxes(grad2d, 0, 1), xp.reshape(x, (-1, x.shape[-1])))
            if b_edge is not None:
                grad_b = xp.sum(grad2d, axis=0)
                if self.scalar_bias:
                    grad_b = xp.reshape(xp.sum(grad_b, axis=0, keepdims=True), ())
        return grad_x, grad_w, grad_b


# ---- activations ----------------------------------------------------------------------------------------------------


class LeakyRelu(Op):
    attr_names = ("negative_slope",)

    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.where(x > 0, x, x * self.negative_slope)

    def backward(self, grad):
        (x,) = self.saved_tensors
        return (self.xp.where(x > 0, grad, grad * self.negative_slope),)


class Elu(Op):
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``; ``scale`` and ``input_scale`` give SELU and CELU."""

    attr_names = ("alpha", "scale", "input_scale")

    def forward(self, x):
        self.save_for_backward(x)
        xp = self.xp
        negative = self.alpha * (xp.exp(xp.minimum(x, 0) * self.input_scale) - 1)
        return (self.scale * xp.where(x > 0, x, negative)).astype(x.dtype, copy=False)

    def backward(self, grad):
        (x,) = self.saved_tensors
        xp = self.xp
        slope = self.alpha * self.input_scale * xp.exp(xp.minimum(x, 0) * self.input_scale)
        return (grad * (self.scale * xp.where(x > 0, 1.0, slope)),)


class Hardtanh(Op):
    """Clamp to ``[min_val, max_val]``; the gradient passes strictly inside (PyTorch's convention)."""

    attr_names = ("min_val", "max_val")

    def forward(self, x):
        self.save_for_backward(x)
        out = self.xp.clip(x, self.min_val, self.max_val)
        # NumPy clips bfloat16 (ml_dtypes) with Python-float bounds in float32: keep the input's dtype
        return out if out.dtype is x.dtype else out.astype(x.dtype)

    def backward(self, grad):
        (x,) = self.saved_tensors
        return (grad * ((x > self.min_val) & (x < self.max_val)),)


class Softmax(Op):
    """Softmax along ``axis``. A ``create_graph`` backward reads the output as a Tensor hanging from this node
    (as PyTorch's saved output does), so the gradient formula is differentiable in the input too.

    Large C-contiguous NumPy arrays along the last axis go through ``_softmax_rows``/``_softmax_rows_backward``:
    the same formulas on blocks of rows that stay in the cache, so forward and backward each stream the data
    through memory once instead of once per step."""

    attr_names = ("axis",)
    saves_output = True  # backward reads the output: changing it in place raises, as in PyTorch

    def forward(self, x):
        axis = self.axis
        if type(x) is np.ndarray and x.size > ROW_BLOCK and x.flags.c_contiguous and axis == x.ndim - 1:
            out = self.out = _softmax_rows(x.reshape(-1, x.shape[-1])).reshape(x.shape)
            return out
        xp = self.xp
        out = x - _maximum_reduce(xp, x, axis)
        xp.exp(out, out=out)
        out /= sum_axis(xp, out, axis)
        self.out = out
        return out

    def backward(self, grad):
        if self.xp is graph_mode.namespace:
            out = attached(self.out, self)
            inner = grad * out
            return (inner - out * inner.sum(self.axis, keepdim=True),)
        out = self.out
        if (type(out) is np.ndarray and out.size > ROW_BLOCK and out.flags.c_contiguous
                and self.axis == out.ndim - 1 and grad.flags.c_contiguous):
            n = out.shape[-1]
            return (_softmax_rows_backward(out.reshape(-1, n), grad.reshape(-1, n)).reshape(out.shape),)
        inner = grad * out
        inner -= out * sum_axis(self.xp, inner, self.axis)
        return (inner,)


def _maximum_reduce(xp, x, axis):
    """``x.max(axis, keepdims=True)``; on NumPy the ufunc's own reduce, without ``ndarray.max``'s Python layer."""
    if xp is np:
        return np.maximum.reduce(x, axis, keepdims=True)
    return x.max(axis=axis, keepdims=True)


ROW_BLOCK = 32768  # elements per block of rows: the few float32 blocks a step touches stay in the L2 cache


def _row_blocks(rows):
    """Slices of whole rows of ``rows`` (2-D) holding about ``ROW_BLOCK`` elements each."""
    count, n = rows.shape
    step = max(1, ROW_BLOCK // max(n, 1))
    return [slice(start, start + step) for start in range(0, count, step)]


def _softmax_rows(rows):
    """Softmax of each row of a C-contiguous 2-D NumPy array, block by block: ``exp(x) / sum`` while that is safe,
    then ``exp(x - max) / sum``.

    Subtracting the row maximum only guards the exponentials against overflow and underflow, and it costs a
    reduction and a broadcast subtraction per block. So a block first gets the plain exponentials, and its row
    sums tell whether that was safe: sums in ``[1, 1/tiny]`` mean nothing overflowed, the reciprocals are normal
    numbers, and an exponential that underflowed gives an output below the normal range whichever way it is
    computed. (``x`` itself has no rounding error, while ``x - max`` may have.) A block outside that range (large,
    ``-inf`` or NaN entries, rows of negative numbers) is redone with the maximum subtracted, and so is every
    block after it without a first try: such inputs cost one block more than subtracting it throughout.
    """
    out = np.empty_like(rows)
    ones = np.ones(rows.shape[1], dtype=rows.dtype)
    tiny = np.finfo(rows.dtype).tiny
    plain = True
    # (overflow, underflow, 1/0 and inf * 0 only in blocks that are redone; all -inf rows give NaN as in PyTorch)
    with np.errstate(all="ignore"):
        for block in _row_blocks(rows):
            source, target = rows[block], out[block]
            if plain:
                np.exp(source, out=target)
                # (the row sums as a matrix-vector product: NumPy's reduction over short rows is slower, see
                # sum_last; then one division per row and a product per element, as PyTorch's kernel: a division
                # costs ~10 products)
                scale = target @ ones
                np.reciprocal(scale, out=scale)
                plain = np.minimum.reduce(scale) >= tiny and np.maximum.reduce(scale) <= 1  # (False for NaN)
            if not plain:
                np.subtract(source, np.maximum.reduce(source, 1, keepdims=True), out=target)
                np.exp(target, out=target)
                scale = target @ ones
                np.reciprocal(scale, out=scale)
            np.multiply(target, scale[:, None], out=target)
    return out


def _shifted_exp_rows(rows, log_probs=None):
    """Block by block over the rows of a C-contiguous 2-D NumPy array: ``exps = exp(rows - max)``, the row maxima
    and the row sums of ``exps`` (both ``(count, 1)``); given ``log_probs`` (an empty array like ``rows``), also
    ``rows - max - log(sum)`` written into it. Each block goes through every step while it is in the cache, so
    ``rows`` is read from memory once and each result written once, instead of a pass per step.

    (Log-probabilities need the maximum subtracted for accuracy, not only against overflow: ``log(sum)`` of
    unshifted exponentials carries an absolute error of the size of the largest logit.)
    """
    count, n = rows.shape
    exps = np.empty_like(rows)
    row_max = np.empty((count, 1), dtype=rows.dtype)
    total = np.empty(count, dtype=rows.dtype)  # (1-D: a strided ``out`` slows matmul down)
    ones = np.ones(n, dtype=rows.dtype)
    for block in _row_blocks(rows):
        source, target, block_max, block_total = rows[block], exps[block], row_max[block], total[block]
        shifted = target if log_probs is None else log_probs[block]
        np.maximum.reduce(source, 1, keepdims=True, out=block_max)
        np.subtract(source, block_max, out=shifted)
        np.exp(shifted, out=target)
        np.matmul(target, ones, out=block_total)  # (a matrix-vector product: see sum_last)
        if log_probs is not None:
            shifted -= np.log(block_total)[:, None]
    return exps, total.reshape(count, 1), row_max


_vecdot = getattr(np, "vecdot", None)  # (NumPy 2.0 and later)


def _row_dots(a, b):
    """``(a * b).sum(axis=1)`` for 2-D arrays without writing the products: NumPy 2's ``vecdot``, else einsum."""
    if _vecdot is not None:
        return _vecdot(a, b)
    return np.einsum("ij,ij->i", a, b)


def _softmax_rows_backward(out, grad):
    """``out * (grad - sum(grad * out))`` per row, block by block (``out`` the softmax, both 2-D contiguous): the
    row sums as dot products, then one broadcast subtraction and one product, written into the result."""
    result = np.empty_like(out)
    for block in _row_blocks(out):
        probs, upstream, target = out[block], grad[block], result[block]
        np.subtract(upstream, _row_dots(upstream, probs)[:, None], out=target)
        target *= probs
    return result


class LogSoftmax(Op):
    """Keeps the exponentials and their sums for backward, which divides them into the softmax (one ``exp``
    fewer than recomputing it from the output; a forward without backward skips the division)."""

    attr_names = ("axis",)

    def forward(self, x):
        xp = self.xp
        out = x - _maximum_reduce(xp, x, self.axis)
        exps = xp.exp(out)
        total = sum_axis(xp, exps, self.axis)
        out -= xp.log(total)
        self.exps, self.total = exps, total
        return out

    def backward(self, grad):
        if self.total is not None:  # the first backward turns the kept exponentials into the softmax, in place
            self.exps /= self.total
            self.total = None
        probs = self.exps
        if self.xp is graph_mode.namespace:
            # the output (log of the kept softmax) hanging from this node: its exp is the softmax, with history
            with np.errstate(divide="ignore"):
                output = attached(array_module(grad).log(probs), self)
            return (grad - output.exp() * grad.sum(self.axis, keepdim=True),)
        return (grad - probs * sum_axis(self.xp, grad, self.axis),)


# ---- lookup and padding ---------------------------------------------------------------------------------------------


class Embedding(Op):
    """Inputs ``(indices, weight)``: rows of ``weight``; the row ``padding_idx`` (if any) gets no gradient."""

    attr_names = ("padding_idx",)

    def forward(self, indices, weight):
        self.indices = indices
        self.weight_shape = weight.shape
        return weight.take(indices, axis=0)  # (``weight[indices]`` is the same gather, 3x slower in NumPy)

    def backward(self, grad):
        xp = self.xp
        rows, dim = self.weight_shape
        if xp is graph_mode.namespace:
            flat = grad.reshape(-1, dim)
            grad_w = index_scatter(flat, (("tensor", 0),), (self.indices.reshape(-1),), self.weight_shape)
            if self.padding_idx is not None:
                keep = array_module(grad).ones((rows, 1), dtype=bool)
                keep[self.padding_idx] = False
                grad_w = grad_w * constant(keep)
            return None, grad_w
        flat = self.indices.reshape(-1)
        grad_w = xp.zeros((rows, dim), dtype=grad.dtype)
        scatter_add_rows(xp, grad_w, flat, grad.reshape(-1, dim), target_is_zero=True)
        if self.padding_idx is not None:
            grad_w[self.padding_idx] = 0
        return None, grad_w


def scatter_add_rows(xp, target, indices, rows, max_levels=16, target_is_zero=False):
    """``target[indices[k]] += rows[k]`` for every k, repeated indices accumulating, as ``_scatter_add_into`` does.

    NumPy's ``add.at`` takes ~3 us per row. Here the indices are sorted (stably), the first occurrence of each
    index is assigned in one fancy-index write, and then the k-th repeats are added, level by level, each level
    free of repeats: the same additions in the same order (bit for bit ``add.at``'s result), one vectorised write
    per level. An index repeated more than ``max_levels`` times falls back to ``add.at``, as does CuPy.
    ``target_is_zero`` says the caller just made ``target`` with zeros: the first level is then written instead
    of added (``0 + r`` is ``r``, bit for bit), which spares reading those rows of ``target`` back.

    >>> import numpy as np
    >>> scatter_add_rows(np, np.zeros((3, 1)), np.array([2, 0, 2]), np.array([[1.], [2.], [3.]]))[:, 0]
    array([2., 0., 4.])
    """
    if type(target) is not np.ndarray or indices.size == 0:
        _scatter_add_into(xp, target, indices, rows)
        return target
    order = np.argsort(indices, kind="stable")
    ordered = indices[order]
    first = np.empty(ordered.size, dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    if starts.size == ordered.size:  # no repeats: one write
        if target_is_zero:
            target[indices] = rows
        else:
            target[indices] += rows
        return target
    # rank of each entry among the repeats of its index: 0 for the first, 1 for the second, ...
    counts = np.diff(np.append(starts, ordered.size))
    rank = np.arange(ordered.size) - np.repeat(starts, counts)
    if rank.max() >= max_levels:
        _scatter_add_into(xp, target, indices, rows)
        return target
    # (each level gathers its own rows: one pass over the rows in all, not a sorted copy first)
    if target_is_zero:
        # every row written where it stands (no gather); a repeated index, whose last row won that write,
        # gets its first row back before the repeats are added
        target[indices] = rows
        repeated = starts[counts > 1]
        target[ordered[repeated]] = rows[order[repeated]]
    else:
        target[ordered[starts]] += rows[order[starts]]
    level = 1
    while True:
        picked = np.flatnonzero(rank == level)
        if not picked.size:
            return target
        target[ordered[picked]] += rows[order[picked]]
        level += 1


class ConstantPad(Op):
    """Pad with a constant; ``pads`` holds ``(before, after)`` per axis, negative values crop."""

    attr_names = ("pads", "value")

    def forward(self, x):
        xp = self.xp
        crop = tuple(slice(max(-b, 0), x.shape[i] - max(-a, 0)) for i, (b, a) in enumerate(self.pads))
        cropped = x[crop]
        grow = tuple((max(b, 0), max(a, 0)) for b, a in self.pads)
        self.input_shape = x.shape
        if not any(b or a for b, a in grow):
            return cropped.copy()
        out = xp.full(tuple(s + b + a for s, (b, a) in zip(cropped.shape, grow)), self.value, dtype=x.dtype)
        out[tuple(slice(b, b + s) for s, (b, _) in zip(cropped.shape, grow))] = cropped
        return out

    def backward(self, grad):
        xp = self.xp
        if xp is graph_mode.namespace:  # padding's adjoint is cropping: the same op with the pads negated
            return (ConstantPad.apply(grad, pads=tuple((-b, -a) for b, a in self.pads), value=0),)
        inner = tuple(slice(max(b, 0), grad.shape[i] - max(a, 0)) for i, (b, a) in enumerate(self.pads))
        piece = grad[inner]
        if all(b >= 0 and a >= 0 for b, a in self.pads):
            return (piece,)
        out = xp.zeros(self.input_shape, dtype=grad.dtype)
        out[tuple(slice(max(-b, 0), s - max(-a, 0)) for s, (b, a) in zip(self.input_shape, self.pads))] = piece
        return (out,)


def pad_index(xp, size, before, after, mode):
    """Source index of every output position along one axis for ``reflect``/``replicate``/``circular``."""
    positions = xp.arange(-before, size + after)
    if mode == "replicate":
        return xp.clip(positions, 0, size - 1)
    if mode == "circular":
        return positions % size
    period = 2 * (size - 1)  # reflect without repeating the edge
    folded = xp.abs(positions) % period if period else positions * 0
    return xp.where(folded >= size, period - folded, folded)


class IndexPad(Op):
    """``reflect``, ``replicate`` and ``circular`` padding: a gather along each padded axis; the backward adds
    each output gradient onto its source position (a one-hot matrix product per axis)."""

    attr_names = ("pads", "mode")

    def forward(self, x):
        xp = self.xp
        self.input_shape = x.shape
        out = x
        for axis, (before, after) in enumerate(self.pads):
            if before or after:
                out = xp.take(out, pad_index(xp, x.shape[axis], before, after, self.mode), axis=axis)
        return out

    def backward(self, grad):
        xp = self.xp
        if xp is graph_mode.namespace:
            real_xp = array_module(grad)
            for axis in reversed(range(len(self.pads))):
                before, after = self.pads[axis]
                if before or after:
                    size = self.input_shape[axis]
                    index = pad_index(real_xp, size, before, after, self.mode)
                    shape = tuple(grad.shape[:axis]) + (size,) + tuple(grad.shape[axis + 1:])
                    grad = index_scatter(grad, along_axis_spec(grad.ndim, axis), (index,), shape)
            return (grad,)
        for axis in reversed(range(len(self.pads))):
            before, after = self.pads[axis]
            if before or after:
                size = self.input_shape[axis]
                index = pad_index(xp, size, before, after, self.mode)
                one_hot = (index[:, None] == xp.arange(size)).astype(grad.dtype)
                grad = xp.moveaxis(xp.tensordot(grad, one_hot, axes=([axis], [0])), -1, axis)
        return (xp.ascontiguousarray(grad),)


# ---- attention ------------------------------------------------------------------------------------------------------


class ScaledDotProductAttention(Op):
    """``softmax(q @ k^T * scale + mask) @ v`` in one op; inputs ``(q, k, v, attn_mask, dropout_mask)``.

    ``attn_mask`` is None, bool (True takes part) or float (added to the scores, and differentiable);
    ``dropout_mask`` is None or ``keep / (1 - p)`` of the scores' shape, drawn by the front end. ``is_causal``
    masks the upper triangle. A row with every position masked attends to nothing (output 0). Backward:
    ``dS = P * (dP - sum(dP * P))``, then three matmuls.
    """

    attr_names = ("scale", "is_causal")
    saved_inputs_for_check_only = True  # (no input Tensor kept alive: see test_second_order)

    def forward(self, q, k, v, attn_mask, dropout_mask):
        xp = self.xp
        scores = xp.matmul(q, xp.swapaxes(k, -1, -2))
        scores *= self.scale
        if self.is_causal:
            length, source = scores.shape[-2:]
            scores = xp.where(xp.tril(xp.ones((length, source), dtype=bool)), scores, -xp.inf)
        if attn_mask is not None:
            if attn_mask.dtype == bool:
                scores = xp.where(attn_mask, scores, -xp.inf)
            else:
                scores = scores + attn_mask
        # a fully masked row (all -inf) gets weights 0, so output and gradients 0, as PyTorch's safe softmax does
        row_max = scores.max(axis=-1, keepdims=True)
        probs = scores - xp.where(row_max == -xp.inf, 0, row_max)
        xp.exp(probs, out=probs)
        total = sum_last(xp, probs)
        probs /= xp.where(total == 0, 1, total)
        used = probs if dropout_mask is None else probs * dropout_mask
        self.probs, self.used = probs, used
        self.q, self.k, self.v = q, k, v
        self.save_for_backward(q, k, v)  # (for the check only: backward reads self.q, self.k, self.v)
        self.mask_shape = None if attn_mask is None else attn_mask.shape
        self.dropout_mask, self.attn_mask = dropout_mask, attn_mask
        return xp.matmul(used, v)

    def backward(self, grad):
        xp = self.xp
        self.check_saved()
        if xp is graph_mode.namespace:
            return self._graph_backward(grad)
        q, k, v, probs = self.q, self.k, self.v, self.probs
        q_edge, k_edge, v_edge, mask_edge, _ = self.edges
        grad_q = grad_k = grad_v = grad_mask = None
        if v_edge is not None:
            grad_v = sum_to(xp, xp.matmul(xp.swapaxes(self.used, -1, -2), grad), v.shape)
        if q_edge is None and k_edge is None and mask_edge is None:
            return grad_q, grad_k, grad_v, grad_mask, None
        grad_probs = xp.matmul(grad, xp.swapaxes(v, -1, -2))
        if self.dropout_mask is not None:
            grad_probs *= self.dropout_mask
        grad_scores = probs * (grad_probs - sum_last(xp, grad_probs * probs))
        if mask_edge is not None:
            grad_mask = sum_to(xp, grad_scores, self.mask_shape)
        grad_scores *= self.scale
        if q_edge is not None:
            grad_q = sum_to(xp, xp.matmul(grad_scores, k), q.shape)
        if k_edge is not None:
            grad_k = sum_to(xp, xp.matmul(xp.swapaxes(grad_scores, -1, -2), q), k.shape)
        return grad_q, grad_k, grad_v, grad_mask, None

    def _graph_backward(self, grad):
        """The same gradients from differentiable ops: the weights recomputed from the saved q, k and mask."""
        xp = self.xp
        q, k, v, attn_mask = (attached(a, self, i) for i, a in enumerate((self.q, self.k, self.v, self.attn_mask)))
        real_xp = array_module(grad)
        q_edge, k_edge, v_edge, mask_edge, _ = self.edges
        scores = (q @ k.transpose(-1, -2)) * self.scale
        if attn_mask is not None and attn_mask.dtype.is_floating_point:
            scores = scores + attn_mask
        allowed = None
        if self.is_causal:
            length, source = scores.shape[-2:]
            allowed = real_xp.tril(real_xp.ones((length, source), dtype=bool))
        if attn_mask is not None and not attn_mask.dtype.is_floating_point:
            allowed = attn_mask._array if allowed is None else allowed & attn_mask._array
        dead = constant(self.probs.sum(axis=-1, keepdims=True) == 0)  # fully masked rows: weights 0
        if allowed is not None:
            scores = xp.where(constant(allowed), scores, float("-inf"))
        probs = xp.where(dead, 0.0, Softmax.apply(xp.where(dead, 0.0, scores), axis=-1))
        dropout = None if self.dropout_mask is None else constant(self.dropout_mask)
        used = probs if dropout is None else probs * dropout
        grad_q = grad_k = grad_v = grad_mask = None
        if v_edge is not None:
            grad_v = sum_to(xp, used.transpose(-1, -2) @ grad, tuple(v.shape))
        grad_probs = grad @ v.transpose(-1, -2)
        if dropout is not None:
            grad_probs = grad_probs * dropout
        grad_scores = probs * (grad_probs - (grad_probs * probs).sum(-1, keepdim=True))
        if mask_edge is not None:
            grad_mask = sum_to(xp, grad_scores, self.mask_shape)
        grad_scores = grad_scores * self.scale
        if q_edge is not None:
            grad_q = sum_to(xp, grad_scores @ k, tuple(q.shape))
        if k_edge is not None:
            grad_k = sum_to(xp, grad_scores.transpose(-1, -2) @ q, tuple(k.shape))
        return grad_q, grad_k, grad_v, grad_mask, None
