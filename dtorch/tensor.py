"""``Tensor``: one backend array plus the fields autograd needs. No math lives here.

A Tensor owns one backend array in the private slot ``_array`` (NumPy or CuPy: its device is where that array
lives), ``requires_grad``, ``grad``,
``grad_fn`` (the graph node that produced it, None for leaves), a version counter bumped by in-place ops (shared by
views through ``_base``) and its hooks. The arithmetic operators and math methods are bound to the ops in
``dtorch/__init__.py`` when the package is assembled, so every path (``a + b``, ``a.add(b)``, ``dtorch.add``) runs
the same ``Op``.

The per-op path creates Tensors through ``Tensor._from_array``, which sets the slots directly and skips argument
parsing: keep it that way, every op pays for it.
"""

import numpy as np

from dtorch import _backend
from dtorch._backend import device_of, from_numpy_dtype
from dtorch._tensor_str import tensor_repr
from dtorch.utils.hooks import RemovableHandle


_object_new = object.__new__


class Size(tuple):
    """A tensor's shape: a tuple of ints that prints like PyTorch's.

    >>> Size([2, 3])
    dtorch.Size([2, 3])
    """

    def __repr__(self):
        return f"dtorch.Size({list(self)})"

    def numel(self):
        count = 1
        for extent in self:
            count *= extent
        return count


class Tensor:
    """A multi-dimensional array with autograd, PyTorch's ``torch.Tensor``.

    Create tensors with the factories (``dtorch.tensor``, ``dtorch.zeros``, ...). ``dtorch.Tensor(data)`` makes a
    float tensor from data and ``dtorch.Tensor(2, 3)`` an uninitialised 2x3 one, as in PyTorch.

    >>> import dtorch
    >>> x = dtorch.tensor([1.0, 2.0], requires_grad=True)
    >>> (x * x).sum().backward(); x.grad
    tensor([2., 4.])
    """

    __slots__ = (
        "_array",  # the backend array (NumPy or CuPy); ``.data`` wraps it in a Tensor
        "requires_grad",
        "grad",
        "grad_fn",
        "_vc",  # version counter; the one of ``_base`` counts for views
        "_base",  # the tensor whose memory a view shares, or None
        "_hooks",  # gradient hooks of a leaf (a non-leaf keeps them on its grad_fn)
        "_post_hooks",  # post-accumulate-grad hooks of a leaf
        "__dict__",
        "__weakref__",
    )

    # numpy must hand ``ndarray <op> Tensor`` back to the Tensor's reflected operator
    __array_ufunc__ = None
    __array_priority__ = 1000

    def __init__(self, *args, device=None, dtype=None):
        if len(args) == 1 and not isinstance(args[0], (int, Size)):
            source = args[0]
            array = np.array(source._array if isinstance(source, Tensor) else source,
                             dtype=(dtype or _backend.get_default_dtype()).numpy_dtype)
        else:  # sizes, as ints or one Size (a plain tuple or list is data, as in PyTorch)
            shape = tuple(args[0]) if len(args) == 1 and isinstance(args[0], Size) else args
            array = np.empty(shape, dtype=(dtype or _backend.get_default_dtype()).numpy_dtype)
        if device is not None:
            array = _backend.to_device(array, device)
        self._array = array
        self.requires_grad = False
        self.grad = None
        self.grad_fn = None
        self._vc = 0
        self._base = None
        self._hooks = None
        self._post_hooks = None

    @classmethod
    def _from_array(cls, array, grad_fn):
        """Wrap an array without copying: the per-op constructor. ``grad_fn`` None makes a tensor without grad.
        (``wrap_array`` is the same for a plain Tensor, without the class binding: ``Op.apply`` calls it.)"""
        tensor = _object_new(cls)
        tensor._array = array
        tensor.grad_fn = grad_fn
        tensor.requires_grad = grad_fn is not None
        tensor.grad = None
        tensor._vc = 0
        tensor._base = None
        tensor._hooks = None
        tensor._post_hooks = None
        return tensor

    # ---- metadata ---------------------------------------------------------------------------------------------------

    @property
    def shape(self):
        return Size(self._array.shape)

    def size(self, dim=None):
        """The shape, or the extent of one dimension (negative ``dim`` counts from the end)."""
        if dim is None:
            return Size(self._array.shape)
        return self._array.shape[_wrap_dim(dim, self._array.ndim)]

    @property
    def dtype(self):
        return from_numpy_dtype(self._array.dtype)

    @property
    def device(self):
        return device_of(self._array)

    @property
    def is_cuda(self):
        return self.device.type == "cuda"

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def ndim(self):
        return self._array.ndim

    def dim(self):
        return self._array.ndim

    def ndimension(self):
        return self._array.ndim

    def numel(self):
        return int(self._array.size)

    def nelement(self):
        return int(self._array.size)

    def element_size(self):
        return self._array.itemsize

    @property
    def itemsize(self):
        return self._array.itemsize

    @property
    def nbytes(self):
        return int(self._array.nbytes)

    def stride(self, dim=None):
        """Strides in elements, like PyTorch's (NumPy counts bytes)."""
        itemsize = self._array.itemsize
        strides = tuple(s // itemsize for s in self._array.strides)
        if dim is None:
            return strides
        return strides[_wrap_dim(dim, self._array.ndim)]

    def is_contiguous(self, memory_format=None):
        return bool(self._array.flags.c_contiguous)

    def is_floating_point(self):
        return _backend.is_floating_numpy(self._array.dtype)

    def is_complex(self):
        return False

    def data_ptr(self):
        if _backend.is_cupy_array(self._array):
            return self._array.data.ptr
        return self._array.ctypes._array

    def get_device(self):
        return -1 if self.device.type == "cpu" else self.device.index

    @property
    def _version(self):
        base = self._base if self._base is not None else self
        return base._vc

    def _bump_version(self):
        """Record an in-place change of ``data`` (made outside the ops) so autograd notices stale saved values."""
        base = self._base if self._base is not None else self
        base._vc += 1

    @property
    def data(self):
        """This tensor's memory as a new Tensor without history (PyTorch's ``Tensor.data``).

        The result shares memory with ``self``, has ``requires_grad=False`` and its own version counter, so in-place
        changes through it are not seen by autograd: that is why old code writes ``p.data.add_(...)``. Prefer
        ``with dtorch.no_grad():`` or ``detach()``, which autograd does check. Assigning ``t.data = other`` swaps
        ``t``'s storage for ``other``'s (shape and dtype may change, as in PyTorch).

        >>> import dtorch
        >>> w = dtorch.ones(2, requires_grad=True)
        >>> _ = w.data.mul_(3)
        >>> w
        tensor([3., 3.], requires_grad=True)
        """
        return Tensor._from_array(self._array, None)

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"Tensor.data must be set to a Tensor, but got {type(value).__name__}")
        self._array = value._array

    # ---- autograd fields ------------------------------------------------------------------------------------------

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` in place on a leaf; returns self.

        >>> import dtorch
        >>> dtorch.zeros(2).requires_grad_().requires_grad
        True
        """
        if self.grad_fn is not None and not requires_grad:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a computed "
                "variable in a subgraph that doesn't require differentiation use var_no_grad = var.detach()."
            )
        if requires_grad and not _backend.is_floating_numpy(self._array.dtype):
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in ``.grad`` after backward (leaves always keep theirs)."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is not None:
            self.grad_fn.retain_output_grad(self)

    @property
    def retains_grad(self):
        return self.grad_fn is not None and self.grad_fn._retained_tensor is not None

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned tensor replaces the gradient.

        Returns a handle whose ``remove()`` takes the hook out.

        >>> import dtorch
        >>> x = dtorch.ones(2, requires_grad=True)
        >>> handle = x.register_hook(lambda g: g * 2)
        >>> x.sum().backward(); x.grad
        tensor([2., 2.])
        """
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            hooks = self.grad_fn.pre_hook_list()
        else:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        return RemovableHandle(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` right after this leaf's ``.grad`` has been accumulated during backward.

        DDP hangs its gradient reducer here.

        >>> import dtorch
        >>> w = dtorch.ones(2, requires_grad=True)
        >>> seen = []
        >>> _ = w.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.sum().item()))
        >>> (w * 3).sum().backward(); seen
        [6.0]
        """
        if self.grad_fn is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._post_hooks is None:
            self._post_hooks = []
        return RemovableHandle(self._post_hooks, hook)

    # ---- conversion to Python and NumPy -------------------------------------------------------------------------

    def __array__(self, dtype=None, copy=None):
        array = self._array.get() if _backend.is_cupy_array(self._array) else self._array
        if array.dtype == _backend.BFLOAT16_NUMPY and dtype is None:  # as PyTorch: NumPy has no bfloat16 of its own
            raise TypeError("Got unsupported ScalarType BFloat16")
        if dtype is not None:
            return array.astype(dtype, copy=False)
        return array

    def item(self):
        """The single value of a one-element tensor as a Python number."""
        if self._array.size != 1:
            raise RuntimeError(
                f"a Tensor with {self._array.size} elements cannot be converted to Scalar"
            )
        return self._array.reshape(()).item()

    def tolist(self):
        """Nested Python lists of Python numbers (a number for a 0-dim tensor)."""
        data = self._array.get() if _backend.is_cupy_array(self._array) else self._array
        return data.tolist()

    def __len__(self):
        if self._array.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._array.shape[0]

    def __bool__(self):
        if self._array.size != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with more than one value is ambiguous"
            )
        return bool(self._array.reshape(()).item())

    def _scalar_for_conversion(self):
        if self._array.size != 1:
            raise ValueError("only one element tensors can be converted to Python scalars")
        return self.item()

    def __float__(self):
        return float(self._scalar_for_conversion())

    def __int__(self):
        return int(self._scalar_for_conversion())

    def __index__(self):
        if self._array.dtype.kind not in "iub" or self._array.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __complex__(self):
        return complex(self.item())

    def __hash__(self):
        return id(self)

    def __repr__(self):

        return tensor_repr(self)

    def __format__(self, spec):
        if self._array.ndim == 0:
            return self.item().__format__(spec)
        return object.__format__(self, spec)

    def __reduce_ex__(self, protocol):
        # plain pickling (DataLoader workers, object collectives) carries the CPU array and requires_grad only
        array = self._array.get() if _backend.is_cupy_array(self._array) else self._array
        return (_rebuild_tensor, (array, self.requires_grad, str(self.device)))


def wrap_array(array, grad_fn):
    """``Tensor._from_array(array, grad_fn)`` as a plain function (the classmethod's binding costs ~0.1 us a call)."""
    tensor = _object_new(Tensor)
    tensor._array = array
    tensor.grad_fn = grad_fn
    tensor.requires_grad = grad_fn is not None
    tensor.grad = None
    tensor._vc = 0
    tensor._base = None
    tensor._hooks = None
    tensor._post_hooks = None
    return tensor


def _rebuild_tensor(array, requires_grad, device_name):
    array = _backend.to_device(array, device_name) if device_name != "cpu" else array
    tensor = Tensor._from_array(array, None)
    tensor.requires_grad = requires_grad
    return tensor


def _wrap_dim(dim, ndim):
    """A dimension index in ``[0, ndim)``; an IndexError like PyTorch's when out of range."""
    size = ndim if ndim > 0 else 1
    if dim < -size or dim >= size:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-size}, {size - 1}], but got {dim})"
        )
    return dim % size if ndim > 0 else 0
