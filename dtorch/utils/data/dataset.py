"""Datasets: the map-style ``Dataset`` (``__getitem__`` + ``__len__``), the ``IterableDataset`` (``__iter__``),
and their combinators, with ``torch.utils.data``'s names, arguments and behaviour.

A map-style dataset answers ``dataset[i]`` for ``0 <= i < len(dataset)``; a sampler decides the order. An
iterable dataset decides its own order; under a multi-worker ``DataLoader`` every worker runs its own copy of
``__iter__``, so an iterable dataset that does not shard itself through ``get_worker_info()`` yields every sample
once per worker (as in PyTorch).
"""
import bisect
import collections.abc
import math
import warnings

import numpy as np

from dtorch import _backend, factories
from dtorch.tensor import Tensor
from dtorch.utils.data import _rng


class Dataset:
    """A map-style dataset: subclasses define ``__getitem__(index)`` and usually ``__len__()``.

    ``a + b`` concatenates two datasets into a ``ConcatDataset``. A subclass may also define
    ``__getitems__(indices)`` returning a list of samples; the DataLoader then fetches a whole batch with one call.

    Example:
        >>> class Squares(Dataset):
        ...     def __len__(self): return 4
        ...     def __getitem__(self, i): return i * i
        >>> [Squares()[i] for i in range(4)]
        [0, 1, 4, 9]
    """

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __add__(self, other):
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset that is a stream: subclasses define ``__iter__``. ``a + b`` chains two of them.

    Example:
        >>> class Count(IterableDataset):
        ...     def __iter__(self): return iter(range(3))
        >>> list(Count() + Count())
        [0, 1, 2, 0, 1, 2]
    """

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")

    def __add__(self, other):
        return ChainDataset([self, other])


def _first_dim(tensor):
    shape = tuple(tensor.shape)
    if not shape:
        raise ValueError("TensorDataset needs tensors with at least one dimension, got a 0-d tensor")
    return shape[0]


class StackedSamples(collections.abc.Sequence):
    """A batch of samples gathered already stacked: what ``TensorDataset.__getitems__`` returns.

    It is the sequence of samples ``(fields[0][k], fields[1][k], ...)`` for ``k < len(self)``, but stores one
    gathered array (or Tensor) per field, so a batch costs one gather per field and no per-sample objects. The
    DataLoader collates it by taking the fields as they are when its ``collate_fn`` is ``default_collate`` (a
    test holds this equal to collating the samples one by one), and hands any other ``collate_fn`` ``list(batch)``,
    the list of samples PyTorch would give it.

    Example:
        >>> batch = TensorDataset(np.arange(6).reshape(3, 2), np.array([7, 8, 9])).__getitems__([2, 0])
        >>> len(batch), batch[0][0].tolist(), int(batch[0][1]), [f.tolist() for f in batch.collate()]
        (2, [4, 5], 9, [[[4, 5], [0, 1]], [9, 7]])
    """

    __slots__ = ("fields",)

    def __init__(self, fields):
        self.fields = tuple(fields)

    def __len__(self):
        return len(self.fields[0])

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        return tuple(field[k] for field in self.fields)

    def collate(self):
        """What ``default_collate(list(self))`` returns (one Tensor per field, in a list), without the copies."""
        return [field if isinstance(field, Tensor) else factories.from_numpy(field) for field in self.fields]

    def __repr__(self):
        return f"StackedSamples(len={len(self)}, fields={[tuple(f.shape) for f in self.fields]})"


def _index_array(indices):
    """``indices`` as a 1-D integer NumPy array, or None when they are something else (then the caller fetches
    sample by sample and whatever ``__getitem__`` does with them, errors included, happens as usual)."""
    try:
        index = np.asarray(indices)
    except Exception:
        return None
    if index.ndim != 1 or index.dtype.kind not in "iu" or index.size == 0:
        return None
    return index


def _gatherable(tensor):
    """A field one fancy-index gather can serve: a NumPy array of a collatable dtype, or a Tensor without grad
    (a gather of one that requires grad would differ from stacking its rows in the graph it records)."""
    if type(tensor) is np.ndarray:
        return tensor.dtype.kind not in "OSUV"
    return isinstance(tensor, Tensor) and not tensor.requires_grad


def _gather(tensor, index):
    if type(tensor) is np.ndarray:
        return tensor[index]
    array = tensor._array
    if _backend.is_cupy_array(array):
        index = _backend.xp_of(array).asarray(index)
    return Tensor._from_array(array[index], None)


class TensorDataset(Dataset):
    """Samples are the ``index``-th rows of the given tensors (or arrays), as a tuple.

    Args:
        *tensors: tensors (or NumPy arrays) whose first dimensions are equal.

    Example:
        >>> ds = TensorDataset(np.arange(6).reshape(3, 2), np.array([0, 1, 0]))
        >>> len(ds), ds[1][0].tolist(), int(ds[1][1])
        (3, [2, 3], 1)
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        sizes = [_first_dim(t) for t in tensors]
        if any(size != sizes[0] for size in sizes):
            raise ValueError(f"Size mismatch between tensors: first dimensions are {sizes}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(tensor[index] for tensor in self.tensors)

    def __getitems__(self, indices):
        """The samples at ``indices``, gathered with one fancy index per tensor into a ``StackedSamples`` (a list
        of samples, as Python objects, where the tensors or the indices do not allow that)."""
        index = _index_array(indices)
        if index is None or not all(_gatherable(t) for t in self.tensors):
            return [self[i] for i in indices]
        return StackedSamples(_gather(t, index) for t in self.tensors)

    def __len__(self):
        return _first_dim(self.tensors[0])


class StackDataset(Dataset):
    """Zips datasets of equal length: sample ``i`` is a tuple (positional) or dict (keyword) of their samples.

    Example:
        >>> ds = StackDataset(x=[1, 2], y=["a", "b"])
        >>> ds[1]
        {'x': 2, 'y': 'b'}
    """

    def __init__(self, *args, **kwargs):
        if args and kwargs:
            raise ValueError("StackDataset takes datasets either as positional or as keyword arguments, not both")
        if not args and not kwargs:
            raise ValueError("StackDataset needs at least one dataset")
        self.datasets = args or kwargs
        parts = args or tuple(kwargs.values())
        lengths = [len(d) for d in parts]
        if any(n != lengths[0] for n in lengths):
            raise ValueError(f"Size mismatch between datasets: lengths are {lengths}")
        self._length = lengths[0]

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {key: d[index] for key, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __len__(self):
        return self._length


class ConcatDataset(Dataset):
    """Map-style datasets one after another.

    Args:
        datasets: an iterable of map-style datasets (iterable datasets are refused).

    Example:
        >>> ds = ConcatDataset([[0, 1], [2, 3, 4]])
        >>> len(ds), ds[2], ds[-1]
        (5, 2, 4)
    """

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError(f"ConcatDataset does not support IterableDataset, got {type(d).__name__}")
        self.cumulative_sizes = self.cumsum(self.datasets)

    @staticmethod
    def cumsum(sequence):
        total, sizes = 0, []
        for d in sequence:
            total += len(d)
            sizes.append(total)
        return sizes

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        if idx < 0:
            if -idx > len(self):
                raise ValueError(f"absolute value of index {idx} should not exceed dataset length {len(self)}")
            idx = len(self) + idx
        dataset_idx = bisect.bisect_right(self.cumulative_sizes, idx)
        if dataset_idx >= len(self.datasets):
            raise IndexError(f"index {idx} is out of range for a dataset of length {len(self)}")
        start = self.cumulative_sizes[dataset_idx - 1] if dataset_idx > 0 else 0
        return self.datasets[dataset_idx][idx - start]


class ChainDataset(IterableDataset):
    """Iterable datasets one after another, chained lazily.

    Example:
        >>> list(ChainDataset([range(2), range(3)]))
        [0, 1, 0, 1, 2]
    """

    def __init__(self, datasets):
        self.datasets = datasets

    def __iter__(self):
        for d in self.datasets:
            yield from d

    def __len__(self):
        return sum(len(d) for d in self.datasets)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order.

    Example:
        >>> Subset(["a", "b", "c", "d"], [3, 0])[0]
        'd'
    """

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices):
        """The samples at ``indices`` of this subset: one ``__getitems__`` call on the dataset when it has one."""
        if isinstance(self.indices, (np.ndarray, Tensor)):  # one gather instead of a scalar per index
            chosen = np.asarray(self.indices.numpy() if isinstance(self.indices, Tensor) else self.indices)
            chosen = chosen[np.asarray(indices, dtype=np.intp)].tolist()
        else:
            chosen = [self.indices[i] for i in indices]
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__(chosen)
        return [self.dataset[i] for i in chosen]

    def __len__(self):
        return len(self.indices)


def _lengths_from_fractions(fractions, total):
    if any(not 0 <= f <= 1 for f in fractions):
        raise ValueError(f"fractions must lie in [0, 1], got {list(fractions)}")
    lengths = [int(math.floor(total * f)) for f in fractions]
    for i in range(total - sum(lengths)):  # the remainder goes round-robin, as PyTorch does
        lengths[i % len(lengths)] += 1
    for i, n in enumerate(lengths):
        if n == 0:
            warnings.warn(f"Length of split at index {i} is 0. This might result in an empty dataset.")
    return lengths


def random_split(dataset, lengths, generator=None):
    """Splits ``dataset`` into non-overlapping random ``Subset``s.

    Args:
        dataset: a map-style dataset.
        lengths: the lengths of the parts (summing to ``len(dataset)``), or fractions summing to 1; with fractions
            each part gets ``floor(len * f)`` samples and the remainder is dealt round-robin from the first part.
        generator: a ``dtorch.Generator``; None uses dtorch's default generator (so ``dtorch.manual_seed`` fixes it).

    Returns:
        a list of ``Subset``.

    Example:
        >>> train, val = random_split(range(10), [0.8, 0.2])
        >>> len(train), len(val)
        (8, 2)
    """
    lengths = list(lengths)
    total = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        lengths = _lengths_from_fractions(lengths, total)
    if any(not isinstance(n, (int, np.integer)) or n < 0 for n in lengths):
        raise ValueError(f"lengths must be non-negative integers or fractions summing to 1, got {lengths}")
    if sum(lengths) != total:
        raise ValueError(f"Sum of input lengths {sum(lengths)} does not equal the length of the input dataset {total}")
    permutation = _rng.numpy_generator(generator).permutation(total).tolist()
    parts, offset = [], 0
    for n in lengths:
        parts.append(Subset(dataset, permutation[offset:offset + n]))
        offset += n
    return parts
