"""In-place changes of views, recorded on the view's base (PyTorch's ``CopySlices``/``AsStrided``).

A view (``y.view(-1)``, ``y.t()``, ``y[1:, ::2]``, a view of a view) shares memory with its base tensor. Changing the
view in place changes the base, so autograd must see the base change too. dtorch describes any view by where its
elements sit in the base's memory, a *layout*: ``(shape, strides, offset)`` in elements of the base's C-contiguous
buffer. Two ops use it:

- ``ViewScatter(base, value)``: the base with the view's elements replaced by ``value``. Its forward writes into
  the base's own memory (the change *is* in place); backward sends the base's gradient to the old base with the
  view's region zeroed, and the region itself to ``value``.
- ``ViewOf(base)``: the view re-derived from the new base; backward scatters the gradient into zeros of the
  base's shape.

Both are plain ``Op``s with plain-data ``attrs``, so they record and replay like every other op. In a
``create_graph`` backward they use ``ViewOf`` and ``StridedScatter`` (zeros of the base's shape with the view's
region set), each the other's backward, so gradients of any order go through in-place changes of views.
"""

from dtorch.autograd.function import Op, graph_mode

OVERLAP_MESSAGE = (
    "unsupported operation: more than one element of the written-to tensor refers to a single memory location. "
    "Please clone() the tensor before performing the operation."
)


def _address(array):
    """The address of an array's first element (NumPy and CuPy alike)."""
    pointer = getattr(array.data, "ptr", None)  # CuPy: a MemoryPointer; NumPy: a memoryview without .ptr
    if pointer is not None:
        return pointer
    return array.__array_interface__["data"][0]


def view_layout(view, base):
    """``(shape, strides, offset)`` of ``view`` in elements of ``base``'s buffer, or None when it has none.

    None when ``base`` is not C-contiguous or the item sizes differ. Raises RuntimeError when two elements of
    the view share one memory location (an expanded view), as PyTorch does for in-place writes.

    >>> import numpy as np
    >>> base = np.zeros((3, 4), np.float32)
    >>> view_layout(base.T[1:], base)
    ((3, 3), (1, 4), 1)
    """
    if not base.flags.c_contiguous or view.itemsize != base.itemsize:
        return None
    item = base.itemsize
    offset_bytes = _address(view) - _address(base)
    if offset_bytes % item or any(stride % item for stride in view.strides):
        return None
    strides = tuple(stride // item for stride in view.strides)
    if view.size and any(stride == 0 and extent > 1 for stride, extent in zip(strides, view.shape)):
        raise RuntimeError(OVERLAP_MESSAGE)
    return tuple(view.shape), strides, offset_bytes // item


def region(xp, array, shape, strides, offset):
    """The elements of C-contiguous ``array`` at layout ``(shape, strides, offset)``: a writable view."""
    flat = array.reshape(-1)
    item = flat.itemsize
    return xp.lib.stride_tricks.as_strided(
        flat[offset:], shape=shape, strides=tuple(stride * item for stride in strides)
    )


class ViewScatter(Op):
    """``base`` with the view at ``(shape, strides, offset)`` replaced by ``value``, written into base's memory."""

    attr_names = ("shape", "strides", "offset")

    def forward(self, base, value):
        region(self.xp, base, self.shape, self.strides, self.offset)[...] = value
        return base

    def backward(self, grad):
        xp = self.xp
        if xp is graph_mode.namespace:
            layout = {"shape": self.shape, "strides": self.strides, "offset": self.offset}
            grad_value = ViewOf.apply(grad, **layout)
            return grad - StridedScatter.apply(grad_value, base_shape=tuple(grad.shape), **layout), grad_value
        grad_base = xp.array(grad, order="C", copy=True)  # our own C-contiguous copy: the layout assumes it
        grad_value = region(xp, grad_base, self.shape, self.strides, self.offset).copy()
        region(xp, grad_base, self.shape, self.strides, self.offset)[...] = 0  # overwritten: no gradient
        return grad_base, grad_value


class ViewOf(Op):
    """The view of ``base`` at ``(shape, strides, offset)``; backward scatters into zeros of base's shape."""

    attr_names = ("shape", "strides", "offset")
    is_view = True
    needs_input_shapes = True

    def forward(self, base):
        return region(self.xp, base, self.shape, self.strides, self.offset)

    def backward(self, grad):
        (base_shape,) = self.input_shapes
        if self.xp is graph_mode.namespace:
            layout = {"shape": self.shape, "strides": self.strides, "offset": self.offset}
            return (StridedScatter.apply(grad, base_shape=tuple(base_shape), **layout),)
        grad_base = self.xp.zeros(base_shape, dtype=grad.dtype)
        region(self.xp, grad_base, self.shape, self.strides, self.offset)[...] = grad
        return (grad_base,)


class StridedScatter(Op):
    """Zeros of ``base_shape`` with the region at ``(shape, strides, offset)`` set to ``value``: ``ViewOf``'s
    backward, whose own backward is ``ViewOf``."""

    attr_names = ("base_shape", "shape", "strides", "offset")

    def forward(self, value):
        out = self.xp.zeros(self.base_shape, dtype=value.dtype)
        region(self.xp, out, self.shape, self.strides, self.offset)[...] = value
        return out

    def backward(self, grad):
        layout = {"shape": self.shape, "strides": self.strides, "offset": self.offset}
        if self.xp is graph_mode.namespace:
            return (ViewOf.apply(grad, **layout),)
        return (region(self.xp, self.xp.ascontiguousarray(grad), **layout).copy(),)
