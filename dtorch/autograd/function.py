"""``Op``: one differentiable operation, its forward and its backward side by side, on raw arrays.

(``Op`` is the graph node every op of ``dtorch/ops/`` subclasses; ``dtorch.autograd.Function`` is PyTorch's
user-facing custom Function, with static ``forward(ctx, ...)``/``backward(ctx, ...)``, built on top of it.)

An op is a subclass of ``Op`` with ``forward(self, *arrays)`` and ``backward(self, grad)``. The instance is
both the context (it keeps what backward needs) and the graph node. ``Op.apply(*inputs, **attrs)`` runs the
forward on the inputs' arrays and, when any input requires grad and grad mode is on, wraps the result in a Tensor
whose ``grad_fn`` is the node.

Contracts:
- **Recordable.** The op's non-tensor arguments are keyword ``attrs`` made of plain data (ints, floats, tuples,
  strings), listed in ``attr_names``; ``Cls(**attrs).forward(*arrays)`` replays the op. Every subclass is
  registered under its class name in ``REGISTRY``.
- **One differentiable output.** ``forward`` returns one array; ops that also produce non-differentiable results
  (``topk``'s indices) set ``n_outputs`` and return a tuple whose first element is the differentiable one.
  Multi-output views (``split``, ``unbind``) are several single-output ops, which keeps the engine simple.
- **Saved values.** ``self.save_for_backward(*arrays)`` in forward; ``self.saved_tensors`` in backward returns them,
  after checking that no saved input was modified in place since. Saved inputs are kept as their Tensors so that
  a ``create_graph`` backward can differentiate through them; backward formulas use inputs, not outputs.
- **Backward on raw arrays.** ``backward`` receives the output gradient and returns one gradient (or None) per
  input, each of the input's shape. It uses ``self.xp`` for array functions. In a ``create_graph`` backward the
  engine hands it Tensors and sets ``self.xp`` to a namespace of differentiable ops with the same names, so the
  same formula builds a graph; ops whose backward is not written that way set ``differentiable_backward = False``.
"""

import itertools
import weakref

import numpy as np

from dtorch import tensor as tensor_module
from dtorch._backend import device_of, xp_of
from dtorch._errors import raise_not_a_tensor
from dtorch.autograd import grad_mode
from dtorch.utils.hooks import RemovableHandle

Tensor = tensor_module.Tensor
_new_tensor = tensor_module.wrap_array
_grad_state = grad_mode._state

REGISTRY = {}
_object_new = object.__new__
_sequence_numbers = itertools.count()
_numpy_ndarray = np.ndarray
# set by dtorch.jit while a trace or export records ops: called as capture(node, inputs, attrs, result)
capture = None


class _GraphModeState:
    """Set by the engine while a ``create_graph=True`` backward runs: backward formulas then see Tensors."""

    active = False
    namespace = None  # the differentiable ``xp`` stand-in, registered by dtorch.ops


graph_mode = _GraphModeState()


class Op:
    """Base class of every differentiable op.

    >>> import dtorch
    >>> class Square(Op):
    ...     def forward(self, x):
    ...         self.save_for_backward(x)
    ...         return x * x
    ...     def backward(self, grad):
    ...         (x,) = self.saved_tensors
    ...         return (2 * x * grad,)
    >>> t = dtorch.tensor([3.0], requires_grad=True)
    >>> Square.apply(t).backward(dtorch.ones(1)); t.grad
    tensor([6.])
    """

    attr_names = ()
    n_outputs = 1
    is_view = False  # True when the output may share the first input's memory (reshape, transpose, slicing)
    differentiable = True  # False for comparisons, argmax and the like: their outputs never require grad
    differentiable_backward = True
    needs_input_shapes = False  # True: ``_record`` keeps ``self.input_shapes`` (only when the graph is recorded)
    # True when backward reads the forward's own output array (exp, tanh, sigmoid, softmax): changing that output
    # in place must then raise in backward, as it does in PyTorch, instead of giving wrong gradients
    saves_output = False
    # True when a plain backward reads only the saved output and the saved inputs serve a create_graph backward
    # alone: changing an input in place afterwards is then allowed (as in PyTorch) unless create_graph is on
    inputs_saved_for_graph_only = False
    # True when backward reads its inputs through its own attributes and saves them only for the version check
    # (``check_saved``): the saved entries then hold the Tensor that carries the version counter weakly, so the
    # node keeps no input Tensor alive (once it is gone, nothing can change the array in place through dtorch)
    saved_inputs_for_check_only = False
    _output_ref = None  # a weak reference to the output Tensor, set for ``saves_output`` ops when recorded
    xp = np  # the array module of the inputs; set per node only for CuPy
    _saved = None
    # hooks live on the node (a non-leaf tensor's hooks are its grad_fn's); has_hooks lets the engine skip them all
    has_hooks = False
    _pre_hooks = None
    _post_hooks = None
    _retained_tensor = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        REGISTRY[cls.__name__] = cls

    def __init__(self, **attrs):
        for name, value in attrs.items():
            setattr(self, name, value)

    # ---- forward side -------------------------------------------------------------------------------------------

    @classmethod
    def apply(cls, *inputs, **attrs):
        """Run the op on Tensors (Python scalars pass through as constants) and record it for backward."""
        node = _object_new(cls)  # (``cls.__new__`` would look the method up along the class's bases first)
        if attrs:
            # one setattr per attr, not ``node.__dict__.update``: reading ``__dict__`` turns the instance's inline
            # attribute values into a real dict, which makes this and every later attribute access of the node
            # slower (~0.25 us per recorded call in all, Python 3.11)
            for name in attrs:
                setattr(node, name, attrs[name])
        count = len(inputs)
        tensor_pair = False
        # Unary and tensor-tensor binary ops are most of all calls: they skip the general loop below (which is
        # the reference form; tests run every op both ways, with tensors and with Python scalars).
        if count == 1 and isinstance(inputs[0], Tensor):
            x = inputs[0]
            arrays = (x._array,)
            array_type = type(x._array)
            requires_grad = x.requires_grad
        elif count == 2 and isinstance(inputs[0], Tensor) and isinstance(inputs[1], Tensor):
            a, b = inputs
            arrays = (a._array, b._array)
            array_type = type(a._array)
            if type(b._array) is not array_type:
                _raise_device_mismatch(inputs)
            requires_grad = a.requires_grad or b.requires_grad
            tensor_pair = True
        else:
            arrays = []
            requires_grad = False
            array_type = None
            for x in inputs:
                if isinstance(x, Tensor):
                    data = x._array
                    if array_type is None:
                        array_type = type(data)
                    elif type(data) is not array_type:
                        _raise_device_mismatch(inputs)
                    arrays.append(data)
                    if x.requires_grad:
                        requires_grad = True
                else:
                    arrays.append(x)
        if array_type is not _numpy_ndarray:  # CuPy inputs, or no Tensor among the inputs
            node.xp = _xp_for_inputs(inputs, cls)
        # a call with the arrays spelled out: ``forward(*arrays)`` costs ~0.2 us more (an unspecialised call)
        if count == 1 and array_type is not None:
            out = node.forward(arrays[0])
        elif tensor_pair:
            out = node.forward(arrays[0], arrays[1])
        else:
            out = node.forward(*arrays)
        extras = None
        if cls.n_outputs != 1:
            out, *extras = out
        if type(out) is not array_type:
            out = node.xp.asarray(out)
        if requires_grad and cls.differentiable and _grad_state["enabled"]:
            node._record(inputs)
            result = _new_tensor(out, node)
            if cls.saves_output:
                # weak: the output holds its grad_fn; once the output is gone nobody can modify it in place
                node._output_ref = weakref.ref(result)
        else:
            result = _new_tensor(out, None)
        if node.is_view:
            # a view shares its memory owner with the input (NumPy collapses base chains to the owner)
            owner = out.base
            if owner is not None and (owner is arrays[0] or owner is arrays[0].base):
                source = inputs[0]
                result._base = source._base if source._base is not None else source
        if extras is not None:
            result = (result, *[_new_tensor(node.xp.asarray(e), None) for e in extras])
        if capture is not None:  # dtorch.jit/export/onnx record the op; None outside a capture (the only cost)
            capture(node, inputs, attrs, result)
        return result

    def _record(self, inputs):
        """Link this node into the graph: one edge per input, saved inputs kept as Tensors with their versions."""
        # an edge is the input's grad_fn, the input itself for a leaf (accumulate into its .grad), or None
        count = len(inputs)
        if count == 2:
            # binary ops are most recorded nodes: the general loop below, unrolled
            a, b = inputs
            self.edges = [
                (a.grad_fn or a) if isinstance(a, Tensor) and a.requires_grad else None,
                (b.grad_fn or b) if isinstance(b, Tensor) and b.requires_grad else None,
            ]
            if self.needs_input_shapes:
                self.input_shapes = (
                    a._array.shape if isinstance(a, Tensor) else (),
                    b._array.shape if isinstance(b, Tensor) else (),
                )
        elif count == 1:
            a = inputs[0]
            self.edges = [(a.grad_fn or a) if a.requires_grad else None]
            if self.needs_input_shapes:
                self.input_shapes = (a._array.shape,)
        else:
            # plain loops: a comprehension or generator costs a function call of its own (Python 3.11)
            edges = []
            for x in inputs:
                edges.append((x.grad_fn or x) if isinstance(x, Tensor) and x.requires_grad else None)
            self.edges = edges
            if self.needs_input_shapes:
                shapes = []
                for x in inputs:
                    shapes.append(x._array.shape if isinstance(x, Tensor) else ())
                self.input_shapes = tuple(shapes)
        self.sequence_nr = next(_sequence_numbers)
        if self._saved is not None:
            self._keep_saved(inputs)

    def _keep_saved(self, inputs):
        """Replace saved arrays by (input Tensor or None, array, version at save time) entries."""
        entries = []
        for array in self._saved:
            owner = None
            for x in inputs:
                if isinstance(x, Tensor) and x._array is array:
                    owner = x
                    break
            if owner is None:
                entries.append((None, array, 0))
            elif self.saved_inputs_for_check_only:
                holder = owner._base if owner._base is not None else owner  # (the Tensor with the counter)
                entries.append((weakref.ref(holder), array, holder._vc))
            else:
                base = owner._base
                entries.append((owner, array, owner._vc if base is None else base._vc))
        self._saved = entries

    def save_for_backward(self, *arrays):
        """Keep arrays (inputs, or constants such as masks) for backward. Call it from ``forward``."""
        self._saved = arrays

    def check_saved(self):
        """Raise PyTorch's RuntimeError if an input kept with ``save_for_backward`` was changed in place since
        forward (or its values were freed by an earlier backward). For a backward that reads what it needs from
        its own attributes: it must still never compute gradients from changed inputs.

        >>> import dtorch
        >>> class Scale(Op):
        ...     def forward(self, x, w):
        ...         self.w = w
        ...         self.save_for_backward(w)
        ...         return x * w
        ...     def backward(self, grad):
        ...         self.check_saved()
        ...         return grad * self.w, None
        >>> w = dtorch.tensor([2.0])
        >>> y = Scale.apply(dtorch.tensor([1.0], requires_grad=True), w)
        >>> _ = w.add_(1.0)
        >>> y.backward(dtorch.ones(1))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        RuntimeError: one of the variables needed for gradient computation has been modified by an inplace ...
        """
        self.saved_tensors  # (the property raises; its values are not needed here)

    def mark_dirty(self, *tensors):
        """Kept for PyTorch's API: dtorch's in-place ops are recorded by the Tensor method that runs them."""

    @property
    def needs_input_grad(self):
        """One bool per input: does backward need to produce a gradient for it?"""
        return tuple(edge is not None for edge in self.edges)

    @property
    def saved_tensors(self):
        """The saved values: arrays in a plain backward, Tensors for saved inputs in a ``create_graph`` backward."""
        saved = self._saved
        if saved is None:
            return ()
        if saved is _FREED:
            raise RuntimeError(
                "Trying to backward through the graph a second time (or directly access saved tensors after they "
                "have already been freed). Saved intermediate values of the graph are freed when you call "
                ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
                "graph a second time or if you need to access saved tensors after calling backward."
            )
        graph = graph_mode.active
        values = []
        for owner, array, version in saved:
            if type(owner) is weakref.ref:  # ``saved_inputs_for_check_only``: the counter's Tensor, if alive
                owner = owner()
                if owner is not None and owner._vc != version:
                    self._raise_modified(owner.dtype, array.shape, owner._vc, version)
                values.append(array)
                continue
            if owner is not None:
                base = owner._base
                current = owner._vc if base is None else base._vc
                if current != version and (graph or not self.inputs_saved_for_graph_only):
                    self._raise_modified(owner.dtype, owner.shape, current, version)
                if graph:
                    array = owner
            values.append(array)
        return tuple(values)

    def _raise_modified(self, dtype, shape, current, version):
        raise RuntimeError(
            "one of the variables needed for gradient computation has been modified by an inplace "
            f"operation: [{dtype} {list(shape)}], which is an input of {self.name()}, is "
            f"at version {current}; expected version {version} instead. Hint: the operation that "
            "modified it ran after this one; use an out-of-place version (x = x + y instead of x += y)."
        )

    def check_saved_output(self):
        """Raise PyTorch's in-place RuntimeError when the output this node kept for backward was modified since.

        The output was a fresh Tensor at version 0 when the node recorded it, so any other version means an
        in-place op ran on it (or on a view of it) afterwards.
        """
        output = self._output_ref()
        if output is None:
            return
        version = output._base._vc if output._base is not None else output._vc
        if version != 0:
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an inplace operation: "
                f"[{output.dtype} {list(output.shape)}], which is output 0 of {self.name()}, is at version "
                f"{version}; expected version 0 instead. Hint: the operation that modified it ran after this one; "
                "use an out-of-place version (x = x + y instead of x += y)."
            )

    def release_saved(self):
        """Drop saved values after a backward that does not retain the graph."""
        if self._saved is not None:
            self._saved = _FREED

    # ---- graph introspection, PyTorch-style -----------------------------------------------------------------------

    def name(self):
        return type(self).__name__ + "Backward0"

    @property
    def attrs(self):
        """The op's non-tensor arguments as plain data: ``type(node)(**node.attrs)`` rebuilds it."""
        return {name: getattr(self, name) for name in self.attr_names}

    @property
    def next_functions(self):
        result = []
        for edge in self.edges:
            if edge is None:
                result.append((None, 0))
            elif isinstance(edge, Tensor):
                result.append((AccumulateGrad(edge), 0))
            else:
                result.append((edge, 0))
        return tuple(result)

    def register_hook(self, hook):
        """``hook(grad_inputs, grad_outputs)`` after this node's backward (PyTorch's Node.register_hook)."""
        if self._post_hooks is None:
            self._post_hooks = []
        self.has_hooks = True
        return RemovableHandle(self._post_hooks, hook)

    def register_prehook(self, hook):
        """``hook(grad_outputs)`` before this node's backward; may return replacement gradients."""
        return RemovableHandle(self.pre_hook_list(), lambda grad, hook=hook: _first_or_none(hook((grad,))))

    def pre_hook_list(self):
        """The list of hooks run on this node's output gradient before its backward (tensor hooks go here)."""
        if self._pre_hooks is None:
            self._pre_hooks = []
        self.has_hooks = True
        return self._pre_hooks

    def retain_output_grad(self, tensor):
        """Store the output gradient in ``tensor.grad`` during backward (``Tensor.retain_grad``)."""
        self._retained_tensor = weakref.ref(tensor)
        self.has_hooks = True

    def __repr__(self):
        return f"<{self.name()} object at {hex(id(self))}>"

    def forward(self, *arrays):
        raise NotImplementedError(f"{type(self).__name__} must implement forward")

    def backward(self, grad):
        raise NotImplementedError(f"{type(self).__name__} must implement backward")


def _first_or_none(value):
    if value is None:
        return None
    return value[0]


class AccumulateGrad:
    """What ``next_functions`` shows for a leaf: the node that accumulates into ``variable.grad``."""

    def __init__(self, variable):
        self.variable = variable

    def name(self):
        return "torch::autograd::AccumulateGrad"

    def __repr__(self):
        return f"<AccumulateGrad object at {hex(id(self))}>"


class _Freed:
    def __repr__(self):
        return "<freed>"


_FREED = _Freed()


def _raise_array_input(cls, inputs, array):
    """PyTorch's TypeError for a NumPy array given to an op that has no Tensor input (the front ends turn the
    arrays they accept, a Tensor operator's array operand, into Tensors before they get here)."""
    position = next(i for i, x in enumerate(inputs, 1) if x is array)
    name = ("input", "other")[position - 1] if position <= 2 else f"arg{position}"
    raise_not_a_tensor(cls.__name__.lower(), name, position, array)


def _raise_device_mismatch(inputs):
    devices = []
    for x in inputs:
        if isinstance(x, Tensor):
            name = str(device_of(x._array))
            if name not in devices:
                devices.append(name)
    raise RuntimeError(
        "Expected all tensors to be on the same device, but found at least two devices, "
        + " and ".join(devices[:2])
        + "!"
    )


def _xp_for_inputs(inputs, cls):
    first = None
    for x in inputs:
        if isinstance(x, Tensor):
            if first is None:
                first = x._array
            elif x._array.device.id != first.device.id:
                _raise_device_mismatch(inputs)
    if first is None:
        # no Tensor at all: a user's NumPy array passed where a Tensor belongs (``dtorch.relu(array)``) is
        # PyTorch's TypeError. Checked here, off the path of calls that have a Tensor, so it costs them nothing.
        for x in inputs:
            if isinstance(x, _numpy_ndarray):
                _raise_array_input(cls, inputs, x)
        return np
    return xp_of(first)
