"""``nn.utils.parametrizations``: ``weight_norm``, ``spectral_norm`` and ``orthogonal`` built on
``nn.utils.parametrize``, with PyTorch's stored tensors (``original0``/``original1`` for weight norm, the ``_u`` and
``_v`` buffers of spectral norm, the ``base`` buffer of the orthogonal trivialization) so state dicts match.
"""

import numpy as np

from dtorch import factories
from dtorch import functional as F
from dtorch import linalg
from dtorch.autograd.grad_mode import no_grad
from dtorch.nn import functional as NF
from dtorch.nn.modules.module import Module
from dtorch.nn.utils.parametrize import register_parametrization

__all__ = ["weight_norm", "spectral_norm", "orthogonal"]


def norm_except_dim(v, pow=2, dim=0):
    """The ``pow``-norm of ``v`` over every axis but ``dim`` (kept with extent 1); ``dim=-1``: of all of ``v``."""
    if dim == -1:
        return F.norm(v, pow)
    axes = tuple(axis for axis in range(v.dim()) if axis != dim)
    return F.norm(v, pow, dim=axes, keepdim=True) if axes else F.abs(v)


class _WeightNorm(Module):
    """``weight = g * v / |v|`` (the norm over every axis but ``dim``); stores ``(g, v)``."""

    def __init__(self, dim=0):
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g, weight_v):
        return F.mul(weight_v, F.div(weight_g, norm_except_dim(weight_v, 2, self.dim)))

    def right_inverse(self, weight):
        return norm_except_dim(weight, 2, self.dim), weight


def weight_norm(module, name="weight", dim=0):
    """Reparametrize ``module.<name>`` as magnitude times direction: ``original0`` is ``g`` (one norm per slice
    along ``dim``; ``dim=None`` for the whole tensor) and ``original1`` is ``v``.

    >>> import dtorch
    >>> m = weight_norm(dtorch.nn.Linear(3, 2))
    >>> [name for name, _ in m.named_parameters()]
    ['bias', 'parametrizations.weight.original0', 'parametrizations.weight.original1']
    """
    register_parametrization(module, name, _WeightNorm(dim), unsafe=True)
    return module


def _weight_as_matrix(weight, dim):
    """``weight`` as the matrix spectral norm works on: dimension ``dim`` as the rows, the others flattened."""
    if dim:
        weight = F.permute(weight, dim, *(d for d in range(weight.dim()) if d != dim))
    return F.flatten(weight, 1)


class _SpectralNorm(Module):
    """``weight / sigma``, ``sigma`` the largest singular value of the weight as a matrix (``dim`` first), kept
    up to date by ``n_power_iterations`` power iterations per forward in training mode (buffers ``_u``, ``_v``)."""

    def __init__(self, weight, n_power_iterations=1, dim=0, eps=1e-12):
        super().__init__()
        ndim = weight.dim()
        if dim >= ndim or dim < -ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [-{ndim}, {ndim - 1}] but got {dim})")
        if n_power_iterations <= 0:
            raise ValueError(f"Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.dim = dim % ndim
        self.eps = eps
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            matrix = self._as_matrix(weight)
            rows, columns = matrix.shape
            self.register_buffer("_u", NF.normalize(factories.randn(rows, dtype=weight.dtype), dim=0, eps=eps))
            self.register_buffer("_v", NF.normalize(factories.randn(columns, dtype=weight.dtype), dim=0, eps=eps))
            self._power_method(matrix, 15)

    def _as_matrix(self, weight):
        return _weight_as_matrix(weight, self.dim)

    def _power_method(self, matrix, iterations):
        with no_grad():
            for _ in range(iterations):
                self._u.copy_(NF.normalize(F.matmul(matrix, self._v), dim=0, eps=self.eps))
                self._v.copy_(NF.normalize(F.matmul(F.t(matrix), self._u), dim=0, eps=self.eps))

    def forward(self, weight):
        if weight.dim() == 1:
            return NF.normalize(weight, dim=0, eps=self.eps)
        matrix = self._as_matrix(weight)
        if self.training:
            self._power_method(matrix, self.n_power_iterations)
        u, v = F.clone(self._u), F.clone(self._v)
        sigma = F.dot(u, F.matmul(matrix, v))
        return F.div(weight, sigma)

    def right_inverse(self, value):
        return value


def spectral_norm(module, name="weight", n_power_iterations=1, eps=1e-12, dim=None):
    """Divide ``module.<name>`` by its spectral norm, estimated by power iteration (``dim`` defaults to 1 for
    transposed convolutions, else 0). ``_u`` and ``_v`` start random, as in PyTorch.

    >>> import dtorch, numpy as np
    >>> m = spectral_norm(dtorch.nn.Linear(4, 3))
    >>> float(np.linalg.svd(m.weight.detach().numpy(), compute_uv=False)[0]) < 1.01
    True
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, F.Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        dim = 1 if type(module).__name__.startswith("ConvTranspose") else 0
    register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module


_ORTHOGONAL_MAPS = ("matrix_exp", "cayley", "householder")


class _Orthogonal(Module):
    """An orthogonal matrix (or one with orthonormal columns or rows) from an unconstrained one: the matrix
    exponential or Cayley map of its skew-symmetric part, or a product of Householder reflections; with the
    trivialization, multiplied by the ``base`` buffer (the orthogonalized initial weight)."""

    def __init__(self, weight, orthogonal_map, *, use_trivialization=True):
        super().__init__()
        self.shape = tuple(weight.shape)
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X):
        n, k = X.shape[-2], X.shape[-1]
        transposed = n < k
        if transposed:
            X = F.transpose(X, -1, -2)
            n, k = k, n
        if self.orthogonal_map in ("matrix_exp", "cayley"):
            X = F.tril(X)
            if n != k:
                zeros = factories.zeros(tuple(X.shape[:-2]) + (n, n - k), dtype=X.dtype, device=X.device)
                X = F.cat([X, zeros], -1)
            A = F.sub(X, F.transpose(X, -1, -2))
            if self.orthogonal_map == "matrix_exp":
                Q = linalg.matrix_exp(A)
            else:
                identity = factories.eye(n, dtype=A.dtype, device=A.device)
                Q = linalg.solve(F.sub(identity, F.mul(A, 0.5)), F.add(identity, F.mul(A, 0.5)))
            if n != k:
                Q = F.narrow(Q, -1, 0, k)
        else:
            A = F.tril(X, -1)
            tau = F.div(2.0, F.add(F.sum(F.mul(A, A), -2), 1.0))
            Q = linalg.householder_product(A, tau)
            signs = F.unsqueeze(F.diagonal(X, 0, -2, -1).int(), -2)  # int(): truncation, as PyTorch's
            Q = F.mul(Q, signs)
        if self._buffers.get("base") is not None:
            Q = F.matmul(self.base, Q)
        if transposed:
            Q = F.transpose(Q, -1, -2)
        return Q

    def right_inverse(self, Q):
        with no_grad():
            if tuple(Q.shape) != self.shape:
                raise ValueError(f"Expected a matrix or batch of matrices of shape {self.shape}. Got a tensor of "
                                 f"shape {tuple(Q.shape)}.")
            initial = Q
            n, k = Q.shape[-2], Q.shape[-1]
            if n < k:
                Q = F.transpose(Q, -1, -2)
                n, k = k, n
            if "base" not in self._buffers:
                raise NotImplementedError("dtorch's orthogonal parametrization needs use_trivialization=True to be "
                                          "assigned to")
            if n == k:
                Q = F.clone(Q) if _is_orthogonal(Q) else _make_orthogonal(Q)
            else:
                extra = factories.randn(*(tuple(Q.shape[:-2]) + (n, n - k)), dtype=Q.dtype, device=Q.device)
                Q = _make_orthogonal(F.cat([Q, extra], -1))
            self.base = Q
            rows, columns = initial.shape[-2], initial.shape[-1]
            minus_identity = F.mul(factories.eye(rows, columns, dtype=initial.dtype, device=initial.device), -1.0)
            return F.clone(F.expand(minus_identity, *initial.shape))


def _is_orthogonal(Q):
    n, k = Q.shape[-2], Q.shape[-1]
    identity = factories.eye(k, dtype=Q.dtype, device=Q.device)
    eps = 10.0 * n * float(np.finfo(Q._array.dtype).eps)
    return F.allclose(F.matmul(F.transpose(Q, -1, -2), Q), identity, atol=eps)


def _make_orthogonal(A):
    """The Q of ``A = QR`` with ``diag(R) >= 0`` (so unique for full-rank A), for a tall matrix (or a batch)."""
    array = A.detach().cpu().numpy()
    q, r = np.linalg.qr(array)
    signs = np.sign(np.diagonal(r, axis1=-2, axis2=-1))
    signs[signs == 0] = 1
    return F.Tensor._from_array(np.ascontiguousarray(q * signs[..., None, :]), None).to(A.device)


def orthogonal(module, name="weight", orthogonal_map=None, *, use_trivialization=True):
    """Constrain ``module.<name>`` (a matrix or a batch of them) to be orthogonal (orthonormal columns or rows
    when not square). ``orthogonal_map``: ``'matrix_exp'`` (the default for square matrices), ``'cayley'`` or
    ``'householder'`` (the default otherwise). The weight starts as the orthogonalized current weight.

    >>> import dtorch
    >>> m = orthogonal(dtorch.nn.Linear(3, 3))
    >>> bool(dtorch.allclose(m.weight @ m.weight.T, dtorch.eye(3), atol=1e-5))
    True
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, F.Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.dim() < 2:
        raise ValueError(f"Expected a matrix or batch of matrices. Got a tensor of {weight.dim()} dimensions.")
    if orthogonal_map is None:
        orthogonal_map = "matrix_exp" if weight.shape[-2] == weight.shape[-1] else "householder"
    if orthogonal_map not in _ORTHOGONAL_MAPS:
        raise ValueError(f"orthogonal_map has to be one of \"matrix_exp\", \"cayley\", \"householder\". Got: "
                         f"{orthogonal_map}")
    if not use_trivialization:
        raise NotImplementedError("dtorch's orthogonal parametrization supports use_trivialization=True (the "
                                  "default) only")
    register_parametrization(module, name, _Orthogonal(weight, orthogonal_map, use_trivialization=True),
                             unsafe=True)
    return module
