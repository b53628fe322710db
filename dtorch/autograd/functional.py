"""``dtorch.autograd.functional``: Jacobians, Hessians and their products with vectors, as PyTorch's.

Every function takes ``func`` (Tensors in, a Tensor or a tuple of Tensors out) and ``inputs`` (a Tensor or a tuple
of Tensors) and answers in the same structure: a Tensor where PyTorch answers a Tensor, a tuple where it answers a
tuple. The inputs are detached copies that require grad (with ``create_graph=True`` they keep their history, so
the answer can be differentiated again). Gradients that do not depend on an input are zeros, or, with
``strict=True``, a RuntimeError naming the input. Everything is computed in reverse mode: ``vectorize`` and
``strategy="forward-mode"`` are accepted and give the same numbers; ``jvp`` and ``hvp`` use the double-backward
trick (a vector-Jacobian product differentiated with respect to its vector).

This module sits above the public tensor API (it stacks rows with ``dtorch.stack``); ``dtorch/__init__.py``
imports it after the ops are bound.
"""

from dtorch import factories
from dtorch import functional as F
from dtorch.autograd import enable_grad, grad as _grad
from dtorch.tensor import Tensor

__all__ = ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"]


def _as_tuple(value, argument, function):
    """``(is_tuple, values)``; everything must be a Tensor, as PyTorch checks."""
    is_tuple = isinstance(value, (tuple, list))
    values = tuple(value) if is_tuple else (value,)
    for index, item in enumerate(values):
        if not isinstance(item, Tensor):
            where = f"{argument}[{index}]" if is_tuple else argument
            raise TypeError(
                f"The {where} given to {function} must be either a Tensor or a tuple of Tensors but the value at "
                f"index {index} has type {type(item).__name__}."
            )
    return is_tuple, values


def _prepare(inputs, create_graph):
    """Inputs that require grad: views keeping their history with ``create_graph``, else detached copies."""
    prepared = []
    for tensor in inputs:
        if create_graph and tensor.requires_grad:
            prepared.append(tensor.view_as(tensor))
        else:
            prepared.append(tensor.detach().requires_grad_(True))
    return tuple(prepared)


def _finish(values, create_graph):
    """Results leave the function detached unless ``create_graph`` asked for a graph."""
    if create_graph:
        return values
    return tuple(None if v is None else v.detach() for v in values)


def _call(func, inputs, function):
    with enable_grad():
        outputs = func(*inputs)
    is_tuple, outputs = _as_tuple(outputs, "outputs of the user-provided function", function)
    return is_tuple, outputs


def _gradients(outputs, inputs, grad_outputs, create_graph, strict, what):
    """``grad`` that tolerates outputs without history and unused inputs (zeros, or an error with ``strict``)."""
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    if pairs:
        grads = _grad([o for o, _ in pairs], inputs, [g for _, g in pairs], retain_graph=True,
                      create_graph=create_graph, allow_unused=True)
    else:
        grads = (None,) * len(inputs)
    results = []
    for index, (value, tensor) in enumerate(zip(grads, inputs)):
        if value is None:
            if strict:
                raise RuntimeError(
                    f"The {what} of the user-provided function is independent of input {index}. This is not "
                    "allowed in strict mode."
                )
            value = factories.zeros_like(tensor)
        elif strict and create_graph and not value.requires_grad:
            raise RuntimeError(
                f"The jacobian of the user-provided function is independent of input {index}. This is not allowed "
                "in strict mode when create_graph=True."
            )
        results.append(value)
    return tuple(results)


def _check_vector(v, outputs, function, name="v"):
    _, vectors = _as_tuple(v, name, function)
    if len(vectors) != len(outputs):
        raise RuntimeError(
            f"The given {name} should contain as many Tensors as there are outputs of the user-provided function: "
            f"got {len(vectors)} but expected {len(outputs)}."
        )
    for index, (vector, output) in enumerate(zip(vectors, outputs)):
        if tuple(vector.shape) != tuple(output.shape):
            raise RuntimeError(
                f"Entry {index} in {name} has invalid size: should be {tuple(output.shape)} but got "
                f"{tuple(vector.shape)}."
            )
    return vectors


def _default_vector(v, like, function, where):
    """``v`` checked against ``like`` (the outputs for vjp, the inputs for jvp/vhp/hvp), or ones where ``v`` is
    None, which PyTorch allows only for one single-element Tensor."""
    if v is not None:
        return _check_vector(v, like, function)
    if len(like) != 1 or like[0].numel() != 1:
        raise RuntimeError(
            f"The vector v can only be None if the {where} is a single Tensor with a single element."
        )
    return (factories.ones_like(like[0]),)


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """``v^T J`` of ``func`` at ``inputs``: returns ``(func(inputs), vjp)``.

    >>> import dtorch
    >>> out, product = vjp(lambda x: x ** 2, dtorch.tensor([1.0, 2.0]), dtorch.tensor([1.0, 1.0]))
    >>> product
    tensor([2., 4.])
    """
    inputs_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
    inputs = _prepare(inputs, create_graph)
    outputs_tuple, outputs = _call(func, inputs, "vjp")
    vectors = _default_vector(v, outputs, "vjp", "user-provided function returns")
    grads = _gradients(outputs, inputs, vectors, create_graph, strict, "output")
    return _structure(_finish(outputs, create_graph), outputs_tuple), _structure(_finish(grads, create_graph),
                                                                                inputs_tuple)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """``J v`` of ``func`` at ``inputs``: returns ``(func(inputs), jvp)`` (reverse mode, double-backward trick).

    >>> import dtorch
    >>> out, product = jvp(lambda x: x ** 2, dtorch.tensor([1.0, 2.0]), dtorch.tensor([1.0, 0.0]))
    >>> product
    tensor([2., 0.])
    """
    inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
    inputs = _prepare(inputs, create_graph)
    vectors = _default_vector(v, inputs, "jvp", "input to the user-provided function")
    outputs_tuple, outputs = _call(func, inputs, "jvp")
    # u is a dummy cotangent: g(u) = u^T J is linear in u, and the gradient of g . v with respect to u is J v
    dummies = tuple(factories.zeros_like(o).requires_grad_(True) for o in outputs)
    with enable_grad():
        grads = _gradients(outputs, inputs, dummies, True, strict, "output")
        products = _gradients(grads, dummies, vectors, create_graph, strict, "jacobian")
    return _structure(_finish(outputs, create_graph), outputs_tuple), _structure(_finish(products, create_graph),
                                                                                outputs_tuple)


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"):
    """The Jacobian of ``func`` at ``inputs``: for output ``i`` and input ``j`` a Tensor of shape
    ``output_i.shape + input_j.shape``, nested in tuples as PyTorch nests them.

    >>> import dtorch
    >>> jacobian(lambda x: x ** 2, dtorch.tensor([1.0, 3.0]))
    tensor([[2., 0.],
            [0., 6.]])
    """
    if strategy not in ("forward-mode", "reverse-mode"):
        raise ValueError('Expected strategy to be either "forward-mode" or "reverse-mode". Hint: If your '
                         'function has more outputs than inputs, "forward-mode" tends to be more performant. '
                         'Otherwise, prefer to use "reverse-mode".')
    if strategy == "forward-mode" and not vectorize:
        raise NotImplementedError("torch.autograd.functional.jacobian: `strategy=\"forward-mode\"` is only "
                                  "implemented for `vectorize=True`.")
    inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
    inputs = _prepare(inputs, create_graph)
    outputs_tuple, outputs = _call(func, inputs, "jacobian")
    blocks = []
    for index, output in enumerate(outputs):
        rows = []
        flat = output.reshape(-1)
        for k in range(flat.numel()):
            seed = factories.zeros_like(flat)
            seed[k] = 1
            rows.append(_gradients((output,), inputs, (seed.reshape(output.shape),), create_graph, strict,
                                   f"output {index}"))
        per_input = []
        for j, tensor in enumerate(inputs):
            if rows:
                block = F.stack([row[j] for row in rows]).reshape(tuple(output.shape) + tuple(tensor.shape))
            else:
                block = factories.zeros(tuple(output.shape) + tuple(tensor.shape), dtype=tensor.dtype,
                                        device=tensor.device)
            per_input.append(block)
        blocks.append(_finish(tuple(per_input), create_graph))
    if not outputs_tuple:
        return _structure(blocks[0], inputs_tuple)
    return tuple(_structure(block, inputs_tuple) for block in blocks)


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False, outer_jacobian_strategy="reverse-mode"):
    """The Hessian of the scalar function ``func`` at ``inputs``: one Tensor of shape ``input.shape * 2`` for
    one input; for a tuple of inputs a tuple of tuples, entry ``[i][j]`` of shape ``input_i.shape +
    input_j.shape``.

    >>> import dtorch
    >>> hessian(lambda x: (x ** 3).sum(), dtorch.tensor([1.0, 2.0]))
    tensor([[ 6.,  0.],
            [ 0., 12.]])
    """
    inputs_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")

    def scalar_func(*values):
        out = func(*values)
        if isinstance(out, (tuple, list)) or not isinstance(out, Tensor):
            raise RuntimeError("The function given to hessian should return a single Tensor")
        if out.numel() != 1:
            raise RuntimeError("The Tensor returned by the function given to hessian should contain a single "
                               "element")
        return out.reshape(())

    def gradient(*values):
        out = scalar_func(*values)
        return _gradients((out,), values, (factories.ones_like(out),), True, strict, "output")

    result = jacobian(gradient, inputs if inputs_tuple else inputs[0], create_graph=create_graph, strict=strict,
                      vectorize=vectorize, strategy=outer_jacobian_strategy)
    if not inputs_tuple:
        return result[0]
    return result


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """``v^T H`` of the scalar function ``func`` at ``inputs``: returns ``(func(inputs), vhp)``.

    >>> import dtorch
    >>> out, product = vhp(lambda x: (x ** 3).sum(), dtorch.tensor([1.0, 2.0]), dtorch.tensor([1.0, 1.0]))
    >>> product
    tensor([ 6., 12.])
    """
    return _hessian_product(func, inputs, v, create_graph, strict, "vhp", transpose=False)


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """``H v`` of the scalar function ``func`` at ``inputs``: returns ``(func(inputs), hvp)`` (double-backward
    trick).

    >>> import dtorch
    >>> out, product = hvp(lambda x: (x ** 3).sum(), dtorch.tensor([1.0, 2.0]), dtorch.tensor([1.0, 0.0]))
    >>> product
    tensor([6., 0.])
    """
    return _hessian_product(func, inputs, v, create_graph, strict, "hvp", transpose=True)


def _hessian_product(func, inputs, v, create_graph, strict, function, transpose):
    inputs_tuple, inputs = _as_tuple(inputs, "inputs", function)
    inputs = _prepare(inputs, create_graph)
    vectors = _default_vector(v, inputs, function, "input to the user-provided function")
    outputs_tuple, outputs = _call(func, inputs, function)
    if outputs_tuple or outputs[0].numel() != 1:
        raise RuntimeError(f"The function given to {function} should return a single Tensor with a single "
                           "element.")
    output = outputs[0]
    with enable_grad():
        first = _gradients((output,), inputs, (factories.ones_like(output),), True, strict, "output")
        if transpose:
            # H v = d/du [ (u^T H) v ]: a dummy cotangent u for the gradient, then differentiate in u
            dummies = tuple(factories.zeros_like(t).requires_grad_(True) for t in inputs)
            back = _gradients(first, inputs, dummies, True, strict, "jacobian")
            products = _gradients(back, dummies, vectors, create_graph, strict, "hessian")
        else:
            products = _gradients(first, inputs, vectors, create_graph, strict, "jacobian")
    return _finish((output,), create_graph)[0], _structure(_finish(products, create_graph), inputs_tuple)


def _structure(values, is_tuple):
    return tuple(values) if is_tuple else values[0]
