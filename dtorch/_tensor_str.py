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
SCI_MODE = None  # None: chosen per tensor by the rules above; True/False: always/never scientific

_PROFILES = {
    "default": {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80},
    "short": {"precision": 2, "threshold": 1000, "edgeitems": 2, "linewidth": 80},
    "full": {"precision": 4, "threshold": math.inf, "edgeitems": 3, "linewidth": 80},
}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None, sci_mode=None):
    """PyTorch's print options: a ``profile`` (``'default'``, ``'short'``, ``'full'``) first, then the options
    given; ``sci_mode`` True/False forces scientific notation on/off and None (also when not given) restores the
    automatic choice, as in PyTorch.

    >>> import dtorch
    >>> dtorch.set_printoptions(sci_mode=False); dtorch.tensor([1e-5, 1.0])
    tensor([0.0000, 1.0000])
    >>> dtorch.set_printoptions(profile="default")
    """
    global PRECISION, THRESHOLD, EDGE_ITEMS, LINE_WIDTH, SCI_MODE
    settings = dict(_PROFILES.get(profile, {}))
    for name, value in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                        ("linewidth", linewidth)):
        if value is not None:
            settings[name] = value
    PRECISION = settings.get("precision", PRECISION)
    THRESHOLD = settings.get("threshold", THRESHOLD)
    EDGE_ITEMS = settings.get("edgeitems", EDGE_ITEMS)
    LINE_WIDTH = settings.get("linewidth", LINE_WIDTH)
    SCI_MODE = sci_mode


def get_printoptions():
    """The current print options as a dict, PyTorch's keys."""
    return {"precision": PRECISION, "threshold": THRESHOLD, "edgeitems": EDGE_ITEMS, "linewidth": LINE_WIDTH,
            "sci_mode": SCI_MODE}


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
        # PyTorch sizes and chooses the format on the finite non-zero values only (zeros, nan and inf just follow)
        flat = values.astype(np.float64).ravel()
        shown = flat[np.isfinite(flat) & (flat != 0)]
        self.mode = "whole"
        if not shown.size:
            return
        magnitude = np.abs(shown)
        largest, smallest = float(magnitude.max()), float(magnitude.min())
        whole = bool(np.all(np.ceil(shown) == shown))
        if SCI_MODE is None:
            scientific = largest / smallest > 1000.0 or largest > 1.0e8 or smallest < 1.0e-4
        else:
            scientific = SCI_MODE
        if scientific:
            self.mode = "sci"
        elif not whole:
            self.mode = "fixed"
        self.width = max(len(self._format_float(v)) for v in shown.tolist())

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


class _ComplexFormatter:
    """Real and imaginary parts each formatted by their own ``_Formatter`` (PyTorch's layout): the real part
    right-aligned, the imaginary part with its sign and ``j`` right after it."""

    def __init__(self, values):
        self.real = _Formatter(values.real)
        self.imag = _Formatter(values.imag)
        self.width = self.real.width + self.imag.width + 1  # for the elements-per-line rule

    def format(self, value):
        value = complex(value)
        real = self.real.format(value.real)
        imag = (self.imag.format(value.imag) + "j").lstrip()
        return real + imag if imag[0] in "+-" else real + "+" + imag


def _formatter(values):
    return _ComplexFormatter(values) if values.dtype.kind == "c" else _Formatter(values)


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
    array = tensor._array
    if _backend.is_cupy_array(array):
        array = array.get()
    indent = len(prefix)
    suffixes = []
    device = tensor.device
    if device.type == "cuda":
        suffixes.append(f"device='{device}'")
    dtype = tensor.dtype
    if array.size == 0:
        body = "[]"
        if array.shape != (0,):
            suffixes.append(f"size={tuple(array.shape)}")
        # no element shows the dtype, so only the default float goes without saying
        shown_by_values = (_backend.get_default_dtype(),)
    else:
        summarize = array.size > THRESHOLD
        formatter = _formatter(_shown_values(array))
        body = _body(array, indent, summarize, formatter)
        shown_by_values = (_backend.get_default_dtype(), _backend.int64, _backend.bool_, _backend.default_complex())
    if dtype not in shown_by_values:
        suffixes.append(f"dtype={dtype}")
    if tensor.grad_fn is not None:
        suffixes.append(f"grad_fn=<{tensor.grad_fn.name()}>")
    elif tensor.requires_grad:
        suffixes.append("requires_grad=True")
    return _with_suffixes(prefix + body, suffixes, indent)


def _with_suffixes(text, suffixes, indent):
    """Append ``, suffix`` items, each moving to a new line when it would pass the line width (PyTorch's rule).

    A suffix is measured as PyTorch's spelling (``torch.float64``), so the lines break where PyTorch's do.
    """
    last_line_length = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        length = len(suffix.replace("dtorch.", "torch."))
        if last_line_length + length + 2 > LINE_WIDTH:
            text += ",\n" + " " * indent + suffix
            last_line_length = indent + length
        else:
            text += ", " + suffix
            last_line_length += length + 2
    return text + ")"
