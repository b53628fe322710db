"""``default_collate`` and ``default_convert``: how a list of samples becomes a batch, as in PyTorch.

``default_collate`` stacks along a new first dimension: Tensors with ``dtorch.stack``, NumPy arrays with
``numpy.stack`` (then one ``dtorch.from_numpy``, no per-sample Tensor), Python ints to an int64 Tensor, floats to
a float64 Tensor, bools to a bool Tensor; strings and bytes are returned as the sequence they came in (the
loader's list at the top level, a tuple for a field of a tuple or named tuple, exactly as PyTorch); dicts, named
tuples and sequences are collated field by field (a tuple batch comes back as a list, as PyTorch does). Anything
else (None, complex, arbitrary objects) is a TypeError, and arrays of unequal shapes a RuntimeError, as in PyTorch.
"""
import collections.abc
import copy
import numbers

import numpy as np

from dtorch import factories, functional
from dtorch.tensor import Tensor

_ERR = "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"


def _is_namedtuple(obj):
    return isinstance(obj, tuple) and hasattr(obj, "_fields")


def _rebuild_mapping(elem, values):
    """A mapping of ``elem``'s type holding ``values`` (PyTorch copies a mutable one and updates the copy)."""
    if type(elem) is dict:
        return values
    try:
        if isinstance(elem, collections.abc.MutableMapping):
            clone = copy.copy(elem)
            clone.update(values)
            return clone
        return type(elem)(values)
    except TypeError:  # a mapping type that cannot be built from a dict
        return values


def _type_name(value):
    if isinstance(value, Tensor):
        return "Tensor"
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _is_number(value):
    if isinstance(value, np.generic):
        return value.dtype.kind in "biufc"
    return isinstance(value, (bool, int, float, complex)) or isinstance(value, numbers.Number)


def _check_samples(batch, fits):
    """The samples of a batch share element 0's kind: a TypeError naming the first that does not (None, which
    PyTorch cannot turn into a tensor, gives its RuntimeError)."""
    if len(set(map(type, batch))) == 1:
        return  # one type throughout, element 0's (the common case: one C-level pass instead of a check each)
    for i, sample in enumerate(batch):
        if not fits(sample):
            if sample is None:
                raise RuntimeError("Could not infer dtype of NoneType")
            raise TypeError(
                f"default_collate: element {i} of the batch is {_type_name(sample)} but element 0 is "
                f"{_type_name(batch[0])}; the samples of a batch must have one structure"
            )


def default_collate(batch):
    """Collates a list of samples into a batch.

    Args:
        batch: a non-empty list of samples of one structure.

    Returns:
        the batch, with the samples' structure and a new leading batch dimension on every leaf.

    Example:
        >>> out = default_collate([(np.zeros(2), 1), (np.ones(2), 2)])
        >>> tuple(out[0].shape), out[1].tolist()
        ((2, 2), [1, 2])
    """
    elem = batch[0]
    if isinstance(elem, Tensor):
        for i, sample in enumerate(batch):
            if not isinstance(sample, Tensor):
                raise TypeError(f"expected Tensor as element {i} in argument 0, but got {_type_name(sample)}")
        return functional.stack(list(batch), 0)
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in "OSUV":
            raise TypeError(_ERR.format(elem.dtype))
        _check_samples(batch, lambda sample: isinstance(sample, (np.ndarray, Tensor)) or _is_number(sample))
        if any(isinstance(sample, Tensor) for sample in batch):  # stacked with the arrays, as in PyTorch
            batch = [sample.detach().cpu().numpy() if isinstance(sample, Tensor) else sample for sample in batch]
        try:
            return factories.from_numpy(np.stack(batch, 0))
        except ValueError:  # PyTorch's stack names the first mismatching sample with a RuntimeError
            shapes = [np.shape(sample) for sample in batch]
            bad = next((i for i, s in enumerate(shapes) if s != shapes[0]), None)
            if bad is None:
                raise
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(shapes[0])} at entry 0 "
                               f"and {list(shapes[bad])} at entry {bad}") from None
    if isinstance(elem, np.generic):
        if elem.dtype.kind in "OSUV":
            raise TypeError(_ERR.format(elem.dtype))
        _check_samples(batch, _is_number)
        if any(type(sample) is not type(elem) for sample in batch):
            return factories.tensor(list(batch))  # mixed numbers promote as torch.as_tensor does
        return factories.from_numpy(np.asarray(batch))
    if isinstance(elem, (bool, int, float)):
        _check_samples(batch, _is_number)
        if isinstance(elem, float):
            return factories.from_numpy(np.asarray(batch, dtype=np.float64))
        if any(type(sample) is not type(elem) for sample in batch):
            return factories.tensor(list(batch))  # torch.tensor's promotion: [1, 2.5] is float, [True, 2] int64
        return factories.from_numpy(np.asarray(batch, dtype=np.bool_ if isinstance(elem, bool) else np.int64))
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        _check_samples(batch, lambda sample: isinstance(sample, collections.abc.Mapping))
        return _rebuild_mapping(elem, {key: default_collate([d[key] for d in batch]) for key in elem})
    if _is_namedtuple(elem):
        _check_samples(batch, lambda sample: isinstance(sample, tuple))
        return type(elem)(*(default_collate(field) for field in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        _check_samples(batch, lambda sample: isinstance(sample, collections.abc.Sequence)
                       and not isinstance(sample, (str, bytes)))
        size = len(elem)
        if any(len(sample) != size for sample in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        fields = [default_collate(field) for field in zip(*batch)]
        if isinstance(elem, tuple):
            return fields
        try:
            return type(elem)(fields)
        except TypeError:  # a sequence type that cannot be built from a list
            return fields
    raise TypeError(_ERR.format(type(elem)))  # complex, Fraction, None, ...: refused, as by PyTorch


def default_convert(data):
    """Converts NumPy arrays (and numeric NumPy scalars) inside ``data`` to Tensors, keeping everything else: the
    ``collate_fn`` when automatic batching is off (``batch_size=None``).

    Example:
        >>> default_convert({"x": np.zeros(2), "name": "a"})["name"]
        'a'
    """
    if isinstance(data, Tensor):
        return data
    if isinstance(data, (np.ndarray, np.generic)):
        if data.dtype.kind in "OSUV":
            return data
        return factories.from_numpy(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        return _rebuild_mapping(data, {key: default_convert(value) for key, value in data.items()})
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        try:
            return type(data)([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data
