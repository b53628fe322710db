"""``Distribution``: the base class with PyTorch's interface (shapes, sampling, densities, validation).

Shapes: a distribution holds a batch of independent distributions (``batch_shape``) over values of
``event_shape``; ``sample(sample_shape)`` returns ``sample_shape + batch_shape + event_shape`` and ``log_prob``
returns one number per batch element. ``rsample`` draws through a reparameterisation (parameter + scale * noise),
so gradients flow to the parameters; ``sample`` draws without building a graph. Noise comes from dtorch's default
generator, so ``dtorch.manual_seed`` reproduces every draw.

Validation (on by default, as in PyTorch; ``set_default_validate_args(False)`` turns it off for every new
distribution) checks parameters against ``arg_constraints`` at construction and values against ``support`` in
``log_prob``/``cdf``, raising ``ValueError`` with PyTorch's messages.
"""

from dtorch.autograd.grad_mode import no_grad
from dtorch import functional as F
from dtorch.distributions import constraints
from dtorch.distributions.utils import lazy_property
from dtorch.tensor import Size, Tensor


class Distribution:
    """Base class of the distributions.

    >>> import dtorch
    >>> d = dtorch.distributions.Normal(dtorch.zeros(2), 1.0)
    >>> d.batch_shape, d.event_shape
    (dtorch.Size([2]), dtorch.Size([]))
    >>> d.sample((3,)).shape
    dtorch.Size([3, 2])
    """

    has_rsample = False
    has_enumerate_support = False
    _validate_args = __debug__
    arg_constraints = {}
    support = None

    @staticmethod
    def set_default_validate_args(value):
        """Turn validation on or off for distributions created afterwards (``validate_args=None``)."""
        if value not in (True, False):
            raise ValueError
        Distribution._validate_args = value

    def __init__(self, batch_shape=Size(), event_shape=Size(), validate_args=None):
        self._batch_shape = Size(batch_shape)
        self._event_shape = Size(event_shape)
        if validate_args is not None:
            self._validate_args = validate_args
        if self._validate_args:
            self._check_parameters()

    def _check_parameters(self):
        for name, constraint in self.arg_constraints.items():
            if constraints.is_dependent(constraint):
                continue
            if name not in self.__dict__ and isinstance(getattr(type(self), name, None), lazy_property):
                continue  # not given: derived from a checked parameter
            value = getattr(self, name)
            if not bool(F.all(constraint.check(value))):
                raise ValueError(
                    f"Expected parameter {name} ({type(value).__name__} of shape {tuple(value.shape)}) of "
                    f"distribution {self!r} to satisfy the constraint {constraint!r}, but found invalid "
                    f"values:\n{value}")

    # ---- shapes ---------------------------------------------------------------------------------------------------

    @property
    def batch_shape(self):
        return self._batch_shape

    @property
    def event_shape(self):
        return self._event_shape

    def _extended_shape(self, sample_shape=Size()):
        return Size(tuple(sample_shape) + tuple(self._batch_shape) + tuple(self._event_shape))

    def expand(self, batch_shape, _instance=None):
        """The same distribution with its parameters broadcast (without copying) to ``batch_shape``.

        >>> import dtorch
        >>> dtorch.distributions.Normal(0.0, 1.0).expand((2, 3)).batch_shape
        dtorch.Size([2, 3])
        """
        batch_shape = Size(batch_shape)
        new = type(self).__new__(type(self)) if _instance is None else _instance
        old_rank = len(self._batch_shape)
        for name in self._param_names():
            value = self.__dict__[name]
            new.__dict__[name] = value.expand(tuple(batch_shape) + tuple(value.shape[old_rank:]))
        self._copy_extra(new, batch_shape)
        Distribution.__init__(new, batch_shape, self._event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _param_names(self):
        """The parameters stored on this instance, which ``expand`` broadcasts."""
        return [name for name in self.arg_constraints if isinstance(self.__dict__.get(name), Tensor)]

    def _copy_extra(self, new, batch_shape):
        """Hook for ``expand``: copy attributes that are not parameters."""

    # ---- statistics -----------------------------------------------------------------------------------------------

    @property
    def mean(self):
        raise NotImplementedError

    @property
    def mode(self):
        raise NotImplementedError(f"{type(self)} does not implement mode")

    @property
    def variance(self):
        raise NotImplementedError

    @property
    def stddev(self):
        return F.sqrt(self.variance)

    # ---- sampling and densities -----------------------------------------------------------------------------------

    def sample(self, sample_shape=Size()):
        """Draw ``sample_shape`` samples without tracking gradients."""
        with no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=Size()):
        raise NotImplementedError

    def sample_n(self, n):
        return self.sample(Size((n,)))

    def log_prob(self, value):
        raise NotImplementedError

    def cdf(self, value):
        raise NotImplementedError

    def icdf(self, value):
        raise NotImplementedError

    def entropy(self):
        raise NotImplementedError

    def perplexity(self):
        return F.exp(self.entropy())

    def enumerate_support(self, expand=True):
        raise NotImplementedError

    def _validate_sample(self, value):
        if not isinstance(value, Tensor):
            raise ValueError("The value argument to log_prob must be a Tensor")
        event_start = value.dim() - len(self._event_shape)
        if tuple(value.shape[event_start:]) != tuple(self._event_shape):
            raise ValueError(f"The right-most size of value must match event_shape: {value.shape} vs "
                             f"{self._event_shape}.")
        actual = value.shape
        expected = self._extended_shape()
        for i, j in zip(reversed(actual), reversed(expected)):
            if i != 1 and j != 1 and i != j:
                raise ValueError(f"Value is not broadcastable with batch_shape+event_shape: {actual} vs "
                                 f"{expected}.")
        support = self.support
        if not bool(F.all(support.check(value))):
            raise ValueError(
                f"Expected value argument ({type(value).__name__} of shape {tuple(value.shape)}) to be within the "
                f"support ({support!r}) of the distribution {self!r}, but found invalid values:\n{value}")

    def __repr__(self):
        parts = []
        for name in self.arg_constraints:
            value = self.__dict__.get(name)
            if not isinstance(value, Tensor):
                continue
            if value.dim() == 0:
                shown = value.item()
            elif value.numel() == 1:
                shown = value
            else:
                shown = value.shape
            parts.append(f"{name}: {shown}")
        return f"{type(self).__name__}({', '.join(parts)})"


def set_default_validate_args(value):
    """Module-level spelling of ``Distribution.set_default_validate_args``.

    >>> from dtorch.distributions import Distribution
    >>> Distribution.set_default_validate_args(True)
    """
    Distribution.set_default_validate_args(value)
