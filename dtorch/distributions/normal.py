"""``Normal`` and ``LogNormal``: a Gaussian and the law of ``exp`` of a Gaussian."""

import math

from dtorch import factories
from dtorch import functional as F
from dtorch.autograd.grad_mode import no_grad
from dtorch.distributions import constraints
from dtorch.distributions.distribution import Distribution
from dtorch.distributions.utils import broadcast_all
from dtorch.tensor import Size

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _erfinv(y):
    """The inverse of ``erf`` on ``(-1, 1)``, differentiable in ``y``.

    Winitzki's closed-form guess (relative error ~2e-3) is refined by Newton steps on detached values; a last
    Newton step from the detached root then carries the gradient, ``dz/dy = 1 / erf'(z)``, while leaving the
    value unchanged.
    """
    a = 0.147
    with no_grad():
        target = y.detach()
        log_term = F.log1p(-target * target)
        first = 2 / (math.pi * a) + log_term / 2
        root = F.sign(target) * F.sqrt(F.sqrt(first * first - log_term / a) - first)
        for _ in range(4):
            root = root - (F.erf(root) - target) / (_TWO_OVER_SQRT_PI * F.exp(-root * root))
    slope = _TWO_OVER_SQRT_PI * F.exp(-root * root)
    return root + (y - F.erf(root)) / slope


_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)


class Normal(Distribution):
    """The normal distribution with mean ``loc`` and standard deviation ``scale``.

    Density ``p(x) = exp(-(x - loc)^2 / (2 scale^2)) / (scale sqrt(2 pi))``; ``rsample`` is ``loc + scale * eps``
    with ``eps ~ N(0, 1)``.

    >>> import dtorch
    >>> d = dtorch.distributions.Normal(dtorch.tensor([0.0]), dtorch.tensor([1.0]))
    >>> d.log_prob(dtorch.tensor([0.0]))
    tensor([-0.9189])
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
    def stddev(self):
        return self.scale

    @property
    def variance(self):
        return self.scale * self.scale

    def rsample(self, sample_shape=Size()):
        shape = self._extended_shape(sample_shape)
        eps = factories.randn(tuple(shape), dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + eps * self.scale

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        return -0.5 * z * z - F.log(self.scale) - _LOG_SQRT_2PI

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 0.5 * (1 + F.erf((value - self.loc) / (self.scale * math.sqrt(2))))

    def icdf(self, value):
        return self.loc + self.scale * _erfinv(2 * value - 1) * math.sqrt(2)

    def entropy(self):
        return 0.5 + _LOG_SQRT_2PI + F.log(self.scale)


class LogNormal(Distribution):
    """``exp(X)`` for ``X ~ Normal(loc, scale)``; ``base_dist`` is that normal.

    >>> import dtorch
    >>> d = dtorch.distributions.LogNormal(0.0, 1.0)
    >>> d.log_prob(dtorch.tensor(1.0))
    tensor(-0.9189)
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.base_dist = Normal(loc, scale, validate_args=validate_args)
        super().__init__(self.base_dist.batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = type(self).__new__(type(self))
        new.base_dist = self.base_dist.expand(batch_shape)
        Distribution.__init__(new, Size(batch_shape), validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def loc(self):
        return self.base_dist.loc

    @property
    def scale(self):
        return self.base_dist.scale

    @property
    def mean(self):
        return F.exp(self.loc + self.scale * self.scale / 2)

    @property
    def mode(self):
        return F.exp(self.loc - self.scale * self.scale)

    @property
    def variance(self):
        var = self.scale * self.scale
        return F.expm1(var) * F.exp(2 * self.loc + var)

    def rsample(self, sample_shape=Size()):
        return F.exp(self.base_dist.rsample(sample_shape))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        log_value = F.log(value)
        z = (log_value - self.loc) / self.scale
        return -0.5 * z * z - F.log(self.scale) - _LOG_SQRT_2PI - log_value

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 0.5 * (1 + F.erf((F.log(value) - self.loc) / (self.scale * math.sqrt(2))))

    def entropy(self):
        return self.base_dist.entropy() + self.loc

    def __repr__(self):
        return repr(self.base_dist).replace("Normal", "LogNormal", 1)
