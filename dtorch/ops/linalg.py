"""Matrix products (``matmul`` in every shape combination PyTorch accepts, ``einsum``) and sorting
(``sort``, ``topk``) and dense linear algebra (``inv``, ``det``, ``solve``).

In a ``create_graph`` backward sorting's gradient is an ``IndexScatter`` and the linear-algebra gradients are
written with the ops themselves (``Inverse``, ``Det``, ``Solve`` recomputed from the saved inputs), so gradients of
any order follow.
"""

import numpy as np

from dtorch._backend import xp_of
from dtorch.autograd.function import Op, graph_mode
from dtorch.ops._util import attached, sum_to
from dtorch.ops.indexing import _along_axis_key, index_scatter

_numpy_ndarray = np.ndarray
_numpy_dot = np.dot
_DOT_NDIMS = frozenset(((1, 1), (2, 2)))
_BLAS_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class MatMul(Op):
    """``a @ b`` with NumPy/PyTorch rules: 1-D operands gain and lose a dimension, batch dimensions broadcast."""

    # PyTorch names the node after the kernel it dispatched to; the plain-matrix cases are named the same here
    _TORCH_NAMES = {(1, 1): "DotBackward0", (2, 1): "MvBackward0", (2, 2): "MmBackward0", (3, 3): "BmmBackward0"}

    def forward(self, a, b):
        self.save_for_backward(a, b)
        self.ndims = (a.ndim, b.ndim)
        return product(self.xp, a, b)

    def name(self):
        return self._TORCH_NAMES.get(getattr(self, "ndims", None), "MatMulBackward0")

    def backward(self, grad):
        a, b = self.saved_tensors
        xp = self.xp
        a_matrix = xp.expand_dims(a, 0) if a.ndim == 1 else a
        b_matrix = xp.expand_dims(b, 1) if b.ndim == 1 else b
        grad_matrix = grad
        # the column first: for 1-D . 1-D the gradient is 0-dim and becomes (1, 1)
        if b.ndim == 1:
            grad_matrix = xp.expand_dims(grad_matrix, -1)
        if a.ndim == 1:
            grad_matrix = xp.expand_dims(grad_matrix, -2)
        a_edge, b_edge = self.edges
        grad_a = grad_b = None
        if a_edge is not None:
            grad_a = xp.matmul(grad_matrix, xp.swapaxes(b_matrix, -1, -2))
            grad_a = xp.reshape(sum_to(xp, grad_a, a_matrix.shape), a.shape)
        if b_edge is not None:
            grad_b = xp.matmul(xp.swapaxes(a_matrix, -1, -2), grad_matrix)
            grad_b = xp.reshape(sum_to(xp, grad_b, b_matrix.shape), b.shape)
        return grad_a, grad_b


def product(xp, a, b):
    """``a @ b`` on arrays: ``MatMul``'s forward, and ``dtorch.matmul``'s when nothing is recorded (a NumPy scalar
    for two vectors)."""
    if type(a) is _numpy_ndarray and (a.ndim, b.ndim) in _DOT_NDIMS and a.dtype in _BLAS_DTYPES:
        # two matrices or two vectors: np.dot computes np.matmul's product without the generalised-ufunc set-up,
        # which costs as much as an 8x8 product; for matrices the same BLAS gemm (equal bit for bit, whatever the
        # strides), for vectors a BLAS dot (whose rounding may differ from matmul's in the last bit)
        return _numpy_dot(a, b)
    return xp.matmul(a, b)


def parse_einsum(equation, ndims):
    """Split an einsum equation into input and output subscripts, with ``...`` spelled out as letters."""
    equation = equation.replace(" ", "")
    if "->" in equation:
        inputs_text, output = equation.split("->")
    else:
        inputs_text, output = equation, None
    inputs = inputs_text.split(",")
    if len(inputs) != len(ndims):
        raise RuntimeError(
            f"einsum(): more operands were provided than specified in the equation"
            if len(ndims) > len(inputs)
            else "einsum(): fewer operands were provided than specified in the equation"
        )
    used = set(equation)
    spare = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in used]
    ellipsis_rank = 0
    for subscripts, ndim in zip(inputs, ndims):
        if "..." in subscripts:
            ellipsis_rank = max(ellipsis_rank, ndim - (len(subscripts) - 3))
    ellipsis_letters = "".join(spare[:ellipsis_rank])
    expanded = []
    for subscripts, ndim in zip(inputs, ndims):
        if "..." in subscripts:
            rank = ndim - (len(subscripts) - 3)
            subscripts = subscripts.replace("...", ellipsis_letters[ellipsis_rank - rank:])
        expanded.append(subscripts)
    if output is None:
        counts = {}
        for subscripts in expanded:
            for letter in subscripts:
                counts[letter] = counts.get(letter, 0) + 1
        output = ellipsis_letters + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ellipsis_letters))
    else:
        output = output.replace("...", ellipsis_letters)
    return expanded, output


class Einsum(Op):
    attr_names = ("equation",)

    def forward(self, *arrays):
        self.save_for_backward(*arrays)
        self.subscripts, self.output = parse_einsum(self.equation, [a.ndim for a in arrays])
        spelled = ",".join(self.subscripts) + "->" + self.output
        return self.xp.einsum(spelled, *arrays)

    def backward(self, grad):
        operands = self.saved_tensors
        xp = self.xp
        grads = []
        for i, (operand, subscripts, edge) in enumerate(zip(operands, self.subscripts, self.edges)):
            if edge is None:
                grads.append(None)
                continue
            letters = "".join(dict.fromkeys(subscripts))  # each letter once, in order of appearance
            extents = {c: operand.shape[k] for k, c in enumerate(subscripts)}
            others = [(s, o) for j, (s, o) in enumerate(zip(self.subscripts, operands)) if j != i]
            available = set(self.output)
            for s, _ in others:
                available |= set(s)
            present = "".join(c for c in letters if c in available)
            spelled = ",".join([self.output] + [s for s, _ in others]) + "->" + present
            partial = xp.einsum(spelled, grad, *[o for _, o in others])
            # size-1 broadcasting between operands: a letter of extent 1 here sums its gradient back to 1; one of
            # extent 1 in the others (so in ``partial``) but longer here gets the same gradient all along
            broadcast = tuple(k for k, c in enumerate(present) if extents[c] == 1 and partial.shape[k] != 1)
            if broadcast:
                partial = xp.sum(partial, axis=broadcast, keepdims=True)
            wanted = tuple(extents[c] for c in present)
            if tuple(partial.shape) != wanted:
                partial = xp.broadcast_to(partial, wanted)
            if present != letters:
                # letters summed only inside this operand: their gradient is the same along them
                kept_shape = tuple(extents[c] if c in available else 1 for c in letters)
                partial = xp.broadcast_to(xp.reshape(partial, kept_shape), tuple(extents[c] for c in letters))
            if letters != subscripts:
                # a repeated letter reads a diagonal ('ii->i'): the gradient goes back onto it, zero elsewhere
                if xp is graph_mode.namespace:
                    real_xp = xp_of(partial._array)
                    grids = real_xp.ix_(*[real_xp.arange(extents[c]) for c in letters])
                    key = tuple(grids[letters.index(c)] for c in subscripts)
                    spec = tuple(("tensor", k) for k in range(len(key)))
                    partial = index_scatter(partial, spec, key, tuple(operand.shape), accumulate=False)
                else:
                    grids = xp.ix_(*[xp.arange(extents[c]) for c in letters])
                    full = xp.zeros(operand.shape, dtype=partial.dtype)
                    full[tuple(grids[letters.index(c)] for c in subscripts)] = partial
                    partial = full
            grads.append(partial)
        return tuple(grads)


def _descending_order(xp, x, axis):
    """Stable descending argsort along ``axis`` with NaN first (PyTorch counts NaN as the largest value)."""
    keys = -(x.astype("int64") if x.dtype.kind in "bu" else x)
    order = xp.argsort(keys, axis=axis, kind="stable")
    if x.dtype.kind == "f":
        # negation leaves NaN last; a second stable pass on "is a number" moves the NaNs to the front
        is_number = ~xp.isnan(xp.take_along_axis(x, order, axis=axis))
        order = xp.take_along_axis(order, xp.argsort(is_number, axis=axis, kind="stable"), axis=axis)
    return order


def _scatter_to_positions(xp, grad, indices, shape, axis):
    """Sort's and topk's backward: each output's gradient goes back to the input position it was taken from."""
    if xp is graph_mode.namespace:
        key = _along_axis_key(xp_of(indices), indices, axis)
        return index_scatter(grad, tuple(("tensor", k) for k in range(len(key))), key, shape, accumulate=False)
    out = xp.zeros(shape, dtype=grad.dtype)
    xp.put_along_axis(out, indices, grad, axis=axis)
    return out


class Sort(Op):
    """Sort along ``axis``: the sorted values, plus the indices as a non-differentiable second output."""

    attr_names = ("axis", "descending", "stable")
    n_outputs = 2

    def forward(self, x):
        xp = self.xp
        if self.descending:
            indices = _descending_order(xp, x, self.axis)
        else:
            indices = xp.argsort(x, axis=self.axis, kind="stable")
        self.indices = indices
        self.input_shape = x.shape
        return xp.take_along_axis(x, indices, axis=self.axis), indices.astype("int64")

    def backward(self, grad):
        return (_scatter_to_positions(self.xp, grad, self.indices, self.input_shape, self.axis),)


class TopK(Op):
    attr_names = ("k", "axis", "largest", "sorted")
    n_outputs = 2

    def name(self):
        return "TopkBackward0"

    def forward(self, x):
        xp = self.xp
        if self.k > x.shape[self.axis] if x.ndim else self.k > 1:
            raise RuntimeError("selected index k out of range")
        if self.largest:
            indices = _descending_order(xp, x, self.axis)
        else:
            indices = xp.argsort(x, axis=self.axis, kind="stable")
        index = [slice(None)] * x.ndim
        index[self.axis] = slice(0, self.k)
        indices = indices[tuple(index)]
        self.indices = indices
        self.input_shape = x.shape
        return xp.take_along_axis(x, indices, axis=self.axis), indices.astype("int64")

    def backward(self, grad):
        return (_scatter_to_positions(self.xp, grad, self.indices, self.input_shape, self.axis),)


# ---- dense linear algebra on (batches of) square matrices -----------------------------------------------------------


def _mT(xp, a):
    return xp.swapaxes(a, -1, -2)


class Inverse(Op):
    """``A^-1``; backward ``-A^-T grad A^-T`` (from ``d(A^-1) = -A^-1 dA A^-1``), read from the output."""

    saves_output = True

    def forward(self, a):
        self.inverse = self.xp.linalg.inv(a)
        return self.inverse

    def backward(self, grad):
        xp = self.xp
        if xp is graph_mode.namespace:
            inverse_t = attached(self.inverse, self).transpose(-1, -2)  # the output, hanging from this node
            return (-(inverse_t @ grad @ inverse_t),)
        inverse_t = _mT(xp, self.inverse)
        return (-xp.matmul(xp.matmul(inverse_t, grad), inverse_t),)


class Det(Op):
    """``det(A)``; backward ``grad * det(A) * A^-T`` (Jacobi's formula; needs A invertible)."""

    saves_output = True

    def forward(self, a):
        self.save_for_backward(a)
        self.det = self.xp.linalg.det(a)
        return self.det

    def backward(self, grad):
        (a,) = self.saved_tensors
        xp = self.xp
        if xp is graph_mode.namespace:
            scale = (grad * Det.apply(a)).unsqueeze(-1).unsqueeze(-1)
            return (scale * Inverse.apply(a).transpose(-1, -2),)
        scale = (grad * self.det)[..., None, None]
        return (scale * _mT(xp, xp.linalg.inv(a)),)


class SlogDet(Op):
    """``(log|det A|, sign det A)``: the first differentiable, ``grad * A^-T`` (Jacobi's formula divided by
    ``det A``); the sign a constant. A singular matrix gives ``-inf`` and sign 0, as in PyTorch."""

    n_outputs = 2

    def name(self):
        return "LinalgSlogdetBackward0"

    def forward(self, a):
        self.save_for_backward(a)
        sign, logabsdet = self.xp.linalg.slogdet(a)
        return logabsdet, sign

    def backward(self, grad):
        (a,) = self.saved_tensors
        xp = self.xp
        if xp is graph_mode.namespace:
            return (grad.unsqueeze(-1).unsqueeze(-1) * Inverse.apply(a).transpose(-1, -2),)
        return (grad[..., None, None] * _mT(xp, xp.linalg.inv(a)),)


class Cholesky(Op):
    """``L`` lower triangular with ``L L^T = A`` (A symmetric positive-definite). Backward (Murray, 2016):
    ``P = Φ(L^T grad)`` (the lower triangle, its diagonal halved), ``S = L^-T P L^-1``, ``grad_A = (S + S^T) / 2``."""

    saves_output = True
    differentiable_backward = False  # (a create_graph backward raises: no double-backward formula here)

    def name(self):
        return "LinalgCholeskyExBackward0"

    def forward(self, a):
        self.factor = self.xp.linalg.cholesky(a)
        return self.factor

    def backward(self, grad):
        xp = self.xp
        factor = self.factor
        inner = xp.tril(xp.matmul(_mT(xp, factor), grad))
        diagonal = xp.diagonal(inner, axis1=-2, axis2=-1)
        inner -= 0.5 * diagonal[..., None] * xp.eye(inner.shape[-1], dtype=inner.dtype)
        inverse = xp.linalg.inv(factor)
        symmetric = xp.matmul(xp.matmul(_mT(xp, inverse), inner), inverse)
        return (0.5 * (symmetric + _mT(xp, symmetric)),)


class Solve(Op):
    """``X`` with ``A X = B`` (``B`` a batch of matrices, or of vectors when ``vector``); backward
    ``grad_B = A^-T grad``, ``grad_A = -grad_B X^T``."""

    attr_names = ("vector",)
    saves_output = True

    def forward(self, a, b):
        xp = self.xp
        self.save_for_backward(a)
        rhs = b[..., None] if self.vector else b
        self.solution = xp.linalg.solve(a, rhs)
        self.b_shape = b.shape
        return self.solution[..., 0] if self.vector else self.solution

    def backward(self, grad):
        (a,) = self.saved_tensors
        xp = self.xp
        if xp is graph_mode.namespace:
            return self._graph_backward(a, grad)
        grad_rhs = grad[..., None] if self.vector else grad
        grad_b = xp.linalg.solve(_mT(xp, a), grad_rhs)
        a_edge, b_edge = self.edges
        grad_a = None
        if a_edge is not None:
            grad_a = sum_to(xp, -xp.matmul(grad_b, _mT(xp, self.solution)), a.shape)
        if b_edge is not None:
            grad_b = sum_to(xp, grad_b[..., 0] if self.vector else grad_b, self.b_shape)
        else:
            grad_b = None
        return grad_a, grad_b

    def _graph_backward(self, a, grad):
        a_edge, b_edge = self.edges
        grad_b = Solve.apply(a.transpose(-1, -2), grad, vector=self.vector)
        grad_a = None
        if a_edge is not None:
            # the output, hanging from this node (PyTorch's formula uses the result)
            solution = attached(self.solution[..., 0] if self.vector else self.solution, self)
            if self.vector:
                grad_a = -(grad_b.unsqueeze(-1) @ solution.unsqueeze(-2))
            else:
                grad_a = -(grad_b @ solution.transpose(-1, -2))
            grad_a = sum_to(self.xp, grad_a, tuple(a.shape))
        return grad_a, (sum_to(self.xp, grad_b, tuple(self.b_shape)) if b_edge is not None else None)
