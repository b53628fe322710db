"""The backward engine: walks the graph from the outputs back to the leaves, iteratively and deterministically.

Algorithm:
1. Count, for every node reachable from the roots, how many edges point at it (its dependencies). The walk uses an
   explicit stack, so a graph of any depth works (no recursion limit).
2. Start from the roots with their gradients. A node runs once every edge into it has delivered its gradient
   (summed). Among ready nodes the most recently created runs first (a heap on the creation sequence number), so
   the order is the reverse of the forward order and the same on every run; DDP relies on that to fire its buckets
   in the same order on every rank.
3. A leaf (a tensor that requires grad and has no ``grad_fn``) is finished when all its contributions have arrived:
   its tensor hooks run, the gradient is accumulated into ``.grad``, then its post-accumulate-grad hooks run. That
   happens while the rest of backward still runs, which is what lets DDP overlap communication with computation.
4. When the graph is exhausted, the callbacks queued with ``queue_callback`` run (DDP waits for its buckets there).

Gradients of non-leaf tensors pass through the tensor's hooks (stored on its ``grad_fn``, since every node has
exactly one differentiable output) and, with ``retain_grad()``, are stored in the tensor's ``.grad``.
"""

import heapq

import numpy as np

from dtorch import tensor as tensor_module
from dtorch.autograd import function as function_module
from dtorch.autograd import grad_mode
from dtorch.autograd.function import _FREED

Tensor = tensor_module.Tensor
_graph_mode = function_module.graph_mode

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


def _count_dependencies(roots):
    """For each node reachable from ``roots``: how many edges point at it. Leaves are counted by id."""
    dependencies = {}
    seen = set()
    stack = [node for node in roots if node is not None]
    for node in stack:
        seen.add(id(node))
    while stack:
        node = stack.pop()
        for edge in node.edges:
            if edge is None:
                continue
            key = id(edge)
            dependencies[key] = dependencies.get(key, 0) + 1
            if key not in seen and not isinstance(edge, Tensor):
                seen.add(key)
                stack.append(edge)
    return dependencies


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
    nodes = []
    leaf_roots = []
    for tensor, grad in zip(roots, root_grads):
        if tensor.grad_fn is None:
            leaf_roots.append((tensor, grad))
        else:
            nodes.append(tensor.grad_fn)
    dependencies = _count_dependencies(nodes)

    buffers = {}  # id(node or leaf) -> summed gradient
    ready = []
    for tensor, grad in zip(roots, root_grads):
        if tensor.grad_fn is not None:
            node = tensor.grad_fn
            buffers[id(node)] = _add(buffers.get(id(node)), grad)
    for node in nodes:
        if dependencies.get(id(node), 0) == 0 and id(node) in buffers:
            heapq.heappush(ready, (-node.sequence_nr, id(node), node))
            dependencies[id(node)] = -1  # queued

    plain = not create_graph and capture is None and not anomaly_mode.enabled
    stored_leaf_arrays = set()
    callbacks = []
    _callback_stack.append(callbacks)
    previous_graph_mode = _graph_mode.active
    _graph_mode.active = create_graph
    try:
        with grad_mode.set_grad_enabled(create_graph):
            for tensor, grad in leaf_roots:
                _finish_leaf(tensor, grad, capture, accumulate, create_graph, stored_leaf_arrays)
            while ready:
                _, key, node = heapq.heappop(ready)
                grad = buffers.pop(key, None)
                if grad is not None and plain and not node.has_hooks:
                    # the common case: no hooks, captures, anomaly checks or graph recording on this node
                    if node._output_ref is not None:
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
                    remaining = dependencies[edge_key] - 1
                    dependencies[edge_key] = remaining
                    if remaining == 0:
                        if isinstance(edge, Tensor):
                            leaf_grad = buffers.pop(edge_key, None)
                            if leaf_grad is not None:
                                _finish_leaf(edge, leaf_grad, capture, accumulate, create_graph, stored_leaf_arrays)
                        else:
                            heapq.heappush(ready, (-edge.sequence_nr, edge_key, edge))
            # callbacks may queue further callbacks; run until none is left
            index = 0
            while index < len(callbacks):
                callbacks[index]()
                index += 1
    finally:
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
    """An array safe to keep as a leaf's ``.grad``: writable, owning its memory and not given to another leaf."""
    if array.base is not None or not array.flags.writeable or id(array) in stored:
        array = array.copy()
    stored.add(id(array))
    return array


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
        if grad.dtype != tensor._array.dtype:
            grad = grad.astype(tensor._array.dtype)
        existing = tensor.grad
        if existing is None:
            tensor.grad = Tensor._from_array(_own(grad, stored), None)
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
