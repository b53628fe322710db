"""``MultivariateNormal``: a Gaussian over vectors, parameterised by a covariance, precision or Cholesky factor.

Everything goes through the lower Cholesky factor ``L`` of the covariance (``Sigma = L L^T``): ``rsample`` is
``loc + L eps``, ``log_prob`` solves ``L y = x - loc`` and uses ``log det Sigma = 2 sum log diag L``. The factor of a
given covariance is computed by ``_cholesky``, a column-by-column composition of dtorch ops, so gradients reach
the covariance without a hand-written backward.
"""

import math

from dtorch import factories
from dtorch import functional as F
from dtorch import linalg
from dtorch.distributions import constraints
from dtorch.distributions.distribution import Distribution
from dtorch.distributions.utils import lazy_property
from dtorch.tensor import Size


def _broadcast_shape(*shapes):
    rank = max(len(s) for s in shapes)
    result = []
    for sizes in zip(*[(1,) * (rank - len(s)) + tuple(s) for s in shapes]):
        bigger = [n for n in sizes if n != 1]
        if len(set(bigger)) > 1:
            raise ValueError(f"Incompatible batch shapes: {[tuple(s) for s in shapes]}")
        result.append(bigger[0] if bigger else 1)
    return tuple(result)


def _cholesky(matrix):
    """The lower Cholesky factor of each symmetric positive-definite matrix in ``matrix`` (..., n, n).

    Column ``j`` is ``(A[:, j] - L[:, :j] L[j, :j]^T) / sqrt(that at row j)``, zero above the diagonal. The input is
    symmetrised first so the gradient is symmetric, as for PyTorch's Cholesky.
    """
    n = matrix.shape[-1]
    symmetric = (matrix + matrix.transpose(-1, -2)) / 2
    rows = factories.arange(n, device=matrix.device)
    columns = []
    for j in range(n):
        column = symmetric[..., :, j]
        if j:
            previous = F.stack(columns, -1)  # (..., n, j)
            column = column - F.matmul(previous, previous[..., j, :].unsqueeze(-1)).squeeze(-1)
        pivot = F.sqrt(column[..., j : j + 1])
        below = F.ge(rows, j).to(matrix.dtype)
        columns.append(column / pivot * below)
    return F.stack(columns, -1)


def _batch_mahalanobis(scale_tril, diff):
    """``|L^{-1} diff|^2`` over the last dim, broadcasting the batch dims of ``L`` and ``diff``."""
    n = diff.shape[-1]
    batch = _broadcast_shape(scale_tril.shape[:-2], diff.shape[:-1])
    # tril: only the lower triangle is the factor, so the upper one gets no gradient
    solved = linalg.solve(F.tril(scale_tril).expand(batch + (n, n)), diff.expand(batch + (n,)).unsqueeze(-1))
    return F.sum(solved.squeeze(-1) ** 2, -1)


class MultivariateNormal(Distribution):
    """A Gaussian with mean ``loc`` (..., n) and exactly one of ``covariance_matrix``, ``precision_matrix`` or
    ``scale_tril`` (..., n, n); batch dims of ``loc`` and the matrix broadcast.

    >>> import dtorch
    >>> d = dtorch.distributions.MultivariateNormal(dtorch.zeros(2), covariance_matrix=dtorch.eye(2))
    >>> d.log_prob(dtorch.zeros(2))
    tensor(-1.8379)
    """

    arg_constraints = {"loc": constraints.real_vector, "covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite, "scale_tril": constraints.lower_cholesky}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, covariance_matrix=None, precision_matrix=None, scale_tril=None, validate_args=None):
        if loc.dim() < 1:
            raise ValueError("loc must be at least one-dimensional.")
        given = [m for m in (covariance_matrix, precision_matrix, scale_tril) if m is not None]
        if len(given) != 1:
            raise ValueError("Exactly one of covariance_matrix or precision_matrix or scale_tril may be specified.")
        matrix = given[0]
        if matrix.dim() < 2:
            name = ("covariance_matrix" if covariance_matrix is not None else
                    "precision_matrix" if precision_matrix is not None else "scale_tril")
            raise ValueError(f"{name} matrix must be at least two-dimensional, with optional leading batch "
                             f"dimensions")
        batch_shape = _broadcast_shape(matrix.shape[:-2], loc.shape[:-1])
        n = loc.shape[-1]
        if covariance_matrix is not None:
            self.covariance_matrix = covariance_matrix.expand(batch_shape + (n, n))
        elif precision_matrix is not None:
            self.precision_matrix = precision_matrix.expand(batch_shape + (n, n))
        else:
            self.scale_tril = scale_tril.expand(batch_shape + (n, n))
        self.loc = loc.expand(batch_shape + (n,))
        super().__init__(batch_shape, (n,), validate_args=validate_args)
        if scale_tril is not None:
            self._unbroadcasted_scale_tril = scale_tril
        elif covariance_matrix is not None:
            self._unbroadcasted_scale_tril = _cholesky(covariance_matrix)
        else:
            self._unbroadcasted_scale_tril = _cholesky(linalg.inv(precision_matrix))

    def _copy_extra(self, new, batch_shape):
        new._unbroadcasted_scale_tril = self._unbroadcasted_scale_tril

    @lazy_property
    def scale_tril(self):
        n = self._event_shape[0]
        return self._unbroadcasted_scale_tril.expand(tuple(self._batch_shape) + (n, n))

    @lazy_property
    def covariance_matrix(self):
        tril = self._unbroadcasted_scale_tril
        n = self._event_shape[0]
        return F.matmul(tril, tril.transpose(-1, -2)).expand(tuple(self._batch_shape) + (n, n))

    @lazy_property
    def precision_matrix(self):
        # from the factor, not the given covariance: its gradient is then symmetric, as PyTorch's
        tril = self._unbroadcasted_scale_tril
        n = self._event_shape[0]
        return linalg.inv(F.matmul(tril, tril.transpose(-1, -2))).expand(tuple(self._batch_shape) + (n, n))

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        variance = F.sum(self._unbroadcasted_scale_tril ** 2, -1)
        return variance.expand(tuple(self._batch_shape) + tuple(self._event_shape))

    def rsample(self, sample_shape=Size()):
        shape = tuple(self._extended_shape(sample_shape))
        eps = factories.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + F.matmul(self._unbroadcasted_scale_tril, eps.unsqueeze(-1)).squeeze(-1)

    def _half_log_det(self):
        return F.sum(F.log(F.diagonal(self._unbroadcasted_scale_tril, dim1=-2, dim2=-1)), -1)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        n = self._event_shape[0]
        m = _batch_mahalanobis(self._unbroadcasted_scale_tril, value - self.loc)
        return -0.5 * (n * math.log(2 * math.pi) + m) - self._half_log_det()

    def entropy(self):
        n = self._event_shape[0]
        h = 0.5 * n * (1.0 + math.log(2 * math.pi)) + self._half_log_det()
        return h.expand(tuple(self._batch_shape)) if self._batch_shape else h
