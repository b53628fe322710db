"""``Categorical`` (an index in ``0..K-1``) and ``OneHotCategorical`` (the same draw as a one-hot vector)."""

import math

from dtorch import _backend, factories
from dtorch import functional as F
from dtorch.autograd.grad_mode import no_grad
from dtorch.distributions import constraints
from dtorch.distributions.distribution import Distribution
from dtorch.distributions.utils import lazy_property, logits_to_probs, probs_to_logits
from dtorch.tensor import Size


class Categorical(Distribution):
    """A distribution over ``K`` categories, the last dim of ``probs`` (normalised to sum to 1) or ``logits``
    (normalised with ``logsumexp``); the leading dims are the batch.

    >>> import dtorch
    >>> d = dtorch.distributions.Categorical(probs=dtorch.tensor([0.25, 0.75]))
    >>> d.log_prob(dtorch.tensor(1)), d.entropy()
    (tensor(-0.2877), tensor(0.5623))
    """

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            if probs.dim() < 1:
                raise ValueError("`probs` parameter must be at least one-dimensional.")
            self.probs = probs / F.sum(probs, -1, keepdim=True)
            param = self.probs
        else:
            if logits.dim() < 1:
                raise ValueError("`logits` parameter must be at least one-dimensional.")
            self.logits = logits - F.logsumexp(logits, -1, keepdim=True)
            param = self.logits
        self._param = param
        self._num_events = param.shape[-1]
        super().__init__(param.shape[:-1], validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = super().expand(batch_shape, _instance)
        new._param = new.__dict__["probs" if "probs" in new.__dict__ else "logits"]
        return new

    def _copy_extra(self, new, batch_shape):
        new._num_events = self._num_events

    @constraints.dependent_property(is_discrete=True)
    def support(self):
        return constraints.integer_interval(0, self._num_events - 1)

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs)

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits)

    @property
    def param_shape(self):
        return self._param.shape

    @property
    def mean(self):
        return factories.full(tuple(self._extended_shape()), math.nan, dtype=self.probs.dtype,
                              device=self.probs.device)

    @property
    def mode(self):
        return F.argmax(self.probs, -1)

    @property
    def variance(self):
        return self.mean

    def sample(self, sample_shape=Size()):
        # inverse CDF: the index of the first cumulative probability above a uniform draw, for every draw at once
        shape = tuple(self._extended_shape(sample_shape))
        with no_grad():
            cumulative = F.cumsum(self.probs, -1)
            u = factories.rand(shape + (1,), dtype=cumulative.dtype, device=cumulative.device)
            below = F.le(cumulative, u * cumulative[..., -1:])
            index = F.sum(below.long(), -1)
            return F.clamp(index, max=self._num_events - 1)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        index = value.long().unsqueeze(-1)
        index, log_pmf = F.broadcast_tensors(index, self.logits)
        return F.gather(log_pmf, -1, index[..., :1]).squeeze(-1)

    def entropy(self):
        logits = F.clamp(self.logits, min=float(_backend.finfo(self.logits.dtype).min))
        return -F.sum(logits * self.probs, -1)

    def enumerate_support(self, expand=True):
        values = factories.arange(self._num_events, device=self._param.device)
        values = values.reshape((-1,) + (1,) * len(self._batch_shape))
        if expand:
            values = values.expand((-1,) + tuple(self._batch_shape))
        return values


class OneHotCategorical(Distribution):
    """A ``Categorical`` draw written as a one-hot vector of length ``K`` (the event shape).

    >>> import dtorch
    >>> d = dtorch.distributions.OneHotCategorical(probs=dtorch.tensor([0.0, 1.0]))
    >>> d.sample()
    tensor([0., 1.])
    """

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.one_hot
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        self._categorical = Categorical(probs, logits, validate_args=validate_args)
        param = self._categorical._param
        super().__init__(param.shape[:-1], param.shape[-1:], validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = type(self).__new__(type(self))
        new._categorical = self._categorical.expand(batch_shape)
        Distribution.__init__(new, Size(batch_shape), self._event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def probs(self):
        return self._categorical.probs

    @property
    def logits(self):
        return self._categorical.logits

    @property
    def param_shape(self):
        return self._categorical.param_shape

    @property
    def mean(self):
        return self.probs

    @property
    def mode(self):
        return self._one_hot(self._categorical.mode)

    @property
    def variance(self):
        return self.probs * (1 - self.probs)

    def _one_hot(self, index):
        eye = factories.eye(self._event_shape[0], dtype=self._categorical._param.dtype,
                            device=self._categorical._param.device)
        return eye[index]

    def sample(self, sample_shape=Size()):
        return self._one_hot(self._categorical.sample(sample_shape))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return self._categorical.log_prob(F.argmax(value, -1))

    def entropy(self):
        return self._categorical.entropy()

    def enumerate_support(self, expand=True):
        n = self._event_shape[0]
        values = factories.eye(n, dtype=self._categorical._param.dtype, device=self._categorical._param.device)
        values = values.reshape((n,) + (1,) * len(self._batch_shape) + (n,))
        if expand:
            values = values.expand((n,) + tuple(self._batch_shape) + (n,))
        return values

    def __repr__(self):
        return repr(self._categorical).replace("Categorical", "OneHotCategorical", 1)
