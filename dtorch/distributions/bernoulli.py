"""``Bernoulli``: a 0/1 coin with probability ``probs`` (or log-odds ``logits``) of 1."""

from dtorch import factories
from dtorch import functional as F
from dtorch.autograd.grad_mode import no_grad
from dtorch.distributions import constraints
from dtorch.distributions.distribution import Distribution
from dtorch.distributions.utils import broadcast_all, lazy_property, logits_to_probs, probs_to_logits
from dtorch.nn import functional as NF
from dtorch.tensor import Size


class Bernoulli(Distribution):
    """Give exactly one of ``probs`` (in ``[0, 1]``) or ``logits``; the other is derived on first use.

    ``log_prob(x) = x log p + (1 - x) log(1 - p)``, computed from the logits for stability.

    >>> import dtorch
    >>> d = dtorch.distributions.Bernoulli(logits=dtorch.tensor([0.0]))
    >>> d.probs, d.log_prob(dtorch.tensor([1.0]))
    (tensor([0.5000]), tensor([-0.6931]))
    """

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.boolean
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            (self.probs,) = broadcast_all(probs)
            param = self.probs
        else:
            (self.logits,) = broadcast_all(logits)
            param = self.logits
        self._param = param
        super().__init__(param.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = super().expand(batch_shape, _instance)
        new._param = new.__dict__["probs" if "probs" in new.__dict__ else "logits"]
        return new

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits, is_binary=True)

    @property
    def param_shape(self):
        return self._param.shape

    @property
    def mean(self):
        return self.probs

    @property
    def mode(self):
        mode = F.ge(self.probs, 0.5).to(self.probs.dtype)
        return F.where(F.eq(self.probs, 0.5), float("nan"), mode)

    @property
    def variance(self):
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=Size()):
        shape = tuple(self._extended_shape(sample_shape))
        with no_grad():
            probs = self.probs.expand(shape)
            return F.lt(factories.rand(shape, dtype=probs.dtype, device=probs.device), probs).to(probs.dtype)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        return -NF.binary_cross_entropy_with_logits(logits, value, reduction="none")

    def entropy(self):
        return NF.binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none")

    def enumerate_support(self, expand=True):
        values = factories.arange(2, dtype=self._param.dtype, device=self._param.device)
        values = values.reshape((-1,) + (1,) * len(self._batch_shape))
        if expand:
            values = values.expand((-1,) + tuple(self._batch_shape))
        return values
