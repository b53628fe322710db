"""Matrix-structure ops over the last two dimensions: triangles (``triu``/``tril``) and diagonals.

Each keeps or places a fixed set of positions, so its backward keeps or gathers the same positions of the
gradient. ``triu``/``tril`` keep a constant mask from forward, so their backward also builds a graph
(``create_graph=True``); in a ``create_graph`` backward ``Diagonal`` and ``DiagEmbed`` are each other's backward
(with a constant pad for non-square planes), so gradients of any order go through them.
"""

from dtorch.autograd.function import Op, graph_mode
from dtorch.ops.nn import ConstantPad


def triangle_mask(xp, rows, cols, diagonal, upper):
    """True on and above (``upper``) or on and below the ``diagonal``-th diagonal of a ``rows x cols`` matrix.

    >>> import numpy as np
    >>> triangle_mask(np, 2, 3, 1, True).astype(int).tolist()
    [[0, 1, 1], [0, 0, 1]]
    """
    row = xp.arange(rows)[:, None]
    col = xp.arange(cols)[None, :]
    if upper:
        return col - row >= diagonal
    return col - row <= diagonal


class Triangle(Op):
    """``triu`` (``upper=True``) or ``tril``: zero the entries outside the triangle of the last two dims."""

    attr_names = ("diagonal", "upper")

    def forward(self, x):
        self.mask = triangle_mask(self.xp, x.shape[-2], x.shape[-1], self.diagonal, self.upper)
        return self.xp.where(self.mask, x, x.dtype.type(0))

    def backward(self, grad):
        return (grad * self.mask,)  # a bool mask keeps the gradient dtype


class Diagonal(Op):
    """The ``offset``-th diagonal of the planes ``(dim1, dim2)``, moved to the last axis (a read-only view)."""

    attr_names = ("offset", "dim1", "dim2")
    is_view = True
    needs_input_shapes = True

    def forward(self, x):
        return self.xp.diagonal(x, self.offset, self.dim1, self.dim2)

    def backward(self, grad):
        (shape,) = self.input_shapes
        if self.xp is graph_mode.namespace:
            planes = DiagEmbed.apply(grad, offset=self.offset, dim1=self.dim1, dim2=self.dim2)
            pads = [(0, 0)] * len(shape)
            for axis in (self.dim1, self.dim2):
                pads[axis] = (0, shape[axis] - planes.shape[axis])
            if any(after for _, after in pads):
                planes = ConstantPad.apply(planes, pads=tuple(pads), value=0)
            return (planes,)
        full = self.xp.zeros(shape, dtype=grad.dtype)
        _writable_diagonal(self.xp, full, self.offset, self.dim1, self.dim2)[...] = grad
        return (full,)


class DiagEmbed(Op):
    """Put the last axis of ``x`` on the ``offset``-th diagonal of new planes ``(dim1, dim2)``."""

    attr_names = ("offset", "dim1", "dim2")

    def forward(self, x):
        xp = self.xp
        n = x.shape[-1] + abs(self.offset)
        batch = x.shape[:-1]
        out_ndim = x.ndim + 1
        # zeros with the plane axes last, filled, then moved to (dim1, dim2)
        planes = xp.zeros(batch + (n, n), dtype=x.dtype)
        _writable_diagonal(xp, planes, self.offset, out_ndim - 2, out_ndim - 1)[...] = x
        return xp.moveaxis(planes, (out_ndim - 2, out_ndim - 1), (self.dim1, self.dim2))

    def backward(self, grad):
        if self.xp is graph_mode.namespace:
            return (Diagonal.apply(grad, offset=self.offset, dim1=self.dim1, dim2=self.dim2),)
        return (self.xp.diagonal(grad, self.offset, self.dim1, self.dim2),)


def _writable_diagonal(xp, array, offset, dim1, dim2):
    """A writable view of ``array``'s diagonal (NumPy's ``diagonal`` view is read-only)."""
    start = [slice(None)] * array.ndim
    start[dim1] = slice(max(-offset, 0), None)
    start[dim2] = slice(max(offset, 0), None)
    shifted = array[tuple(start)]
    reference = xp.diagonal(array, offset, dim1, dim2)
    return xp.lib.stride_tricks.as_strided(shifted, shape=reference.shape, strides=reference.strides)
