"""``Uniform``: constant density on ``[low, high)``."""

from dtorch import factories
from dtorch import functional as F
from dtorch.distributions import constraints
from dtorch.distributions.distribution import Distribution
from dtorch.distributions.utils import broadcast_all
from dtorch.tensor import Size


class Uniform(Distribution):
    """Uniform on ``[low, high)``; ``rsample`` is ``low + (high - low) * u`` with ``u ~ U[0, 1)``.

    >>> import dtorch
    >>> d = dtorch.distributions.Uniform(0.0, 4.0)
    >>> d.log_prob(dtorch.tensor(1.0)), d.mean
    (tensor(-1.3863), tensor(2.))
    """

    has_rsample = True

    @property
    def arg_constraints(self):
        return {"low": constraints.less_than(self.high), "high": constraints.greater_than(self.low)}

    def __init__(self, low, high, validate_args=None):
        self.low, self.high = broadcast_all(low, high)
        super().__init__(self.low.shape, validate_args=validate_args)

    def _param_names(self):
        return ["low", "high"]

    @constraints.dependent_property
    def support(self):
        return constraints.interval(self.low, self.high)

    @property
    def mean(self):
        return (self.high + self.low) / 2

    @property
    def mode(self):
        return self.high * float("nan")

    @property
    def stddev(self):
        return (self.high - self.low) / 12 ** 0.5

    @property
    def variance(self):
        width = self.high - self.low
        return width * width / 12

    def rsample(self, sample_shape=Size()):
        shape = tuple(self._extended_shape(sample_shape))
        u = factories.rand(shape, dtype=self.low.dtype, device=self.low.device)
        return self.low + u * (self.high - self.low)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        inside = F.logical_and(F.le(self.low, value), F.gt(self.high, value)).to(self.low.dtype)
        return F.log(inside) - F.log(self.high - self.low)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return F.clamp((value - self.low) / (self.high - self.low), min=0, max=1)

    def icdf(self, value):
        return value * (self.high - self.low) + self.low

    def entropy(self):
        return F.log(self.high - self.low)
