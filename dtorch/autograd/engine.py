"""The backward engine: walks the graph from the outputs back to the leaves, iteratively and deterministically.

Algorithm:
1. Walk the graph from the roots once (an explicit stack, so a graph of any depth works: no recursion limit),
   collecting every reachable node and counting, for every leaf, how many edges point at it.
2. Run the nodes newest first (descending creation sequence number). Every edge leads from a node to an older
   one, so this is a topological order: a node runs after every node that feeds it has delivered its gradient
   (summed in a buffer). It is the order PyTorch's engine picks among ready nodes (the most recently created
   first), the reverse of the forward order and the same on every run; DDP relies on that to fire its buckets in
   the same order on every rank.
3. A leaf (a tensor that requires grad and has no ``grad_fn``) is finished when all its contributions have arrived:
   its tensor hooks run, the gradient is accumulated into ``.grad``, then its post-accumulate-grad hooks run. That
   happens while the rest of backward still runs, which is what lets DDP overlap communication with computation.
4. When the graph is exhausted, the callbacks queued with ``queue_callback`` run (DDP waits for its buckets there).

Gradients of non-leaf tensors pass through the tensor's hooks (stored on its ``grad_fn``, since every node has
exactly one differentiable output) and, with ``retain_grad()``, are stored in the tensor's ``.grad``.
"""

import operator
import sys

import numpy as np

from dtorch import tensor as tensor_module
from dtorch.autograd import function as function_module
from dtorch.autograd import grad_mode
from dtorch.autograd.function import _FREED

Tensor = tensor_module.Tensor
_graph_mode = function_module.graph_mode
_grad_state = grad_mode._state
_wrap_array = tensor_module.wrap_array
_numpy_ndarray = np.ndarray

_callback_stack = []  # one list of queued callbacks per backward that is running (backward can nest)


class _AnomalyState:
    enabled = False


anomaly_mode = _AnomalyState()


def queue_callback(callback):
    """Run ``callback()`` once, after the backward pass that is running now has finished.

    Like PyTorch's ``Variable._execution_engine.queue_callback``; DDP uses it to wait for its gradient buckets.

    >>> import dtorch
    >>> x = dtorch.ones(2, requires_grad=True)
    >>> done = []
    >>> _ = x.register_hook(lambda g: queue_callback(lambda: done.append(True)))
    >>> x.sum().backward(); done
    [True]
    """
    if not _callback_stack:
        raise RuntimeError("Final callbacks can only be installed during backward pass.")
    _callback_stack[-1].append(callback)


def _walk_graph(root_nodes):
    """Every node reachable from ``root_nodes``, newest first, and how many edges point at each leaf (by id).

    A node's sequence number is larger than that of every node its edges lead to (those existed when it was
    recorded), so the newest-first order is a topological order: when a node's turn comes, every node that can
    send it a gradient has run. It is the order PyTorch's engine picks among ready nodes (most recent first),
    and the same on every run.
    """
    nodes = []
    leaf_edges = {}
    seen = set()
    stack = []
    for node in root_nodes:
        if id(node) not in seen:
            seen.add(id(node))
            stack.append(node)
    while stack:
        node = stack.pop()
        while node is not None:
            nodes.append(node)
            # the first new node among the edges is walked next directly: along a chain the stack stays empty
            following = None
            for edge in node.edges:
                if edge is None:
                    continue
                key = id(edge)
                if isinstance(edge, Tensor):
                    leaf_edges[key] = leaf_edges.get(key, 0) + 1
                elif key not in seen:
                    seen.add(key)
                    if following is None:
                        following = edge
                    else:
                        stack.append(edge)
            node = following
    if len(nodes) > 1:
        nodes.sort(key=_sequence_number, reverse=True)
    return nodes, leaf_edges


_sequence_number = operator.attrgetter("sequence_nr")


def _add(existing, incoming):
    if existing is None:
        return incoming
    return existing + incoming


def run_backward(roots, root_grads, retain_graph=False, create_graph=False, capture=None, accumulate=True):
    """Backpropagate ``root_grads`` from the tensors ``roots``.

    Args:
        roots: tensors to start from (each requires grad).
        root_grads: one gradient array (or Tensor with ``create_graph``) per root.
        retain_graph: keep saved values so the graph can be walked again.
        create_graph: record the backward computation itself, for higher-order gradients.
        capture: for ``autograd.grad``: a dict ``{id(tensor_or_node): None}`` to fill with gradients.
        accumulate: write leaf gradients into ``.grad`` (False for ``autograd.grad``).
    """
    buffers = {}  # id(node or leaf) -> summed gradient
    root_nodes = []
    leaf_roots = []
    for tensor, grad in zip(roots, root_grads):
        node = tensor.grad_fn
        if node is None:
            leaf_roots.append((tensor, grad))
        else:
            root_nodes.append(node)
            key = id(node)
            buffers[key] = _add(buffers.get(key), grad)
    order, leaf_edges = _walk_graph(root_nodes)

    plain = not create_graph and capture is None and not anomaly_mode.enabled
    # the root gradients are the caller's arrays: a leaf that gets one unchanged (through clone, ``+ 0``, ...)
    # keeps a copy, so changing the caller's gradient tensor afterwards cannot change that ``.grad``
    stored_leaf_arrays = {id(grad._array if isinstance(grad, Tensor) else grad) for grad in root_grads}
    callbacks = []
    _callback_stack.append(callbacks)
    previous_graph_mode = _graph_mode.active
    _graph_mode.active = create_graph
    previous_grad_mode = _grad_state["enabled"]
    _grad_state["enabled"] = create_graph
    try:
        for tensor, grad in leaf_roots:
            _finish_leaf(tensor, grad, capture, accumulate, create_graph, stored_leaf_arrays)
        for node in order:
            grad = buffers.pop(id(node), None)
            if grad is not None and plain and not node.has_hooks:
                # the common case: no hooks, captures, anomaly checks or graph recording on this node
                output_ref = node._output_ref
                if output_ref is not None:
                    # check_saved_output inlined: an untouched output (version 0, not a view) needs no call
                    output = output_ref()
                    if output is not None and (output._vc or output._base is not None):
                        node.check_saved_output()
                grad_inputs = node.backward(grad)
                if not retain_graph and node._saved is not None:
                    node._saved = _FREED
                if type(grad_inputs) is not tuple:
                    grad_inputs = _check_gradient_count(node, grad_inputs)
            else:
                grad_inputs = _run_node(node, grad, capture, create_graph, retain_graph)
            for edge, edge_grad in zip(node.edges, grad_inputs):
                if edge is None:
                    continue
                edge_key = id(edge)
                if edge_grad is not None:
                    existing = buffers.get(edge_key)
                    buffers[edge_key] = edge_grad if existing is None else existing + edge_grad
                remaining = leaf_edges.get(edge_key)
                if remaining is None:  # a node: it runs in its turn
                    continue
                if remaining > 1:
                    leaf_edges[edge_key] = remaining - 1
                    continue
                # the last contribution to this leaf has arrived
                leaf_grad = buffers.pop(edge_key, None)
                if leaf_grad is not None:
                    _finish_leaf(edge, leaf_grad, capture, accumulate, create_graph, stored_leaf_arrays)
        # callbacks may queue further callbacks; run until none is left
        index = 0
        while index < len(callbacks):
            callbacks[index]()
            index += 1
    finally:
        _grad_state["enabled"] = previous_grad_mode
        _graph_mode.active = previous_graph_mode
        _callback_stack.pop()


def _check_gradient_count(node, grad_inputs):
    if type(grad_inputs) is not tuple and type(grad_inputs) is not list:
        grad_inputs = (grad_inputs,)
    if len(grad_inputs) != len(node.edges):
        raise RuntimeError(
            f"function {node.name()} returned an incorrect number of gradients (expected {len(node.edges)}, "
            f"got {len(grad_inputs)})"
        )
    return grad_inputs


def _run_node(node, grad, capture, create_graph, retain_graph):
    """Run one node's hooks and backward; returns one gradient (or None) per input edge."""
    edges = node.edges
    if grad is None:
        if not retain_graph:
            node.release_saved()
        return [None] * len(edges)
    if node._pre_hooks:
        grad = _run_gradient_hooks(node._pre_hooks, grad, create_graph)
    retained = node._retained_tensor
    if retained is not None:
        tensor = retained()
        if tensor is not None:
            _accumulate_retained(tensor, grad, create_graph)
    if capture is not None and id(node) in capture:
        capture[id(node)] = _add(capture[id(node)], grad)
    if node._output_ref is not None:
        node.check_saved_output()
    if create_graph:
        if not node.differentiable_backward:
            raise RuntimeError(
                f"{node.name()}: dtorch has no double-backward formula for this op (create_graph=True)"
            )
        real_xp = node.xp
        node.xp = _graph_mode.namespace
        try:
            grad_inputs = node.backward(grad)
        finally:
            node.xp = real_xp
    else:
        grad_inputs = node.backward(grad)
    if not retain_graph:
        node.release_saved()
    grad_inputs = _check_gradient_count(node, grad_inputs)
    if anomaly_mode.enabled:
        _check_anomaly(node, grad_inputs)
    post_hooks = node._post_hooks
    if post_hooks:
        for hook in list(post_hooks):
            hook(tuple(_as_hook_value(g, create_graph) for g in grad_inputs), (_as_hook_value(grad, create_graph),))
    return grad_inputs


def _check_anomaly(node, grad_inputs):
    for index, grad in enumerate(grad_inputs):
        if grad is None:
            continue
        array = grad._array if isinstance(grad, Tensor) else grad
        xp = node.xp if not isinstance(grad, Tensor) else np
        if array.dtype.kind == "f" and bool(xp.isnan(array).any()):
            raise RuntimeError(f"Function '{node.name()}' returned nan values in its {index}th output.")


def _as_hook_value(grad, create_graph):
    """Hooks see Tensors, as in PyTorch."""
    if grad is None or isinstance(grad, Tensor):
        return grad
    return Tensor._from_array(grad, None)


def _from_hook_value(value, create_graph):
    if isinstance(value, Tensor):
        return value if create_graph else value._array
    return value


def _own(array, stored):
    """``array`` itself when it is safe to keep as a leaf's ``.grad`` (as PyTorch's AccumulateGrad steals the
    buffer): writable, not given to another leaf, and owning its memory or the sole view of memory nothing else
    can reach; otherwise a copy."""
    if array.base is not None and not _sole_view(array) or not array.flags.writeable or id(array) in stored:
        array = array.copy()
    stored.add(id(array))
    return array


def _sole_view(array):
    """True for a C-contiguous NumPy view of the whole of an array that only this view references: what
    ``reshape`` returns when it has to copy (it views the copy). Keeping it costs no memory and shares none."""
    if type(array) is not _numpy_ndarray or not array.flags.c_contiguous:
        return False
    if _references_to_base(array) != _SOLE_VIEW_REFERENCES:  # (counted before a name here holds the base)
        return False
    base = array.base
    return type(base) is _numpy_ndarray and base.flags.owndata and base.nbytes == array.nbytes


def _references_to_base(view):
    """``sys.getrefcount`` of the view's base, as seen from here."""
    base = view.base
    return sys.getrefcount(base)


# what _references_to_base reports for a base that only its view holds, measured once on this interpreter (the
# count includes references of the call itself, which differ between Python versions)
_SOLE_VIEW_REFERENCES = _references_to_base(np.empty(4).reshape(2, 2))


def _run_gradient_hooks(hooks, grad, create_graph):
    """Call each ``hook(grad)`` in registration order; a hook that returns a value replaces the gradient."""
    for hook in list(hooks):  # a copy: a hook may remove itself
        result = hook(_as_hook_value(grad, create_graph))
        if result is not None:
            grad = _from_hook_value(result, create_graph)
    return grad


def _finish_leaf(tensor, grad, capture, accumulate, create_graph, stored):
    """All contributions for a leaf have arrived: hooks, then accumulate into ``.grad``, then post hooks."""
    if tensor._hooks:
        grad = _run_gradient_hooks(tensor._hooks, grad, create_graph)
    if capture is not None and id(tensor) in capture:
        capture[id(tensor)] = _add(capture[id(tensor)], grad)
    if not accumulate:
        return
    if create_graph:
        grad_tensor = grad if isinstance(grad, Tensor) else Tensor._from_array(grad, None)
        tensor.grad = grad_tensor if tensor.grad is None else tensor.grad + grad_tensor
    else:
        if isinstance(grad, Tensor):
            grad = grad._array
        dtype = tensor._array.dtype
        if grad.dtype is not dtype and grad.dtype != dtype:
            grad = grad.astype(dtype)
        existing = tensor.grad
        if existing is None:
            tensor.grad = _wrap_array(_own(grad, stored), None)
        elif existing.grad_fn is None and existing._array.shape == grad.shape and existing._array.flags.writeable:
            existing._array += grad
            existing._vc += 1
        else:
            tensor.grad = existing + Tensor._from_array(grad, None)
    post_hooks = tensor._post_hooks
    if post_hooks:
        for hook in list(post_hooks):
            hook(tensor)


def _accumulate_retained(tensor, grad, create_graph):
    if create_graph:
        value = grad if isinstance(grad, Tensor) else Tensor._from_array(grad, None)
    else:
        value = Tensor._from_array(grad._array.copy() if isinstance(grad, Tensor) else grad.copy(), None)
    tensor.grad = value if tensor.grad is None else tensor.grad + value


class detect_anomaly:
    """Check every backward result for NaN and raise naming the op whose backward produced it.

    >>> import dtorch
    >>> x = dtorch.tensor([0.0], requires_grad=True)
    >>> with detect_anomaly():
    ...     try:
    ...         x.sqrt().backward(dtorch.ones(1) * float('nan'))
    ...     except RuntimeError as error:
    ...         print(error)
    Function 'SqrtBackward0' returned nan values in its 0th output.
    """

    def __init__(self, check_nan=True):
        self.check_nan = check_nan

    def __enter__(self):
        self.previous = anomaly_mode.enabled
        anomaly_mode.enabled = self.check_nan
        return self

    def __exit__(self, *exc_info):
        anomaly_mode.enabled = self.previous
        return False


def set_detect_anomaly(mode):
    anomaly_mode.enabled = bool(mode)
