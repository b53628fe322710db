"""``dtorch.export``: PyTorch 2's ``torch.export`` surface over dtorch's recorded graphs.

``export(model, args, dynamic_shapes=None)`` records one forward (the capture behind ``jit.trace``) into an
``ExportedProgram``: the graph, its signature (which inputs are parameters, buffers or the user's), the state
dict and the shapes it accepts. As in PyTorch, every input size is fixed unless ``dynamic_shapes`` names it
(``Dim("batch")``); ``ep.module()`` checks calls against that. ``save``/``load`` use the zip format of
``jit.save`` (JSON graph, ``.npy`` weights, no pickle) under its own format tag.
"""

import copy

from dtorch.jit import _serialization, _tracer
from dtorch.jit._module import ScriptModule
from dtorch.nn.modules.module import Module
from dtorch.tensor import Tensor

__all__ = ["export", "ExportedProgram", "ExportGraphSignature", "InputSpec", "OutputSpec", "InputKind",
           "OutputKind", "Dim", "save", "load"]

FORMAT = "dtorch.export"


class Dim:
    """A named dynamic dimension for ``dynamic_shapes``, optionally bounded: ``Dim("batch", min=1, max=64)``.

    >>> Dim("batch", max=64)
    Dim('batch', min=0, max=64)
    """

    AUTO = "AUTO"
    DYNAMIC = "DYNAMIC"
    STATIC = "STATIC"

    def __init__(self, name, *, min=None, max=None):
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"Dim's name must be a Python identifier, got {name!r}")
        low = 0 if min is None else int(min)
        high = None if max is None else int(max)
        if high is not None and high < low:
            raise ValueError(f"Dim {name!r}: max ({high}) must not be less than min ({low})")
        self.__name__ = name
        self.min = low
        self.max = high

    def __repr__(self):
        return f"Dim({self.__name__!r}, min={self.min}, max={self.max if self.max is not None else 'int_oo'})"

    def to_json(self):
        return {"name": self.__name__, "min": self.min, "max": self.max}


class InputKind:
    USER_INPUT = "USER_INPUT"
    PARAMETER = "PARAMETER"
    BUFFER = "BUFFER"
    CONSTANT_TENSOR = "CONSTANT_TENSOR"


class OutputKind:
    USER_OUTPUT = "USER_OUTPUT"


class InputSpec:
    def __init__(self, kind, arg, target, persistent=None):
        self.kind = kind
        self.arg = arg  # the graph value name
        self.target = target  # the parameter/buffer/constant name, None for user inputs
        self.persistent = persistent

    def __repr__(self):
        return f"InputSpec(kind={self.kind}, arg={self.arg!r}, target={self.target!r})"


class OutputSpec:
    def __init__(self, kind, arg):
        self.kind = kind
        self.arg = arg

    def __repr__(self):
        return f"OutputSpec(kind={self.kind}, arg={self.arg!r})"


class ExportGraphSignature:
    """Which graph inputs are parameters, buffers, constants or user inputs, and which values are outputs."""

    def __init__(self, graph):
        specs = [InputSpec(InputKind.PARAMETER, v, n) for n, v in graph.parameters.items()]
        specs += [InputSpec(InputKind.BUFFER, v, n, True) for n, v in graph.buffers.items()]
        specs += [InputSpec(InputKind.CONSTANT_TENSOR, v, n) for n, v in graph.constants.items()]
        specs += [InputSpec(InputKind.USER_INPUT, v, None) for v in graph.inputs]
        self.input_specs = specs
        self.output_specs = [OutputSpec(OutputKind.USER_OUTPUT, v) for v in graph.output_values()]

    @property
    def parameters(self):
        return [s.target for s in self.input_specs if s.kind == InputKind.PARAMETER]

    @property
    def buffers(self):
        return [s.target for s in self.input_specs if s.kind == InputKind.BUFFER]

    @property
    def user_inputs(self):
        return [s.arg for s in self.input_specs if s.kind == InputKind.USER_INPUT]

    @property
    def user_outputs(self):
        return [s.arg for s in self.output_specs]

    def __repr__(self):
        lines = ["ExportGraphSignature("] + [f"  {s!r}," for s in self.input_specs + self.output_specs] + [")"]
        return "\n".join(lines)


class ExportedProgram:
    """A recorded forward with its weights: ``module()`` runs it, ``graph``/``graph_signature`` describe it."""

    def __init__(self, graph, state_dict, constants, input_shapes, dynamic, name="Module", module_names=None):
        self._graph = graph
        self._state_dict = state_dict
        self.constants = constants
        self._input_shapes = input_shapes  # per user input: the traced shape
        self._dynamic = dynamic  # per user input: {axis: Dim json}
        self._name = name
        self._module_names = module_names or {}

    @property
    def graph(self):
        return self._graph

    @property
    def graph_signature(self):
        return ExportGraphSignature(self._graph)

    @property
    def state_dict(self):
        return self._state_dict

    @property
    def range_constraints(self):
        return {f"{d['name']}": (d["min"], d["max"]) for dims in self._dynamic for d in dims.values()}

    def module(self):
        """A module that runs the program (shares this program's parameter and buffer tensors)."""
        graph = self._graph
        parameters = {n: self._state_dict[n] for n in graph.parameters}
        buffers = {n: self._state_dict[n] for n in graph.buffers}
        module = _ExportedModule(graph, parameters, buffers, self.constants, name=self._name,
                                 module_names=self._module_names)
        module._expected = list(zip(self._input_shapes, self._dynamic))
        return module

    def run_decompositions(self, decomp_table=None):
        """The program in core ops: dtorch's recorded ops already are its core ops, so this returns a copy."""
        return copy.copy(self)

    def __call__(self, *args, **kwargs):
        raise RuntimeError("Unable to call ExportedProgram directly. You should use `exported_program.module()` "
                           "instead.")

    def __str__(self):
        return f"ExportedProgram:\n{self._graph}\n\nGraph signature: {self.graph_signature!r}\nRange constraints: " \
               f"{self.range_constraints}\n"

    __repr__ = __str__


class _ExportedModule(ScriptModule):
    """``ExportedProgram.module()``: checks each input's shape against the program's, then replays the graph."""

    _expected = ()

    def forward(self, *args):
        flat = []
        from dtorch.jit._module import _flatten_inputs

        _flatten_inputs(self.graph.input_tree, args, flat, self._get_name())
        for index, (tensor, (shape, dynamic)) in enumerate(zip(flat, self._expected)):
            actual = tuple(tensor.shape)
            if len(actual) != len(shape):
                raise RuntimeError(f"Expected input at *args[{index}] to have {len(shape)} dimensions, but got "
                                   f"{len(actual)}")
            for axis, (want, got) in enumerate(zip(shape, actual)):
                dim = dynamic.get(str(axis))
                if dim is None:
                    if want != got:
                        raise RuntimeError(
                            f"Expected input at *args[{index}].shape[{axis}] to be equal to {want}, but got {got}"
                            " (mark the dimension dynamic with dynamic_shapes to allow other sizes)"
                        )
                elif got < dim["min"] or (dim["max"] is not None and got > dim["max"]):
                    raise RuntimeError(
                        f"Expected input at *args[{index}].shape[{axis}] to be in range [{dim['min']}, "
                        f"{dim['max']}] ({dim['name']}), but got {got}"
                    )
        return super().forward(*args)


def _dynamic_specs(dynamic_shapes, args, names):
    """Per flat user input, ``{str(axis): Dim json}`` from PyTorch's ``dynamic_shapes`` forms."""
    if dynamic_shapes is None:
        return [{} for _ in args]
    if isinstance(dynamic_shapes, dict):
        unknown = set(dynamic_shapes) - set(names)
        if unknown:
            raise ValueError(f"dynamic_shapes names {sorted(unknown)}, which are not inputs of forward {names}")
        specs = [dynamic_shapes.get(n) for n in names]
    else:
        specs = list(dynamic_shapes)
        if len(specs) != len(args):
            raise ValueError(f"dynamic_shapes has {len(specs)} entries for {len(args)} inputs")
    result = []
    for index, (spec, arg) in enumerate(zip(specs, args)):
        if spec is None:
            result.append({})
            continue
        if isinstance(spec, (tuple, list)):
            spec = {axis: d for axis, d in enumerate(spec) if d is not None}
        if not isinstance(spec, dict):
            raise ValueError(f"dynamic_shapes entry {index} must be a dict {{axis: Dim}}, got {type(spec).__name__}")
        dims = {}
        for axis, dim in spec.items():
            if axis < -arg.dim() or axis >= arg.dim():
                raise ValueError(f"dynamic_shapes entry {index} names axis {axis}, but the input has {arg.dim()}")
            if dim in (Dim.AUTO, Dim.DYNAMIC):
                dim = Dim(f"dim{index}_{axis % arg.dim()}")
            elif dim == Dim.STATIC:
                continue
            if not isinstance(dim, Dim):
                raise ValueError(f"dynamic_shapes entry {index}: axis {axis} must map to a Dim, got {dim!r}")
            dims[str(axis % arg.dim())] = dim.to_json()
        result.append(dims)
    return result


def export(mod, args, kwargs=None, *, dynamic_shapes=None, strict=False, preserve_module_call_signature=()):
    """Record ``mod``'s forward on ``args`` as an ``ExportedProgram``.

    Args:
        mod: the ``nn.Module`` to export.
        args: a tuple of example inputs (Tensors).
        dynamic_shapes: None (every size fixed), or per input a ``{axis: Dim}`` dict (a tuple matching ``args``
            or a dict keyed by forward's argument names).

    >>> import dtorch
    >>> from dtorch.export import Dim, export
    >>> ep = export(dtorch.nn.Linear(4, 2), (dtorch.randn(3, 4),), dynamic_shapes=({0: Dim("batch")},))
    >>> ep.module()(dtorch.randn(5, 4)).shape
    dtorch.Size([5, 2])
    """
    if not isinstance(mod, Module):
        raise ValueError(f"Expected `mod` to be an instance of `torch.nn.Module`, got {type(mod).__name__}.")
    if not isinstance(args, tuple):
        raise ValueError(f"Expecting `args` to be a tuple of example positional inputs, got {type(args).__name__}")
    if kwargs:
        names = _tracer.forward_parameter_names(mod.forward, len(args) + len(kwargs))
        args = args + tuple(kwargs[n] for n in names[len(args):] if n in kwargs)
    for index, arg in enumerate(args):
        if not isinstance(arg, Tensor):
            raise ValueError(f"dtorch.export supports Tensor inputs; input {index} is a {type(arg).__name__}")
    capture, _ = _tracer.record(mod, args, module=mod, strict=False, what="export")
    graph = capture.graph
    names = graph.input_names
    dynamic = _dynamic_specs(dynamic_shapes, args, names)
    state = dict(mod.named_parameters(remove_duplicate=False))
    state.update({n: b for n, b in mod.named_buffers(remove_duplicate=False) if n in graph.buffers})
    state = {n: t for n, t in state.items() if n in graph.parameters or n in graph.buffers}
    constants = {n: Tensor._from_array(a, None) for n, a in capture.constant_arrays.items()}
    module_names = {n: m._get_name() for n, m in mod.named_modules() if n}
    return ExportedProgram(graph, state, constants, [list(a.shape) for a in args], dynamic, mod._get_name(),
                           module_names)


def save(ep, f, *, extra_files=None, opset_version=None):
    """Write ``ep`` to ``f`` (a path or binary file) as a zip with a JSON graph and ``.npy`` weights.

    >>> import dtorch, io
    >>> buffer = io.BytesIO()
    >>> save(export(dtorch.nn.Linear(2, 2), (dtorch.ones(1, 2),)), buffer)
    >>> load(buffer).module()(dtorch.ones(1, 2)).shape
    dtorch.Size([1, 2])
    """
    if not isinstance(ep, ExportedProgram):
        raise TypeError(f"dtorch.export.save expects an ExportedProgram, got {type(ep).__name__}")
    graph = ep.graph
    tensors = {}
    for name in graph.parameters:
        tensors["parameter:" + name] = (ep.state_dict[name], "parameter")
    for name in graph.buffers:
        tensors["buffer:" + name] = (ep.state_dict[name], "buffer")
    for name, tensor in ep.constants.items():
        tensors["constant:" + name] = (tensor, "constant")
    meta = {"name": ep._name, "input_shapes": ep._input_shapes, "dynamic": ep._dynamic,
            "module_names": ep._module_names}
    _serialization.write_archive(f, graph, tensors, meta, extra_files, format_name=FORMAT)


def load(f, *, extra_files=None, expected_opset_version=None):
    """Read a program written by ``save``."""
    if hasattr(f, "seek"):
        f.seek(0)
    graph, tensors, meta, extra = _serialization.read_archive(f, expected_format=FORMAT)
    from dtorch.nn.parameter import Parameter

    state, constants, as_parameter = {}, {}, {}
    for key, (tensor, role) in tensors.items():
        name = key.split(":", 1)[1]
        if role == "parameter":  # one Parameter per stored tensor: tied weights stay tied
            if id(tensor) not in as_parameter:
                as_parameter[id(tensor)] = Parameter(tensor, requires_grad=tensor.requires_grad)
            tensor = as_parameter[id(tensor)]
        (constants if role == "constant" else state)[name] = tensor
    if extra_files is not None:
        for name in list(extra_files):
            if name in extra:
                extra_files[name] = extra[name].decode()
    return ExportedProgram(graph, state, constants, meta["input_shapes"], meta["dynamic"], meta.get("name", "Module"),
                           meta.get("module_names"))

