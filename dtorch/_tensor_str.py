"""The printed form of a Tensor, laid out as PyTorch lays it out.

Rules (PyTorch's defaults: 4 digits of precision, summarise past 1000 elements showing 3 at each edge, 80 columns):
- floats whose finite values are all whole print as ``1.``; otherwise fixed ``1.5000``; scientific ``1.0000e-05``
  when the largest/smallest magnitude ratio exceeds 1000, the largest exceeds 1e8 or the smallest is under 1e-4;
- every element is right-aligned to the widest one;
- the suffix names a dtype other than the default float, int64 and bool, a CUDA device, ``requires_grad=True`` on
  leaves and the ``grad_fn`` on results.
"""

import math

import numpy as np

from dtorch import _backend

PRECISION = 4
THRESHOLD = 1000
EDGE_ITEMS = 3
LINE_WIDTH = 80


class _Formatter:
    def __init__(self, values):
        self.kind = values.dtype.kind
        self.mode = "str"
        self.width = 1
        if self.kind == "b":
            strings = ["True" if v else "False" for v in values.ravel()]
            self.width = max((len(s) for s in strings), default=1)
            return
        if self.kind in "iu":
            strings = [str(v) for v in values.ravel().tolist()]
            self.width = max((len(s) for s in strings), default=1)
            return
        flat = values.astype(np.float64).ravel()
        finite = flat[np.isfinite(flat)]
        nonzero = np.abs(finite[finite != 0])
        self.mode = "fixed"
        if nonzero.size:
            largest, smallest = float(nonzero.max()), float(nonzero.min())
            whole = bool(np.all(np.ceil(finite) == finite))
            if whole:
                self.mode = "whole"
                if largest / smallest > 1000.0 or largest > 1.0e8:
                    self.mode = "sci"
            elif largest / smallest > 1000.0 or largest > 1.0e8 or smallest < 1.0e-4:
                self.mode = "sci"
        elif finite.size and bool(np.all(finite == 0)):
            self.mode = "whole"
        self.width = max((len(self._format_float(v)) for v in flat.tolist()), default=1)

    def _format_float(self, value):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if self.mode == "sci":
            return f"{value:.{PRECISION}e}"
        if self.mode == "whole":
            return f"{value:.0f}."
        return f"{value:.{PRECISION}f}"

    def format(self, value):
        if self.kind == "b":
            text = "True" if value else "False"
        elif self.kind in "iu":
            text = str(value)
        else:
            text = self._format_float(float(value))
        return text.rjust(self.width)


def _shown_values(array):
    """The elements that will be printed (edges only when summarising), to size the formatter on."""
    if array.size <= THRESHOLD:
        return array
    return _summarized(array)


def _summarized(array):
    if array.ndim == 0:
        return array.reshape(1)
    if array.ndim == 1:
        if array.shape[0] > 2 * EDGE_ITEMS:
            return np.concatenate([array[:EDGE_ITEMS], array[-EDGE_ITEMS:]])
        return array
    if array.shape[0] > 2 * EDGE_ITEMS:
        parts = [_summarized(row) for row in list(array[:EDGE_ITEMS]) + list(array[-EDGE_ITEMS:])]
    else:
        parts = [_summarized(row) for row in array]
    return np.concatenate([p.ravel() for p in parts])


def _body(array, indent, summarize, formatter):
    if array.ndim == 0:
        return formatter.format(array.item())
    if array.ndim == 1:
        values = array.tolist()
        if summarize and len(values) > 2 * EDGE_ITEMS:
            items = [formatter.format(v) for v in values[:EDGE_ITEMS]] + [" ..."]
            items += [formatter.format(v) for v in values[-EDGE_ITEMS:]]
        else:
            items = [formatter.format(v) for v in values]
        per_line = max(1, int(math.floor((LINE_WIDTH - indent) / (formatter.width + 2))))
        lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
        return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"
    rows = array.shape[0]
    if summarize and rows > 2 * EDGE_ITEMS:
        parts = [_body(array[i], indent + 1, summarize, formatter) for i in range(EDGE_ITEMS)]
        parts.append("...")
        parts += [_body(array[i], indent + 1, summarize, formatter) for i in range(rows - EDGE_ITEMS, rows)]
    else:
        parts = [_body(array[i], indent + 1, summarize, formatter) for i in range(rows)]
    separator = "," + "\n" * (array.ndim - 1) + " " * (indent + 1)
    return "[" + separator.join(parts) + "]"


def tensor_repr(tensor, prefix="tensor("):
    """The string ``repr(tensor)`` shows."""
    array = tensor.data
    if _backend.is_cupy_array(array):
        array = array.get()
    indent = len(prefix)
    suffixes = []
    if array.size == 0:
        body = "[]"
        if array.shape != (0,):
            suffixes.append(f"size={tuple(array.shape)}")
    else:
        summarize = array.size > THRESHOLD
        formatter = _Formatter(_shown_values(array))
        body = _body(array, indent, summarize, formatter)
    device = tensor.device
    if device.type == "cuda":
        suffixes.append(f"device='{device}'")
    dtype = tensor.dtype
    if dtype not in (_backend.get_default_dtype(), _backend.int64, _backend.bool_):
        suffixes.append(f"dtype={dtype}")
    if tensor.grad_fn is not None:
        suffixes.append(f"grad_fn=<{tensor.grad_fn.name()}>")
    elif tensor.requires_grad:
        suffixes.append("requires_grad=True")
    text = prefix + body
    for suffix in suffixes:
        text += ", " + suffix
    return text + ")"
