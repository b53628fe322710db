"""Double backward for fused ops whose closed-form backward runs on raw arrays with in-place updates (the
recurrent layers): differentiate a composition of the same forward instead.

``recompute_gradients`` puts an identity node (a stand-in) on each input that needs a gradient, recomputes the
forward from differentiable ops on the stand-ins, and runs ``autograd.grad(..., create_graph=True)`` from the
recomputed output with the upstream gradient. For that inner backward the stand-ins' nodes are cut from the graph
below them, so it stays local (the engine would otherwise walk the whole model again); they are joined again
before returning, so the returned gradients, built on the stand-ins, lead back to the real inputs and can be
differentiated once more.
"""

from dtorch.autograd import grad as autograd_grad
from dtorch.autograd.function import Op


class StandIn(Op):
    """The identity: a node that can be cut from the graph below it for an inner backward."""

    def forward(self, x):
        return x

    def backward(self, grad):
        return (grad,)


def recompute_gradients(inputs, edges, composite, grad):
    """One gradient (or None) per input of a fused op, as ``composite(*inputs)`` differentiated with
    ``create_graph`` (``inputs`` are the saved input Tensors, None for absent ones)."""
    stand_ins = [StandIn.apply(value) if value is not None and edge is not None else None
                 for value, edge in zip(inputs, edges)]
    values = [s if s is not None else value for s, value in zip(stand_ins, inputs)]
    output = composite(*values)
    wanted = [s for s in stand_ins if s is not None]
    cut = [(s.grad_fn, s.grad_fn.edges) for s in wanted]
    for node, _ in cut:
        node.edges = [None]
    try:
        found = autograd_grad(output, wanted, grad, create_graph=True, allow_unused=True)
    finally:
        for node, node_edges in cut:
            node.edges = node_edges
    found = iter(found)
    return tuple(next(found) if s is not None else None for s in stand_ins)
