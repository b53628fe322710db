"""``Parameter``: a Tensor that a Module registers as learnable."""

from dtorch.tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor that requires grad by default and that ``Module`` collects in ``parameters()``.

    It shares the given tensor's memory (no copy), as PyTorch's does.

    >>> import dtorch
    >>> p = Parameter(dtorch.zeros(2))
    >>> p
    Parameter containing:
    tensor([0., 0.], requires_grad=True)
    """

    def __new__(cls, data=None, requires_grad=True):
        import numpy as np

        if data is None:
            array = np.empty((0,), dtype=np.float32)
        elif isinstance(data, Tensor):
            array = data.data
        else:
            array = np.asarray(data)
        parameter = Tensor._from_array.__func__(cls, array, None)
        parameter.requires_grad = bool(requires_grad)
        return parameter

    def __init__(self, data=None, requires_grad=True):
        pass

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):
        return (Parameter, (Tensor._from_array(self.data, None), self.requires_grad))

    def __deepcopy__(self, memo):
        result = Parameter(Tensor._from_array(self.data.copy(), None), self.requires_grad)
        memo[id(self)] = result
        return result
