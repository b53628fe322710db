"""Loss modules: store ``reduction`` (and weights as buffers) and call ``dtorch.nn.functional``.

``size_average``/``reduce`` are PyTorch's deprecated spellings of ``reduction`` and are translated the same way,
with the same warning. ``weight`` and ``pos_weight`` are buffers, so they move with ``to()`` and, when given,
appear in ``state_dict`` as in PyTorch.
"""


from dtorch.nn import functional as F
from dtorch.nn.modules.distance import PairwiseDistance
from dtorch.nn.modules.module import Module
from dtorch._warnings import warn as _warn

__all__ = ["L1Loss", "MSELoss", "SmoothL1Loss", "HuberLoss", "NLLLoss", "CrossEntropyLoss", "BCELoss",
           "BCEWithLogitsLoss", "KLDivLoss", "PoissonNLLLoss", "GaussianNLLLoss", "MarginRankingLoss",
           "HingeEmbeddingLoss", "CosineEmbeddingLoss", "SoftMarginLoss", "MultiLabelSoftMarginLoss",
           "MultiMarginLoss", "MultiLabelMarginLoss", "TripletMarginLoss", "TripletMarginWithDistanceLoss", "NLLLoss2d"]


def _legacy_reduction(size_average, reduce):
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = "mean" if size_average and reduce else ("sum" if reduce else "none")
    _warn(
        f"size_average and reduce args will be deprecated, please use reduction='{reduction}' instead.",
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


class CTCLoss(_Loss):
    """Connectionist temporal classification loss (``F.ctc_loss``): log-probabilities ``(T, N, C)``, targets,
    input and target lengths.

    >>> import dtorch
    >>> lp = dtorch.randn(5, 2, 4).log_softmax(2)
    >>> dtorch.nn.CTCLoss()(lp, dtorch.tensor([[1, 2], [3, 3]]), [5, 5], [2, 2]).dim()
    0
    """

    def __init__(self, blank=0, reduction="mean", zero_infinity=False):
        super().__init__(reduction=reduction)
        self.blank = blank
        self.zero_infinity = zero_infinity

    def forward(self, log_probs, targets, input_lengths, target_lengths):
        return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, self.blank, self.reduction,
                          self.zero_infinity)


class PoissonNLLLoss(_Loss):
    """Poisson negative log-likelihood of ``target`` given rates (or log-rates, ``log_input``) ``input``.

    >>> import dtorch
    >>> dtorch.nn.PoissonNLLLoss()(dtorch.zeros(2), dtorch.ones(2)).item()
    1.0
    """

    def __init__(self, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.log_input = log_input
        self.full = full
        self.eps = eps

    def forward(self, log_input, target):
        return F.poisson_nll_loss(log_input, target, log_input=self.log_input, full=self.full, eps=self.eps,
                                  reduction=self.reduction)


class GaussianNLLLoss(_Loss):
    """Gaussian negative log-likelihood of ``target`` given means ``input`` and variances ``var``.

    >>> import dtorch
    >>> dtorch.nn.GaussianNLLLoss()(dtorch.ones(2), dtorch.ones(2), dtorch.ones(2)).item()
    0.0
    """

    def __init__(self, *, full=False, eps=1e-6, reduction="mean"):
        super().__init__(None, None, reduction)
        self.full = full
        self.eps = eps

    def forward(self, input, target, var):
        return F.gaussian_nll_loss(input, target, var, full=self.full, eps=self.eps, reduction=self.reduction)


class MarginRankingLoss(_Loss):
    """``max(0, -target * (input1 - input2) + margin)``.

    >>> import dtorch
    >>> dtorch.nn.MarginRankingLoss()(dtorch.tensor([1.]), dtorch.tensor([2.]), dtorch.tensor([1.])).item()
    1.0
    """

    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return F.margin_ranking_loss(input1, input2, target, margin=self.margin, reduction=self.reduction)


class HingeEmbeddingLoss(_Loss):
    """``input`` where ``target == 1``, ``max(0, margin - input)`` where ``target == -1``.

    >>> import dtorch
    >>> dtorch.nn.HingeEmbeddingLoss()(dtorch.tensor([0.3]), dtorch.tensor([-1.])).item()
    0.699999988079071
    """

    def __init__(self, margin=1.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input, target):
        return F.hinge_embedding_loss(input, target, margin=self.margin, reduction=self.reduction)


class CosineEmbeddingLoss(_Loss):
    """``1 - cos(x1, x2)`` where ``target == 1``, ``max(0, cos(x1, x2) - margin)`` where ``target == -1``.

    >>> import dtorch
    >>> x = dtorch.tensor([[1., 0.]])
    >>> dtorch.nn.CosineEmbeddingLoss()(x, x, dtorch.tensor([1.])).item()
    0.0
    """

    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return F.cosine_embedding_loss(input1, input2, target, margin=self.margin, reduction=self.reduction)


class SoftMarginLoss(_Loss):
    """``log(1 + exp(-target * input))``, for targets of +1 and -1.

    >>> import dtorch
    >>> round(dtorch.nn.SoftMarginLoss()(dtorch.zeros(1), dtorch.ones(1)).item(), 4)
    0.6931
    """

    def forward(self, input, target):
        return F.soft_margin_loss(input, target, reduction=self.reduction)


class MultiLabelSoftMarginLoss(_WeightedLoss):
    """Per-class binary cross-entropy on logits, averaged over the classes.

    >>> import dtorch
    >>> round(dtorch.nn.MultiLabelSoftMarginLoss()(dtorch.zeros(1, 2), dtorch.tensor([[1., 0.]])).item(), 4)
    0.6931
    """

    def forward(self, input, target):
        return F.multilabel_soft_margin_loss(input, target, weight=self.weight, reduction=self.reduction)


class MultiMarginLoss(_WeightedLoss):
    """Multi-class hinge loss (``F.multi_margin_loss``) with class indices as targets.

    >>> import dtorch
    >>> dtorch.nn.MultiMarginLoss()(dtorch.tensor([[0.1, 0.2, 0.4, 0.8]]), dtorch.tensor([3])).item()
    0.32499998807907104
    """

    def __init__(self, p=1, margin=1.0, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        if p not in (1, 2):
            raise ValueError("only p == 1 and p == 2 supported")
        if weight is not None and weight.dim() != 1:
            raise ValueError(f"MultiMarginLoss: expected weight to be None or 1D tensor, got {weight.dim()}D instead")
        self.p = p
        self.margin = margin

    def forward(self, input, target):
        return F.multi_margin_loss(input, target, p=self.p, margin=self.margin, weight=self.weight,
                                   reduction=self.reduction)


class MultiLabelMarginLoss(_Loss):
    """Multi-label hinge loss (``F.multilabel_margin_loss``): targets list class indices, ended by -1.

    >>> import dtorch
    >>> x = dtorch.tensor([[0.1, 0.2, 0.4, 0.8]])
    >>> round(dtorch.nn.MultiLabelMarginLoss()(x, dtorch.tensor([[3, 0, -1, 1]])).item(), 4)
    0.85
    """

    def forward(self, input, target):
        return F.multilabel_margin_loss(input, target, reduction=self.reduction)


class TripletMarginLoss(_Loss):
    """``max(0, d(anchor, positive) - d(anchor, negative) + margin)`` with the ``p``-norm distance.

    >>> import dtorch
    >>> dtorch.nn.TripletMarginLoss()(dtorch.zeros(1, 2), dtorch.zeros(1, 2), dtorch.ones(1, 2) * 3).item()
    0.0
    """

    def __init__(self, margin=1.0, p=2.0, eps=1e-6, swap=False, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginLoss: expected margin to be greater than 0, got {margin} instead")
        self.margin = margin
        self.p = p
        self.eps = eps
        self.swap = swap

    def forward(self, anchor, positive, negative):
        return F.triplet_margin_loss(anchor, positive, negative, margin=self.margin, p=self.p, eps=self.eps,
                                     swap=self.swap, reduction=self.reduction)


class TripletMarginWithDistanceLoss(_Loss):
    """``TripletMarginLoss`` with any distance function (a ``PairwiseDistance()`` by default).

    >>> import dtorch
    >>> dtorch.nn.TripletMarginWithDistanceLoss()
    TripletMarginWithDistanceLoss(
      (distance_function): PairwiseDistance()
    )
    """

    def __init__(self, *, distance_function=None, margin=1.0, swap=False, reduction="mean"):
        super().__init__(None, None, reduction)
        if margin <= 0:
            raise ValueError(
                f"TripletMarginWithDistanceLoss: expected margin to be greater than 0, got {margin} instead"
            )
        self.distance_function = distance_function if distance_function is not None else PairwiseDistance()
        self.margin = margin
        self.swap = swap

    def forward(self, anchor, positive, negative):
        return F.triplet_margin_with_distance_loss(anchor, positive, negative,
                                                   distance_function=self.distance_function, margin=self.margin,
                                                   swap=self.swap, reduction=self.reduction)


class NLLLoss2d(NLLLoss):
    """Deprecated spelling of ``NLLLoss`` (warns, as PyTorch does).

    >>> import dtorch, warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     dtorch.nn.NLLLoss2d()
    NLLLoss2d()
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
        _warn(
            "NLLLoss2d has been deprecated. Please use NLLLoss instead as a drop-in replacement and see "
            "https://pytorch.org/docs/main/nn.html#torch.nn.NLLLoss for more details.",
        )
        super().__init__(weight, size_average, ignore_index, reduce, reduction)
