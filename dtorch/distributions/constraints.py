"""Constraints: the sets that parameters and values of a distribution must lie in.

A constraint is a small object whose ``check(value)`` returns a boolean tensor, True where ``value`` satisfies it
(reduced over the constraint's ``event_dim`` rightmost dimensions). Distributions name them in
``arg_constraints`` and ``support``; ``validate_args`` uses them to reject bad inputs with PyTorch's messages.

>>> import dtorch
>>> from dtorch.distributions import constraints
>>> constraints.positive.check(dtorch.tensor([1.0, -1.0]))
tensor([ True, False])
"""

import numpy as np

from dtorch import functional as F
from dtorch.tensor import Tensor


def _show(bound):
    """A bound as PyTorch prints it in a constraint's repr: a 0-dim tensor as its number."""
    if isinstance(bound, Tensor) and bound.dim() == 0:
        return bound.item()
    return bound


class Constraint:
    """Base class: ``check(value)`` gives a bool tensor; ``is_discrete`` and ``event_dim`` describe the set."""

    is_discrete = False
    event_dim = 0

    def check(self, value):
        raise NotImplementedError

    def __repr__(self):
        return type(self).__name__.lstrip("_") + "()"


class _Dependent(Constraint):
    """A placeholder for a constraint that depends on other parameters; it cannot be checked."""

    def __init__(self, *, is_discrete=False, event_dim=0):
        self.is_discrete = is_discrete
        self.event_dim = event_dim

    def check(self, value):
        raise ValueError("Cannot determine validity of dependent constraint")


class dependent_property(property):
    """A property that is also a dependent constraint (``Uniform.support`` depends on ``low`` and ``high``).

    Use it bare (``@dependent_property``) or with options (``@dependent_property(is_discrete=True)``).
    """

    def __init__(self, fget=None, *, is_discrete=False, event_dim=0):
        super().__init__(fget)
        self.is_discrete = is_discrete
        self.event_dim = event_dim

    def __call__(self, fget):
        return dependent_property(fget, is_discrete=self.is_discrete, event_dim=self.event_dim)


def is_dependent(constraint):
    """True for constraints that cannot be checked on their own (``dependent``, ``dependent_property``)."""
    return isinstance(constraint, (_Dependent, dependent_property))


class _Real(Constraint):
    def check(self, value):
        return F.eq(value, value)  # False only for NaN


class _Boolean(Constraint):
    is_discrete = True

    def check(self, value):
        return F.logical_or(F.eq(value, 0), F.eq(value, 1))


class _OneHot(Constraint):
    is_discrete = True
    event_dim = 1

    def check(self, value):
        is_boolean = F.all(F.logical_or(F.eq(value, 0), F.eq(value, 1)), -1)
        return F.logical_and(is_boolean, F.eq(F.sum(value, -1), 1))


class _IntegerInterval(Constraint):
    is_discrete = True

    def __init__(self, lower_bound, upper_bound):
        self.lower_bound = lower_bound
        self.upper_bound = upper_bound

    def check(self, value):
        integral = F.eq(F.remainder(value, 1), 0)
        return F.logical_and(integral, F.logical_and(F.ge(value, self.lower_bound), F.le(value, self.upper_bound)))

    def __repr__(self):
        return f"IntegerInterval(lower_bound={_show(self.lower_bound)}, upper_bound={_show(self.upper_bound)})"


class _IntegerGreaterThan(Constraint):
    is_discrete = True

    def __init__(self, lower_bound):
        self.lower_bound = lower_bound

    def check(self, value):
        return F.logical_and(F.eq(F.remainder(value, 1), 0), F.ge(value, self.lower_bound))

    def __repr__(self):
        return f"IntegerGreaterThan(lower_bound={_show(self.lower_bound)})"


class _GreaterThan(Constraint):
    def __init__(self, lower_bound):
        self.lower_bound = lower_bound

    def check(self, value):
        return F.gt(value, self.lower_bound)

    def __repr__(self):
        return f"GreaterThan(lower_bound={_show(self.lower_bound)})"


class _GreaterThanEq(_GreaterThan):
    def check(self, value):
        return F.ge(value, self.lower_bound)

    def __repr__(self):
        return f"GreaterThanEq(lower_bound={_show(self.lower_bound)})"


class _LessThan(Constraint):
    def __init__(self, upper_bound):
        self.upper_bound = upper_bound

    def check(self, value):
        return F.lt(value, self.upper_bound)

    def __repr__(self):
        return f"LessThan(upper_bound={_show(self.upper_bound)})"


class _Interval(Constraint):
    def __init__(self, lower_bound, upper_bound):
        self.lower_bound = lower_bound
        self.upper_bound = upper_bound

    def check(self, value):
        return F.logical_and(F.ge(value, self.lower_bound), F.le(value, self.upper_bound))

    def __repr__(self):
        name = type(self).__name__.lstrip("_")
        return f"{name}(lower_bound={_show(self.lower_bound)}, upper_bound={_show(self.upper_bound)})"


class _HalfOpenInterval(_Interval):
    def check(self, value):
        return F.logical_and(F.ge(value, self.lower_bound), F.lt(value, self.upper_bound))


class _Simplex(Constraint):
    event_dim = 1

    def check(self, value):
        nonnegative = F.all(F.ge(value, 0), -1)
        return F.logical_and(nonnegative, F.lt(F.abs(F.sum(value, -1) - 1), 1e-6))


class _Independent(Constraint):
    """``base_constraint`` on each element, reduced with ``all`` over ``reinterpreted_batch_ndims`` more dims."""

    def __init__(self, base_constraint, reinterpreted_batch_ndims):
        self.base_constraint = base_constraint
        self.reinterpreted_batch_ndims = reinterpreted_batch_ndims

    @property
    def is_discrete(self):
        return self.base_constraint.is_discrete

    @property
    def event_dim(self):
        return self.base_constraint.event_dim + self.reinterpreted_batch_ndims

    def check(self, value):
        result = self.base_constraint.check(value)
        for _ in range(self.reinterpreted_batch_ndims):
            result = F.all(result, -1)
        return result

    def __repr__(self):
        return f"IndependentConstraint({self.base_constraint!r}, {self.reinterpreted_batch_ndims})"


def _matrix_check(value, test):
    """Apply a NumPy test to each matrix of ``value`` (checks are not differentiated)."""
    array = np.asarray(value.detach().cpu().numpy())
    flat = array.reshape((-1,) + array.shape[-2:])
    result = np.array([test(m) for m in flat], dtype=bool).reshape(array.shape[:-2])
    return Tensor._from_array(result, None).to(value.device)


class _LowerCholesky(Constraint):
    event_dim = 2

    def check(self, value):
        return _matrix_check(value, lambda m: bool((np.tril(m) == m).all() and (np.diagonal(m) > 0).all()))


def _is_positive_definite(m):
    if not np.array_equal(m, m.T) and not np.allclose(m, m.T, atol=1e-6):
        return False
    try:
        np.linalg.cholesky(m)
    except np.linalg.LinAlgError:
        return False
    return True


class _PositiveDefinite(Constraint):
    event_dim = 2

    def check(self, value):
        return _matrix_check(value, _is_positive_definite)


dependent = _Dependent()
real = _Real()
real_vector = _Independent(real, 1)
boolean = _Boolean()
one_hot = _OneHot()
nonnegative_integer = _IntegerGreaterThan(0)
positive_integer = _IntegerGreaterThan(1)
integer_interval = _IntegerInterval
positive = _GreaterThan(0.0)
nonnegative = _GreaterThanEq(0.0)
greater_than = _GreaterThan
greater_than_eq = _GreaterThanEq
less_than = _LessThan
unit_interval = _Interval(0.0, 1.0)
interval = _Interval
half_open_interval = _HalfOpenInterval
simplex = _Simplex()
independent = _Independent
lower_cholesky = _LowerCholesky()
positive_definite = _PositiveDefinite()
