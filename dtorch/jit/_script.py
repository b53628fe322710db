"""``jit.script``: accept a module whose forward has no data-dependent control flow, refuse the others loudly.

dtorch has no TorchScript compiler. ``script`` reads the source of ``forward`` (and of the user-defined methods and
submodules it reaches) and follows which names hold Tensor values. A branch, loop or assert whose condition reads
tensor *values* (``if x.sum() > 0``, ``while``, ``for v in x``, ``.item()``, ``bool(x)``) is data-dependent and
refused with a pointer to ``jit.trace``; conditions on shapes, ``self`` attributes (``self.training``) or
``is None`` tests are fine. The scripted module runs its Python forward (so it behaves exactly as the original);
``graph``, ``code`` and ``jit.save`` record its eval-mode graph on zeros shaped like the first call's inputs.
"""

import ast
import inspect
import textwrap

from dtorch.nn.modules.module import Module

# Attributes and methods of a tensor that describe it rather than its values
_SHAPE_ATTRIBUTES = {"shape", "ndim", "dtype", "device", "is_cuda", "requires_grad", "layout", "T", "mT"}
_SHAPE_METHODS = {"size", "dim", "ndimension", "numel", "nelement", "is_floating_point", "is_complex",
                  "is_contiguous", "get_device", "element_size", "stride"}
_SHAPE_FUNCTIONS = {"len", "isinstance", "type", "hasattr", "callable", "id"}
_VALUE_READERS = {"item", "tolist", "numpy"}  # as methods, they turn values into Python data
_VALUE_FUNCTIONS = {"bool", "int", "float"}

_state = {"scripting": 0}


class _Refusal(Exception):
    def __init__(self, node, what):
        super().__init__(what)
        self.node = node
        self.what = what


class _Checker:
    """Walks one function body, tracking names that hold tensor-derived values."""

    def __init__(self, tainted, methods_to_follow):
        self.tainted = set(tainted)
        self.follow = methods_to_follow  # self.<name>(...) calls to check as well, collected here

    def is_tainted(self, node):
        if node is None:
            return False
        if isinstance(node, ast.Name):
            return node.id in self.tainted
        if isinstance(node, ast.Constant):
            return False
        if isinstance(node, ast.Attribute):
            if node.attr in _SHAPE_ATTRIBUTES:
                return False
            return self.is_tainted(node.value)
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in _SHAPE_METHODS:
                return False
            if isinstance(func, ast.Name) and func.id in _SHAPE_FUNCTIONS:
                return False
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
                self.follow.add(func.attr)
            args = list(node.args) + [k.value for k in node.keywords]
            return self.is_tainted(func) or any(self.is_tainted(a) for a in args)
        if isinstance(node, ast.Compare):
            if all(isinstance(op, (ast.Is, ast.IsNot)) for op in node.ops):
                return False
            return self.is_tainted(node.left) or any(self.is_tainted(c) for c in node.comparators)
        if isinstance(node, ast.Lambda):
            return False
        return any(self.is_tainted(child) for child in ast.iter_child_nodes(node))

    def check_expression(self, node):
        """Refuse value reads anywhere in ``node`` (``x.item()``, ``bool(x)``, a conditional expression on x)."""
        for child in ast.walk(node):
            if isinstance(child, ast.Call):
                func = child.func
                if isinstance(func, ast.Attribute) and func.attr in _VALUE_READERS and self.is_tainted(func.value):
                    raise _Refusal(child, f"`.{func.attr}()` turns tensor values into Python data")
                if isinstance(func, ast.Name) and func.id in _VALUE_FUNCTIONS and child.args \
                        and self.is_tainted(child.args[0]):
                    raise _Refusal(child, f"`{func.id}()` of a tensor turns its values into Python data")
                self.is_tainted(child)  # collects self.method calls to follow
            elif isinstance(child, ast.IfExp) and self.is_tainted(child.test):
                raise _Refusal(child, "a conditional expression tests tensor values")
            elif isinstance(child, ast.comprehension) and self.is_tainted(child.iter):
                raise _Refusal(child.iter, "a comprehension iterates over a tensor (data-dependent control flow)")
            elif isinstance(child, ast.BoolOp) and any(self.is_tainted(v) for v in child.values):
                raise _Refusal(child, "`and`/`or` on tensors tests their values")
            elif isinstance(child, ast.UnaryOp) and isinstance(child.op, ast.Not) and self.is_tainted(child.operand):
                raise _Refusal(child, "`not` of a tensor tests its values")

    def bind(self, target, tainted):
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                if tainted:
                    self.tainted.add(node.id)
                else:
                    self.tainted.discard(node.id)

    def check_body(self, statements):
        for statement in statements:
            self.check_statement(statement)

    def check_statement(self, node):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return
        if isinstance(node, (ast.If, ast.While)):
            self.check_expression(node.test)
            if self.is_tainted(node.test):
                kind = "an if" if isinstance(node, ast.If) else "a while loop"
                raise _Refusal(node, f"{kind} tests tensor values (data-dependent control flow)")
            self.check_body(node.body)
            self.check_body(node.orelse)
            return
        if isinstance(node, ast.Assert):
            if self.is_tainted(node.test):
                raise _Refusal(node, "an assert tests tensor values")
            return
        if isinstance(node, (ast.For, ast.AsyncFor)):
            self.check_expression(node.iter)
            if self.is_tainted(node.iter):
                raise _Refusal(node, "a for loop iterates over a tensor (data-dependent control flow)")
            self.bind(node.target, False)
            self.check_body(node.body)
            self.check_body(node.orelse)
            return
        if isinstance(node, ast.Assign):
            self.check_expression(node.value)
            tainted = self.is_tainted(node.value)
            for target in node.targets:
                self.bind(target, tainted)
            return
        if isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            if node.value is not None:
                self.check_expression(node.value)
                tainted = self.is_tainted(node.value) or (
                    isinstance(node, ast.AugAssign) and self.is_tainted(node.target))
                self.bind(node.target, tainted)
            return
        if isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                self.check_expression(item.context_expr)
            self.check_body(node.body)
            return
        if isinstance(node, ast.Try):
            self.check_body(node.body)
            for handler in node.handlers:
                self.check_body(handler.body)
            self.check_body(node.orelse)
            self.check_body(node.finalbody)
            return
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.check_expression(child)


def _function_ast(function):
    source = textwrap.dedent(inspect.getsource(function))
    tree = ast.parse(source)
    definition = tree.body[0]
    return definition, inspect.getsourcelines(function)[1]


def _is_library(cls):
    return (cls.__module__ or "").startswith("dtorch.")


def _skipped(function):
    return getattr(function, "_dtorch_jit_ignore", False) or getattr(function, "_dtorch_jit_unused", False)


def check_module(module):
    """Raise a RuntimeError naming the line when ``module`` (or a user submodule) has data-dependent control flow."""
    for submodule in module.modules():
        cls = type(submodule)
        if _is_library(cls):
            continue
        pending = ["forward"]
        seen = set()
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            function = getattr(cls, name, None)
            if not inspect.isfunction(function) or _skipped(function) or _is_library(
                    next((c for c in cls.__mro__ if name in c.__dict__), cls)):
                continue
            try:
                definition, first_line = _function_ast(function)
            except (OSError, TypeError, SyntaxError) as error:
                raise RuntimeError(
                    f"dtorch.jit.script cannot read the source of {cls.__name__}.{name} ({error}); use "
                    "dtorch.jit.trace(module, example_inputs) instead"
                ) from None
            arguments = [a.arg for a in definition.args.args[1:]] + [a.arg for a in definition.args.kwonlyargs]
            if definition.args.vararg:
                arguments.append(definition.args.vararg.arg)
            follow = set()
            checker = _Checker(arguments, follow)
            try:
                checker.check_body(definition.body)
            except _Refusal as refusal:
                line = first_line + refusal.node.lineno - 1
                text = ast.get_source_segment(textwrap.dedent(inspect.getsource(function)), refusal.node) or ""
                text = text.splitlines()[0] if text else ""
                raise RuntimeError(
                    f"dtorch.jit.script cannot compile {cls.__name__}.{name} (line {line}: `{text}`): {refusal.what}. "
                    "dtorch.jit.script supports forwards without data-dependent control flow; use "
                    "dtorch.jit.trace(module, example_inputs) instead, which records the path taken for the "
                    "example, or mark the method with @dtorch.jit.ignore"
                ) from None
            pending.extend(follow - seen)


class RecursiveScriptModule(Module):
    """What ``jit.script(module)`` returns: the module itself (same parameters and buffers, same Python forward),
    plus its graph, recorded on demand from the first call's input shapes (or ``example_inputs``)."""

    def __init__(self, original):
        super().__init__()
        for key in ("_parameters", "_buffers", "_non_persistent_buffers_set", "_modules"):
            object.__setattr__(self, key, getattr(original, key))
        object.__setattr__(self, "_original", original)
        object.__setattr__(self, "_example", None)
        self.training = original.training

    def _get_name(self):
        return type(self._original).__name__

    def train(self, mode=True):
        self._original.train(mode)
        self.training = mode
        return self

    def forward(self, *args):
        if self._example is None:
            object.__setattr__(self, "_example", _input_spec(args))
        _state["scripting"] += 1
        try:
            return self._original(*args)
        finally:
            _state["scripting"] -= 1

    def _traced_for_saving(self):
        """A ScriptModule of the forward's graph, recorded in eval mode on zeros shaped like the first call's
        inputs (the forward has no data-dependent control flow, so any values record the same graph)."""
        from dtorch.jit import _module_from_capture, _tracer

        if self._example is None:
            raise RuntimeError(
                f"the scripted {self._get_name()} has not run yet, so its input shapes are unknown: call it once on "
                "an example input (or pass example_inputs to dtorch.jit.script) before saving it"
            )
        args = _zeros_like_spec(self._example)
        with _tracer.eval_mode(self._original):
            capture, _ = _tracer.record(self._original, args, module=self._original, strict=False, what="script")
        return _module_from_capture(capture, self._original)

    @property
    def graph(self):
        return self._traced_for_saving().graph

    @property
    def code(self):
        return self._traced_for_saving().code

    def save(self, f, _extra_files=None):
        from dtorch.jit._serialization import save

        save(self, f, _extra_files=_extra_files)


def _input_spec(args):
    from dtorch.tensor import Tensor

    if isinstance(args, Tensor):
        return ("tensor", tuple(args.shape), args.dtype, args.device)
    if isinstance(args, (tuple, list)):
        return (type(args).__name__, [_input_spec(a) for a in args])
    return ("value", args)


def _zeros_like_spec(spec):
    import dtorch

    kind = spec[0]
    if kind == "tensor":
        return dtorch.zeros(spec[1], dtype=spec[2], device=spec[3])
    if kind in ("tuple", "list"):
        items = [_zeros_like_spec(s) for s in spec[1]]
        return tuple(items) if kind == "tuple" else items
    return spec[1]


def is_scripting():
    return _state["scripting"] > 0
