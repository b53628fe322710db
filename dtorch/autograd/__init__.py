"""Autograd: the op node ``Op`` and the user-facing ``Function``, the backward engine, grad modes, ``grad``,
``gradcheck`` and anomaly detection."""

import numpy as np

from dtorch import _backend
from dtorch.autograd import engine, grad_mode
from dtorch.autograd.engine import detect_anomaly, queue_callback, set_detect_anomaly  # noqa: F401
from dtorch.autograd.function import Op
from dtorch.autograd.grad_mode import (  # noqa: F401
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from dtorch.tensor import Tensor
from dtorch._warnings import warn as _warn


class Function(Op):
    """PyTorch's custom-function API: static ``forward(ctx, *args)`` and ``backward(ctx, *grads)`` on Tensors.

    ``ctx`` is the graph node: ``ctx.save_for_backward(*tensors)``, ``ctx.saved_tensors``,
    ``ctx.needs_input_grad``, and any attribute you set. Inputs that are not Tensors are passed through.

    >>> import dtorch
    >>> class Cube(Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x ** 3
    ...     @staticmethod
    ...     def backward(ctx, grad):
    ...         (x,) = ctx.saved_tensors
    ...         return 3 * x ** 2 * grad
    >>> x = dtorch.tensor([2.0], requires_grad=True)
    >>> Cube.apply(x).backward(); x.grad
    tensor([12.])
    """

    @classmethod
    def apply(cls, *args, **kwargs):
        node = _CustomNode()
        node.user_class = cls
        node.xp = np
        node._saved = None
        tensor_positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        with grad_mode.no_grad():
            output = cls.forward(node, *args, **kwargs)
        single = not isinstance(output, tuple)
        outputs = (output,) if single else output
        requires_grad = grad_mode.is_grad_enabled() and any(args[i].requires_grad for i in tensor_positions)
        if not requires_grad:
            return output
        inputs = [args[i] for i in tensor_positions]
        node.tensor_positions = tensor_positions
        node.n_args = len(args)
        saved = node.__dict__.pop("_user_saved", ())
        node._record(inputs)
        if not single:
            return _multiple_outputs(node, outputs, saved)
        dirty = node.__dict__.get("_dirty", ())
        if any(outputs[0] is t for t in dirty):
            # an input modified in place (mark_dirty) becomes the output itself, as in PyTorch
            result = outputs[0]
            if result.grad_fn is None and result.requires_grad:
                raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
            result.grad_fn = node
            result.requires_grad = True
            result._bump_version()
        else:
            result = Tensor._from_array(outputs[0]._array, node)
        # a saved output is the Tensor the caller gets back, so that changing it in place is caught in backward
        saved = tuple(result if t is outputs[0] else t for t in saved)
        node._user_saved = saved
        node._saved_versions = [_version_of(t) for t in saved]
        return result


def _multiple_outputs(node, outputs, saved):
    """Wire a custom Function with several outputs into the graph, whose nodes have one output each.

    The node's own output is an empty *anchor* tensor; every differentiable output is an ``_OutputSlot`` of the
    anchor. In backward each slot stores its gradient on the node and passes an empty gradient to the anchor; the
    engine runs the node after every slot that the loss reaches, and the node then calls the user's ``backward``
    with one gradient per output (zeros for outputs without one, unless ``ctx.set_materialize_grads(False)``).
    """
    if node.__dict__.get("_dirty"):
        raise RuntimeError("dtorch custom Functions support mark_dirty only with a single output")
    non_differentiable = {id(t) for t in node.__dict__.get("_non_differentiable", ())}
    anchor = Tensor._from_array(np.zeros(0, dtype=np.float32), node)
    node.output_templates = [o if isinstance(o, Tensor) else None for o in outputs]
    node.slot_grads = [None] * len(outputs)
    results = []
    for index, value in enumerate(outputs):
        if not isinstance(value, Tensor):
            results.append(value)
        elif id(value) in non_differentiable or value._array.dtype.kind not in "fc":
            results.append(Tensor._from_array(value._array, None))
        else:
            results.append(_OutputSlot.apply(anchor, slot=index, owner=node, value=value._array))
    # saved outputs are the Tensors the caller gets back, so that changing them in place is caught in backward
    by_id = {id(o): r for o, r in zip(outputs, results)}
    saved = tuple(by_id.get(id(t), t) for t in saved)
    node._user_saved = saved
    node._saved_versions = [_version_of(t) for t in saved]
    return tuple(results)


class _OutputSlot(Op):
    """Output ``slot`` of a custom Function with several outputs (see ``_multiple_outputs``)."""

    attr_names = ("slot",)

    def forward(self, anchor):
        return self.value

    def backward(self, grad):
        self.owner.slot_grads[self.slot] = grad
        return (grad.reshape(-1)[:0],)  # an empty gradient for the anchor: it only orders the owner after us


def _version_of(value):
    """The version counter that in-place changes of ``value`` (or of a view of it) bump; None for non-Tensors."""
    if not isinstance(value, Tensor):
        return None
    return value._base._vc if value._base is not None else value._vc


class _CustomNode(Op):
    """The graph node behind a user ``Function``: runs the user's static backward on Tensors."""

    def save_for_backward(self, *tensors):
        self.__dict__["_user_saved"] = tensors
        self._saved = None

    def mark_dirty(self, *tensors):
        """Declare inputs that ``forward`` modified in place: each becomes the output, recorded by this node."""
        self.__dict__["_dirty"] = tensors

    def mark_non_differentiable(self, *tensors):
        """Declare outputs that get no gradient (indices, masks): they are returned without ``requires_grad``."""
        self.__dict__["_non_differentiable"] = tensors

    def set_materialize_grads(self, value):
        """With False, ``backward`` gets None (not zeros) for outputs that received no gradient."""
        self.__dict__["_materialize_grads"] = bool(value)

    @property
    def saved_tensors(self):
        saved = self.__dict__.get("_user_saved", ())
        versions = self.__dict__.get("_saved_versions")
        if versions is None:
            return tuple(saved)  # read inside forward, before apply recorded the versions
        for tensor, version in zip(saved, versions):
            current = _version_of(tensor)
            if current != version:
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by an inplace "
                    f"operation: [{tensor.dtype} {list(tensor.shape)}], which is saved by {self.name()}, is at "
                    f"version {current}; expected version {version} instead. Hint: use an out-of-place version "
                    "(x = x + y instead of x += y)."
                )
        return tuple(saved)

    def name(self):
        return self.user_class.__name__ + "Backward"

    def _gradients_of_every_output(self):
        """The slots' gradients as Tensors, zeros (or None) for the outputs that got none; resets the slots."""
        materialize = self.__dict__.get("_materialize_grads", True)
        grads = []
        for template, grad in zip(self.output_templates, self.slot_grads):
            if grad is None:
                if template is not None and materialize:
                    grad = template._array * 0  # zeros shaped and typed like the output, on its device
                else:
                    grads.append(None)
                    continue
            grads.append(grad if isinstance(grad, Tensor) else Tensor._from_array(grad, None))
        self.slot_grads = [None] * len(self.slot_grads)
        return grads

    def backward(self, grad):
        if "slot_grads" in self.__dict__:
            grads = self._gradients_of_every_output()
        else:
            grads = (grad if isinstance(grad, Tensor) else Tensor._from_array(grad, None),)
        results = self.user_class.backward(self, *grads)
        if not isinstance(results, tuple):
            results = (results,)
        if len(results) != self.n_args:
            raise RuntimeError(
                f"function {self.name()} returned an incorrect number of gradients (expected {self.n_args}, got "
                f"{len(results)})"
            )
        picked = []
        for position in self.tensor_positions:
            value = results[position]
            if value is None:
                picked.append(None)
            elif engine._graph_mode.active:
                picked.append(value)
            else:
                picked.append(value._array if isinstance(value, Tensor) else value)
        return tuple(picked)


def _as_tuple(value):
    if value is None:
        return None
    if isinstance(value, Tensor):
        return (value,)
    return tuple(value)


def _implicit_gradient(array):
    """The gradient ``backward()`` takes for a one-element output when none is given: a one of its shape and
    dtype (``np.array`` for the usual 0-d loss: ``np.ones`` is a Python function, several times slower)."""
    if type(array) is np.ndarray and array.ndim == 0:
        return np.array(1, dtype=array.dtype)
    return _backend.xp_of(array).ones(array.shape, dtype=array.dtype)


def _root_gradients(outputs, grad_outputs, create_graph):
    roots, grads = [], []
    for index, output in enumerate(outputs):
        if not output.requires_grad:
            raise RuntimeError(
                f"element {index} of tensors does not require grad and does not have a grad_fn"
            )
        given = None if grad_outputs is None else grad_outputs[index]
        if given is None:
            if output._array.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            given_array = _implicit_gradient(output._array)
            given = Tensor._from_array(given_array, None) if create_graph else given_array
        else:
            if not isinstance(given, Tensor):
                given = Tensor._from_array(np.asarray(given, dtype=output._array.dtype), None)
            if given._array.shape != output._array.shape:
                raise RuntimeError(
                    f"Mismatch in shape: grad_output[{index}] has a shape of {given.shape} and output[{index}] has "
                    f"a shape of {output.shape}."
                )
            if type(given._array) is not type(output._array):
                raise RuntimeError(
                    f"Expected all tensors to be on the same device, but found at least two devices, "
                    f"{output.device} and {given.device}!"
                )
            if not create_graph:
                given = given._array
        roots.append(output)
        grads.append(given)
    return roots, grads


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate gradients of ``tensors`` into the ``.grad`` of the leaves (or only of ``inputs``).

    >>> import dtorch
    >>> x = dtorch.tensor([1.0, 2.0], requires_grad=True)
    >>> backward((x * x).sum()); x.grad
    tensor([2., 4.])
    """
    tensors = _as_tuple(tensors)
    grad_tensors = _as_tuple(grad_tensors)
    if retain_graph is None:
        retain_graph = create_graph
    roots, grads = _root_gradients(tensors, grad_tensors, create_graph)
    if inputs is None:
        engine.run_backward(roots, grads, retain_graph=retain_graph, create_graph=create_graph)
        return
    inputs = _as_tuple(inputs)
    captured = _capture(roots, grads, inputs, retain_graph, create_graph)
    for tensor, value in zip(inputs, captured):
        if value is None:
            continue
        tensor.grad = value if tensor.grad is None else tensor.grad + value


def _capture(roots, grads, inputs, retain_graph, create_graph):
    keys = []
    capture = {}
    for tensor in inputs:
        if not tensor.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
        key = id(tensor) if tensor.grad_fn is None else id(tensor.grad_fn)
        keys.append(key)
        capture[key] = None
    engine.run_backward(roots, grads, retain_graph=retain_graph, create_graph=create_graph, capture=capture,
                        accumulate=False)
    results = []
    for key in keys:
        value = capture[key]
        if value is not None and not isinstance(value, Tensor):
            value = Tensor._from_array(value, None)
        results.append(value)
    return results


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, only_inputs=True,
         allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """The gradients of ``outputs`` with respect to ``inputs``, returned rather than accumulated.

    ``only_inputs`` is accepted and ignored, as in PyTorch (where it is deprecated); ``is_grads_batched=True``
    is not supported and raises.

    >>> import dtorch
    >>> x = dtorch.tensor(3.0, requires_grad=True)
    >>> (g,) = grad(x ** 3, x, create_graph=True); g
    tensor(27., grad_fn=<MulBackward0>)
    >>> grad(g, x)[0]
    tensor(18.)
    """
    if is_grads_batched:
        raise NotImplementedError("dtorch.autograd.grad: is_grads_batched=True is not supported; loop over the "
                                  "batch of grad_outputs instead")
    outputs = _as_tuple(outputs)
    inputs = _as_tuple(inputs)
    grad_outputs = _as_tuple(grad_outputs)
    if retain_graph is None:
        retain_graph = create_graph
    roots, grads = _root_gradients(outputs, grad_outputs, create_graph)
    results = _capture(roots, grads, inputs, retain_graph, create_graph)
    for index, value in enumerate(results):
        if value is None:
            if materialize_grads:
                xp = _backend.xp_of(inputs[index]._array)
                results[index] = Tensor._from_array(xp.zeros_like(inputs[index]._array), None)
            elif not allow_unused:
                raise RuntimeError(
                    "One of the differentiated Tensors appears to not have been used in the graph. Set "
                    "allow_unused=True if this is the desired behavior."
                )
    return tuple(results)


def _numeric_jacobian_column(func, inputs, index, flat_index, eps):
    array = inputs[index]._array
    flat = array.reshape(-1)
    original = flat[flat_index].item()
    flat[flat_index] = original + eps
    with grad_mode.no_grad():
        plus = [o._array.copy() for o in _as_tuple(func(*inputs))]
    flat[flat_index] = original - eps
    with grad_mode.no_grad():
        minus = [o._array.copy() for o in _as_tuple(func(*inputs))]
    flat[flat_index] = original
    return [((p - m) / (2 * eps)).reshape(-1) for p, m in zip(plus, minus)]


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, nondet_tol=0.0):
    """Compare analytic gradients with central finite differences; inputs should be float64.

    Returns True when every Jacobian entry agrees within ``atol + rtol * |numeric|``; otherwise raises a
    RuntimeError naming the input and the largest difference (or returns False when ``raise_exception`` is False).

    >>> import dtorch
    >>> x = dtorch.randn(3, dtype=dtorch.float64, requires_grad=True)
    >>> gradcheck(lambda t: (t * t).sum(), (x,))
    True
    """
    inputs = _as_tuple(inputs)
    differentiable = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    outputs = _as_tuple(func(*inputs))
    for input_index in differentiable:
        tensor = inputs[input_index]
        if tensor._array.dtype != np.float64:
            _warn("gradcheck: input is not float64; the comparison may fail for lack of precision")
        if not tensor._array.flags.c_contiguous:
            raise RuntimeError("gradcheck needs contiguous inputs")
        n = tensor._array.size
        for output_index, output in enumerate(outputs):
            if not output.requires_grad:
                continue
            m = output._array.size
            analytic = np.zeros((m, n))
            for row in range(m):
                seed = np.zeros(m, dtype=output._array.dtype)
                seed[row] = 1
                fresh_outputs = _as_tuple(func(*inputs))
                (g,) = grad(fresh_outputs[output_index], tensor,
                            grad_outputs=Tensor._from_array(seed.reshape(output._array.shape), None),
                            allow_unused=True)
                if g is not None:
                    analytic[row] = np.asarray(g._array, dtype=np.float64).reshape(-1)
            numeric = np.zeros((m, n))
            for column in range(n):
                numeric[:, column] = _numeric_jacobian_column(func, inputs, input_index, column, eps)[output_index]
            difference = np.abs(analytic - numeric)
            if not np.all(difference <= atol + rtol * np.abs(numeric)):
                message = (
                    f"Jacobian mismatch for output {output_index} with respect to input {input_index}: largest "
                    f"difference {difference.max():.3e}\nnumerical:\n{numeric}\nanalytical:\n{analytic}"
                )
                if raise_exception:
                    raise RuntimeError(message)
                return False
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3, gen_non_contig_grad_outputs=False,
                  raise_exception=True, nondet_tol=0.0):
    """Check second derivatives: ``gradcheck`` of the map ``(inputs, grad_outputs) -> d(outputs)/d(inputs)``
    computed with ``create_graph=True``; inputs should be float64.

    ``grad_outputs`` default to random float64 tensors of the outputs' shapes (seeded from the inputs' shapes, so
    a check is repeatable). Returns True, or raises (returns False with ``raise_exception=False``) as
    ``gradcheck`` does.

    >>> import dtorch
    >>> x = dtorch.randn(3, dtype=dtorch.float64, requires_grad=True)
    >>> gradgradcheck(lambda t: (t ** 3).sum(), (x,))
    True
    """
    inputs = _as_tuple(inputs)
    outputs = _as_tuple(func(*inputs))
    differentiable_outputs = [o for o in outputs if o.requires_grad]
    if grad_outputs is None:
        rng = np.random.default_rng(sum(o._array.size for o in differentiable_outputs) + 1)
        grad_outputs = [
            Tensor._from_array(rng.standard_normal(o._array.shape).astype(o._array.dtype), None).requires_grad_()
            for o in differentiable_outputs
        ]
    else:
        grad_outputs = list(_as_tuple(grad_outputs))
    count = len(inputs)
    positions = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]

    def first_derivatives(*values):
        with grad_mode.enable_grad():  # gradcheck evaluates this under no_grad for its finite differences
            outs = [o for o in _as_tuple(func(*values[:count])) if o.requires_grad]
            grads = grad(outs, [values[i] for i in positions], values[count:], create_graph=True,
                         allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(first_derivatives, tuple(inputs) + tuple(grad_outputs), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, nondet_tol=nondet_tol)


class _VariableMeta(type):
    def __instancecheck__(cls, instance):
        return isinstance(instance, Tensor)


class Variable(metaclass=_VariableMeta):
    """PyTorch's deprecated wrapper, kept for old code: ``Variable(t, requires_grad=False)`` is a Tensor sharing
    ``t``'s memory without its history (``t.detach()``) that requires grad as asked, as in PyTorch; every Tensor
    is an instance.

    >>> import dtorch
    >>> v = Variable(dtorch.ones(2), requires_grad=True)
    >>> v.requires_grad, isinstance(v, Variable), type(v).__name__
    (True, True, 'Tensor')
    """

    def __new__(cls, data=None, requires_grad=False, volatile=False):
        if data is None:
            raise TypeError("Variable() needs a Tensor (dtorch has no empty Variable)")
        if not isinstance(data, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
        alias = data.detach()
        return alias.requires_grad_(True) if requires_grad else alias


__all__ = [
    "Function", "backward", "grad", "gradcheck", "gradgradcheck", "Variable", "no_grad", "enable_grad", "set_grad_enabled", "inference_mode",
    "is_grad_enabled", "detect_anomaly", "set_detect_anomaly", "queue_callback",
]
