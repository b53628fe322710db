"""PyTorch's TypeError for a non-Tensor (a NumPy array, most often) passed where a Tensor is expected.

The front ends read ``input._array`` (or call ``input.dim()``) without checking the type first: checking costs time on every call, while a
``try``/``except AttributeError`` around the body costs nothing until it fires. The handler calls
``not_a_tensor``, which turns the AttributeError into PyTorch's TypeError only when the object that lacked
``_array`` is one of the caller's own arguments (or an element of a list argument, as in ``cat``); any other
AttributeError is re-raised unchanged, so real bugs are never masked.

Sits beside ``_backend`` at the bottom of the layer table: it imports nothing from dtorch.
"""


# What a front end's ``except`` catches and hands to ``not_a_tensor``: the AttributeError of ``array._array``, and
# the TypeError that ``Op.apply`` raises for an array among its inputs (a plain TypeError, so that it prints as
# PyTorch's does, carrying the offending value in ``not_a_tensor_value`` so that a front end can name itself in the
# message: ``isnan``, not the ``Compare`` op it calls). Any other error of these types is re-raised unchanged.
CAUGHT = (AttributeError, TypeError)
_NOTHING = object()


def type_name(value):
    """The type's name as PyTorch prints it: ``numpy.ndarray``, ``list``, ``int``.

    >>> import numpy as np
    >>> type_name(np.ones(2)), type_name([1])
    ('numpy.ndarray', 'list')
    """
    cls = type(value)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def not_a_tensor(error, function, names, *values):
    """Raise PyTorch's TypeError for the argument among ``values`` (named by ``names``, a tuple or one
    space-separated string) that caused ``error`` (an AttributeError raised on an argument that is not a Tensor, or the
    TypeError of an op given an array); re-raise ``error`` when no argument did.

    >>> import numpy as np
    >>> array = np.ones(3)
    >>> try:
    ...     array._array
    ... except AttributeError as error:
    ...     not_a_tensor(error, "exp", "input", array)
    Traceback (most recent call last):
    TypeError: exp(): argument 'input' (position 1) must be Tensor, not numpy.ndarray
    """
    if isinstance(error, AttributeError):
        # the object that lacked the attribute (``_array``, or a Tensor method such as ``dim``), when it is not a
        # Tensor: a Tensor missing an attribute is a bug in dtorch, and its AttributeError must come through
        culprit = error.obj
        if culprit is None or hasattr(culprit, "_array"):
            culprit = _NOTHING
    else:
        culprit = getattr(error, "not_a_tensor_value", _NOTHING)
    if culprit is not _NOTHING:
        if isinstance(names, str):
            names = names.split()
        for position, (name, value) in enumerate(zip(names, values), 1):
            if value is culprit:
                raise _error(function, name, position, value) from None
            if isinstance(value, (list, tuple)):
                for index, element in enumerate(value):
                    if element is culprit:
                        raise TypeError(
                            f"expected Tensor as element {index} in argument {position - 1}, "
                            f"but got {type_name(element)}"
                        ) from None
    raise error


def raise_not_a_tensor(function, name, position, value):
    """Raise PyTorch's TypeError for ``value`` given as argument ``name`` at ``position`` (1-based) of
    ``function`` (for the places that test the type themselves, off the hot path).

    >>> raise_not_a_tensor("relu", "input", 1, [1.0])
    Traceback (most recent call last):
    TypeError: relu(): argument 'input' (position 1) must be Tensor, not list
    """
    raise _error(function, name, position, value)


def _error(function, name, position, value):
    error = TypeError(f"{function}(): argument '{name}' (position {position}) must be Tensor, not {type_name(value)}")
    error.not_a_tensor_value = value
    return error
