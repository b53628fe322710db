"""``parameters_to_vector`` and ``vector_to_parameters``: parameters as one flat vector and back."""

from dtorch import _backend, functional
from dtorch.tensor import Tensor

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def _check_same_device(param, previous):
    here = _backend.device_of(param._array)
    if previous is not None and here != previous:
        raise TypeError("Found two parameters on different devices, this is currently not supported.")
    return here


def parameters_to_vector(parameters):
    """Flatten and concatenate ``parameters`` into one 1-D tensor (a differentiable copy, as in PyTorch).

    Args:
        parameters (iterable of Tensors): on one device.

    Returns:
        a 1-D Tensor with all their elements, in order.

    >>> import dtorch
    >>> parameters_to_vector([dtorch.ones(2, 2), dtorch.zeros(1)])
    tensor([1., 1., 1., 1., 0.])
    """
    device = None
    pieces = []
    for param in parameters:
        device = _check_same_device(param, device)
        pieces.append(param.reshape(-1))
    return functional.cat(pieces)


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of ``vec`` into ``parameters``, in place.

    Unlike PyTorch, which rebinds each ``param._array`` to a view of ``vec``, the values are copied into the
    parameters' own arrays: a parameter keeps its memory (and an optimizer's flat buffers stay valid), and later
    changes to ``vec`` do not reach the parameters.

    Args:
        vec (Tensor): a 1-D tensor with as many elements as all ``parameters`` together.
        parameters (iterable of Tensors): the destinations, in order.

    >>> import dtorch
    >>> w = dtorch.nn.Parameter(dtorch.zeros(2, 2))
    >>> vector_to_parameters(dtorch.arange(4.0), [w]); w.data
    tensor([[0., 1.],
            [2., 3.]])
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    device = None
    pointer = 0
    source = vec._array.reshape(-1)
    for param in parameters:
        device = _check_same_device(param, device)
        count = int(param._array.size)
        if pointer + count > source.size:
            raise RuntimeError(f"vector of {source.size} elements is too short for the parameters")
        param._array[...] = source[pointer : pointer + count].reshape(param._array.shape)
        param._bump_version()
        pointer += count
