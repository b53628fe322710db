"""Activation checkpointing, PyTorch's ``torch.utils.checkpoint.checkpoint``: trade compute for memory.

``checkpoint(block, x)`` runs ``block`` without recording its graph, so none of its intermediate activations stay
alive; backward runs ``block`` again from the saved inputs, with grad on, and backpropagates through that fresh
graph. Parameters used inside ``block`` get their gradients accumulated as usual. With ``preserve_rng_state``
(the default) the recomputation draws the same random numbers as the first run, so dropout masks agree.

>>> import dtorch
>>> from dtorch.utils.checkpoint import checkpoint
>>> layer = dtorch.nn.Linear(3, 3)
>>> x = dtorch.ones(2, 3, requires_grad=True)
>>> checkpoint(lambda t: layer(t).relu(), x, use_reentrant=False).sum().backward()
>>> x.grad.shape, layer.weight.grad is not None
(dtorch.Size([2, 3]), True)
"""

from dtorch import random as _random
from dtorch.autograd import Function, backward, grad_mode
from dtorch.tensor import Tensor


class _Checkpoint(Function):
    """Forward without a graph; backward recomputes ``function`` with grad on and backpropagates through it."""

    @staticmethod
    def forward(ctx, function, preserve_rng_state, *args):
        ctx.function = function
        ctx.rng_state = _random.get_rng_state() if preserve_rng_state else None
        ctx.inputs = args
        output = function(*args)
        if not isinstance(output, Tensor):
            raise RuntimeError("dtorch's checkpoint supports functions returning one Tensor, got "
                               f"{type(output).__name__}")
        return output

    @staticmethod
    def backward(ctx, grad_output):
        inputs = [x.detach().requires_grad_(x.requires_grad) if isinstance(x, Tensor) else x for x in ctx.inputs]
        outer_rng_state = _random.get_rng_state()
        if ctx.rng_state is not None:
            _random.set_rng_state(ctx.rng_state)
        try:
            with grad_mode.enable_grad():
                output = ctx.function(*inputs)
        finally:
            _random.set_rng_state(outer_rng_state)
        if output.requires_grad:
            backward(output, grad_output)
        grads = [x.grad if isinstance(x, Tensor) and x.requires_grad else None for x in inputs]
        return (None, None, *grads)


def checkpoint(function, *args, use_reentrant=None, preserve_rng_state=True, **kwargs):
    """``function(*args)``, recomputed during backward instead of keeping its activations (see module docstring).

    ``use_reentrant`` is accepted for PyTorch's signature (both of its modes give the same gradients here);
    keyword arguments for ``function`` are not supported, as in PyTorch's reentrant mode.
    """
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
    needs_graph = any(isinstance(x, Tensor) and x.requires_grad for x in args)
    if not grad_mode.is_grad_enabled() or not needs_graph:
        # no input needs a gradient: the recomputed graph could only reach parameters through a node that is
        # never recorded, so run it plainly and keep the parameters' gradients right (at no memory saving)
        return function(*args)
    return _Checkpoint.apply(function, preserve_rng_state, *args)


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):
    """Run ``functions`` (a list or ``nn.Sequential``) in ``segments`` checkpointed chunks; the last runs normally."""
    functions = list(functions.children()) if hasattr(functions, "children") else list(functions)
    size = max(len(functions) // segments, 1)
    end = -1
    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        chunk = functions[start:end + 1]

        def run(x, chunk=chunk):
            for function in chunk:
                x = function(x)
            return x

        input = checkpoint(run, input, use_reentrant=use_reentrant, **kwargs)
    for function in functions[end + 1:]:
        input = function(input)
    return input
