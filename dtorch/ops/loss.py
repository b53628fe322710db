"""Loss functions as fused ops, each with its ``reduction`` (``'none'``, ``'mean'``, ``'sum'``) inside.

``CrossEntropy`` is the fused softmax-cross-entropy: one log-softmax over the class axis and a gradient
``p * (a + B) - a * onehot - b`` (``p`` the softmax, ``a`` the per-sample weight of the target class, ``b`` the
label-smoothing weights) with no intermediate op. The class axis is axis 1 (axis 0 for an unbatched input); it is
moved last internally so every row is one sample. Mean reductions follow PyTorch: class-index losses divide by
the summed weights of the non-ignored targets, everything else by the element count.

In a ``create_graph`` backward the same gradient is written with differentiable Tensor ops (``_graph_backward``)
on the arrays each loss keeps anyway, hung back on their inputs' places in the graph (``attached``), so gradient
penalties and second-order methods differentiate through it in the input, the target and the upstream gradient
without any input Tensor being kept between forward and backward.
"""

import numpy as np

from dtorch import _kernels
from dtorch.autograd.function import Op, graph_mode
from dtorch.ops._util import array_module, attached, constant, sum_to
from dtorch.ops.nn import ROW_BLOCK, LogSoftmax, Softmax, _shifted_exp_rows, sum_last


def _safe_denominator(xp, denominator):
    """The summed target weights, with 0 (every target ignored) replaced by 1: the loss is then NaN like
    PyTorch's, while the gradient is 0, as PyTorch's is, because every row's weight is 0."""
    return xp.where(denominator == 0, 1, denominator)


def _reduce(loss, reduction):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.mean()


def _scale(grad, reduction, count):
    """The upstream gradient as a per-element factor of the unreduced loss."""
    if reduction == "mean":
        return grad / count
    return grad


class PointwiseLoss(Op):
    """``mse``, ``l1``, ``smooth_l1`` (``beta``) and ``huber`` (``delta``, passed as ``beta``) of
    ``input - target``; inputs ``(input, target, weight)`` broadcast, weight may be None."""

    attr_names = ("kind", "reduction", "beta")
    saved_inputs_for_check_only = True  # (backward reads its own attributes; see check_saved)

    def forward(self, x, target, weight):
        xp = self.xp
        diff = x - target
        kind, beta = self.kind, self.beta
        if kind == "mse":
            loss = diff * diff
        elif kind == "l1":
            loss = xp.abs(diff)
        else:
            size = xp.abs(diff)
            if kind == "smooth_l1":
                loss = size - 0.5 * beta if beta == 0 else xp.where(size < beta, 0.5 * diff * diff / beta,
                                                                      size - 0.5 * beta)
            else:
                loss = xp.where(size < beta, 0.5 * diff * diff, beta * (size - 0.5 * beta))
        loss = loss.astype(diff.dtype, copy=False)
        self.diff = diff
        self.shapes = (x.shape, target.shape)
        self.weight = weight
        if weight is not None:
            self.raw = loss
            loss = loss * weight
        self.count = loss.size
        self.target = target
        self.save_for_backward(target, weight)  # (backward reads them: no in-place change until then)
        return _reduce(loss, self.reduction)

    def backward(self, grad):
        xp = self.xp
        self.check_saved()
        if xp is graph_mode.namespace:
            return self._graph_backward(grad)
        diff, beta, kind = self.diff, self.beta, self.kind
        scale = _scale(grad, self.reduction, self.count)
        if kind == "mse":
            slope = 2 * diff
        elif kind == "l1":
            slope = xp.sign(diff)
        elif kind == "smooth_l1":
            slope = xp.sign(diff) if beta == 0 else xp.where(xp.abs(diff) < beta, diff / beta, xp.sign(diff))
        else:
            slope = xp.clip(diff, -beta, beta)
        local = slope * scale
        weight = self.weight
        if weight is not None:
            local = local * weight
        x_edge, t_edge, w_edge = self.edges
        x_shape, t_shape = self.shapes
        return (
            sum_to(xp, local, x_shape) if x_edge is not None else None,
            sum_to(xp, -local, t_shape) if t_edge is not None else None,
            sum_to(xp, self.raw * scale, weight.shape) if w_edge is not None else None,
        )

    def _graph_backward(self, grad):
        xp = self.xp
        x_shape, _ = self.shapes
        x = attached(_first_slice(self.diff + self.target, x_shape), self, 0)
        target, weight = attached(self.target, self, 1), attached(self.weight, self, 2)
        diff = x - target
        beta, kind = self.beta, self.kind
        size = diff.abs()
        if kind == "mse":
            slope, raw = 2 * diff, diff * diff
        elif kind == "l1":
            slope, raw = diff.sign(), size
        elif kind == "smooth_l1":
            if beta == 0:
                slope, raw = diff.sign(), size
            else:
                inside = size < beta
                slope = xp.where(inside, diff / beta, diff.sign())
                raw = xp.where(inside, 0.5 * diff * diff / beta, size - 0.5 * beta)
        else:
            slope = diff.clamp(-beta, beta)
            raw = xp.where(size < beta, 0.5 * diff * diff, beta * (size - 0.5 * beta))
        scale = _scale(grad, self.reduction, self.count)
        local = slope * scale if weight is None else slope * scale * weight
        x_edge, t_edge, w_edge = self.edges
        return (
            sum_to(xp, local, x.shape) if x_edge is not None else None,
            sum_to(xp, -local, target.shape) if t_edge is not None else None,
            sum_to(xp, raw * scale, weight.shape) if w_edge is not None else None,
        )


def _first_slice(array, shape):
    """The part of a broadcast ``array`` that one operand of ``shape`` supplied (its copies are equal)."""
    array = array[(0,) * (array.ndim - len(shape))]
    return array[tuple(slice(0, 1) if n == 1 else slice(None) for n in shape)]


def _rows(xp, x, axis):
    """``(M, C)`` view of ``x`` with the class axis last."""
    c = x.shape[axis]
    if axis == x.ndim - 1:  # already last (2-D logits): moveaxis would only add its Python cost
        return x.reshape(-1, c)
    return xp.moveaxis(x, axis, -1).reshape(-1, c)


def _unrows(xp, rows, shape, axis):
    if axis == len(shape) - 1:  # the class axis was already last (as in ``_rows``): a reshape, no moveaxis cost
        return rows.reshape(shape)
    moved = shape[:axis] + shape[axis + 1:] + (shape[axis],)
    return xp.ascontiguousarray(xp.moveaxis(rows.reshape(moved), -1, axis))


def _log_softmax_rows(xp, z):
    """``(log_softmax, exps, total)`` of the rows of ``z``: the exponentials of ``z - max`` and their row sums come
    back too, so a backward gets the softmax as ``exps / total`` (a product) instead of ``exp(logp)`` (an exp per
    element, the costliest step on the CPU). Large C-contiguous NumPy rows go block by block
    (``_shifted_exp_rows``)."""
    if type(z) is np.ndarray and z.size > ROW_BLOCK and z.flags.c_contiguous:
        logp = np.empty_like(z)
        exps, total, _ = _shifted_exp_rows(z, logp)
        return logp, exps, total
    shifted = z - (np.maximum.reduce(z, 1, keepdims=True) if xp is np else z.max(axis=1, keepdims=True))
    exps = xp.exp(shifted)
    # (small: ``sum_last``'s own choice, without its contiguity check; NumPy's reduce without ndarray.sum's layer)
    if exps.size > 4096:
        total = sum_last(xp, exps)
    else:
        total = np.add.reduce(exps, 1, keepdims=True) if xp is np else exps.sum(axis=1, keepdims=True)
    shifted -= xp.log(total)
    return shifted, exps, total


def check_labels(labels, ignore_index, c):
    """PyTorch's IndexError for a class index outside ``[0, c)`` that is not ``ignore_index``. Returns True when
    every label is a class index and none can be ``ignore_index`` (the dense case: no mask, no row weights).

    >>> check_labels(np.array([0, 2, 1]), -100, 3), check_labels(np.array([0, -100, 1]), -100, 3)
    (True, False)
    """
    if not labels.size:
        return False
    # one reduction instead of min and max: viewed unsigned, a negative int64 label is above every class count
    unsigned = labels.view(np.uint64) if labels.dtype == np.int64 else labels
    largest = np.maximum.reduce(unsigned, None) if type(unsigned) is np.ndarray else unsigned.max()
    if int(largest) < c:
        return not 0 <= ignore_index < c
    valid = labels[labels != ignore_index]
    if valid.size and (int(valid.min()) < 0 or int(valid.max()) >= c):
        bad = int(valid.min()) if int(valid.min()) < 0 else int(valid.max())
        raise IndexError(f"Target {bad} is out of bounds (the input has {c} classes).")
    return False


def _class_index_terms(xp, target, weight, ignore_index, dtype):
    """What the class-index losses share: labels safe to index with (ignored ones read class 0), the mask of
    non-ignored rows, and each row's target weight (0 where ignored)."""
    labels = target.reshape(-1)
    valid = labels != ignore_index
    safe = xp.where(valid, labels, 0)
    row_weight = weight[safe] * valid if weight is not None else valid.astype(dtype)
    return safe, valid, row_weight


def _fused_cross_entropy(xp, logits, axis, weight, probabilities, label_smoothing):
    """True when kernels/softmax_cross_entropy.cu can run this cross-entropy: CuPy float32 ``(N, C)`` logits with
    class-index targets, no class weights and no label smoothing (its references are
    ``_kernels.softmax_xent_forward_reference``/``backward_reference``, this op's math for that case)."""
    return (xp is not np and axis == 1 and logits.ndim == 2 and weight is None and not probabilities
            and not label_smoothing and _kernels.select_kernel(logits) == "kernel")


class CrossEntropy(Op):
    """Inputs ``(logits, target, weight)``. ``probabilities=False``: target holds class indices (any number of
    extra dimensions, ``ignore_index`` skipped); ``True``: target holds class probabilities of the logits' shape."""

    attr_names = ("axis", "probabilities", "ignore_index", "reduction", "label_smoothing")
    saved_inputs_for_check_only = True  # (backward reads its own attributes; see check_saved)

    def forward(self, logits, target, weight):
        xp = self.xp
        axis = self.axis
        c = logits.shape[axis]
        eps = self.label_smoothing
        # the labels are checked here, not in F.cross_entropy, so the one reduction also picks the dense path
        dense = not self.probabilities and check_labels(target.reshape(-1), self.ignore_index, c)
        # (backward reads the targets and the class weights: changing them in place before then must raise)
        self.save_for_backward(target, weight)
        if _fused_cross_entropy(xp, logits, axis, weight, self.probabilities, eps):
            return self._fused_forward(xp, logits, target)
        self.fused = None
        logit_rows = _rows(xp, logits, axis)
        self.weight, self.shape, self.target = weight, logits.shape, target
        # (a sum of ones is m exactly only in float32/float64 and below 2**24 rows)
        self.dense = dense = (dense and weight is None and not eps and logit_rows.dtype.itemsize >= 4
                              and logit_rows.size < 2**24)
        if dense:  # every row counts with weight 1: the general path's mask and weights would multiply by 1
            labels = target.reshape(-1)
            m = logit_rows.shape[0]
            self.safe, self.valid, self.row_weight = labels, None, None
            self.denominator = logit_rows.dtype.type(m)
            if type(logit_rows) is np.ndarray and logit_rows.size > ROW_BLOCK and logit_rows.flags.c_contiguous:
                # no log-probability array: the loss reads it at the targets only, where it is the logit less
                # the row's maximum and log-sum (the same two subtractions as the full array's); backward reads
                # the exponentials
                self.exps, self.total, row_max = _shifted_exp_rows(logit_rows)
                self.logp = None
                picked = (logit_rows[np.arange(m), labels] - row_max[:, 0]) - np.log(self.total[:, 0])
            else:
                self.logp, self.exps, self.total = _log_softmax_rows(xp, logit_rows)
                picked = self.logp[xp.arange(m), labels]
            if self.reduction == "mean":  # (-a) / m and -(a / m) round alike, as does a sum of negated terms
                return -(picked.sum() / self.denominator)
            loss = -picked
            return _reduce(loss.reshape(logits.shape[:axis] + logits.shape[axis + 1:]), self.reduction)
        logp, self.exps, self.total = _log_softmax_rows(xp, logit_rows)
        self.logp = logp
        out_shape = logits.shape[:axis] + logits.shape[axis + 1:]
        if self.probabilities:
            t = _rows(xp, target, axis)
            if eps:
                t = t * (1 - eps) + eps / c
            wt = t * weight if weight is not None else t
            self.wt = wt
            loss = -(wt * logp).sum(axis=1)
            self.count = loss.shape[0]
            return _reduce(loss.reshape(out_shape), self.reduction)
        safe, valid, row_weight = _class_index_terms(xp, target, weight, self.ignore_index, logp.dtype)
        rows = xp.arange(logp.shape[0])
        nll = -logp[rows, safe] * row_weight
        self.safe, self.valid, self.row_weight = safe, valid, row_weight
        self.denominator = row_weight.sum()
        if eps:
            smooth = -(logp * weight).sum(axis=1) if weight is not None else -logp.sum(axis=1)
            smooth = smooth * valid
        if self.reduction == "mean":
            if not eps and self.denominator != 0:  # the common case, without errstate's cost
                return (nll.sum() / self.denominator).astype(logp.dtype, copy=False)
            with np.errstate(invalid="ignore", divide="ignore"):  # all targets ignored: NaN, as in PyTorch
                loss = nll.sum() / self.denominator
                if eps:
                    loss = (1 - eps) * loss + (eps / c) * (smooth.sum() / self.denominator)
            return loss.astype(logp.dtype, copy=False)
        loss = nll if not eps else (1 - eps) * nll + (eps / c) * smooth
        return _reduce(loss.reshape(out_shape), self.reduction)

    def _fused_forward(self, xp, logits, target):
        """One kernel launch for every row's loss and log-sum-exp; the log-probabilities are not kept (the
        create_graph backward rebuilds them as ``logits - lse``)."""
        labels = target.reshape(-1).astype(np.int64, copy=False)
        self.save_for_backward(logits, target)  # (the fused backward reads the logits themselves)
        loss_rows, lse = _kernels.softmax_xent_forward(logits, labels, self.ignore_index)
        valid = labels != self.ignore_index
        self.fused, self.dense = (logits, labels, lse), False
        self.exps = self.total = None
        self.logp, self.weight, self.shape, self.target = None, None, logits.shape, target
        self.safe, self.valid, self.row_weight = xp.where(valid, labels, 0), valid, valid.astype(logits.dtype)
        self.denominator = self.row_weight.sum()
        if self.reduction == "mean":
            return (loss_rows.sum() / self.denominator).astype(logits.dtype, copy=False)
        return _reduce(loss_rows.reshape(logits.shape[:1]), self.reduction)

    def backward(self, grad):
        xp = self.xp
        logits_edge, target_edge, _ = self.edges
        self.check_saved()
        if self.fused is not None:
            logits, labels, lse = self.fused
            if xp is graph_mode.namespace:
                self.logp = logits - lse[:, None]
            elif logits_edge is None:
                return None, None, None
            else:
                scale = grad.reshape(-1) if self.reduction == "none" else (
                    grad if self.reduction == "sum" else grad / _safe_denominator(xp, self.denominator))
                dloss = xp.broadcast_to(xp.asarray(scale, dtype=logits.dtype), labels.shape)
                dloss = xp.ascontiguousarray(dloss)
                return _kernels.softmax_xent_backward(logits, labels, lse, dloss, self.ignore_index), None, None
        if xp is graph_mode.namespace:
            return self._graph_backward(grad)
        logp = self.logp
        m, c = self.exps.shape if logp is None else logp.shape
        if self.reduction == "none":
            scale = grad.reshape(-1, 1)
        elif self.reduction == "sum":
            scale = grad
        else:
            scale = grad / (self.count if self.probabilities
                            else self.denominator if self.dense else _safe_denominator(xp, self.denominator))
        exps, total = self.exps, self.total
        grad_logits = grad_target = None
        if self.dense and logits_edge is not None:  # the general branch with row weights of 1, no smoothing
            # the softmax times the scale in one product: exps * (scale / total)
            grad_logits = exps * (scale / total)
            at_target = scale if self.reduction != "none" else scale[:, 0]
            if grad_logits.flags.c_contiguous:
                # (one flat index per row, all distinct: cheaper than the (rows, labels) pair of index arrays)
                grad_logits.reshape(-1)[self.safe + xp.arange(0, m * c, c)] -= at_target
            else:  # (non-contiguous logits give strided exponentials, whose reshape(-1) would be a copy)
                grad_logits[xp.arange(m), self.safe] -= at_target
            return _unrows(xp, grad_logits, self.shape, self.axis), None, None
        if self.probabilities:
            probs = exps / total if exps is not None else xp.exp(logp)
            wt = self.wt
            if logits_edge is not None:
                grad_logits = (probs * wt.sum(axis=1, keepdims=True) - wt) * scale
            if target_edge is not None:
                w = self.weight if self.weight is not None else 1
                grad_target = -(1 - self.label_smoothing) * w * logp * scale
                grad_target = _unrows(xp, grad_target, self.shape, self.axis)
        elif logits_edge is None:
            pass
        else:
            eps = self.label_smoothing
            a = ((1 - eps) * self.row_weight).reshape(-1, 1) * scale
            # (as the dense branch: weights of ones give its numbers bit for bit)
            grad_logits = exps * (a / total) if exps is not None else xp.exp(logp) * a
            grad_logits[xp.arange(m), self.safe] -= a[:, 0]
            if eps:
                probs = exps / total if exps is not None else xp.exp(logp)
                w = self.weight if self.weight is not None else xp.ones(c, dtype=logp.dtype)
                b = (eps / c) * w * (self.valid.reshape(-1, 1) * scale)
                grad_logits += probs * b.sum(axis=1, keepdims=True) - b
        if grad_logits is not None:
            grad_logits = _unrows(xp, grad_logits.astype(logp.dtype, copy=False), self.shape, self.axis)
        return grad_logits, grad_target, None

    def _graph_backward(self, grad):
        xp = self.xp
        real_xp = array_module(grad)
        if self.logp is None:  # the blocked dense forward kept only the exponentials: their log is as good
            with np.errstate(divide="ignore"):
                self.logp = real_xp.log(self.exps) - real_xp.log(self.total)
        # the log-probabilities stand for the logits: they differ by a per-row shift, which the softmax ignores
        logits = attached(_unrows(real_xp, self.logp, self.shape, self.axis), self, 0)
        target = attached(self.target, self, 1)
        logits_edge, target_edge, _ = self.edges
        m, c = self.logp.shape
        eps = self.label_smoothing
        rows = _graph_rows(logits, self.axis)
        if self.reduction == "none":
            scale = grad.reshape(-1, 1)
        elif self.probabilities:
            scale = grad / self.count if self.reduction == "mean" else grad
        else:
            scale = grad / float(_safe_denominator(real_xp, self.denominator)) if self.reduction == "mean" else grad
        weight = None if self.weight is None else constant(self.weight)
        grad_logits = grad_target = None
        if self.probabilities:
            t = _graph_rows(target, self.axis)
            wt = t * (1 - eps) + eps / c if eps else t
            if weight is not None:
                wt = wt * weight
            if logits_edge is not None:
                grad_logits = (Softmax.apply(rows, axis=1) * wt.sum(1, keepdim=True) - wt) * scale
            if target_edge is not None:
                logp = LogSoftmax.apply(rows, axis=1)
                grad_target = -(1 - eps) * (logp if weight is None else logp * weight) * scale
                grad_target = _graph_unrows(grad_target, self.shape, self.axis)
        elif logits_edge is not None:
            onehot = real_xp.zeros((m, c), dtype=self.logp.dtype)
            onehot[real_xp.arange(m), self.safe] = 1
            row_weight = self.row_weight if self.row_weight is not None else real_xp.ones(m, dtype=self.logp.dtype)
            a = constant(((1 - eps) * row_weight).reshape(-1, 1).astype(self.logp.dtype)) * scale
            probs = Softmax.apply(rows, axis=1)
            grad_logits = probs * a - constant(onehot) * a
            if eps:
                w = weight if weight is not None else constant(real_xp.ones(c, dtype=self.logp.dtype))
                b = (eps / c) * w * (constant(self.valid.reshape(-1, 1).astype(self.logp.dtype)) * scale)
                grad_logits = grad_logits + probs * b.sum(1, keepdim=True) - b
        if grad_logits is not None:
            grad_logits = _graph_unrows(grad_logits, self.shape, self.axis)
        return grad_logits, grad_target, None


def _graph_rows(x, axis):
    """``_rows`` on a Tensor, with differentiable ops."""
    return x.movedim(axis, -1).reshape(-1, x.shape[axis])


def _graph_unrows(rows, shape, axis):
    moved = tuple(shape[:axis]) + tuple(shape[axis + 1:]) + (shape[axis],)
    return rows.reshape(moved).movedim(-1, axis)


class NLLLoss(Op):
    """Inputs ``(log_probs, target, weight)``: ``-weight[y] * log_probs[y]`` per sample, class axis ``axis``."""

    attr_names = ("axis", "ignore_index", "reduction")

    def forward(self, logp, target, weight):
        xp = self.xp
        rows_logp = _rows(xp, logp, self.axis)
        safe, valid, row_weight = _class_index_terms(xp, target, weight, self.ignore_index, logp.dtype)
        loss = -rows_logp[xp.arange(rows_logp.shape[0]), safe] * row_weight
        self.safe, self.row_weight, self.shape = safe, row_weight, logp.shape
        self.denominator = row_weight.sum()
        if self.reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):  # all targets ignored: NaN, as in PyTorch
                return (loss.sum() / self.denominator).astype(logp.dtype, copy=False)
        out_shape = logp.shape[:self.axis] + logp.shape[self.axis + 1:]
        return _reduce(loss.reshape(out_shape), self.reduction)

    def backward(self, grad):
        xp = self.xp
        m = self.safe.shape[0]
        c = self.shape[self.axis]
        if xp is graph_mode.namespace:  # linear in the gradient: a constant matrix times it
            real_xp = array_module(grad)
            rows = real_xp.zeros((m, c), dtype=grad._array.dtype)
            rows[real_xp.arange(m), self.safe] = -self.row_weight
            if self.reduction == "none":
                scale = grad.reshape(-1, 1)
            elif self.reduction == "sum":
                scale = grad
            else:
                scale = grad / float(_safe_denominator(real_xp, self.denominator))
            return _graph_unrows(constant(rows) * scale, self.shape, self.axis), None, None
        if self.reduction == "none":
            scale = grad.reshape(-1)
        elif self.reduction == "sum":
            scale = grad
        else:
            scale = grad / _safe_denominator(xp, self.denominator)
        rows = xp.zeros((m, c), dtype=grad.dtype)
        rows[xp.arange(m), self.safe] = -self.row_weight * scale
        return _unrows(xp, rows, self.shape, self.axis), None, None


class BinaryCrossEntropy(Op):
    """Inputs ``(probabilities, target, weight)``; logs are clamped at -100 as in PyTorch."""

    attr_names = ("reduction",)
    saved_inputs_for_check_only = True  # (backward reads its own attributes; see check_saved)

    def forward(self, x, target, weight):
        xp = self.xp
        with np.errstate(divide="ignore"):  # log(0) = -inf, clamped to -100 below as PyTorch does
            log_x = xp.maximum(xp.log(x), -100)
            log_1mx = xp.maximum(xp.log1p(-x), -100)
        raw = -(target * log_x + (1 - target) * log_1mx)
        self.x, self.target, self.weight = x, target, weight
        self.save_for_backward(x, target, weight)  # (backward reads them: no in-place change until then)
        self.raw, self.logs = raw, (log_x, log_1mx)
        loss = raw * weight if weight is not None else raw
        self.count = loss.size
        return _reduce(loss, self.reduction).astype(x.dtype, copy=False)

    def backward(self, grad):
        xp = self.xp
        self.check_saved()
        if xp is graph_mode.namespace:
            x, target, weight = (attached(a, self, i) for i, a in enumerate((self.x, self.target, self.weight)))
            log_x, log_1mx = x.log().clamp_min(-100), (-x).log1p().clamp_min(-100)
        else:
            x, target, weight = self.x, self.target, self.weight
            log_x, log_1mx = self.logs
        scale = _scale(grad, self.reduction, self.count)
        if weight is not None:
            scale = scale * weight
        x_edge, t_edge, w_edge = self.edges
        grad_x = grad_t = grad_w = None
        if x_edge is not None:
            spread = (1 - x) * x
            spread = spread.clamp_min(1e-12) if xp is graph_mode.namespace else xp.maximum(spread, 1e-12)
            grad_x = sum_to(xp, (x - target) / spread * scale, x.shape)
        if t_edge is not None:
            grad_t = sum_to(xp, (log_1mx - log_x) * scale, target.shape)
        if w_edge is not None:
            raw = -(target * log_x + (1 - target) * log_1mx)
            grad_w = sum_to(xp, raw * _scale(grad, self.reduction, self.count), weight.shape)
        return grad_x, grad_t, grad_w


class BinaryCrossEntropyWithLogits(Op):
    """Inputs ``(logits, target, weight, pos_weight)``:
    ``loss = w * ((1 - t) x + (1 + (pos_weight - 1) t) softplus(-x))``, stable for any ``x``."""

    attr_names = ("reduction",)
    saved_inputs_for_check_only = True  # (backward reads its own attributes; see check_saved)

    def forward(self, x, target, weight, pos_weight):
        xp = self.xp
        softplus_neg = xp.logaddexp(0, -x)  # log(1 + exp(-x)) without overflow
        log_weight = 1 + (pos_weight - 1) * target if pos_weight is not None else 1
        raw = (1 - target) * x + log_weight * softplus_neg
        loss = raw * weight if weight is not None else raw
        self.saved = (x, target, weight, pos_weight, softplus_neg, log_weight, raw)
        self.save_for_backward(x, target, weight, pos_weight)  # (backward reads them: no in-place change until then)
        self.count = loss.size
        return _reduce(loss, self.reduction).astype(x.dtype, copy=False)

    def backward(self, grad):
        xp = self.xp
        self.check_saved()
        if xp is graph_mode.namespace:
            x, target, weight, pos_weight = (attached(a, self, i) for i, a in enumerate(self.saved[:4]))
            softplus_neg = (-x).clamp_min(0) + (-x.abs()).exp().log1p()  # log(1 + exp(-x)), differentiable
            log_weight = 1 + (pos_weight - 1) * target if pos_weight is not None else 1
            raw = (1 - target) * x + log_weight * softplus_neg
        else:
            x, target, weight, pos_weight, softplus_neg, log_weight, raw = self.saved
        base_scale = _scale(grad, self.reduction, self.count)
        scale = base_scale * weight if weight is not None else base_scale
        x_edge, t_edge, w_edge, pw_edge = self.edges
        grad_x = grad_t = grad_w = grad_pw = None
        if x_edge is not None:
            sigmoid = x.sigmoid() if xp is graph_mode.namespace else xp.exp(-xp.logaddexp(0, -x))
            grad_x = sum_to(xp, ((1 - target) + log_weight * (sigmoid - 1)) * scale, x.shape)
        if t_edge is not None:
            slope = -x if pos_weight is None else -x + (pos_weight - 1) * softplus_neg
            grad_t = sum_to(xp, slope * scale, target.shape)
        if w_edge is not None:
            grad_w = sum_to(xp, raw * base_scale, weight.shape)
        if pw_edge is not None:
            grad_pw = sum_to(xp, target * softplus_neg * scale, pos_weight.shape)
        return grad_x, grad_t, grad_w, grad_pw


class KLDiv(Op):
    """Inputs ``(input, target)``: ``target * (log(target) - input)`` pointwise (``log_target``: target is given
    as its log); ``reduction`` also accepts ``'batchmean'`` (sum divided by the batch size). The target's gradient
    where ``target == 0`` is ``-input`` (the limit from above); PyTorch gives NaN there."""

    attr_names = ("reduction", "log_target")
    saved_inputs_for_check_only = True  # (backward reads its own attributes; see check_saved)

    def forward(self, x, target):
        xp = self.xp
        if self.log_target:
            loss = xp.exp(target) * (target - x)
        else:
            positive = target > 0
            loss = xp.where(positive, target * xp.log(xp.where(positive, target, 1)), 0) - target * x
        self.x, self.target = x, target
        self.save_for_backward(x, target)  # (backward reads them: no in-place change until then)
        self.shapes = (x.shape, target.shape)
        loss = loss.astype(xp.result_type(x, target), copy=False)
        if self.reduction == "batchmean":
            self.count = x.shape[0] if x.ndim else 1
            return loss.sum() / self.count
        self.count = loss.size
        return _reduce(loss, self.reduction)

    def backward(self, grad):
        xp = self.xp
        self.check_saved()
        x, target = self.x, self.target
        if xp is graph_mode.namespace:
            x, target = attached(x, self, 0), attached(target, self, 1)
        scale = grad / self.count if self.reduction in ("mean", "batchmean") else grad
        x_edge, t_edge = self.edges
        grad_x = grad_t = None
        if self.log_target:
            e = xp.exp(target)
            if x_edge is not None:
                grad_x = sum_to(xp, -e * scale, x.shape)
            if t_edge is not None:
                grad_t = sum_to(xp, e * (target - x + 1) * scale, target.shape)
        else:
            if x_edge is not None:
                grad_x = sum_to(xp, -target * scale, x.shape)
            if t_edge is not None:
                positive = target > 0
                slope = xp.where(positive, xp.log(xp.where(positive, target, 1)) + 1, 0) - x
                grad_t = sum_to(xp, slope * scale, target.shape)
        return grad_x, grad_t


def _log_add(xp, a, b):
    """``log(exp(a) + exp(b))`` elementwise, with ``-inf`` operands allowed (no warnings, no NaN)."""
    larger = xp.maximum(a, b)
    finite = xp.where(xp.isfinite(larger), larger, 0)
    return xp.where(xp.isneginf(larger), -xp.inf, finite + xp.log(xp.exp(a - finite) + xp.exp(b - finite)))


class CTCLoss(Op):
    """Connectionist temporal classification: ``-log p(target | log_probs)`` summed over every alignment.

    Inputs ``(log_probs, targets)``: log_probs ``(T, N, C)``, targets ``(N, S)`` padded class indices. Attrs: the
    per-sample ``input_lengths`` and ``target_lengths`` (tuples of ints), ``blank``, ``reduction`` (``'mean'``
    divides each loss by its target length, then averages) and ``zero_infinity``. The forward (alpha) and
    backward (beta) recursions run in log space over the extended label sequence, all samples at once.

    The gradient is PyTorch's: ``exp(log_probs) - occupancy / exp(log_probs)`` per frame before each sample's
    input length, zero after it. The ``exp(log_probs)`` term is what the gradient is through a ``log_softmax``
    (whose backward removes it), so it matches PyTorch also when ``log_probs`` is a leaf. No double backward, as
    in PyTorch.
    """

    attr_names = ("input_lengths", "target_lengths", "blank", "reduction", "zero_infinity")
    differentiable_backward = False

    def forward(self, log_probs, targets):
        xp = self.xp
        steps, batch, _ = log_probs.shape
        lengths = xp.asarray(self.input_lengths, dtype=xp.int64)
        target_lengths = xp.asarray(self.target_lengths, dtype=xp.int64)
        width = 2 * targets.shape[1] + 1
        labels = xp.full((batch, width), self.blank, dtype=xp.int64)
        labels[:, 1::2] = targets
        positions = xp.arange(width)
        # a skip from s-2 to s: s holds a label (odd) that differs from the label two before
        skip = xp.zeros((batch, width), dtype=bool)
        skip[:, 2:] = (positions[2:] % 2 == 1) & (labels[:, 2:] != labels[:, :-2])
        samples = xp.arange(batch)[:, None]
        emissions = log_probs[:, samples, labels]  # (T, N, width)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            alpha = xp.full((steps, batch, width), -xp.inf, dtype=log_probs.dtype)
            alpha[0, :, 0] = emissions[0, :, 0]
            if width > 1:
                alpha[0, :, 1] = xp.where(target_lengths > 0, emissions[0, :, 1], -xp.inf)
            for t in range(1, steps):
                previous = alpha[t - 1]
                total = previous.copy()
                total[:, 1:] = _log_add(xp, total[:, 1:], previous[:, :-1])
                total[:, 2:] = xp.where(skip[:, 2:], _log_add(xp, total[:, 2:], previous[:, :-2]), total[:, 2:])
                alpha[t] = total + emissions[t]
            last = alpha[xp.maximum(lengths - 1, 0), xp.arange(batch)]  # (N, width) at each sample's last frame
            end = 2 * target_lengths
            final = _log_add(xp, last[xp.arange(batch), end],
                             xp.where(end > 0, last[xp.arange(batch), xp.maximum(end - 1, 0)], -xp.inf))
        nll = -final
        self.saved = (log_probs, labels, skip, emissions, alpha, nll, lengths, target_lengths)
        losses = nll
        if self.zero_infinity:
            losses = xp.where(xp.isinf(losses), 0, losses)
        if self.reduction == "none":
            return losses.astype(log_probs.dtype, copy=False)
        if self.reduction == "sum":
            return losses.sum().astype(log_probs.dtype, copy=False)
        return (losses / xp.maximum(target_lengths, 1)).mean().astype(log_probs.dtype, copy=False)

    def backward(self, grad):
        xp = self.xp
        log_probs, labels, skip, emissions, alpha, nll, lengths, target_lengths = self.saved
        steps, batch, classes = log_probs.shape
        width = labels.shape[1]
        rows = xp.arange(batch)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            beta = xp.full((steps, batch, width), -xp.inf, dtype=log_probs.dtype)
            end = 2 * target_lengths
            start = xp.full((batch, width), -xp.inf, dtype=log_probs.dtype)
            for t in range(steps - 1, -1, -1):
                starts_here = lengths - 1 == t
                following = beta[t + 1] if t + 1 < steps else start
                total = following.copy()
                total[:, :-1] = _log_add(xp, total[:, :-1], following[:, 1:])
                total[:, :-2] = xp.where(skip[:, 2:], _log_add(xp, total[:, :-2], following[:, 2:]), total[:, :-2])
                total = xp.where((lengths - 1 > t)[:, None], total + emissions[t], -xp.inf)
                if starts_here.any():
                    init = xp.full((batch, width), -xp.inf, dtype=log_probs.dtype)
                    init[rows, end] = emissions[t, rows, end]
                    with_label = end > 0
                    init[rows[with_label], end[with_label] - 1] = emissions[t, rows[with_label], end[with_label] - 1]
                    total = xp.where(starts_here[:, None], init, total)
                beta[t] = total
            # occupancy of each extended label, divided by its emission probability, summed into its class
            joint = alpha + beta
            occupancy = xp.where(xp.isneginf(joint), 0, xp.exp(joint + nll[None, :, None] - emissions))
            per_class = xp.zeros((steps, batch, classes), dtype=log_probs.dtype)
            time = xp.arange(steps)[:, None, None]
            _scatter_class_add(xp, per_class, (time, rows[None, :, None], labels[None, :, :]), occupancy)
            result = xp.exp(log_probs) - per_class
        impossible = xp.isinf(nll)[None, :, None]  # no alignment: PyTorch's gradient is NaN (0 with zero_infinity)
        result = xp.where(impossible, 0 if self.zero_infinity else xp.nan, result)
        result = xp.where((xp.arange(steps)[:, None] < lengths[None, :])[:, :, None], result, 0)
        if self.reduction == "none":
            scale = grad.reshape(1, batch, 1)
        elif self.reduction == "sum":
            scale = grad
        else:
            scale = grad / (batch * xp.maximum(target_lengths, 1)).reshape(1, batch, 1)
        return (result * scale).astype(log_probs.dtype, copy=False), None


def _scatter_class_add(xp, target, key, values):
    if hasattr(xp.add, "at"):
        xp.add.at(target, key, values)
    else:  # CuPy
        import cupyx  # import here: CuPy is optional and only this branch needs it

        cupyx.scatter_add(target, key, values)
