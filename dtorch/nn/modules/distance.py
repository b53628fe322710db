"""``PairwiseDistance`` and ``CosineSimilarity``: row-wise distances between two inputs."""

from dtorch.nn import functional as F
from dtorch.nn.modules.module import Module

__all__ = ["PairwiseDistance", "CosineSimilarity"]


class PairwiseDistance(Module):
    """``||x1 - x2 + eps||_p`` over the last dimension.

    >>> import dtorch
    >>> dtorch.nn.PairwiseDistance(eps=0.0)(dtorch.tensor([[3., 0.]]), dtorch.tensor([[0., 4.]])).tolist()
    [5.0]
    """

    def __init__(self, p=2.0, eps=1e-6, keepdim=False):
        super().__init__()
        self.norm = p
        self.eps = eps
        self.keepdim = keepdim

    def forward(self, x1, x2):
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)


class CosineSimilarity(Module):
    """``x1 . x2 / max(||x1|| * ||x2||, eps)`` along ``dim``.

    >>> import dtorch
    >>> dtorch.nn.CosineSimilarity()(dtorch.tensor([[1., 0.]]), dtorch.tensor([[2., 0.]])).tolist()
    [1.0]
    """

    def __init__(self, dim=1, eps=1e-8):
        super().__init__()
        self.dim = dim
        self.eps = eps

    def forward(self, x1, x2):
        return F.cosine_similarity(x1, x2, self.dim, self.eps)
