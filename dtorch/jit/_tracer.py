"""Recording a forward into a ``Graph``: the capture behind ``jit.trace``, ``export`` and ``onnx.export``.

While a capture is active, ``Op.apply`` hands every op to ``Capture.record`` (the one hook in
``dtorch/autograd/function.py``; outside a capture it is a single ``is not None`` test). For the duration of the
capture only, a few Tensor methods are replaced so the trace can see what Python does with traced values:

- ``size()``/``shape`` return ``SymInt``s for traced tensors, so ``x.view(x.size(0), -1)`` records "the input's
  batch size" rather than the number it had;
- ``bool()``, ``item()``, ``int()``, ``float()``, ``tolist()`` and iteration over a traced tensor warn
  (``TracerWarning``): Python control flow that reads values is baked into the trace;
- a custom ``autograd.Function`` refuses with a clear error (its Python backward cannot be saved);
- ``nn.RNN``/``LSTM``/``GRU``/``MultiheadAttention`` are recorded as one node each (``_modules``);
- in-place ops (``relu_``, ``x += y``) rebind the modified Tensor to the value that replaced it;
- ``dtorch.zeros(x.size(0), h)``, ``zeros_like(x)``, ``arange(x.size(1))`` and the other factories of
  ``FACTORIES`` become nodes when their sizes come from traced tensors (called as ``dtorch.<name>``), and dropout
  masks become nodes that draw a new mask on every replay.

Not thread-safe: one capture at a time per process, and other threads must not run ops meanwhile.
"""

import contextlib
import inspect
import sys
import warnings

import numpy as np

from dtorch import functional as _F
from dtorch.autograd import function as function_module
from dtorch.jit import _graph, _modules
from dtorch.jit._graph import SymInt
from dtorch.tensor import Size, Tensor, _wrap_dim


class TracerWarning(Warning):
    """Python code read a traced value: the trace may not generalise to other inputs (PyTorch's TracerWarning)."""


_TRACED_KINDS = ("input", "op")
_current = None


def current():
    """The active capture, or None."""
    return _current


class _Entry:
    __slots__ = ("name", "tensor", "kind", "version")

    def __init__(self, name, tensor, kind):
        self.name = name
        self.tensor = tensor  # kept alive so that its id is never reused during the capture
        self.kind = kind
        self.version = tensor._version


class Capture:
    """Records ops into ``self.graph``; ``paused`` > 0 while a whole-module node runs its insides."""

    def __init__(self, what="trace"):
        self.what = what
        self.graph = _graph.Graph()
        self.table = {}
        self.constant_arrays = {}  # constant name -> array snapshot
        self.paused = 0
        self.last_output = None

    # ---- values -------------------------------------------------------------------------------------------------

    def add(self, tensor, kind, name=None):
        value = self.graph.new_value(tensor._array)
        self.table[id(tensor)] = _Entry(value, tensor, kind)
        if kind == "parameter":
            self.graph.parameters[name] = value
        elif kind == "buffer":
            self.graph.buffers[name] = value
        elif kind == "input":
            self.graph.inputs.append(value)
        return value

    def lookup(self, tensor):
        return self.table.get(id(tensor))

    def name_of(self, tensor):
        """The value name of an op input; a tensor the capture has not seen becomes a constant."""
        entry = self.table.get(id(tensor))
        if entry is None:
            name = f"c{len(self.graph.constants)}"
            array = tensor._array
            value = self.add(tensor, "constant")
            self.graph.constants[name] = value
            self.constant_arrays[name] = array.copy()
            return value
        if entry.kind not in ("parameter", "buffer") and tensor._version != entry.version:
            raise RuntimeError(
                f"dtorch.jit.{self.what}: a tensor of shape {list(tensor._array.shape)} was modified in place by "
                "code the trace cannot see (a write through .data or a NumPy view); use dtorch operations instead"
            )
        return entry.name

    def alias(self, tensor, source):
        """``tensor`` now holds the value ``source`` produced (an in-place op wrote it)."""
        entry = self.table.get(id(source))
        if entry is not None:
            self.table[id(tensor)] = _Entry(entry.name, tensor, entry.kind)

    # ---- ops ----------------------------------------------------------------------------------------------------

    def record(self, node, inputs, attrs, result):
        if self.paused:
            return
        cls = type(node)
        op = cls.__name__
        if _graph.library_ops().get(op) is not cls and _graph.library_ops(refresh=True).get(op) is not cls:
            raise RuntimeError(_custom_function_message(cls, self.what))
        names = []
        for x in inputs:
            if isinstance(x, Tensor):
                names.append(self.name_of(x))
            elif x is None or isinstance(x, (bool, int, float)):
                names.append(x if not isinstance(x, SymInt) else int(x))
            elif isinstance(x, (np.integer, np.floating, np.bool_)):
                names.append(x.item())
            else:
                raise RuntimeError(
                    f"dtorch.jit.{self.what}: op {op} got an input of type {type(x).__name__}, which a graph cannot "
                    "record"
                )
        encoded = {key: _graph.encode(value, f"dtorch.jit.{self.what}: op {op}") for key, value in attrs.items()}
        outputs = result if isinstance(result, tuple) else (result,)
        entry = {"op": op, "inputs": names, "attrs": encoded,
                 "outputs": [self.add(t, "op") for t in outputs]}
        if op in _graph.SHAPE_RULE_OPS:
            rule = _shape_rule(op, inputs[0], self, sys._getframe(2))
            if rule is not None:
                entry["shape_rule"] = rule
        self.graph.nodes.append(entry)
        if op == "ViewScatter":  # the in-place write of a view: its base now holds the new value
            self.alias(inputs[0], outputs[0])
        self.last_output = outputs[0]

    def record_module(self, module, arguments, output):
        """One node for a whole layer (see ``_modules``)."""
        name, inputs, attrs = _modules.describe(module, arguments, self.name_of)
        leaves = _modules.output_leaves(output)
        outputs = []
        for leaf in leaves:
            if leaf is None:
                outputs.append(None)
            elif isinstance(leaf, Tensor):
                outputs.append(self.add(leaf, "op"))
            else:
                raise RuntimeError(f"{type(module).__name__} returned a {type(leaf).__name__}, which a graph cannot "
                                   "record")
        self.graph.nodes.append({"op": name, "inputs": inputs,
                                 "attrs": {k: v for k, v in attrs.items()}, "outputs": outputs})

    def record_factory(self, name, args, kwargs, result):
        """One node for a factory call whose size depends on a traced tensor (``zeros(x.size(0), h)``,
        ``zeros_like(x)``, ``arange(x.size(1))``); a factory of fixed sizes stays a constant."""
        refs = []
        dynamic = []

        def encode(value):
            if isinstance(value, Tensor):
                entry = self.table.get(id(value))
                if entry is not None and entry.kind in _TRACED_KINDS:
                    dynamic.append(True)
                refs.append(self.name_of(value))
                return {"input": len(refs) - 1}
            if isinstance(value, SymInt):
                dynamic.append(True)
                for ref in _expr_refs(value.expr):
                    if ref not in refs:
                        refs.append(ref)
                return {"sym": value.expr}
            if isinstance(value, (tuple, list)):
                return {"tuple": [encode(v) for v in value]}
            if value is None or isinstance(value, (bool, int, float, str)):
                return {"const": value}
            if type(value).__name__ in ("dtype", "device"):
                return {type(value).__name__: str(value).replace("dtorch.", "")}
            raise _Unrecordable

        try:
            encoded_args = [encode(a) for a in args]
            encoded_kwargs = {k: encode(v) for k, v in kwargs.items() if k != "requires_grad"}
        except _Unrecordable:
            return
        if not dynamic:
            return
        self.graph.nodes.append({
            "op": "nn.factory", "inputs": list(refs),
            "attrs": {"function": name, "args": encoded_args, "kwargs": encoded_kwargs, "refs": list(refs)},
            "outputs": [self.add(result, "op")],
        })

    def sym_size(self, tensor, shape):
        entry = None if self.paused else self.table.get(id(tensor))
        if entry is None or entry.kind not in _TRACED_KINDS:
            return None
        return Size(SymInt(extent, ["dim", entry.name, i]) for i, extent in enumerate(shape))

    def warn_if_traced(self, tensor, message):
        if self.paused:
            return
        entry = self.table.get(id(tensor))
        if entry is not None and entry.kind in _TRACED_KINDS:
            warnings.warn(message, TracerWarning, stacklevel=3)


class _Unrecordable(Exception):
    pass


def _expr_refs(expr):
    if isinstance(expr, int):
        return []
    if expr[0] == "dim":
        return [expr[1]]
    return [ref for part in expr[1:] if isinstance(part, list) for ref in _expr_refs(part)]


def _custom_function_message(cls, what):
    return (
        f"dtorch.jit.{what}: the custom autograd.Function {cls.__qualname__!r} cannot be recorded: its forward and "
        "backward are Python code, which a saved or exported graph cannot carry. Write that computation with "
        "dtorch operations (the trace then records them), or keep it out of the traced forward."
    )


# ---- shape rules: how a Reshape/Expand target follows the actual input --------------------------------------------


def _frame_function(frame):
    if frame is None or frame.f_globals.get("__name__") != "dtorch.functional":
        return None
    return frame.f_code.co_name


def _size_entry(value):
    if isinstance(value, SymInt):
        return value.expr if value.expr != ["infer"] else -1
    return int(value)


def _functional_frames(frame, depth=4):
    """``{name: locals}`` of the dtorch.functional calls on top of the stack (innermost first wins)."""
    found = {}
    while frame is not None and len(found) < depth:
        name = _frame_function(frame)
        if name is None:
            break
        found.setdefault(name, frame.f_locals)
        frame = frame.f_back
    return found


def _shape_rule(op, x, capture, frame):
    """The rule for replaying a Reshape/Expand at other input sizes, read from the dtorch.functional call that
    made it (its arguments hold the user's -1s and symbolic sizes); None keeps the recorded shape."""
    calls = _functional_frames(frame)
    if op == "Expand":
        sizes = calls.get("expand", {}).get("sizes")
        return None if sizes is None else {"expand": [_size_entry(s) for s in sizes]}
    if "flatten" in calls and "start" in calls["flatten"] and "end" in calls["flatten"]:
        return {"flatten": [calls["flatten"]["start"], calls["flatten"]["end"]]}
    if "unflatten" in calls:
        return None
    if "unsqueeze" in calls and "axis" in calls["unsqueeze"]:
        return {"unsqueeze": calls["unsqueeze"]["axis"]}
    if "squeeze" in calls and "dim" in calls["squeeze"]:
        dim = calls["squeeze"]["dim"]
        ndim = x._array.ndim
        if dim is None:
            return {"squeeze": None}
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        return {"squeeze": sorted(_wrap_dim(d, ndim) for d in dims) if ndim else []}
    for name in ("view", "reshape"):
        shape = calls.get(name, {}).get("shape")
        if shape is None:
            continue
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = shape[0]
        if isinstance(shape, Tensor) or not isinstance(shape, (tuple, list)):
            return None
        return {"reshape": [_size_entry(s) for s in shape]}
    return None


# ---- the patches active during a capture --------------------------------------------------------------------------

_original = {}


def _patched_size(self, dim=None):
    shape = self._array.shape
    capture = _current
    if capture is not None:
        symbolic = capture.sym_size(self, shape)
        if symbolic is not None:
            return symbolic if dim is None else symbolic[_wrap_dim(dim, len(shape))]
    return Size(shape) if dim is None else shape[_wrap_dim(dim, len(shape))]


def _patched_shape(self):
    capture = _current
    if capture is not None:
        symbolic = capture.sym_size(self, self._array.shape)
        if symbolic is not None:
            return symbolic
    return Size(self._array.shape)


def _patched_slice_bound(value):
    """Slice bounds keep their symbolic sizes (``pe[:x.size(0)]``) so the recorded key follows the input."""
    if value is None:
        return None
    return value if isinstance(value, SymInt) else int(value)


def _patched_shape_arg(shape):
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
        shape = shape[0]
    return tuple(s if isinstance(s, SymInt) else int(s) for s in shape)


_BOOL_MESSAGE = (
    "Converting a tensor to a Python boolean might cause the trace to be incorrect. We can't record the data flow of "
    "Python values, so this value will be treated as a constant in the future. This means that the trace might not "
    "generalize to other inputs!"
)
_NUMBER_MESSAGE = _BOOL_MESSAGE.replace("Python boolean", "Python number")
_LIST_MESSAGE = _BOOL_MESSAGE.replace("Python boolean", "Python list")
_ITERATE_MESSAGE = (
    "Iterating over a tensor might cause the trace to be incorrect. Passing a tensor of different shape won't change "
    "the number of iterations executed (and might lead to errors or silently give incorrect results)."
)


def _warning_wrapper(name, message):
    original = getattr(Tensor, name)

    def method(self, *args, **kwargs):
        capture = _current
        if capture is not None:
            capture.warn_if_traced(self, message)
        return original(self, *args, **kwargs)

    method.__name__ = name
    return method


def _refusing_custom_apply(cls, *args, **kwargs):
    capture = _current
    module = cls.__module__ or ""
    if capture is not None and not capture.paused and not module.startswith("dtorch."):
        raise RuntimeError(_custom_function_message(cls, capture.what))
    return _original["custom_apply"].__func__(cls, *args, **kwargs)


def _patched_inplace_from(target, result):
    capture = _current
    if capture is None:
        return _original["inplace_from"](target, result)
    capture.last_output = None
    out = _original["inplace_from"](target, result)
    source = capture.last_output if capture.last_output is not None else result
    capture.alias(target, source)
    return out


def _patched_dropout_mask(input, p, shape):
    mask = _original["dropout_mask"](input, p, shape)
    capture = _current
    if capture is None or capture.paused:
        return mask
    if sys._getframe(1).f_code.co_name != "_apply_mask":  # attention's mask: shaped like the scores, not the input
        warnings.warn("a dropout mask of scaled_dot_product_attention is recorded as a constant: trace in eval mode "
                      "(or with dropout_p=0)", TracerWarning, stacklevel=3)
        return mask
    in_shape = input._array.shape
    # the mask's leading extents follow the input's (-1); dropout2d's per-channel masks end in 1s
    dims = []
    for i, extent in enumerate(shape):
        follows = i < len(in_shape) and extent == in_shape[i] and (not dims or dims[-1] == -1)
        dims.append(-1 if follows else int(extent))
    capture.graph.nodes.append({"op": "nn.dropout_mask", "inputs": [capture.name_of(input)],
                                "attrs": {"p": float(p), "shape": dims}, "outputs": [capture.add(mask, "op")]})
    return mask


# factories whose sizes may come from traced tensors: recorded as nodes when they do (``nn.factory``)
FACTORIES = ("zeros", "ones", "empty", "full", "zeros_like", "ones_like", "empty_like", "full_like", "arange",
             "rand", "randn", "rand_like", "randn_like")


def _factory_wrapper(name, original):
    def factory(*args, **kwargs):
        result = original(*args, **kwargs)
        capture = _current
        if capture is not None and not capture.paused and isinstance(result, Tensor):
            capture.record_factory(name, args, kwargs, result)
        return result

    factory.__wrapped__ = original
    factory.__name__ = name
    return factory


def _module_forward_wrapper(cls, original):
    signature = inspect.signature(original)

    def forward(self, *args, **kwargs):
        capture = _current
        if capture is None or capture.paused or type(self) is not cls:
            return original(self, *args, **kwargs)
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        arguments.pop("self")
        for value in arguments.values():
            if isinstance(value, Tensor):
                capture.name_of(value)  # name inputs before the layer runs (a constant is snapshotted now)
        capture.paused += 1
        try:
            output = original(self, *args, **kwargs)
        finally:
            capture.paused -= 1
        capture.record_module(self, arguments, output)
        return output

    forward.__wrapped__ = original
    return forward


@contextlib.contextmanager
def capturing(capture):
    """Make ``capture`` the active one and install the patches for the duration of the block."""
    global _current
    if _current is not None:
        raise RuntimeError("dtorch.jit: a trace is already being recorded (traces cannot be nested)")
    import dtorch
    from dtorch import autograd, nn
    from dtorch.nn import functional as _NF

    module_classes = [nn.RNN, nn.LSTM, nn.GRU, nn.MultiheadAttention]
    saved = {
        "size": Tensor.__dict__.get("size"), "shape": Tensor.__dict__.get("shape"), "shape_arg": _F._shape_arg,
        "slice_bound": _F._slice_bound,
        "inplace_from": _F._inplace_from, "custom_apply": autograd.Function.__dict__["apply"],
        "dropout_mask": _NF._dropout_mask,
        "factories": {name: getattr(dtorch, name) for name in FACTORIES},
        "warnings": {name: Tensor.__dict__.get(name) for name in
                     ("__bool__", "item", "__int__", "__float__", "tolist", "__iter__")},
        "forwards": {cls: cls.__dict__.get("forward") for cls in module_classes},
    }
    _original.update(saved)
    try:
        Tensor.size = _patched_size
        Tensor.shape = property(_patched_shape)
        _F._shape_arg = _patched_shape_arg
        _F._slice_bound = _patched_slice_bound
        _F._inplace_from = _patched_inplace_from
        _NF._dropout_mask = _patched_dropout_mask
        for name, factory in saved["factories"].items():
            setattr(dtorch, name, _factory_wrapper(name, factory))
        autograd.Function.apply = classmethod(_refusing_custom_apply)
        for name, message in (("__bool__", _BOOL_MESSAGE), ("item", _NUMBER_MESSAGE), ("__int__", _NUMBER_MESSAGE),
                              ("__float__", _NUMBER_MESSAGE), ("tolist", _LIST_MESSAGE),
                              ("__iter__", _ITERATE_MESSAGE)):
            setattr(Tensor, name, _warning_wrapper(name, message))
        for cls in module_classes:
            setattr(cls, "forward", _module_forward_wrapper(cls, cls.forward))
        _current = capture
        function_module.capture = capture.record
        yield capture
    finally:
        function_module.capture = None
        _current = None
        for name in ("size", "shape"):  # put back exactly what the class had (or inherited)
            if saved[name] is None:
                delattr(Tensor, name)
            else:
                setattr(Tensor, name, saved[name])
        _F._shape_arg = saved["shape_arg"]
        _F._slice_bound = saved["slice_bound"]
        _F._inplace_from = saved["inplace_from"]
        _NF._dropout_mask = saved["dropout_mask"]
        for name, factory in saved["factories"].items():
            setattr(dtorch, name, factory)
        autograd.Function.apply = saved["custom_apply"]
        for name, method in saved["warnings"].items():
            if method is None:
                delattr(Tensor, name)
            else:
                setattr(Tensor, name, method)
        for cls, forward in saved["forwards"].items():
            if forward is None:
                delattr(cls, "forward")
            else:
                setattr(cls, "forward", forward)
        _original.clear()


# ---- recording a call ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def eval_mode(model):
    """Put ``model`` (a Module, or anything else: then nothing happens) in eval mode for the block, then restore
    every submodule's own mode."""
    from dtorch.nn.modules.module import Module

    if not isinstance(model, Module):
        yield
        return
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode



def _as_args(example_inputs):
    if isinstance(example_inputs, Tensor):
        return (example_inputs,)
    if isinstance(example_inputs, list):
        return tuple(example_inputs)
    if not isinstance(example_inputs, tuple):
        raise TypeError(
            f"example_inputs must be a Tensor or a tuple of Tensors, not {type(example_inputs).__name__}"
        )
    return example_inputs


def _distinct_inputs(value, seen):
    """The inputs with a repeated Tensor (``mha(x, x, x)``) or a parameter replaced by a Tensor sharing its memory,
    so that each input position is a graph input of its own."""
    if isinstance(value, Tensor):
        if id(value) in seen:
            alias = Tensor._from_array(value._array, None)
            alias.requires_grad = value.requires_grad
            return alias
        seen.add(id(value))
        return value
    if isinstance(value, (tuple, list)):
        return type(value)(_distinct_inputs(v, seen) for v in value)
    return value


def _input_tree(value, capture):
    if isinstance(value, Tensor):
        return capture.add(value, "input")
    if isinstance(value, (tuple, list)):
        return {"tuple" if isinstance(value, tuple) else "list": [_input_tree(v, capture) for v in value]}
    raise RuntimeError(
        f"Type '{type(value).__name__}' cannot be traced. Only Tensors and (possibly nested) Lists, Dicts, and "
        "Tuples of Tensors can be traced"
    )


def forward_parameter_names(function, count):
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    names = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return [names[i] if i < len(names) else f"input_{i}" for i in range(count)]


def record(function, args, module=None, strict=True, what="trace"):
    """Run ``function(*args)`` under a capture. Returns ``(capture, output)``; ``capture.graph`` is the graph.

    ``module``'s parameters and buffers are named by ``named_parameters()``/``named_buffers()``.
    """
    capture = Capture(what)
    if module is not None:
        # shared (tied) parameters keep every name, all naming one value
        for name, param in module.named_parameters(remove_duplicate=False):
            entry = capture.lookup(param)
            if entry is None:
                capture.add(param, "parameter", name)
            else:
                capture.graph.parameters[name] = entry.name
        for name, buffer in module.named_buffers(remove_duplicate=False):
            entry = capture.lookup(buffer)
            if entry is None:
                capture.add(buffer, "buffer", name)
            elif entry.kind == "buffer":
                capture.graph.buffers[name] = entry.name
    graph = capture.graph
    args = _distinct_inputs(tuple(args), {id(entry.tensor) for entry in capture.table.values()})
    graph.input_tree = {"tuple": [_input_tree(a, capture) for a in args]}
    target = module.forward if module is not None else function
    graph.input_names = forward_parameter_names(target, len(graph.inputs))
    buffers = {} if module is None else {n: (b, b._version) for n, b in module.named_buffers()}
    with capturing(capture):
        output = function(*args)
    if module is not None:
        changed = [n for n, b in module.named_buffers() if n in buffers and
                   (buffers[n][0] is not b or buffers[n][1] != b._version)]
        if changed:
            warnings.warn(
                f"the forward updated the buffers {changed} while it was recorded (BatchNorm running statistics in "
                "training mode, for example); the recorded graph does not repeat such updates. Record the model in "
                "eval mode (model.eval()).", TracerWarning, stacklevel=3,
            )
    graph.output_tree = _graph.flatten(output, capture.name_of, strict=strict, where="output")
    return capture, output
