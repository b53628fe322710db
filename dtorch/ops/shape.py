"""Shape ops: reshape/view, permute/transpose, expand, repeat, cat/stack, flip, roll, contiguous.

Front ends resolve every argument to plain data (full target shapes, non-negative axes) before calling ``apply``,
so recorded ops replay as they ran. ``squeeze``, ``unsqueeze``, ``flatten``, ``unflatten`` and ``view`` are
``Reshape``; ``transpose``, ``t`` and ``mT`` are ``Permute``; ``split``, ``chunk``, ``unbind`` and ``narrow`` are
slices (``dtorch.ops.indexing``).
"""

import numpy as np

from dtorch.autograd.function import Op
from dtorch.ops._util import sum_to


class Reshape(Op):
    """A new shape with the same elements; shares memory with the input when the layout allows (a view).

    ``kind`` only names the node as PyTorch would (``squeeze``, ``squeeze_dim``, ``squeeze_dims``, ``unsqueeze``,
    or ``view``, the default); the computation is the same.
    """

    attr_names = ("shape", "kind")
    is_view = True
    kind = "view"
    _TORCH_NAMES = {"view": "ViewBackward0", "squeeze": "SqueezeBackward0", "squeeze_dim": "SqueezeBackward1",
                    "squeeze_dims": "SqueezeBackward2", "unsqueeze": "UnsqueezeBackward0"}

    def name(self):
        return self._TORCH_NAMES[self.kind]

    def forward(self, x):
        self.input_shape = x.shape
        return x.reshape(self.shape)  # the method: np.reshape's dispatch costs more than the view itself

    def backward(self, grad):
        return (self.xp.reshape(grad, self.input_shape),)


class Permute(Op):
    attr_names = ("dims",)
    is_view = True

    def name(self):
        # t() of a matrix, transpose (two axes swapped) and permute are three nodes in PyTorch
        moved = [axis for position, axis in enumerate(self.dims) if axis != position]
        if len(self.dims) == 2 and moved:
            return "TBackward0"
        return "TransposeBackward0" if len(moved) == 2 else "PermuteBackward0"

    def forward(self, x):
        return x.transpose(self.dims)

    def backward(self, grad):
        inverse = [0] * len(self.dims)
        for position, axis in enumerate(self.dims):
            inverse[axis] = position
        return (self.xp.transpose(grad, tuple(inverse)),)


class Expand(Op):
    """Broadcast to ``shape`` without copying (a read-only view, as PyTorch's expand is for writes)."""

    attr_names = ("shape",)
    is_view = True

    def forward(self, x):
        self.input_shape = x.shape
        if type(x) is np.ndarray and x.flags.c_contiguous:
            return _expand_view(x, self.shape)
        return self.xp.broadcast_to(x, self.shape)

    def backward(self, grad):
        return (sum_to(self.xp, grad, self.input_shape),)


def _expand_view(x, shape):
    """``np.broadcast_to(x, shape)`` for a C-contiguous NumPy array, built directly (a tenth of the time on small
    arrays): a read-only array over ``x``'s memory whose broadcast dimensions have stride 0."""
    lead = len(shape) - x.ndim
    strides = [0] * lead
    for extent, source_extent, stride in zip(shape[lead:], x.shape, x.strides):
        strides.append(stride if extent == source_extent else 0)
    out = np.ndarray(shape, x.dtype, x, 0, tuple(strides))
    out.flags.writeable = False
    return out


class Repeat(Op):
    """``Tensor.repeat``: tile the input ``repeats`` times along each dimension."""

    attr_names = ("repeats",)

    def forward(self, x):
        # leading repeats beyond the input's rank add dimensions, as in PyTorch
        self.input_shape = (1,) * (len(self.repeats) - x.ndim) + x.shape
        self.original_shape = x.shape
        return self.xp.tile(self.xp.reshape(x, self.input_shape), self.repeats)

    def backward(self, grad):
        xp = self.xp
        split_shape = []
        for count, extent in zip(self.repeats, self.input_shape):
            split_shape += [count, extent]
        grad = xp.reshape(grad, tuple(split_shape))
        grad = xp.sum(grad, axis=tuple(range(0, len(split_shape), 2)))
        return (xp.reshape(grad, self.original_shape),)


class Cat(Op):
    attr_names = ("axis",)

    def forward(self, *arrays):
        self.sizes = [a.shape[self.axis] for a in arrays]
        return self.xp.concatenate(arrays, axis=self.axis)

    def backward(self, grad):
        pieces = []
        start = 0
        for size, edge in zip(self.sizes, self.edges):
            if edge is None:
                pieces.append(None)
            else:
                index = [slice(None)] * grad.ndim
                index[self.axis] = slice(start, start + size)
                pieces.append(grad[tuple(index)])
            start += size
        return tuple(pieces)


class Stack(Op):
    attr_names = ("axis",)

    def forward(self, *arrays):
        # ``xp.stack`` is this plus a Python layer of checks (1.9 against 1.25 us for two small arrays); the front
        # end has checked that the shapes are equal
        shape = arrays[0].shape
        unit = shape[:self.axis] + (1,) + shape[self.axis:]
        return self.xp.concatenate([array.reshape(unit) for array in arrays], axis=self.axis)

    def backward(self, grad):
        pieces = []
        for position, edge in enumerate(self.edges):
            if edge is None:
                pieces.append(None)
            else:
                index = [slice(None)] * grad.ndim
                index[self.axis] = position
                pieces.append(grad[tuple(index)])
        return tuple(pieces)


class Flip(Op):
    attr_names = ("dims",)

    def forward(self, x):
        # a copy, as PyTorch's flip (NumPy's flip is a negative-stride view); ``copy`` keeps a 0-dim input 0-dim
        return self.xp.flip(x, axis=self.dims).copy()

    def backward(self, grad):
        return (self.xp.flip(grad, axis=self.dims),)


class Roll(Op):
    attr_names = ("shifts", "dims")

    def forward(self, x):
        return self.xp.roll(x, self.shifts, axis=self.dims)

    def backward(self, grad):
        if self.dims is None:
            return (self.xp.roll(grad, -self.shifts),)
        return (self.xp.roll(grad, tuple(-s for s in self.shifts), axis=self.dims),)


class Contiguous(Op):
    def name(self):
        return "CloneBackward0"

    def forward(self, x):
        return self.xp.ascontiguousarray(x)

    def backward(self, grad):
        return (grad,)
