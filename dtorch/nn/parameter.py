"""``Parameter``: a Tensor that a Module registers as learnable."""

import numpy as np

from dtorch import _backend, factories
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
        if data is None:
            array = np.empty((0,), dtype=np.float32)
        elif isinstance(data, Tensor):
            array = data._array
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
        return (Parameter, (Tensor._from_array(self._array, None), self.requires_grad))

    def __deepcopy__(self, memo):
        result = Parameter(Tensor._from_array(self._array.copy(), None), self.requires_grad)
        memo[id(self)] = result
        return result


class _BufferMeta(type):
    # as PyTorch's: a Buffer is a plain Tensor marked ``_is_buffer``, so ``isinstance`` checks the mark
    def __instancecheck__(cls, instance):
        if cls is Buffer:
            return isinstance(instance, Tensor) and getattr(instance, "_is_buffer", False)
        return super().__instancecheck__(instance)


class Buffer(Tensor, metaclass=_BufferMeta):
    """A Tensor that a Module registers as a buffer when assigned as an attribute (PyTorch's ``nn.Buffer``).

    ``Buffer(data, persistent=False)`` keeps it out of ``state_dict``. What is stored is ``data`` detached (the
    same memory), marked as a buffer.

    >>> import dtorch
    >>> m = dtorch.nn.Module()
    >>> m.steps = Buffer(dtorch.zeros(1))
    >>> [name for name, _ in m.named_buffers()], list(m.state_dict())
    (['steps'], ['steps'])
    """

    def __new__(cls, data=None, *, persistent=True):
        if data is None:
            data = Tensor._from_array(np.empty((0,), dtype=np.float32), None)
        buffer = data.detach().requires_grad_(data.requires_grad)
        buffer.persistent = persistent
        buffer._is_buffer = True
        return buffer


class _UninitializedMixin:
    """A placeholder of unknown shape (an empty array) for lazy modules; ``materialize(shape)`` gives it memory
    and turns it, in place, into its ``cls_to_become`` (so whoever holds it, an optimizer say, keeps it)."""

    cls_to_become = None

    def materialize(self, shape, device=None, dtype=None):
        dtype = self.dtype if dtype is None else dtype
        device = self.device if device is None else device
        self._array = factories.empty(tuple(shape), device=device, dtype=dtype)._array
        self.__class__ = self.cls_to_become

    def __repr__(self):
        return f"<{type(self).__name__}>"

    def __deepcopy__(self, memo):
        result = type(self)(self.requires_grad, dtype=self.dtype)
        result._array = self._array.copy()
        memo[id(self)] = result
        return result

    def __reduce_ex__(self, protocol):
        return (_rebuild_uninitialized, (type(self), self.requires_grad, str(self.dtype).split(".")[-1]))


def _rebuild_uninitialized(cls, requires_grad, dtype_name):
    return cls(requires_grad, dtype=_backend._dtype_by_name(dtype_name))


class UninitializedParameter(_UninitializedMixin, Parameter):
    """A ``Parameter`` whose shape a lazy module fills in at its first call (PyTorch's).

    >>> p = UninitializedParameter()
    >>> p.materialize((2, 3)); type(p).__name__, tuple(p.shape)
    ('Parameter', (2, 3))
    """

    cls_to_become = Parameter

    def __new__(cls, requires_grad=True, device=None, dtype=None):
        return Parameter.__new__(cls, factories.empty(0, device=device, dtype=dtype), requires_grad)

    def __init__(self, requires_grad=True, device=None, dtype=None):
        pass


class UninitializedBuffer(_UninitializedMixin, Tensor):
    """A buffer whose shape a lazy module fills in at its first call (PyTorch's).

    >>> b = UninitializedBuffer()
    >>> b.materialize((4,)); type(b).__name__, tuple(b.shape)
    ('Tensor', (4,))
    """

    cls_to_become = Tensor

    def __new__(cls, requires_grad=False, device=None, dtype=None):
        placeholder = factories.empty(0, device=device, dtype=dtype)
        buffer = Tensor._from_array.__func__(cls, placeholder._array, None)
        buffer.requires_grad = bool(requires_grad)
        return buffer

    def __init__(self, requires_grad=False, device=None, dtype=None):
        pass
