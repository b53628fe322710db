"""Indexing ops: ``x[key]``, ``x[key] = v``, ``index_select``, ``gather``, ``scatter``, ``scatter_add``,
``masked_fill``.

A key is recorded as plain data: a tuple of entries ``('int', i)``, ``('slice', start, stop, step)``,
``('none',)``, ``('ellipsis',)`` and ``('tensor', k)``, the last naming the k-th index array, which is passed to
the op as an extra (non-differentiable) input. Advanced indexing follows NumPy's rules, which PyTorch shares.
Gradients of repeated indices accumulate (``xp.add.at``).

Double backward: ``Index``'s backward is ``IndexScatter`` (zeros with the gradient added at the key) and
``IndexScatter``'s backward is ``Index``, so a ``create_graph`` backward of any indexing op (slicing, ``split``,
``unbind``, ``gather``, ``index_select``, ``x[idx]``) records one of these two and gradients of any order follow.
"""

from dtorch._backend import xp_of
from dtorch.autograd.function import Op, graph_mode
from dtorch.ops._util import array_module, constant, sum_to


def build_key(spec, index_arrays):
    """The NumPy/CuPy index for a recorded key ``spec`` and its index arrays."""
    key = []
    for entry in spec:
        kind = entry[0]
        if kind == "int":
            key.append(entry[1])
        elif kind == "slice":
            key.append(slice(entry[1], entry[2], entry[3]))
        elif kind == "none":
            key.append(None)
        elif kind == "ellipsis":
            key.append(Ellipsis)
        else:
            key.append(index_arrays[entry[1]])
    return tuple(key)


def basic_index(x, key):
    """``x[key]`` for a key without index arrays, always an array over ``x``'s memory: NumPy gives a scalar (a copy)
    when ints index every dimension, PyTorch a 0-dim view, which writes through to ``x``.

    >>> import numpy as np
    >>> x = np.zeros(3)
    >>> basic_index(x, (1,))[...] = 5.0
    >>> x
    array([0., 5., 0.])
    """
    out = x[key]
    if type(out) is not type(x):  # a NumPy scalar: every dimension was indexed by an int (so no ``...`` in key)
        out = x[(*key, Ellipsis) if type(key) is tuple else (key, Ellipsis)]
    return out


def _scatter_add_into(xp, target, key, values):
    """``target[key] += values`` with repeated indices accumulating."""
    if hasattr(xp, "add") and hasattr(xp.add, "at"):
        xp.add.at(target, key, values)
    else:  # CuPy versions without ufunc.at
        import cupyx  # noqa: F401  (only reached with CuPy)

        cupyx.scatter_add(target, key, values)


def _index_arrays(spec, key):
    """The index arrays of a key ``build_key`` made (one key entry per spec entry), in the spec's numbering: read
    back only in a create_graph backward, so the forward stores nothing extra."""
    found = {entry[1]: part for entry, part in zip(spec, key) if entry[0] == "tensor"}
    return tuple(found[number] for number in range(len(found)))


def index_scatter(grad, spec, index_arrays, shape, accumulate=True):
    """Differentiable ``zeros(shape)`` with ``grad`` added at ``key``: ``IndexScatter`` on Tensors."""
    return IndexScatter.apply(grad, *[constant(a) for a in index_arrays], spec=tuple(spec), shape=tuple(shape),
                              accumulate=accumulate)


def index_graph(grad, spec, index_arrays):
    """Differentiable ``grad[key]``: ``Index`` on Tensors."""
    return Index.apply(grad, *[constant(a) for a in index_arrays], spec=tuple(spec))


def along_axis_spec(ndim, axis):
    """The spec of ``x[:, ..., index, ...]`` with ``index`` (tensor 0) on ``axis``."""
    return (("slice", None, None, None),) * axis + (("tensor", 0),)


class Index(Op):
    """``x[key]``: a view for basic keys (ints, slices, None, ...), a copy for tensor keys."""

    attr_names = ("spec",)

    def name(self):
        # PyTorch records a basic key as one node per entry; the last one that does something names it
        kinds = [entry[0] for entry in self.spec
                 if entry[0] not in ("ellipsis", "slice") or entry[0] == "slice" and entry[1:] != (None, None, None)]
        if "tensor" in kinds:
            return "IndexBackward0"
        last = kinds[-1] if kinds else "slice"
        return {"int": "SelectBackward0", "none": "UnsqueezeBackward0"}.get(last, "SliceBackward0")

    def forward(self, x, *index_arrays):
        key = build_key(self.spec, index_arrays)
        self.key = key
        self.input_shape = x.shape
        self.input_dtype = x.dtype
        self.is_view = not index_arrays
        if self.is_view:
            return basic_index(x, key)
        return x[key]

    def backward(self, grad):
        xp = self.xp
        if xp is graph_mode.namespace:
            out = index_scatter(grad, self.spec, _index_arrays(self.spec, self.key), self.input_shape,
                                accumulate=not self.is_view)
            return (out,) + (None,) * (len(self.edges) - 1)
        out = xp.zeros(self.input_shape, dtype=grad.dtype)
        if self.is_view:
            out[self.key] = grad
        else:
            _scatter_add_into(xp, out, self.key, grad)
        return (out,) + (None,) * (len(self.edges) - 1)


class IndexScatter(Op):
    """Zeros of ``shape`` with ``values`` put (or, with ``accumulate``, added) at the key: the backward of
    ``Index``. Its own backward is ``Index`` of the gradient."""

    attr_names = ("spec", "shape", "accumulate")

    def forward(self, values, *index_arrays):
        key = build_key(self.spec, index_arrays)
        self.key, self.index_arrays = key, index_arrays
        out = self.xp.zeros(self.shape, dtype=values.dtype)
        if self.accumulate:
            _scatter_add_into(self.xp, out, key, values)
        else:
            out[key] = values
        return out

    def backward(self, grad):
        if self.xp is graph_mode.namespace:
            picked = index_graph(grad, self.spec, self.index_arrays)
        else:
            picked = grad[self.key]
        return (picked,) + (None,) * (len(self.edges) - 1)


class IndexPut(Op):
    """Out-of-place ``x[key] = values`` (``Tensor.__setitem__`` writes the result back into ``x``)."""

    attr_names = ("spec", "accumulate")

    def forward(self, x, values, *index_arrays):
        key = build_key(self.spec, index_arrays)
        self.key = key
        self.index_arrays = index_arrays
        self.values_shape = getattr(values, "shape", ())
        out = x.copy()
        if self.accumulate:
            _scatter_add_into(self.xp, out, key, values)
        else:
            out[key] = values
        return out

    def backward(self, grad):
        grad_x = grad_values = None
        x_edge, values_edge = self.edges[:2]
        if self.xp is graph_mode.namespace:
            if x_edge is not None:
                grad_x = grad
                if not self.accumulate:
                    keep = array_module(grad).ones(grad.shape, dtype=bool)
                    keep[self.key] = False
                    grad_x = grad * constant(keep)
            if values_edge is not None:
                grad_values = sum_to(self.xp, index_graph(grad, self.spec, self.index_arrays), self.values_shape)
            return (grad_x, grad_values) + (None,) * (len(self.edges) - 2)
        if x_edge is not None:
            grad_x = grad if self.accumulate else grad.copy()
            if not self.accumulate:
                grad_x[self.key] = 0
        if values_edge is not None:
            grad_values = sum_to(self.xp, grad[self.key], self.values_shape)
        return (grad_x, grad_values) + (None,) * (len(self.edges) - 2)


class IndexSelect(Op):
    attr_names = ("axis",)

    def forward(self, x, index):
        self.save_for_backward(index)
        self.index = index
        self.input_shape = x.shape
        return self.xp.take(x, index, axis=self.axis)

    def backward(self, grad):
        if self.xp is graph_mode.namespace:
            spec = along_axis_spec(len(self.input_shape), self.axis)
            return index_scatter(grad, spec, (self.index,), self.input_shape), None
        (index,) = self.saved_tensors
        xp = self.xp
        out = xp.zeros(self.input_shape, dtype=grad.dtype)
        key = [slice(None)] * len(self.input_shape)
        key[self.axis] = index
        moved_grad = grad
        _scatter_add_into(xp, out, tuple(key), moved_grad)
        return out, None


def _along_axis_key(xp, index, axis):
    """Open-mesh key that addresses ``index``'s entries along ``axis`` (for gather/scatter)."""
    grids = list(xp.meshgrid(*[xp.arange(n) for n in index.shape], indexing="ij", sparse=True))
    grids[axis] = index
    return tuple(grids)


def _all_tensor_spec(count):
    return tuple(("tensor", k) for k in range(count))


class Gather(Op):
    """``out[i][j] = x[i][index[i][j]]`` along ``axis``; ``index`` may be smaller than ``x`` off the axis."""

    attr_names = ("axis",)

    def forward(self, x, index):
        self.input_shape = x.shape
        key = _along_axis_key(self.xp, index, self.axis)
        self.key = key
        return x[key]

    def backward(self, grad):
        xp = self.xp
        if xp is graph_mode.namespace:
            return index_scatter(grad, _all_tensor_spec(len(self.key)), self.key, self.input_shape), None
        out = xp.zeros(self.input_shape, dtype=grad.dtype)
        _scatter_add_into(xp, out, self.key, grad)
        return out, None


class Scatter(Op):
    """``out = x`` with ``out[i][index[i][j]] = src[i][j]`` along ``axis``; ``reduce='add'`` accumulates
    (``scatter_add``). ``src`` may be a tensor or a Python number (``value``)."""

    attr_names = ("axis", "reduce", "value")

    def name(self):
        if self.reduce == "add":
            return "ScatterAddBackward0"
        return "ScatterBackward1" if self.value is not None else "ScatterBackward0"

    def forward(self, x, index, src=None):
        xp = self.xp
        key = _along_axis_key(xp, index, self.axis)
        self.key = key
        out = x.copy()
        if src is None:
            values = self.value
        else:
            values = src[tuple(slice(0, n) for n in index.shape)]
        if self.reduce == "add":
            _scatter_add_into(xp, out, key, values)
        else:
            out[key] = values
        self.index_shape = index.shape
        self.src_shape = None if src is None else src.shape
        return out

    def backward(self, grad):
        xp = self.xp
        if xp is graph_mode.namespace:
            return self._graph_backward(grad)
        x_edge = self.edges[0]
        grad_x = None
        if x_edge is not None:
            if self.reduce == "add":
                grad_x = grad
            else:
                grad_x = grad.copy()
                grad_x[self.key] = 0
        grad_src = None
        if len(self.edges) > 2 and self.edges[2] is not None:
            grad_src = xp.zeros(self.src_shape, dtype=grad.dtype)
            grad_src[tuple(slice(0, n) for n in self.index_shape)] = grad[self.key]
        if len(self.edges) > 2:
            return grad_x, None, grad_src
        return grad_x, None

    def _graph_backward(self, grad):
        grad_x = grad_src = None
        if self.edges[0] is not None:
            grad_x = grad
            if self.reduce != "add":
                keep = array_module(grad).ones(grad.shape, dtype=bool)
                keep[self.key] = False
                grad_x = grad * constant(keep)
        if len(self.edges) > 2 and self.edges[2] is not None:
            picked = index_graph(grad, _all_tensor_spec(len(self.key)), self.key)
            grad_src = picked
            if tuple(self.src_shape) != tuple(self.index_shape):  # src larger than index: zeros beyond it
                spec = tuple(("slice", 0, n, None) for n in self.index_shape)
                grad_src = index_scatter(picked, spec, (), self.src_shape, accumulate=False)
        if len(self.edges) > 2:
            return grad_x, None, grad_src
        return grad_x, None


class MaskedFill(Op):
    attr_names = ("value",)

    def forward(self, x, mask):
        self.save_for_backward(mask)
        self.input_shape = x.shape
        return self.xp.where(mask, self.value, x).astype(x.dtype, copy=False)

    def backward(self, grad):
        (mask,) = self.saved_tensors
        xp = self.xp
        return sum_to(xp, xp.where(mask, grad * 0, grad), self.input_shape), None


_REDUCE_UFUNCS = {"sum": "add", "mean": "add", "prod": "multiply", "amax": "maximum", "amin": "minimum"}


class ScatterReduce(Op):
    """``scatter_reduce``: ``src[i][j]`` reduced into ``out[i][index[i][j]]`` along ``axis`` with ``reduce`` (sum,
    prod, mean, amax, amin); ``include_self=False`` leaves the input's own values out of every written position.

    Gradients as PyTorch's: sum passes the gradient, mean divides it by each position's count, amax/amin share it
    evenly among the elements equal to the result, prod gives each element the product of the others (zeros
    included). A ``create_graph`` backward is supported for sum, mean, amax and amin (their gradients are the
    upstream gradient times constants); prod's raises.
    """

    attr_names = ("axis", "reduce", "include_self")

    def forward(self, x, index, src):
        xp = self.xp
        key = _along_axis_key(xp, index, self.axis)
        values = src[tuple(slice(0, n) for n in index.shape)]
        written = xp.zeros(x.shape, dtype=bool)
        written[key] = True
        out = x.copy()
        if not self.include_self:
            identity = {"sum": 0, "mean": 0, "prod": 1}.get(self.reduce)
            if identity is None:
                kind = xp.finfo if x.dtype.kind == "f" else xp.iinfo
                identity = kind(x.dtype).min if self.reduce == "amax" else kind(x.dtype).max
            out[written] = identity
        getattr(xp, _REDUCE_UFUNCS[self.reduce]).at(out, key, values)
        count = None
        if self.reduce == "mean":
            count = xp.zeros(x.shape, dtype=x.dtype)
            xp.add.at(count, key, 1)
            if self.include_self:
                count += 1
            count = xp.maximum(count, 1)
            out = out / count if x.dtype.kind == "f" else out // count.astype(x.dtype)
        self.key, self.written, self.count = key, written, count
        self.src_shape, self.index_shape = src.shape, index.shape
        self.x, self.values, self.out = x, values, out
        return out.astype(x.dtype, copy=False)

    def backward(self, grad):
        graph = self.xp is graph_mode.namespace
        real_xp = xp_of(self.out)
        x_scale, src_scale = (s.astype(self.out.dtype, copy=False) for s in self._gradient_scales(real_xp))
        x_edge, src_edge = self.edges[0], self.edges[2]
        spec = tuple(("tensor", k) for k in range(len(self.key)))
        grad_x = grad_src = None
        if x_edge is not None:
            grad_x = grad * (constant(x_scale) if graph else x_scale)
        if src_edge is not None:
            picked = index_graph(grad, spec, self.key) if graph else grad[self.key]
            grad_src = picked * (constant(src_scale) if graph else src_scale)
            if tuple(self.src_shape) != tuple(self.index_shape):  # src larger than index: zeros beyond it
                inner = tuple(("slice", 0, n, None) for n in self.index_shape)
                if graph:
                    grad_src = index_scatter(grad_src, inner, (), self.src_shape, accumulate=False)
                else:
                    full = real_xp.zeros(self.src_shape, dtype=grad_src.dtype)
                    full[tuple(slice(0, n) for n in self.index_shape)] = grad_src
                    grad_src = full
        return grad_x, None, grad_src

    def _gradient_scales(self, xp):
        """Per-element factors of the upstream gradient for the input and for the (index-shaped) source."""
        x, values, out, key = self.x, self.values, self.out, self.key
        keep_self = self.include_self | ~self.written  # the input's value took part in its position's result
        if self.reduce == "sum":
            return keep_self.astype(out.dtype), xp.ones(values.shape, dtype=out.dtype)
        if self.reduce == "mean":
            return keep_self / self.count, (1 / self.count)[key]
        if self.reduce in ("amax", "amin"):
            x_hits = (x == out) & keep_self
            src_hits = values == out[key]
            ties = x_hits.astype(out.dtype)
            xp.add.at(ties, key, src_hits)
            return x_hits / xp.maximum(ties, 1), src_hits / xp.maximum(ties, 1)[key]
        if self.xp is graph_mode.namespace:
            raise RuntimeError("scatter_reduce(reduce='prod'): dtorch has no double-backward formula for it "
                               "(create_graph=True)")
        # prod: the product of the other contributors; with zeros, from the product of the non-zero ones
        zero_x, zero_src = (x == 0) & keep_self, values == 0
        zeros = zero_x.astype(xp.int64)
        xp.add.at(zeros, key, zero_src)
        nonzero_product = xp.where(keep_self & ~zero_x, x, 1).astype(out.dtype)
        xp.multiply.at(nonzero_product, key, xp.where(zero_src, 1, values))
        x_scale = xp.where(zero_x, xp.where(zeros == 1, nonzero_product, 0), out / xp.where(zero_x, 1, x))
        src_scale = xp.where(zero_src, xp.where(zeros[key] == 1, nonzero_product[key], 0),
                             out[key] / xp.where(zero_src, 1, values))
        return x_scale * keep_self, src_scale
