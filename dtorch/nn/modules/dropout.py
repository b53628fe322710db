"""``Dropout``: zero each element with probability ``p`` in training mode, scale the rest by ``1 / (1 - p)``;
the identity in eval mode. Masks come from dtorch's RNG (``dtorch.manual_seed``)."""

from dtorch.nn import functional as F
from dtorch.nn.modules.module import Module

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"]


class _DropoutNd(Module):
    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Randomly zero elements during training (inverted dropout).

    >>> import dtorch
    >>> drop = dtorch.nn.Dropout(p=0.2)
    >>> drop
    Dropout(p=0.2, inplace=False)
    >>> bool((drop.eval()(dtorch.ones(4)) == 1).all())
    True
    """

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace)


class Dropout1d(_DropoutNd):
    """Zero whole channels of ``(N, C, L)`` input during training.

    >>> import dtorch
    >>> dtorch.nn.Dropout1d(0.5)(dtorch.ones(2, 4, 3)).shape
    dtorch.Size([2, 4, 3])
    """

    def forward(self, input):
        return F.dropout1d(input, self.p, self.training, self.inplace)


class Dropout2d(_DropoutNd):
    """Zero whole channels of ``(N, C, H, W)`` input during training.

    >>> import dtorch
    >>> dtorch.nn.Dropout2d(0.5)(dtorch.ones(2, 4, 3, 3)).shape
    dtorch.Size([2, 4, 3, 3])
    """

    def forward(self, input):
        return F.dropout2d(input, self.p, self.training, self.inplace)


class Dropout3d(_DropoutNd):
    """Zero whole channels of ``(N, C, D, H, W)`` input during training.

    >>> import dtorch
    >>> dtorch.nn.Dropout3d(0.5)(dtorch.ones(2, 4, 2, 3, 3)).shape
    dtorch.Size([2, 4, 2, 3, 3])
    """

    def forward(self, input):
        return F.dropout3d(input, self.p, self.training, self.inplace)


class AlphaDropout(_DropoutNd):
    """Dropout for SELU networks, keeping zero mean and unit variance (``F.alpha_dropout``).

    >>> import dtorch
    >>> dtorch.nn.AlphaDropout(0.2)
    AlphaDropout(p=0.2, inplace=False)
    """

    def forward(self, input):
        return F.alpha_dropout(input, self.p, self.training, self.inplace)


class FeatureAlphaDropout(_DropoutNd):
    """``AlphaDropout`` of whole channels (``F.feature_alpha_dropout``).

    >>> import dtorch
    >>> dtorch.nn.FeatureAlphaDropout(0.2).eval()(dtorch.ones(1, 2, 3)).shape
    dtorch.Size([1, 2, 3])
    """

    def forward(self, input):
        return F.feature_alpha_dropout(input, self.p, self.training, self.inplace)
