"""Samplers: iterables of dataset indices (or, for ``BatchSampler``, of lists of indices), with
``torch.utils.data``'s classes, arguments and checks.

Random samplers draw from dtorch's RNG: the given ``generator`` (a ``dtorch.Generator``), or, when it is None,
a fresh stream seeded once per epoch from dtorch's default generator, so ``dtorch.manual_seed(s)`` reproduces
every epoch's order, also when the sampler is iterated twice.
"""
import itertools

import numpy as np

from dtorch.utils.data import _rng

# indices drawn per call of the RNG by the samplers that draw with replacement: the memory a sampler holds does
# not grow with num_samples (PyTorch's RandomSampler draws 32 at a time; RandomSampler(ds, replacement=True,
# num_samples=int(1e10)) must not try to hold 10**10 indices)
DRAW_CHUNK = 4096


class Sampler:
    """Base class: subclasses define ``__iter__`` (yielding indices) and, where known, ``__len__``.

    Every sampler here is lazy in its length: the memory it holds while iterating is bounded by its data source
    (a permutation of ``len(data_source)``, the weights), never by ``num_samples``.
    """

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} should be a positive integer value, but got {name}={value!r}")


def _epoch_stream(generator):
    """The NumPy generator one epoch draws from: ``generator``'s own when given, else a new one seeded by a single
    draw from dtorch's default generator (PyTorch's RandomSampler does the same with ``torch.Generator``)."""
    if generator is not None:
        return _rng.numpy_generator(generator)
    return np.random.default_rng(_rng.draw_seed(None))


class SequentialSampler(Sampler):
    """Indices ``0 .. len(data_source) - 1`` in order.

    Example:
        >>> list(SequentialSampler("abc"))
        [0, 1, 2]
    """

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """Random indices: a fresh permutation per epoch, or with ``replacement=True`` independent uniform draws.

    Args:
        data_source: a sized dataset.
        replacement: draw with replacement.
        num_samples: how many indices per epoch (default ``len(data_source)``); without replacement, more than
            ``len(data_source)`` concatenates several permutations, as in PyTorch.
        generator: a ``dtorch.Generator``, or None for dtorch's default generator.

    Example:
        >>> sorted(RandomSampler(range(5)))
        [0, 1, 2, 3, 4]
    """

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got replacement={replacement!r}")
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        _check_positive_int("num_samples", self.num_samples)

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        rng = _epoch_stream(self.generator)
        if self.replacement:
            for start in range(0, self.num_samples, DRAW_CHUNK):
                size = min(DRAW_CHUNK, self.num_samples - start)
                yield from rng.integers(0, n, size=size, dtype=np.int64).tolist()
            return
        for _ in range(self.num_samples // n):
            yield from rng.permutation(n).tolist()
        yield from rng.permutation(n)[: self.num_samples % n].tolist()

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices`` in a random order, without replacement.

    Example:
        >>> sorted(SubsetRandomSampler([7, 3, 5]))
        [3, 5, 7]
    """

    def __init__(self, indices, generator=None):
        self.indices = indices
        self.generator = generator

    def __iter__(self):
        for i in _rng.numpy_generator(self.generator).permutation(len(self.indices)).tolist():
            yield self.indices[i]

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """Indices ``0 .. len(weights) - 1`` drawn with probabilities proportional to ``weights``.

    Args:
        weights: a sequence of non-negative weights (need not sum to 1).
        num_samples: how many indices per epoch.
        replacement: without replacement, an index appears at most once (then ``num_samples`` may not exceed
            the number of non-zero weights).
        generator: a ``dtorch.Generator``, or None for dtorch's default generator.

    Example:
        >>> set(WeightedRandomSampler([0.0, 1.0, 0.0], 4))
        {1}
    """

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        _check_positive_int("num_samples", num_samples)
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got replacement={replacement!r}")
        w = np.asarray(weights.numpy() if hasattr(weights, "numpy") else weights, dtype=np.float64)
        if w.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape {tuple(w.shape)}")
        if (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
            raise ValueError(f"weights must be finite, non-negative and not all zero, got {w.tolist()[:10]}")
        if not replacement and num_samples > int((w > 0).sum()):
            raise RuntimeError(f"cannot draw num_samples={num_samples} without replacement from "
                               f"{int((w > 0).sum())} non-zero weights")
        self.weights = w
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def __iter__(self):
        p = self.weights / self.weights.sum()
        rng = _rng.numpy_generator(self.generator)
        if not self.replacement:  # num_samples is at most len(weights) here
            yield from rng.choice(len(p), size=self.num_samples, replace=False, p=p).tolist()
            return
        # what rng.choice(replace=True, p=p) does, a chunk at a time: uniform draws looked up in the CDF
        cdf = np.cumsum(p)
        cdf /= cdf[-1]
        for start in range(0, self.num_samples, DRAW_CHUNK):
            size = min(DRAW_CHUNK, self.num_samples - start)
            yield from np.searchsorted(cdf, rng.random(size), side="right").tolist()

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Groups the indices of ``sampler`` into lists of ``batch_size``; the last short list is kept unless
    ``drop_last``.

    Example:
        >>> list(BatchSampler(SequentialSampler(range(5)), batch_size=2, drop_last=False))
        [[0, 1], [2, 3], [4]]
    """

    def __init__(self, sampler, batch_size, drop_last):
        _check_positive_int("batch_size", batch_size)
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last!r}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self):
        it = iter(self.sampler)
        while True:
            batch = list(itertools.islice(it, self.batch_size))
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                return
            yield batch

    def __len__(self):
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size
