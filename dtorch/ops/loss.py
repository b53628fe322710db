"""Loss functions as fused ops, each with its ``reduction`` (``'none'``, ``'mean'``, ``'sum'``) inside.

``CrossEntropy`` is the fused softmax-cross-entropy: one log-softmax over the class axis and a gradient
``p * (a + B) - a * onehot - b`` (``p`` the softmax, ``a`` the per-sample weight of the target class, ``b`` the
label-smoothing weights) with no intermediate op. The class axis is axis 1 (axis 0 for an unbatched input); it is
moved last internally so every row is one sample. Mean reductions follow PyTorch: class-index losses divide by
the summed weights of the non-ignored targets, everything else by the element count.
"""

import numpy as np

from dtorch.autograd.function import Function
from dtorch.ops._util import sum_to
from dtorch.ops.nn import sum_last


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


class PointwiseLoss(Function):
    """``mse``, ``l1``, ``smooth_l1`` (``beta``) and ``huber`` (``delta``, passed as ``beta``) of
    ``input - target``; inputs ``(input, target, weight)`` broadcast, weight may be None."""

    attr_names = ("kind", "reduction", "beta")
    differentiable_backward = False

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
        return _reduce(loss, self.reduction)

    def backward(self, grad):
        xp = self.xp
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


def _rows(xp, x, axis):
    """``(M, C)`` view of ``x`` with the class axis last."""
    c = x.shape[axis]
    return xp.moveaxis(x, axis, -1).reshape(-1, c)


def _unrows(xp, rows, shape, axis):
    moved = shape[:axis] + shape[axis + 1:] + (shape[axis],)
    return xp.ascontiguousarray(xp.moveaxis(rows.reshape(moved), -1, axis))


def _log_softmax_rows(xp, z):
    shifted = z - z.max(axis=1, keepdims=True)
    shifted -= xp.log(sum_last(xp, xp.exp(shifted)))
    return shifted


def _class_index_terms(xp, target, weight, ignore_index, dtype):
    """What the class-index losses share: labels safe to index with (ignored ones read class 0), the mask of
    non-ignored rows, and each row's target weight (0 where ignored)."""
    labels = target.reshape(-1)
    valid = labels != ignore_index
    safe = xp.where(valid, labels, 0)
    row_weight = weight[safe] * valid if weight is not None else valid.astype(dtype)
    return safe, valid, row_weight


class CrossEntropy(Function):
    """Inputs ``(logits, target, weight)``. ``probabilities=False``: target holds class indices (any number of
    extra dimensions, ``ignore_index`` skipped); ``True``: target holds class probabilities of the logits' shape."""

    attr_names = ("axis", "probabilities", "ignore_index", "reduction", "label_smoothing")
    differentiable_backward = False

    def forward(self, logits, target, weight):
        xp = self.xp
        axis = self.axis
        c = logits.shape[axis]
        logp = _log_softmax_rows(xp, _rows(xp, logits, axis))
        eps = self.label_smoothing
        self.logp, self.weight, self.shape = logp, weight, logits.shape
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
            with np.errstate(invalid="ignore", divide="ignore"):  # all targets ignored: NaN, as in PyTorch
                loss = nll.sum() / self.denominator
                if eps:
                    loss = (1 - eps) * loss + (eps / c) * (smooth.sum() / self.denominator)
            return loss.astype(logp.dtype, copy=False)
        loss = nll if not eps else (1 - eps) * nll + (eps / c) * smooth
        return _reduce(loss.reshape(out_shape), self.reduction)

    def backward(self, grad):
        xp = self.xp
        logits_edge, target_edge, _ = self.edges
        logp = self.logp
        m, c = logp.shape
        if self.reduction == "none":
            scale = grad.reshape(-1, 1)
        elif self.reduction == "sum":
            scale = grad
        else:
            scale = grad / (self.count if self.probabilities else _safe_denominator(xp, self.denominator))
        probs = xp.exp(logp)
        grad_logits = grad_target = None
        if self.probabilities:
            wt = self.wt
            if logits_edge is not None:
                grad_logits = (probs * wt.sum(axis=1, keepdims=True) - wt) * scale
            if target_edge is not None:
                w = self.weight if self.weight is not None else 1
                grad_target = -(1 - self.label_smoothing) * w * logp * scale
                grad_target = _unrows(xp, grad_target, self.shape, self.axis)
        elif logits_edge is not None:
            eps = self.label_smoothing
            a = ((1 - eps) * self.row_weight).reshape(-1, 1) * scale
            grad_logits = probs * a
            grad_logits[xp.arange(m), self.safe] -= a[:, 0]
            if eps:
                w = self.weight if self.weight is not None else xp.ones(c, dtype=logp.dtype)
                b = (eps / c) * w * (self.valid.reshape(-1, 1) * scale)
                grad_logits += probs * b.sum(axis=1, keepdims=True) - b
        if grad_logits is not None:
            grad_logits = _unrows(xp, grad_logits.astype(logp.dtype, copy=False), self.shape, self.axis)
        return grad_logits, grad_target, None


class NLLLoss(Function):
    """Inputs ``(log_probs, target, weight)``: ``-weight[y] * log_probs[y]`` per sample, class axis ``axis``."""

    attr_names = ("axis", "ignore_index", "reduction")
    differentiable_backward = False

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
        if self.reduction == "none":
            scale = grad.reshape(-1)
        elif self.reduction == "sum":
            scale = grad
        else:
            scale = grad / _safe_denominator(xp, self.denominator)
        m = self.safe.shape[0]
        c = self.shape[self.axis]
        rows = xp.zeros((m, c), dtype=grad.dtype)
        rows[xp.arange(m), self.safe] = -self.row_weight * scale
        return _unrows(xp, rows, self.shape, self.axis), None, None


class BinaryCrossEntropy(Function):
    """Inputs ``(probabilities, target, weight)``; logs are clamped at -100 as in PyTorch."""

    attr_names = ("reduction",)
    differentiable_backward = False

    def forward(self, x, target, weight):
        xp = self.xp
        with np.errstate(divide="ignore"):  # log(0) = -inf, clamped to -100 below as PyTorch does
            log_x = xp.maximum(xp.log(x), -100)
            log_1mx = xp.maximum(xp.log1p(-x), -100)
        raw = -(target * log_x + (1 - target) * log_1mx)
        self.x, self.target, self.weight = x, target, weight
        self.raw, self.logs = raw, (log_x, log_1mx)
        loss = raw * weight if weight is not None else raw
        self.count = loss.size
        return _reduce(loss, self.reduction).astype(x.dtype, copy=False)

    def backward(self, grad):
        xp = self.xp
        x, target, weight = self.x, self.target, self.weight
        scale = _scale(grad, self.reduction, self.count)
        if weight is not None:
            scale = scale * weight
        x_edge, t_edge, w_edge = self.edges
        grad_x = grad_t = grad_w = None
        if x_edge is not None:
            grad_x = sum_to(xp, (x - target) / xp.maximum((1 - x) * x, 1e-12) * scale, x.shape)
        if t_edge is not None:
            log_x, log_1mx = self.logs
            grad_t = sum_to(xp, (log_1mx - log_x) * scale, target.shape)
        if w_edge is not None:
            grad_w = sum_to(xp, self.raw * _scale(grad, self.reduction, self.count), weight.shape)
        return grad_x, grad_t, grad_w


class BinaryCrossEntropyWithLogits(Function):
    """Inputs ``(logits, target, weight, pos_weight)``:
    ``loss = w * ((1 - t) x + (1 + (pos_weight - 1) t) softplus(-x))``, stable for any ``x``."""

    attr_names = ("reduction",)
    differentiable_backward = False

    def forward(self, x, target, weight, pos_weight):
        xp = self.xp
        softplus_neg = xp.logaddexp(0, -x)  # log(1 + exp(-x)) without overflow
        log_weight = 1 + (pos_weight - 1) * target if pos_weight is not None else 1
        raw = (1 - target) * x + log_weight * softplus_neg
        loss = raw * weight if weight is not None else raw
        self.saved = (x, target, weight, pos_weight, softplus_neg, log_weight, raw)
        self.count = loss.size
        return _reduce(loss, self.reduction).astype(x.dtype, copy=False)

    def backward(self, grad):
        xp = self.xp
        x, target, weight, pos_weight, softplus_neg, log_weight, raw = self.saved
        base_scale = _scale(grad, self.reduction, self.count)
        scale = base_scale * weight if weight is not None else base_scale
        x_edge, t_edge, w_edge, pw_edge = self.edges
        grad_x = grad_t = grad_w = grad_pw = None
        if x_edge is not None:
            sigmoid = xp.exp(-xp.logaddexp(0, -x))
            grad_x = sum_to(xp, ((1 - target) + log_weight * (sigmoid - 1)) * scale, x.shape)
        if t_edge is not None:
            slope = -x if pos_weight is None else -x + (pos_weight - 1) * softplus_neg
            grad_t = sum_to(xp, slope * scale, target.shape)
        if w_edge is not None:
            grad_w = sum_to(xp, raw * base_scale, weight.shape)
        if pw_edge is not None:
            grad_pw = sum_to(xp, target * softplus_neg * scale, pos_weight.shape)
        return grad_x, grad_t, grad_w, grad_pw


class KLDiv(Function):
    """Inputs ``(input, target)``: ``target * (log(target) - input)`` pointwise (``log_target``: target is given
    as its log); ``reduction`` also accepts ``'batchmean'`` (sum divided by the batch size). The target's gradient
    where ``target == 0`` is ``-input`` (the limit from above); PyTorch gives NaN there."""

    attr_names = ("reduction", "log_target")
    differentiable_backward = False

    def forward(self, x, target):
        xp = self.xp
        if self.log_target:
            loss = xp.exp(target) * (target - x)
        else:
            positive = target > 0
            loss = xp.where(positive, target * xp.log(xp.where(positive, target, 1)), 0) - target * x
        self.x, self.target = x, target
        self.shapes = (x.shape, target.shape)
        loss = loss.astype(xp.result_type(x, target), copy=False)
        if self.reduction == "batchmean":
            self.count = x.shape[0] if x.ndim else 1
            return loss.sum() / self.count
        self.count = loss.size
        return _reduce(loss, self.reduction)

    def backward(self, grad):
        xp = self.xp
        x, target = self.x, self.target
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
