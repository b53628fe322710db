"""``dtorch.onnx``: export a model to an ONNX file (PyTorch's ``torch.onnx.export``).

The model is recorded once (the capture behind ``jit.trace``) in eval mode; each recorded op then goes through
its converter in ``_converters`` (one per op kind), which emits ONNX nodes. An op without a converter is an
``UnsupportedOperatorError`` naming it. Sizes that the trace recorded symbolically (``x.view(x.size(0), -1)``,
``flatten``) become ``Shape``/``Gather`` arithmetic, so axes named in ``dynamic_axes`` stay dynamic.

The ``onnx`` package (and ``onnxruntime`` to run the files) come with the ``onnx`` extra:
``pip install 'dtorch[onnx]'``.
"""

import io
import os

from dtorch.jit import _tracer
from dtorch.nn.modules.module import Module

__all__ = ["export", "UnsupportedOperatorError", "OnnxExporterError", "ONNXProgram", "is_in_onnx_export"]

DEFAULT_OPSET = 20
MIN_OPSET, MAX_OPSET = 18, 23
# The IR version each opset was released with: onnx's make_model stamps its own newest IR version, which older
# runtimes refuse ("Unsupported model IR version"), so the file carries the one its opset needs.
IR_VERSION_FOR_OPSET = {18: 8, 19: 9, 20: 9, 21: 10, 22: 10, 23: 11}

_exporting = {"active": False}


class OnnxExporterError(RuntimeError):
    """An ONNX export failed."""


class UnsupportedOperatorError(OnnxExporterError):
    """A recorded op has no ONNX converter (the message names it)."""


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "dtorch.onnx needs the onnx package, which is part of dtorch's 'onnx' extra: "
            "pip install 'dtorch[onnx]' (installs onnx and onnxruntime)"
        ) from None
    return onnx


def is_in_onnx_export():
    """True while ``export`` records the model.

    >>> is_in_onnx_export()
    False
    """
    return _exporting["active"]


class ONNXProgram:
    """What ``export(..., dynamo=True)`` returns: the ``model_proto``, ``save(path)`` and a runner on onnxruntime."""

    def __init__(self, model_proto):
        self.model_proto = model_proto

    def save(self, destination):
        _write(self.model_proto, destination)

    def __call__(self, *args):
        import numpy as np
        import onnxruntime

        session = onnxruntime.InferenceSession(self.model_proto.SerializeToString(),
                                               providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        feeds = {n: np.asarray(a) for n, a in zip(names, args)}
        return session.run(None, feeds)


def _write(model, f):
    data = model.SerializeToString()
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as out:
            out.write(data)
    elif isinstance(f, io.IOBase) or hasattr(f, "write"):
        f.write(data)
    else:
        raise TypeError(f"f must be a path or a binary file object, got {type(f).__name__}")


def export(model, args=(), f=None, *, kwargs=None, export_params=True, verbose=None, input_names=None,
           output_names=None, opset_version=None, dynamic_axes=None, keep_initializers_as_inputs=False,
           dynamo=False, external_data=False, dynamic_shapes=None, do_constant_folding=True, training=None,
           report=False, optimize=False, verify=False, profile=False, dump_exported_program=False,
           artifacts_dir=".", fallback=False, **deprecated):
    """Export ``model`` run on ``args`` to the ONNX file ``f``.

    Args:
        model: an ``nn.Module`` (exported in eval mode, as PyTorch does) or a function.
        args: a Tensor or a tuple of Tensors (the example inputs).
        f: a path or a binary file object (may be None with ``dynamo=True``: use the returned program).
        input_names, output_names: names of the graph's inputs and outputs (default: forward's argument names and
            ``output``/``output_N``).
        opset_version: 18 to 23 (default 20).
        dynamic_axes: ``{name: {axis: "label"}}`` or ``{name: [axes]}`` for inputs/outputs whose sizes vary.
        dynamo: accepted for PyTorch's API; both settings use the same exporter here. With True an
            ``ONNXProgram`` is returned.
        keep_initializers_as_inputs: also list the weights among the graph's inputs (runtimes then let callers
            override them). verbose: print the exported graph.

    Returns:
        None, or an ``ONNXProgram`` when ``dynamo=True``.

    >>> import dtorch, io
    >>> buffer = io.BytesIO()
    >>> dtorch.onnx.export(dtorch.nn.Linear(4, 2), (dtorch.randn(1, 4),), buffer, input_names=["x"],
    ...                    dynamic_axes={"x": {0: "batch"}})
    >>> len(buffer.getvalue()) > 0
    True
    """
    onnx = _import_onnx()
    from dtorch.onnx import _converters

    opset = DEFAULT_OPSET if opset_version is None else int(opset_version)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"opset_version {opset} is not supported: dtorch.onnx exports opsets {MIN_OPSET} to "
                         f"{MAX_OPSET}")
    if not export_params:
        raise ValueError("dtorch.onnx.export always writes the parameters into the file (export_params=False is not "
                         "supported)")
    if f is None and not dynamo:
        raise ValueError("dtorch.onnx.export needs f (a path or a binary file) unless dynamo=True")
    if training not in (None, False) and getattr(training, "name", "EVAL") != "EVAL":
        raise ValueError("dtorch.onnx.export exports in eval mode only")
    example = args if isinstance(args, tuple) else (args,)
    if kwargs:
        names = _tracer.forward_parameter_names(model.forward if isinstance(model, Module) else model,
                                                len(example) + len(kwargs))
        example = example + tuple(kwargs[n] for n in names[len(example):] if n in kwargs)
    module = model if isinstance(model, Module) else None
    _exporting["active"] = True
    try:
        with _tracer.eval_mode(model):
            capture, _ = _tracer.record(model, example, module=module, strict=False, what="onnx.export")
            # the recorded graph must not have baked in values computed from the inputs
            from dtorch.jit import _module_from_capture, check_generalises

            check_generalises(_module_from_capture(capture, module), model, example)
    finally:
        _exporting["active"] = False
    if dynamic_shapes is not None and dynamic_axes is None:
        dynamic_axes = _axes_from_dynamic_shapes(dynamic_shapes, capture.graph.input_names)
    model_proto = _converters.build_model(
        onnx, capture, module, opset, IR_VERSION_FOR_OPSET[opset], input_names, output_names, dynamic_axes or {},
    )
    if keep_initializers_as_inputs:  # the weights also become (optional, defaulted) graph inputs
        graph = model_proto.graph
        for initializer in graph.initializer:
            graph.input.append(onnx.helper.make_tensor_value_info(initializer.name, initializer.data_type,
                                                                  list(initializer.dims)))
    if verbose:
        print(onnx.helper.printable_graph(model_proto.graph))
    if f is not None:
        _write(model_proto, f)
    if dynamo:
        return ONNXProgram(model_proto)
    return None


def _axes_from_dynamic_shapes(dynamic_shapes, names):
    """``dynamic_axes`` from torch.export-style ``dynamic_shapes`` (tuple per input, or dict by name)."""
    if isinstance(dynamic_shapes, dict):
        items = dynamic_shapes.items()
    else:
        items = zip(names, dynamic_shapes)
    axes = {}
    for name, spec in items:
        if not spec:
            continue
        if isinstance(spec, (tuple, list)):
            spec = {i: d for i, d in enumerate(spec) if d is not None}
        axes[name] = {int(axis): getattr(dim, "__name__", str(dim)) for axis, dim in spec.items()}
    return axes
