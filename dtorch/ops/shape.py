"""Shape ops: reshape/view, permute/transpose, expand, repeat, cat/stack, flip, roll, contiguous.

Front ends resolve every argument to plain data (full target shapes, non-negative axes) before calling ``apply``,
so recorded ops replay as they ran. ``squeeze``, ``unsqueeze``, ``flatten``, ``unflatten`` and ``view`` are
``Reshape``; ``transpose``, ``t`` and ``mT`` are ``Permute``; ``split``, ``chunk``, ``unbind`` and ``narrow`` are
slices (``dtorch.ops.indexing``).

No-grad shortcut: when nothing is recorded (``outside_graph``), a front end may compute a view's array itself and
wrap it with ``wrap_view``, which gives the Tensor ``Op.apply`` would give (no ``grad_fn``, the same ``_base``).
The op's ``apply`` stays the reference path; ``tests/ops/test_fast_paths.py`` holds the two equal.
"""

import functools

import numpy as np

from dtorch.autograd import function as function_module
from dtorch.autograd import grad_mode
from dtorch.autograd.function import Op
from dtorch.ops._util import sum_to
from dtorch.tensor import wrap_array

_grad_state = grad_mode._state


def outside_graph(tensor):
    """True when an op on ``tensor`` alone records nothing: it does not require grad or grad mode is off, and no
    ``jit``/``export`` capture is running (a capture sees every op, so it takes the op's ``apply``)."""
    return (not tensor.requires_grad or not _grad_state["enabled"]) and function_module.capture is None


def wrap_view(input, out):
    """``out``, an array computed from ``input``'s array without recording, as the Tensor ``Op.apply`` returns for a
    view op when nothing is recorded: no ``grad_fn`` and, when ``out`` shares ``input``'s memory, ``input``'s base
    (so both share one version counter)."""
    result = wrap_array(out, None)
    owner = out.base
    if owner is not None:
        data = input._array
        if owner is data or owner is data.base:  # the same test as Op.apply's (NumPy collapses base chains)
            base = input._base
            result._base = base if base is not None else input
    return result


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
        return expand_array(self.xp, x, self.shape)

    def backward(self, grad):
        return (sum_to(self.xp, grad, self.input_shape),)


def expand_array(xp, x, shape):
    """``x`` broadcast to ``shape`` (already checked), as a read-only view."""
    if type(x) is np.ndarray and x.flags.c_contiguous:
        return _expand_view(x, shape)
    return xp.broadcast_to(x, shape)


def _expand_view(x, shape):
    """``np.broadcast_to(x, shape)`` for a C-contiguous NumPy array, built directly (a tenth of the time on small
    arrays): a read-only array over ``x``'s memory whose broadcast dimensions have stride 0."""
    layout = _expand_layout(tuple(shape), x.shape, x.strides)
    if layout is None:  # (the front ends have checked the shape: only a caller of this helper gets here)
        return np.broadcast_to(x, shape)
    return read_only_view(x, layout)


def expand_layout(x, sizes):
    """``(shape, strides)`` of ``x`` expanded to ``sizes`` (Python ints, -1 keeping an extent), as the front end's
    reference parse and ``_expand_view`` give them; None when a size is not a Python int or does not fit (the
    reference parse then raises PyTorch's error)."""
    try:
        return _expand_layout(tuple(sizes), x.shape, x.strides)
    except TypeError:  # sizes that are not a sequence of hashable values
        return None


def read_only_view(x, layout):
    """A read-only array over C-contiguous NumPy ``x``'s memory with layout ``(shape, strides)``."""
    out = np.ndarray(layout[0], x.dtype, x, 0, layout[1])
    out.setflags(write=False)  # (a fifth of the time of ``out.flags.writeable = False``)
    return out


@functools.lru_cache(maxsize=256)
def _expand_layout(sizes, shape, strides):
    """``(shape, strides)`` of ``expand(sizes)`` on an array of ``shape`` and ``strides``, or None (see
    ``expand_layout``). Cached: a script expands the same few shapes again and again, and the parse in Python
    costs twice the view itself. (The cache compares sizes by equality, so ``(8.0, 8)`` may find the entry of
    ``(8, 8)`` or the other way round: either answer is right, None only sends the call to the reference path.)"""
    lead = len(sizes) - len(shape)
    if lead < 0:
        return None
    target = []
    target_strides = []
    for size in sizes[:lead]:  # new leading dimensions: any extent, stride 0
        if type(size) is not int or size < 0:
            return None
        target.append(size)
        target_strides.append(0)
    for size, extent, stride in zip(sizes[lead:], shape, strides):
        if type(size) is not int:
            return None
        if size == extent or size == -1:
            target.append(extent)
            target_strides.append(stride)
        elif extent == 1 and size >= 0:
            target.append(size)
            target_strides.append(0)
        else:
            return None
    return tuple(target), tuple(target_strides)


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
        return stack_arrays(self.xp, arrays, self.axis)

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


def stack_arrays(xp, arrays, axis):
    """``xp.stack(arrays, axis)`` for arrays of one shape (checked by the front end) and a non-negative axis.

    ``xp.stack`` concatenates the arrays each reshaped to extent 1 on ``axis``, behind a Python layer of checks.
    Along an existing axis, one concatenation along it and a split of that axis into (count, extent) gives the same
    C-ordered elements with no per-array reshape.
    """
    shape = arrays[0].shape
    if axis < len(shape):
        joined = xp.concatenate(arrays, axis=axis)
        return joined.reshape(shape[:axis] + (len(arrays),) + shape[axis:])
    unit = shape[:axis] + (1,) + shape[axis:]
    return xp.concatenate([array.reshape(unit) for array in arrays], axis=axis)


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
