"""The recorded graph shared by ``dtorch.jit``, ``dtorch.export`` and ``dtorch.onnx``: its JSON form and its replay.

A graph is plain data. Values are named ``"%N"``; parameters, buffers and constants are values named by the
model's ``named_parameters()``/``named_buffers()`` (constants: ``"c0"``, ``"c1"``, ...). Each node is
``{"op", "inputs", "attrs", "outputs"}``: ``op`` is an ``Op``'s registry name (``Linear``, ``Conv2d``, ...)
or a whole-module op (``nn.LSTM``, ``nn.MultiheadAttention``, see ``dtorch.jit._modules``); ``inputs`` are value
names or Python constants (numbers, None); ``attrs`` are the op's keyword arguments, encoded as JSON (tuples as
lists, dtypes as ``{"dtype": name}``, sizes that depend on an input's shape as ``{"sym": expression}``).

Replay (``GraphRunner``) calls ``Cls.apply(*inputs, **attrs)`` for every node, so a replayed graph records
autograd as the original forward did: a loaded model can be fine-tuned.
"""

import json
import math

import numpy as np

from dtorch.autograd import function as function_module
from dtorch.tensor import Tensor

FORMAT = "dtorch.graph"
FORMAT_VERSION = 1


# ---- symbolic sizes ----------------------------------------------------------------------------------------------


class SymInt(int):
    """An int read from a traced tensor's shape that remembers where it came from (``expr``).

    It behaves as the int it is; arithmetic with other ints keeps the expression, so a size computed from
    ``x.size(0)`` is replayed from the actual input's shape. A floor division of a plain number by a symbolic size
    (how ``-1`` is resolved in ``view``) becomes ``["infer"]``: replayed as ``-1``.
    """

    def __new__(cls, value, expr):
        self = int.__new__(cls, value)
        self.expr = expr
        return self

    __repr__ = int.__repr__
    __str__ = int.__repr__

    def _combine(self, other, name, operation, reverse=False):
        if not isinstance(other, int) or isinstance(other, bool):
            return NotImplemented
        left, right = (other, self) if reverse else (self, other)
        value = operation(int(left), int(right))
        a, b = _expr_of(left), _expr_of(right)
        if a == ["infer"] or b == ["infer"] or (name == "floordiv" and isinstance(a, int) and not isinstance(b, int)):
            return SymInt(value, ["infer"])
        return SymInt(value, [name, a, b])

    def __add__(self, other):
        return self._combine(other, "add", lambda a, b: a + b)

    def __radd__(self, other):
        return self._combine(other, "add", lambda a, b: a + b, True)

    def __sub__(self, other):
        return self._combine(other, "sub", lambda a, b: a - b)

    def __rsub__(self, other):
        return self._combine(other, "sub", lambda a, b: a - b, True)

    def __mul__(self, other):
        return self._combine(other, "mul", lambda a, b: a * b)

    def __rmul__(self, other):
        return self._combine(other, "mul", lambda a, b: a * b, True)

    def __floordiv__(self, other):
        return self._combine(other, "floordiv", lambda a, b: a // b)

    def __rfloordiv__(self, other):
        return self._combine(other, "floordiv", lambda a, b: a // b, True)

    def __mod__(self, other):
        return self._combine(other, "mod", lambda a, b: a % b)

    def __rmod__(self, other):
        return self._combine(other, "mod", lambda a, b: a % b, True)

    def __neg__(self):
        return SymInt(-int(self), ["neg", self.expr])

    def __hash__(self):
        return int.__hash__(self)


def _expr_of(value):
    return value.expr if isinstance(value, SymInt) else int(value)


_ARITHMETIC = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "floordiv": lambda a, b: a // b,
    "mod": lambda a, b: a % b,
}


def evaluate(expr, env):
    """The value of a size expression for the shapes of the Tensors in ``env`` (value name -> Tensor)."""
    if isinstance(expr, int):
        return expr
    head = expr[0]
    if head == "dim":
        return env[expr[1]]._array.shape[expr[2]]
    if head == "infer":
        return -1
    if head == "neg":
        return -evaluate(expr[1], env)
    return _ARITHMETIC[head](evaluate(expr[1], env), evaluate(expr[2], env))


def has_infer(expr):
    if isinstance(expr, int):
        return False
    if expr[0] == "infer":
        return True
    return any(has_infer(e) for e in expr[1:] if isinstance(e, list))


# ---- attrs as JSON ---------------------------------------------------------------------------------------------


class Sym:
    """A decoded ``{"sym": expr}`` attr entry, evaluated at replay time."""

    __slots__ = ("expr",)

    def __init__(self, expr):
        self.expr = expr


def encode(value, where):
    """``value`` (an op's keyword argument) as JSON data; a TypeError naming ``where`` for anything else."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, SymInt):
        return int(value) if has_infer(value.expr) else {"sym": value.expr}
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, tuple):
        return [encode(v, where) for v in value]
    if isinstance(value, list):
        return {"list": [encode(v, where) for v in value]}
    if isinstance(value, np.dtype):
        return {"dtype": value.name}
    if isinstance(value, type) and issubclass(value, np.generic):
        return {"dtype": np.dtype(value).name}
    if isinstance(value, slice):
        return {"slice": [encode(value.start, where), encode(value.stop, where), encode(value.step, where)]}
    if value is Ellipsis:
        return {"ellipsis": True}
    if isinstance(value, dict):
        return {"dict": {str(k): encode(v, where) for k, v in value.items()}}
    raise TypeError(
        f"{where}: an argument of type {type(value).__name__} ({value!r:.60}) cannot be recorded; only numbers, "
        "strings, None, dtypes and tuples of them can"
    )


def decode(data):
    """The inverse of ``encode``: lists become tuples, ``{"sym": e}`` a ``Sym``."""
    if isinstance(data, list):
        return tuple(decode(v) for v in data)
    if isinstance(data, dict):
        (key, inner), = data.items()
        if key == "sym":
            return Sym(inner)
        if key == "list":
            return [decode(v) for v in inner]
        if key == "dtype":
            return np.dtype(inner)
        if key == "float":
            return float(inner)
        if key == "slice":
            return slice(*[decode(v) for v in inner])
        if key == "ellipsis":
            return Ellipsis
        if key == "dict":
            return {k: decode(v) for k, v in inner.items()}
        raise ValueError(f"unknown attr encoding {key!r}")
    return data


def has_sym(value):
    if isinstance(value, Sym):
        return True
    if isinstance(value, (tuple, list)):
        return any(has_sym(v) for v in value)
    if isinstance(value, dict):
        return any(has_sym(v) for v in value.values())
    return False


def resolve(value, env):
    if isinstance(value, Sym):
        return evaluate(value.expr, env)
    if isinstance(value, tuple):
        return tuple(resolve(v, env) for v in value)
    if isinstance(value, list):
        return [resolve(v, env) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, env) for k, v in value.items()}
    return value


# ---- the graph -------------------------------------------------------------------------------------------------


class Graph:
    """A recorded forward: inputs, named parameters/buffers/constants, nodes and the output structure.

    ``str(graph)`` prints one line per node; ``graph.to_json()``/``Graph.from_json`` round-trip it.
    """

    def __init__(self):
        self.inputs = []  # value names of the flattened positional inputs
        self.input_tree = None  # the structure of forward's arguments (see ``flatten``)
        self.input_names = []  # forward's parameter names, for printing and ONNX
        self.parameters = {}  # name -> value name
        self.buffers = {}
        self.constants = {}
        self.nodes = []
        self.output_tree = None
        self.values = {}  # value name -> {"shape": [...], "dtype": name} as traced

    def new_value(self, array):
        name = f"%{len(self.values)}"
        self.values[name] = {"shape": [int(s) for s in array.shape], "dtype": array.dtype.name}
        return name

    def output_values(self):
        return [leaf for leaf in tree_leaves(self.output_tree)]

    def to_json(self):
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "inputs": self.inputs,
            "input_names": self.input_names,
            "input_tree": self.input_tree,
            "parameters": self.parameters,
            "buffers": self.buffers,
            "constants": self.constants,
            "nodes": self.nodes,
            "output_tree": self.output_tree,
            "values": self.values,
        }

    @classmethod
    def from_json(cls, data):
        if data.get("format") != FORMAT:
            raise RuntimeError(f"not a dtorch graph (format {data.get('format')!r}, expected {FORMAT!r})")
        if data.get("version", 0) > FORMAT_VERSION:
            raise RuntimeError(
                f"this graph was written by a newer dtorch (graph version {data['version']}; this dtorch reads up "
                f"to {FORMAT_VERSION})"
            )
        graph = cls()
        for key in ("inputs", "input_names", "input_tree", "parameters", "buffers", "constants", "nodes",
                    "output_tree", "values"):
            setattr(graph, key, data[key])
        return graph

    def dumps(self):
        return json.dumps(self.to_json(), indent=1)

    def _describe(self, name):
        info = self.values.get(name)
        if info is None:
            return name
        return f"{name} : {info['dtype']}[{', '.join(map(str, info['shape']))}]"

    def __str__(self):
        lines = ["graph(" + ", ".join(
            [self._describe(v) for v in self.inputs]
            + [f"{self._describe(v)} ({kind} {name})" for kind, table in
               (("param", self.parameters), ("buffer", self.buffers), ("const", self.constants))
               for name, v in table.items()]) + "):"]
        for node in self.nodes:
            outputs = ", ".join(self._describe(v) if v is not None else "None" for v in node["outputs"])
            args = ", ".join(str(i) for i in node["inputs"])
            attrs = ", ".join(f"{k}={json.dumps(v)}" for k, v in node["attrs"].items())
            if "shape_rule" in node:
                attrs += f", shape_rule={json.dumps(node['shape_rule'])}"
            lines.append(f"  {outputs} = {node['op']}({args}{'; ' + attrs if attrs else ''})")
        lines.append(f"  return {json.dumps(self.output_tree)}")
        return "\n".join(lines)

    __repr__ = __str__

    def code(self):
        """Python-like source of the forward (what ``ScriptModule.code`` shows)."""
        names = {}
        for i, v in enumerate(self.inputs):
            names[v] = self.input_names[i] if i < len(self.input_names) else f"input_{i}"
        for kind, table in (("self", self.parameters), ("self", self.buffers), ("self._constants", self.constants)):
            for name, v in table.items():
                names[v] = f"{kind}.{name}"
        lines = ["def forward(self, " + ", ".join(names[v] for v in self.inputs) + "):"]
        for node in self.nodes:
            for v in node["outputs"]:
                if v is not None:
                    names[v] = "_" + v[1:]
            args = [names.get(i, repr(i)) if isinstance(i, str) else repr(i) for i in node["inputs"]]
            args += [f"{k}={json.dumps(v)}" for k, v in node["attrs"].items()]
            if "shape_rule" in node:
                args.append(f"shape_rule={json.dumps(node['shape_rule'])}")
            results = ", ".join(names[v] if v is not None else "_" for v in node["outputs"])
            lines.append(f"    {results} = {node['op']}({', '.join(args)})")
        lines.append("    return " + _tree_code(self.output_tree, names))
        return "\n".join(lines) + "\n"


def _tree_code(tree, names):
    if isinstance(tree, str):
        return names.get(tree, tree)
    if isinstance(tree, dict):
        (kind, items), = tree.items()
        if kind == "tuple":
            return "(" + ", ".join(_tree_code(t, names) for t in items) + ("," if len(items) == 1 else "") + ")"
        if kind == "list":
            return "[" + ", ".join(_tree_code(t, names) for t in items) + "]"
        if kind == "dict":
            return "{" + ", ".join(f"{k!r}: {_tree_code(t, names)}" for k, t in items.items()) + "}"
        return repr(items)
    return repr(tree)


# ---- argument and output structures ------------------------------------------------------------------------------


def flatten(value, name_of, strict=True, where="output"):
    """A JSON structure for ``value`` whose Tensor leaves become ``name_of(tensor)``.

    Tuples are ``{"tuple": [...]}``, lists ``{"list": [...]}`` and dicts ``{"dict": {...}}`` (the last two only
    with ``strict=False``, as in PyTorch); numbers, strings and None are ``{"const": value}``.
    """
    if isinstance(value, Tensor):
        return name_of(value)
    if isinstance(value, tuple):
        return {"tuple": [flatten(v, name_of, strict, where) for v in value]}
    if isinstance(value, list):
        if strict:
            raise RuntimeError(
                f"Encountering a list at the {where} of the tracer might cause the trace to be incorrect, this is "
                "only valid if the container structure does not change based on the module's inputs. Consider "
                "using a constant container instead (e.g. for `list`, use a `tuple` instead. for `dict`, use a "
                "`NamedTuple` instead). If you absolutely need this and know the side effects, pass strict=False "
                "to trace() to allow this behavior."
            )
        return {"list": [flatten(v, name_of, strict, where) for v in value]}
    if isinstance(value, dict):
        if strict:
            raise RuntimeError(
                f"Encountering a dict at the {where} of the tracer might cause the trace to be incorrect; pass "
                "strict=False to trace() to allow it"
            )
        return {"dict": {str(k): flatten(v, name_of, strict, where) for k, v in value.items()}}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"const": value}
    raise RuntimeError(f"the {where} contains a {type(value).__name__}, which a traced graph cannot hold")


def tree_leaves(tree):
    if isinstance(tree, str):
        return [tree]
    if isinstance(tree, dict):
        (kind, items), = tree.items()
        if kind in ("tuple", "list"):
            return [leaf for t in items for leaf in tree_leaves(t)]
        if kind == "dict":
            return [leaf for t in items.values() for leaf in tree_leaves(t)]
    return []


def unflatten(tree, lookup):
    if isinstance(tree, str):
        return lookup(tree)
    (kind, items), = tree.items()
    if kind == "tuple":
        return tuple(unflatten(t, lookup) for t in items)
    if kind == "list":
        return [unflatten(t, lookup) for t in items]
    if kind == "dict":
        return {k: unflatten(t, lookup) for k, t in items.items()}
    return items


# ---- replay ------------------------------------------------------------------------------------------------------


_LIBRARY_OPS = None


def library_ops(refresh=False):
    """Every ``Op`` subclass that dtorch itself defines, by name (user subclasses cannot shadow them);
    ``refresh`` rescans (for ops of dtorch modules imported after the first scan)."""
    global _LIBRARY_OPS
    if _LIBRARY_OPS is None or refresh:
        table = {}
        pending = list(function_module.Op.__subclasses__())
        while pending:
            cls = pending.pop()
            pending.extend(cls.__subclasses__())
            module = cls.__module__
            if module.startswith("dtorch.") and not module.startswith("dtorch.autograd") and \
                    not cls.__name__.startswith("_"):
                table.setdefault(cls.__name__, cls)
        _LIBRARY_OPS = table
    return _LIBRARY_OPS


SHAPE_RULE_OPS = ("Reshape", "Expand")


def shape_from_rule(rule, x, env):
    """The target shape of a Reshape/Expand node for the actual input ``x`` (see ``_tracer._shape_rule``)."""
    (kind, arg), = rule.items()
    shape = tuple(x._array.shape)
    if kind == "unsqueeze":
        return shape[:arg] + (1,) + shape[arg:]
    if kind == "squeeze":
        axes = range(len(shape)) if arg is None else arg
        return tuple(s for i, s in enumerate(shape) if not (i in axes and s == 1))
    if kind == "flatten":
        start, end = arg
        middle = 1
        for s in shape[start:end + 1]:
            middle *= s
        return shape[:start] + (middle,) + shape[end + 1:]
    entries = [evaluate(e, env) if isinstance(e, list) else e for e in arg]
    if kind == "expand":
        lead = len(entries) - len(shape)
        return tuple(shape[i - lead] if e == -1 and i >= lead else e for i, e in enumerate(entries))
    # "reshape": one entry may be -1 (inferred from the input's size)
    if -1 in entries:
        known = 1
        for e in entries:
            if e != -1:
                known *= e
        size = x._array.size
        entries[entries.index(-1)] = size // known if known else 0
    return tuple(entries)


class GraphRunner:
    """Replays a ``Graph`` on Tensors: ``runner(tensors_by_name, flat_inputs)`` returns the output Tensors by name."""

    def __init__(self, graph):
        from dtorch.jit import _modules

        self.graph = graph
        ops = library_ops()
        self.steps = []
        for node in graph.nodes:
            op = node["op"]
            rule = node.get("shape_rule")
            if op in _modules.MODULE_OPS:  # their attrs are plain JSON (config, argument structure)
                runner = _modules.MODULE_OPS[op](node["attrs"])
                self.steps.append((None, runner, node["inputs"], None, False, None, node["outputs"]))
                continue
            attrs = {k: decode(v) for k, v in node["attrs"].items()}
            cls = ops.get(op) or library_ops(refresh=True).get(op)
            if cls is None:
                raise RuntimeError(f"this graph uses the op {op!r}, which this version of dtorch does not have")
            self.steps.append((cls, None, node["inputs"], attrs, has_sym(attrs), rule, node["outputs"]))

    def __call__(self, env):
        for cls, module_runner, inputs, attrs, symbolic, rule, outputs in self.steps:
            args = [env[i] if isinstance(i, str) else i for i in inputs]
            if module_runner is not None:
                results = module_runner(args)
            else:
                call_attrs = resolve(attrs, env) if symbolic else attrs
                if rule is not None:
                    call_attrs = dict(call_attrs)
                    call_attrs["shape"] = shape_from_rule(rule, args[0], env)
                result = cls.apply(*args, **call_attrs)
                results = result if isinstance(result, tuple) else (result,)
            if len(results) != len(outputs):
                raise RuntimeError(f"op {cls.__name__ if cls else 'module'} returned {len(results)} values, the "
                                   f"graph recorded {len(outputs)}")
            for name, value in zip(outputs, results):
                if name is not None:
                    env[name] = value
        return env
