"""``dtorch.linalg``: PyTorch's ``torch.linalg`` for the calls training code makes: norms, ``inv``, ``det``,
``slogdet``, ``cholesky``, ``solve``. Matrices are the last two dimensions; leading dimensions are batches.

>>> import dtorch
>>> dtorch.linalg.vector_norm(dtorch.tensor([3.0, 4.0]))
tensor(5.)
"""

import math

import numpy as np

from dtorch import factories
from dtorch import functional as F
from dtorch._errors import raise_not_a_tensor
from dtorch.ops import linalg as L
from dtorch.tensor import Tensor, _wrap_dim


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """``sum(|x|^ord)^(1/ord)`` over ``dim`` (every element by default); ``ord`` may be ``inf``, ``-inf`` or 0.

    >>> import dtorch
    >>> dtorch.linalg.vector_norm(dtorch.tensor([[1.0, -2.0]]), ord=float("inf"), dim=1)
    tensor([2.])
    """
    return F.norm(x, p=ord, dim=dim, keepdim=keepdim, dtype=dtype)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    """A matrix norm over the two dims ``dim``: ``'fro'``, or ``1``/``-1``/``inf``/``-inf`` (max/min absolute column
    or row sum). The spectral and nuclear norms (``2``, ``-2``, ``'nuc'``) need an SVD, which dtorch lacks."""
    if not isinstance(A, Tensor):
        raise_not_a_tensor("linalg_matrix_norm", "input", 1, A)
    if A._array.ndim < 2:
        raise RuntimeError(f"linalg.matrix_norm: The input tensor A must have at least 2 dimensions, got shape "
                           f"{list(A.shape)}")
    if dtype is not None:
        A = A.to(dtype)
    rows, cols = (_wrap_dim(d, A._array.ndim) for d in dim)
    if ord == "fro":
        return F.norm(A, p=2, dim=(rows, cols), keepdim=keepdim)
    if ord in (1, -1, math.inf, -math.inf):
        summed_dim, picked_dim = (rows, cols) if ord in (1, -1) else (cols, rows)
        sums = F.sum(F.abs(A), dim=summed_dim, keepdim=True)
        picked = F.amax(sums, dim=picked_dim, keepdim=True) if ord > 0 else F.amin(sums, dim=picked_dim, keepdim=True)
        return picked if keepdim else F.squeeze(F.squeeze(picked, max(rows, cols)), min(rows, cols))
    raise NotImplementedError(f"linalg.matrix_norm: ord={ord!r} needs an SVD, which dtorch does not implement")


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    """``vector_norm`` for a vector (or an int ``dim``), ``matrix_norm`` for a matrix (or a 2-tuple ``dim``);
    ``ord=None`` is the 2-norm of the flattened input or the Frobenius norm.

    >>> import dtorch
    >>> dtorch.linalg.norm(dtorch.ones(2, 2))
    tensor(2.)
    """
    if not isinstance(A, Tensor):
        raise_not_a_tensor("linalg_norm", "input", 1, A)
    if dim is not None and not isinstance(dim, int) and len(dim) == 2:
        return matrix_norm(A, "fro" if ord is None else ord, dim, keepdim, dtype=dtype)
    if dim is None and A._array.ndim == 2 and ord is not None:
        return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)
    return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)


def _check_square(A, name):
    if A._array.ndim < 2 or A._array.shape[-1] != A._array.shape[-2]:
        raise RuntimeError(f"linalg.{name}: A must be batches of square matrices, but got shape {list(A.shape)}")
    if A._array.dtype.kind != "f":
        raise RuntimeError(f"linalg.{name}: Expected a floating point tensor as input. Got {A.dtype}")


def inv(A):
    """The inverse of each square matrix; a singular one raises ``RuntimeError`` (PyTorch: ``torch.linalg.inv``).

    >>> import dtorch
    >>> dtorch.linalg.inv(dtorch.tensor([[2.0, 0.0], [0.0, 4.0]]))
    tensor([[0.5000, 0.0000],
            [0.0000, 0.2500]])
    """
    if not isinstance(A, Tensor):
        raise_not_a_tensor("linalg_inv", "A", 1, A)
    _check_square(A, "inv")
    return _apply_raising_as_torch(
        L.Inverse, "linalg.inv: The diagonal element of the LU factorization is zero: the input matrix is singular", A)


def _apply_raising_as_torch(op, message, *inputs, **attrs):
    """``op.apply(*inputs, **attrs)``, with NumPy's (or CuPy's) LinAlgError turned into PyTorch's RuntimeError
    ``message``."""
    try:
        return op.apply(*inputs, **attrs)
    except Exception as error:  # numpy.linalg.LinAlgError or CuPy's equivalent
        if type(error).__name__ != "LinAlgError":
            raise
        raise RuntimeError(message) from None


def det(A):
    """The determinant of each square matrix."""
    if not isinstance(A, Tensor):
        raise_not_a_tensor("linalg_det", "A", 1, A)
    _check_square(A, "det")
    return L.Det.apply(A)


def slogdet(A):
    """``(sign, logabsdet)`` of each square matrix: the sign of the determinant and the log of its absolute value,
    which stays finite where ``det`` over- or underflows (``torch.linalg.slogdet``); ``logabsdet`` is
    differentiable.

    >>> import dtorch
    >>> dtorch.linalg.slogdet(dtorch.tensor([[2.0, 0.0], [0.0, -4.0]]))
    dtorch.return_types.linalg_slogdet(
    sign=tensor(-1.),
    logabsdet=tensor(2.0794))
    """
    if not isinstance(A, Tensor):
        raise_not_a_tensor("linalg_slogdet", "A", 1, A)
    _check_square(A, "slogdet")
    logabsdet, sign = L.SlogDet.apply(A)
    return _SlogDetResult(sign, logabsdet)


class _SlogDetResult(tuple):
    """``(sign, logabsdet)``, printed as PyTorch prints ``torch.return_types.linalg_slogdet``."""

    __slots__ = ()

    def __new__(cls, sign, logabsdet):
        return super().__new__(cls, (sign, logabsdet))

    @property
    def sign(self):
        return self[0]

    @property
    def logabsdet(self):
        return self[1]

    def __repr__(self):
        return f"dtorch.return_types.linalg_slogdet(\nsign={self.sign!r},\nlogabsdet={self.logabsdet!r})"


def logdet(A):
    """``log(det A)`` of each square matrix: NaN where the determinant is negative, ``-inf`` where it is 0, as
    ``torch.logdet`` (from ``slogdet``, so it stays finite where ``det`` would over- or underflow).

    >>> import dtorch
    >>> dtorch.logdet(dtorch.tensor([[2.0, 0.0], [0.0, 4.0]]))
    tensor(2.0794)
    """
    sign, logabsdet = slogdet(A)
    return F.where(sign < 0, factories.full_like(logabsdet, math.nan), logabsdet)


def cholesky(A, *, upper=False):
    """The Cholesky factor of each symmetric positive-definite matrix: lower triangular ``L`` with ``L L^T = A``
    (``upper=True``: ``L^T``). A matrix that is not positive-definite raises ``RuntimeError``.

    >>> import dtorch
    >>> dtorch.linalg.cholesky(dtorch.tensor([[4.0, 2.0], [2.0, 5.0]]))
    tensor([[2., 0.],
            [1., 2.]])
    """
    if not isinstance(A, Tensor):
        raise_not_a_tensor("linalg_cholesky", "A", 1, A)
    _check_square(A, "cholesky")
    factor = _apply_raising_as_torch(L.Cholesky, "linalg.cholesky: The factorization could not be completed "
                                     "because the input is not positive-definite.", A)
    return F.transpose(factor, -2, -1) if upper else factor


def solve(A, B, *, left=True):
    """``X`` with ``A @ X = B``; ``B`` a (batch of) matrix, or a vector when its shape is ``A``'s without the last
    dim. ``left=False`` solves ``X @ A = B``."""
    _check_square(A, "solve")
    if not left:
        return F.transpose(solve(F.transpose(A, -2, -1), F.transpose(B, -2, -1)), -2, -1)
    vector = B._array.ndim == 1 or (B._array.ndim == A._array.ndim - 1 and B._array.shape == A._array.shape[:-1])
    if B._array.shape[-2 if not vector else -1] != A._array.shape[-1]:
        raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the equation AX = B "
                           f"({A._array.shape[-2]}x{A._array.shape[-1]} and {'x'.join(map(str, B._array.shape))})")
    A, B = F._same_dtype([A, B])
    return _apply_raising_as_torch(L.Solve, "linalg.solve: The solver failed because the input matrix is singular.",
                                   A, B, vector=vector)


def cross(input, other, *, dim=-1):
    """The cross product of 3-vectors along ``dim`` (extent 3 in both), broadcasting the other axes.

    >>> import dtorch
    >>> dtorch.linalg.cross(dtorch.tensor([0.0, 1.0, 0.0]), dtorch.tensor([0.0, 0.0, 1.0]))
    tensor([1., 0., 0.])
    """
    return F._linalg_cross(input, other, dim=dim)


def matrix_exp(A):
    """The matrix exponential of (a batch of) square matrices: scaling and squaring around a degree-18 Taylor
    polynomial (error below float64 rounding once the scaled norm is at most 1), composed from matmuls, so it is
    differentiable to any order.

    >>> import dtorch
    >>> matrix_exp(dtorch.zeros(2, 2))
    tensor([[1., 0.],
            [0., 1.]])
    """
    if not isinstance(A, Tensor):
        raise_not_a_tensor("linalg_matrix_exp", "input", 1, A)
    _check_square(A, "linalg.matrix_exp")
    n = A.shape[-1]
    array = A.detach().cpu().numpy()
    norm = float(np.abs(array).sum(axis=-2).max()) if array.size else 0.0  # the largest 1-norm in the batch
    squarings = max(0, int(math.ceil(math.log2(norm)))) if norm > 1 else 0
    scaled = A / (2.0 ** squarings) if squarings else A
    identity = factories.eye(n, dtype=A.dtype, device=A.device)
    result = identity
    for order in range(18, 0, -1):  # Horner: I + X (I + X/2 (I + X/3 (...)))
        result = identity + F.matmul(scaled, result) / order
    for _ in range(squarings):
        result = F.matmul(result, result)
    return result


def householder_product(A, tau):
    """The first ``n`` columns of ``H_1 ... H_k`` with ``H_i = I - tau_i v_i v_i^T``, ``v_i`` column ``i`` of ``A``
    below the diagonal with a 1 on it (the LAPACK form ``geqrf`` returns); differentiable.

    >>> import dtorch
    >>> householder_product(dtorch.zeros(2, 2), dtorch.tensor([2.0, 0.0]))
    tensor([[-1.,  0.],
            [ 0.,  1.]])
    """
    if A.dim() < 2:
        raise RuntimeError("torch.linalg.householder_product: input must have at least 2 dimensions.")
    m, n = A.shape[-2], A.shape[-1]
    k = tau.shape[-1]
    if m < n:
        raise RuntimeError("torch.linalg.householder_product: input.shape[-2] must be greater than or equal to "
                           "input.shape[-1]")
    if n < k:
        raise RuntimeError("torch.linalg.householder_product: input.shape[-1] must be greater than or equal to "
                           "tau.shape[-1]")
    vectors = F.add(F.tril(A, -1), factories.eye(m, n, dtype=A.dtype, device=A.device))
    result = F.expand(factories.eye(m, n, dtype=A.dtype, device=A.device), *(tuple(A.shape[:-2]) + (m, n)))
    for i in reversed(range(k)):
        v = F.narrow(vectors, -1, i, 1)  # (..., m, 1)
        scale = F.unsqueeze(F.unsqueeze(F.select(tau, -1, i), -1), -1)
        result = F.sub(result, F.mul(scale, F.matmul(v, F.matmul(F.transpose(v, -1, -2), result))))
    return result
