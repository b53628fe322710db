"""``dtorch.jit``: PyTorch's ``torch.jit`` surface on dtorch's recorded graphs.

- ``trace(model, example_inputs)`` runs the model once and records every op (``Op.apply`` calls) into a graph;
  the result is a ``TracedModule`` that replays it. Sizes read with ``x.size(0)``/``x.shape`` are recorded as
  expressions of the input's shape, so a model traced at batch 1 runs at batch 3. Python control flow is not
  recorded: reading a traced tensor's value (``bool``, ``item``, iteration) warns with ``TracerWarning``.
- ``script(module)`` accepts modules without data-dependent control flow (see ``_script``) and refuses others.
- ``save``/``load``: a zip archive with the graph as JSON and the weights as ``.npy`` (no pickle); loading needs
  no model code.

Factories sized by traced tensors (``dtorch.zeros(x.size(0), h)``, ``zeros_like(x)``, ``arange(x.size(1))``)
are recorded as nodes; dropout masks are redrawn on every replay. Known limits: custom ``autograd.Function``s are
refused (a clear error); the graph keeps the training/eval mode it was traced in, as PyTorch's traces do; values
computed outside dtorch's ops (NumPy, ``.item()``, functions such as ``isclose`` that return plain results) are
constants of the trace, which ``check_trace`` reports (``TracerWarning``) by replaying on other input values.
"""

import inspect
import warnings

import numpy as np

from dtorch.jit import _tracer
from dtorch.jit._graph import Graph  # noqa: F401
from dtorch.jit._module import ScriptModule, TracedModule
from dtorch.jit._script import RecursiveScriptModule, check_module
from dtorch.jit._script import is_scripting as _is_scripting
from dtorch.jit._serialization import load, save  # noqa: F401
from dtorch.jit._tracer import TracerWarning  # noqa: F401
from dtorch.nn.modules.module import Module
from dtorch.tensor import Tensor

__all__ = ["trace", "script", "save", "load", "ignore", "unused", "is_tracing", "is_scripting", "ScriptModule",
           "TracedModule", "ScriptFunction", "TracerWarning", "Error", "freeze", "optimize_for_inference", "annotate",
           "fork", "wait", "Future"]


class Error(RuntimeError):
    """Raised by ``check_trace`` when the traced graph does not reproduce the Python function."""


TracingCheckError = Error


class ScriptFunction(ScriptModule):
    """What ``trace`` returns for a plain function: a callable replaying its graph."""


def _module_from_capture(capture, module, cls=TracedModule, name=None):
    """The ScriptModule for a finished capture, over ``module``'s parameters and buffers (None for a function)."""
    graph = capture.graph
    parameters, buffers, names = {}, {}, {}
    if module is not None:
        by_name = dict(module.named_parameters(remove_duplicate=False))
        parameters = {n: by_name[n] for n in graph.parameters}
        buffer_by_name = dict(module.named_buffers(remove_duplicate=False))
        buffers = {n: buffer_by_name[n] for n in graph.buffers}
        names = {n: m._get_name() for n, m in module.named_modules() if n}
        name = name or module._get_name()
        training = module.training
    else:
        training = False
    constants = {n: Tensor._from_array(a, None) for n, a in capture.constant_arrays.items()}
    return cls(graph, parameters, buffers, constants, name=name or "Module", training=training, module_names=names)


def _compare(expected, actual, tolerance, where, shapes_must_match=True):
    """Warn (``TracerWarning``) where two output structures differ; a different structure raises ``Error``."""
    expected_leaves = _leaves(expected)
    actual_leaves = _leaves(actual)
    if len(expected_leaves) != len(actual_leaves):
        raise Error(f"{where}: the traced function returned {len(actual_leaves)} outputs, the Python function "
                    f"{len(expected_leaves)}")
    for index, (e, a) in enumerate(zip(expected_leaves, actual_leaves)):
        if not isinstance(e, Tensor):
            continue
        if tuple(e.shape) != tuple(a.shape):
            message = (f"{where}: output {index} has shape {list(a.shape)} in the traced function and "
                       f"{list(e.shape)} in the Python function")
            if shapes_must_match:
                raise Error(message)
            warnings.warn(message + "; the trace does not generalise to other inputs", TracerWarning, stacklevel=4)
            continue
        ea, aa = _array_of(e), _array_of(a)
        if not np.allclose(ea, aa, rtol=tolerance, atol=tolerance, equal_nan=True):
            warnings.warn(
                f"Output nr {index + 1}. of the traced function does not match the corresponding output of the "
                f"Python function ({where}). Largest difference: {np.nanmax(np.abs(ea - aa)):.3g}. The trace may "
                "depend on Python control flow or on random numbers, or have recorded a value computed from the "
                "inputs as a constant.",
                TracerWarning, stacklevel=4,
            )


def _array_of(tensor):
    array = tensor.detach()._array
    return array.get() if hasattr(array, "get") else np.asarray(array)


def _reversed_inputs(args):
    """The example inputs with each tensor's values in reverse order: same shapes, dtypes and value ranges."""
    if isinstance(args, Tensor):
        array = args._array
        return Tensor._from_array(array.reshape(-1)[::-1].reshape(array.shape).copy(), None)
    if isinstance(args, (tuple, list)):
        return type(args)(_reversed_inputs(a) for a in args)
    return args


def check_generalises(traced, reference, args, tolerance=1e-5):
    """Replay ``traced`` on other values of the example inputs' shapes (the values reversed) and compare with
    ``reference``: a value the trace baked in as a constant shows up as a ``TracerWarning``."""
    other = _reversed_inputs(args)
    try:
        expected = reference(*other)
    except Exception:  # the Python function refuses these values (an input that must be sorted, say): no check
        return
    _compare(expected, traced(*other), tolerance, "other values of the example inputs' shapes",
             shapes_must_match=False)


def _leaves(value):
    if isinstance(value, (tuple, list)):
        return [leaf for item in value for leaf in _leaves(item)]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    return [value]


def trace(func, example_inputs=None, optimize=None, check_trace=True, check_inputs=None, check_tolerance=1e-5,
          strict=True, _force_outplace=False, _module_class=None, _compilation_unit=None,
          example_kwarg_inputs=None, _store_inputs=True):
    """Record ``func`` (a Module or a function) run on ``example_inputs`` as a replayable graph.

    Args:
        func: an ``nn.Module`` (its ``forward`` is traced; parameters and buffers keep their names) or a function.
        example_inputs: a Tensor or a tuple of Tensors (nested tuples/lists allowed).
        check_trace: replay the graph on the example inputs (and on each of ``check_inputs``) and compare with
            the Python function; differences warn (``TracerWarning``), different shapes raise ``jit.Error``.
        strict: with False, lists and dicts may appear in the output.
        example_kwarg_inputs: a dict of keyword inputs, used instead of ``example_inputs``.

    Returns:
        A ``TracedModule`` (a ``ScriptFunction`` for a function).

    >>> import dtorch
    >>> net = dtorch.nn.Sequential(dtorch.nn.Linear(4, 3), dtorch.nn.ReLU())
    >>> traced = dtorch.jit.trace(net.eval(), dtorch.randn(1, 4))
    >>> traced(dtorch.randn(3, 4)).shape
    dtorch.Size([3, 3])
    """
    if optimize is not None:
        warnings.warn("`optimize` is deprecated and has no effect.", DeprecationWarning, stacklevel=2)
    if example_kwarg_inputs is not None:
        target = func.forward if isinstance(func, Module) else func
        names = [p for p in inspect.signature(target).parameters]
        example_inputs = tuple(example_kwarg_inputs[n] for n in names if n in example_kwarg_inputs)
    if example_inputs is None:
        raise ValueError("dtorch.jit.trace needs example_inputs (a Tensor or a tuple of Tensors)")
    args = _tracer._as_args(example_inputs)
    owner = getattr(func, "__self__", None)
    if isinstance(owner, Module) and getattr(func, "__name__", "") == "forward":
        func = owner  # trace(model.forward, ...) names the parameters as trace(model, ...) does
    if isinstance(func, Module):
        capture, output = _tracer.record(func, args, module=func, strict=strict)
        traced = _module_from_capture(capture, func)
        reference = func
    else:
        if not callable(func):
            raise TypeError(f"dtorch.jit.trace expects a Module or a function, got {type(func).__name__}")
        capture, output = _tracer.record(func, args, strict=strict)
        traced = _module_from_capture(capture, None, cls=ScriptFunction, name=getattr(func, "__name__", "fn"))
        reference = func
    if check_trace:
        _compare(output, traced(*args), check_tolerance, "the example inputs")
        check_generalises(traced, reference, args, check_tolerance)
        for extra in check_inputs or ():
            extra_args = _tracer._as_args(extra)
            _compare(reference(*extra_args), traced(*extra_args), check_tolerance, "check_inputs")
    return traced


def script(obj, optimize=None, _frames_up=0, _rcb=None, example_inputs=None):
    """Script a module whose forward has no data-dependent control flow (a loud refusal otherwise).

    The result runs the module's own forward and records its graph on the first call (or right away from
    ``example_inputs``, a tuple of Tensors or a list of such tuples); ``graph``, ``code`` and ``jit.save`` use it.
    Methods marked ``@dtorch.jit.ignore`` or ``@dtorch.jit.unused`` are not checked.

    >>> import dtorch
    >>> scripted = dtorch.jit.script(dtorch.nn.Linear(4, 2))
    >>> scripted(dtorch.ones(1, 4)).shape
    dtorch.Size([1, 2])
    """
    if isinstance(obj, (ScriptModule, RecursiveScriptModule)):
        return obj
    if not isinstance(obj, Module):
        raise RuntimeError(
            f"dtorch.jit.script supports nn.Module instances, not {type(obj).__name__}; use dtorch.jit.trace for "
            "functions"
        )
    check_module(obj)
    scripted = RecursiveScriptModule(obj)
    if example_inputs is not None:
        first = example_inputs[0] if isinstance(example_inputs, list) else example_inputs
        scripted(*_tracer._as_args(first))
    return scripted


def ignore(drop=False, **kwargs):
    """Mark a method that ``script`` leaves alone (it runs as Python). Use as ``@ignore`` or ``@ignore(drop=True)``.

    >>> @ignore
    ... def debug_print(x):
    ...     return x
    >>> debug_print._dtorch_jit_ignore
    True
    """
    if callable(drop):
        drop._dtorch_jit_ignore = True
        return drop

    def decorator(function):
        function._dtorch_jit_ignore = True
        function._dtorch_jit_drop = bool(drop)
        return function

    return decorator


def unused(fn):
    """Mark a method that ``script`` does not check (PyTorch replaces it by a raise in compiled code).

    >>> @unused
    ... def legacy(x):
    ...     return x
    >>> legacy._dtorch_jit_unused
    True
    """
    if isinstance(fn, property):
        for accessor in (fn.fget, fn.fset, fn.fdel):
            if accessor is not None:
                accessor._dtorch_jit_unused = True
        return fn
    fn._dtorch_jit_unused = True
    return fn


def is_tracing():
    """True while ``trace`` (or ``export``/``onnx.export``) records a forward.

    >>> is_tracing()
    False
    """
    return _tracer.current() is not None


def is_scripting():
    """True while a module returned by ``script`` runs its forward.

    >>> is_scripting()
    False
    """
    return _is_scripting()


def export(fn):
    """Kept for PyTorch's API (``@torch.jit.export`` marks extra methods to compile); a no-op here."""
    return fn


def freeze(mod, preserved_attrs=None, optimize_numerics=True):
    """PyTorch's ``jit.freeze``: a scripted or traced module in eval mode, returned as is (the recorded graph
    already treats the parameters as its inputs; nothing is folded).

    >>> import dtorch
    >>> frozen = freeze(script(dtorch.nn.Linear(2, 2)).eval())
    >>> frozen.training
    False
    """
    if not isinstance(mod, (ScriptModule, RecursiveScriptModule)):
        raise RuntimeError("Freezing expects a ScriptModule as input. Please use dtorch.jit.script or "
                           "dtorch.jit.trace to script your 'nn.Module'.")
    if mod.training:
        raise RuntimeError("Freezing is currently only implemented for modules in eval mode. Please call .eval() "
                           "on your input module before freezing.")
    return mod


def optimize_for_inference(mod, other_methods=None):
    """PyTorch's ``jit.optimize_for_inference``: ``freeze`` after ``eval()``."""
    return freeze(mod.eval())


def annotate(the_type, the_value):
    """Kept for PyTorch's API (a type hint for the TorchScript compiler): returns ``the_value``.

    >>> annotate(list, [])
    []
    """
    return the_value


class Future:
    """The result of ``fork``: ``wait()`` returns it (the call already ran, synchronously)."""

    def __init__(self, value):
        self._value = value

    def wait(self):
        return self._value


def fork(func, *args, **kwargs):
    """Run ``func(*args, **kwargs)`` (synchronously here) and return a ``Future`` of its result.

    >>> wait(fork(lambda x: x + 1, 1))
    2
    """
    return Future(func(*args, **kwargs))


def wait(future):
    """The result of a ``fork``."""
    return future.wait()


def script_if_tracing(fn):
    """Kept for PyTorch's API: ``fn`` runs as Python whether or not it is traced."""
    return fn
