"""Loss modules: store ``reduction`` (and weights as buffers) and call ``dtorch.nn.functional``.

``size_average``/``reduce`` are PyTorch's deprecated spellings of ``reduction`` and are translated the same way,
with the same warning. ``weight`` and ``pos_weight`` are buffers, so they move with ``to()`` and, when given,
appear in ``state_dict`` as in PyTorch.
"""

import warnings

from dtorch.nn import functional as F
from dtorch.nn.modules.module import Module

__all__ = ["L1Loss", "MSELoss", "SmoothL1Loss", "HuberLoss", "NLLLoss", "CrossEntropyLoss", "BCELoss",
           "BCEWithLogitsLoss", "KLDivLoss"]


def _legacy_reduction(size_average, reduce):
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = "mean" if size_average and reduce else ("sum" if reduce else "none")
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{reduction}' instead.",
        stacklevel=3,
    )
    return reduction


class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__()
        if size_average is not None or reduce is not None:
            self.reduction = _legacy_reduction(size_average, reduce)
        else:
            self.reduction = reduction


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class L1Loss(_Loss):
    """Mean (or sum, or none) of ``|input - target|``.

    >>> import dtorch
    >>> dtorch.nn.L1Loss()(dtorch.tensor([1.0, 3.0]), dtorch.tensor([2.0, 2.0])).item()
    1.0
    """

    def forward(self, input, target):
        return F.l1_loss(input, target, reduction=self.reduction)


class MSELoss(_Loss):
    """Mean (or sum, or none) of ``(input - target)^2``.

    >>> import dtorch
    >>> dtorch.nn.MSELoss(reduction="sum")(dtorch.tensor([1.0, 3.0]), dtorch.tensor([2.0, 2.0])).item()
    2.0
    """

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """Squared error below ``beta`` (halved and divided by ``beta``), absolute error minus ``beta / 2`` above.

    >>> import dtorch
    >>> dtorch.nn.SmoothL1Loss()(dtorch.tensor([0.5, 3.0]), dtorch.zeros(2)).item()
    1.3125
    """

    def __init__(self, size_average=None, reduce=None, reduction="mean", beta=1.0):
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input, target):
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """Half squared error below ``delta``, ``delta * (|error| - delta / 2)`` above.

    >>> import dtorch
    >>> dtorch.nn.HuberLoss(delta=2.0)(dtorch.tensor([1.0, 4.0]), dtorch.zeros(2)).item()
    3.25
    """

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input, target):
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of class indices given log-probabilities ``(N, C, ...)``.

    >>> import dtorch
    >>> logp = dtorch.log(dtorch.tensor([[0.5, 0.5]]))
    >>> round(dtorch.nn.NLLLoss()(logp, dtorch.tensor([1])).item(), 4)
    0.6931
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    """Cross-entropy between logits ``(N, C, ...)`` and class indices or class probabilities.

    >>> import dtorch
    >>> round(dtorch.nn.CrossEntropyLoss()(dtorch.zeros(2, 4), dtorch.tensor([0, 3])).item(), 4)
    1.3863
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                 label_smoothing=0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy between probabilities and targets in ``[0, 1]``.

    >>> import dtorch
    >>> round(dtorch.nn.BCELoss()(dtorch.tensor([0.5]), dtorch.tensor([1.0])).item(), 4)
    0.6931
    """

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits (a stable sigmoid inside); ``pos_weight`` weighs positive examples.

    >>> import dtorch
    >>> loss = dtorch.nn.BCEWithLogitsLoss(pos_weight=dtorch.tensor([2.0]))
    >>> round(loss(dtorch.zeros(1), dtorch.ones(1)).item(), 4)
    1.3863
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean", pos_weight=None):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight, pos_weight=self.pos_weight,
                                                  reduction=self.reduction)


class KLDivLoss(_Loss):
    """Kullback-Leibler divergence with log-probability ``input`` (and ``target`` if ``log_target``).

    >>> import dtorch
    >>> logp = dtorch.log(dtorch.tensor([[0.5, 0.5]]))
    >>> dtorch.nn.KLDivLoss(reduction="batchmean")(logp, dtorch.tensor([[0.5, 0.5]])).item()
    0.0
    """

    def __init__(self, size_average=None, reduce=None, reduction="mean", log_target=False):
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input, target):
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)
