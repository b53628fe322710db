"""``kl_divergence(p, q)`` and ``register_kl``: closed-form KL divergences looked up by the pair of types.

A lookup picks the registered pair whose types are the most specific superclasses of ``(type(p), type(q))``
(fewest steps up the two MROs), so a subclass of ``Normal`` reuses the Normal-Normal formula.
"""

import math

from dtorch import functional as F
from dtorch.distributions.bernoulli import Bernoulli
from dtorch.distributions.categorical import Categorical, OneHotCategorical
from dtorch.distributions.exponential import Exponential
from dtorch.distributions.independent import Independent
from dtorch.distributions.laplace import Laplace
from dtorch.distributions.multivariate_normal import MultivariateNormal, _batch_mahalanobis
from dtorch.distributions.normal import LogNormal, Normal
from dtorch.distributions.uniform import Uniform
from dtorch.distributions.utils import sum_rightmost
from dtorch.nn import functional as NF

_KL_REGISTRY = {}


def register_kl(type_p, type_q):
    """Decorator registering ``fn(p, q)`` as the KL divergence of ``type_p`` from ``type_q``.

    >>> from dtorch.distributions import Normal, register_kl
    >>> class MyNormal(Normal):
    ...     pass
    >>> @register_kl(MyNormal, MyNormal)
    ... def _kl_mine(p, q):
    ...     return (p.loc - q.loc) ** 2
    """
    if not (isinstance(type_p, type) and isinstance(type_q, type)):
        raise TypeError(f"Expected type_p and type_q to be classes, got {type_p} and {type_q}")

    def decorator(fn):
        _KL_REGISTRY[type_p, type_q] = fn
        return fn

    return decorator


def _lookup(type_p, type_q):
    best = None
    best_rank = None
    mro_p, mro_q = type_p.__mro__, type_q.__mro__
    for (super_p, super_q), fn in _KL_REGISTRY.items():
        if super_p in mro_p and super_q in mro_q:
            rank = (mro_p.index(super_p), mro_q.index(super_q))
            if best_rank is None or rank < best_rank:
                best, best_rank = fn, rank
    return best


def kl_divergence(p, q):
    """``KL(p || q) = E_p[log p(x) - log q(x)]``, one value per batch element, differentiable in both.

    >>> import dtorch
    >>> from dtorch.distributions import Normal, kl_divergence
    >>> kl_divergence(Normal(0.0, 1.0), Normal(1.0, 1.0))
    tensor(0.5000)
    """
    fn = _lookup(type(p), type(q))
    if fn is None:
        raise NotImplementedError(f"No KL(p || q) is implemented for p type {type(p).__name__} and q type "
                                  f"{type(q).__name__}")
    return fn(p, q)


@register_kl(Normal, Normal)
def _kl_normal_normal(p, q):
    variance_ratio = (p.scale / q.scale) ** 2
    shift = ((p.loc - q.loc) / q.scale) ** 2
    return 0.5 * (variance_ratio + shift - 1 - F.log(variance_ratio))


@register_kl(LogNormal, LogNormal)
def _kl_lognormal_lognormal(p, q):
    return _kl_normal_normal(p.base_dist, q.base_dist)


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli_bernoulli(p, q):
    # p log(p/q) + (1-p) log((1-p)/(1-q)), with log p = -softplus(-logit) and log(1-p) = -softplus(logit)
    ones = p.probs * (NF.softplus(-q.logits) - NF.softplus(-p.logits))
    zeros = (1 - p.probs) * (NF.softplus(q.logits) - NF.softplus(p.logits))
    ones = F.where(F.eq(p.probs, 0), 0.0, ones)
    zeros = F.where(F.eq(p.probs, 1), 0.0, zeros)
    return ones + zeros


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p, q):
    terms = p.probs * (p.logits - q.logits)
    terms = F.where(F.eq(q.probs, 0), math.inf, terms)
    terms = F.where(F.eq(p.probs, 0), 0.0, terms)
    return F.sum(terms, -1)


@register_kl(OneHotCategorical, OneHotCategorical)
def _kl_onehot_onehot(p, q):
    return _kl_categorical_categorical(p._categorical, q._categorical)


@register_kl(Uniform, Uniform)
def _kl_uniform_uniform(p, q):
    result = F.log((q.high - q.low) / (p.high - p.low))
    outside = F.logical_or(F.gt(q.low, p.low), F.lt(q.high, p.high))
    return F.where(outside, math.inf, result)


@register_kl(Laplace, Laplace)
def _kl_laplace_laplace(p, q):
    # E_p|x - mu_q| = |d| + b_p exp(-|d| / b_p) for d = mu_p - mu_q
    distance = F.abs(p.loc - q.loc)
    expected = distance + p.scale * F.exp(-distance / p.scale)
    return F.log(q.scale / p.scale) + expected / q.scale - 1


@register_kl(Exponential, Exponential)
def _kl_exponential_exponential(p, q):
    ratio = q.rate / p.rate
    return ratio - 1 - F.log(ratio)


@register_kl(MultivariateNormal, MultivariateNormal)
def _kl_mvn_mvn(p, q):
    if p.event_shape != q.event_shape:
        raise ValueError("KL-divergence between two Multivariate Normals with different event shapes cannot be "
                         "computed")
    n = p.event_shape[0]
    # tr(Sigma_q^{-1} Sigma_p) = |L_q^{-1} L_p|_F^2, read column by column as Mahalanobis terms of L_p's columns
    trace = F.sum(_batch_mahalanobis(q._unbroadcasted_scale_tril.unsqueeze(-3),
                                     p._unbroadcasted_scale_tril.transpose(-1, -2)), -1)
    shift = _batch_mahalanobis(q._unbroadcasted_scale_tril, q.loc - p.loc)
    log_det = q._half_log_det() - p._half_log_det()
    result = log_det + 0.5 * (trace + shift - n)
    return result.expand(tuple(p.batch_shape)) if p.batch_shape else result


@register_kl(Independent, Independent)
def _kl_independent_independent(p, q):
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NotImplementedError
    return sum_rightmost(kl_divergence(p.base_dist, q.base_dist), p.reinterpreted_batch_ndims)
