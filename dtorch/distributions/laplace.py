"""``Laplace``: the double-exponential distribution."""

import math

from dtorch import factories
from dtorch import functional as F
from dtorch.distributions import constraints
from dtorch.distributions.distribution import Distribution
from dtorch.distributions.utils import _eps, broadcast_all
from dtorch.tensor import Size


class Laplace(Distribution):
    """The Laplace distribution: density ``exp(-|x - loc| / scale) / (2 scale)``.

    ``rsample`` inverts the CDF at uniform noise ``u`` in ``(-1, 1)``: ``loc - scale * sign(u) * log(1 - |u|)``.

    >>> import dtorch
    >>> dtorch.distributions.Laplace(0.0, 1.0).log_prob(dtorch.tensor(0.0))
    tensor(-0.6931)
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        return 2 * self.scale * self.scale

    @property
    def stddev(self):
        return math.sqrt(2) * self.scale

    def rsample(self, sample_shape=Size()):
        shape = tuple(self._extended_shape(sample_shape))
        eps = _eps(self.loc)
        # uniform on [eps - 1, 1): the endpoint -1 would give log(0)
        u = factories.rand(shape, dtype=self.loc.dtype, device=self.loc.device) * (2 - eps) + (eps - 1)
        return self.loc - self.scale * F.sign(u) * F.log1p(-F.abs(u))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return -F.log(2 * self.scale) - F.abs(value - self.loc) / self.scale

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        centred = value - self.loc
        return 0.5 - 0.5 * F.sign(centred) * F.expm1(-F.abs(centred) / self.scale)

    def icdf(self, value):
        term = value - 0.5
        return self.loc - self.scale * F.sign(term) * F.log1p(-2 * F.abs(term))

    def entropy(self):
        return 1 + F.log(2 * self.scale)
