"""``Exponential``: waiting times of a Poisson process with rate ``rate``."""

from dtorch import factories
from dtorch import functional as F
from dtorch.distributions import constraints
from dtorch.distributions.distribution import Distribution
from dtorch.distributions.utils import broadcast_all
from dtorch.tensor import Size


class Exponential(Distribution):
    """Density ``rate * exp(-rate * x)`` on ``x >= 0``; ``rsample`` is ``-log(1 - u) / rate``.

    >>> import dtorch
    >>> dtorch.distributions.Exponential(2.0).mean
    tensor(0.5000)
    """

    arg_constraints = {"rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, rate, validate_args=None):
        (self.rate,) = broadcast_all(rate)
        super().__init__(self.rate.shape, validate_args=validate_args)

    @property
    def mean(self):
        return F.reciprocal(self.rate)

    @property
    def mode(self):
        return factories.zeros_like(self.rate)

    @property
    def stddev(self):
        return F.reciprocal(self.rate)

    @property
    def variance(self):
        return F.reciprocal(self.rate * self.rate)

    def rsample(self, sample_shape=Size()):
        shape = tuple(self._extended_shape(sample_shape))
        u = factories.rand(shape, dtype=self.rate.dtype, device=self.rate.device)
        return -F.log1p(-u) / self.rate

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return F.log(self.rate) - self.rate * value

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return -F.expm1(-self.rate * value)

    def icdf(self, value):
        return -F.log1p(-value) / self.rate

    def entropy(self):
        return 1.0 - F.log(self.rate)
