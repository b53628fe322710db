"""Sharded datasets: a directory of ``.npy`` (or ``.npz``) shards plus ``index.json``, streamed so that every rank
and every worker reads only its own part, memory-mapped.

Layout (written by ``ShardWriter`` / ``write_shards``)::

    root/index.json                 {"format": "dtorch.shards", "version": 1, "num_samples": N,
                                     "fields": [{"name", "dtype", "shape"}...],
                                     "shards": [{"num_samples": n, "files": {field: file}} | {"npz": file}...]}
    root/shard-00000.<field>.npy    one array per field and shard, first dimension = samples

Order of one epoch, computed identically and without communication on every rank:

1. the shards, in file order, or permuted by ``seed + epoch`` when ``shuffle``;
2. their samples laid end to end form a sequence of ``N``; rank ``r`` takes the contiguous positions
   ``[r * L, (r + 1) * L)`` where ``L = ceil(N / R)`` (positions past ``N`` wrap to the front: padding, as
   ``DistributedSampler`` pads) or, with ``drop_last``, ``L = N // R`` (the last ``N % R`` samples are dropped).
   So every rank has exactly ``L`` samples and the same number of batches: uneven batch counts would hang DDP.
   A rank touches only the shards its range covers (at most the two at its ends are shared with a neighbour,
   each side reading its own rows through the memory map);
3. with ``shuffle``, a shuffle buffer of ``shuffle_buffer`` samples (seeded by seed, epoch and rank) reorders the
   rank's range; it works on sample indices, so reads stay within a window of the range;
4. the first ``start_offset`` samples are skipped (resumption: pass the number of samples this rank has consumed
   this epoch, e.g. ``batches_done * batch_size``);
5. the rest is cut into batches of ``batch_size``; worker ``w`` of ``W`` handles batches ``w, w + W, ...``, which
   is exactly the order in which the DataLoader collects them, so the rank's order does not depend on
   ``num_workers``.

``set_epoch`` and ``set_offset`` act on the next iteration, also with ``persistent_workers=True``: the DataLoader
hands the dataset's epoch and offset to its workers at the start of every epoch (PyTorch's workers would keep the
copy of the dataset they started with).
"""
import json
import math
import os

import numpy as np

from dtorch import factories
from dtorch.utils.data import _rng
from dtorch.utils.data._worker import get_worker_info
from dtorch.utils.data.dataset import IterableDataset
from dtorch.utils.data.distributed import _default_world

INDEX_FILE = "index.json"
_FORMAT = "dtorch.shards"


# ---- writing --------------------------------------------------------------------------------------------------------

def _as_fields(arrays):
    """``{name: array}`` from a dict, or from a tuple/list of arrays (named "0", "1", ...)."""
    if isinstance(arrays, dict):
        items = list(arrays.items())
    elif isinstance(arrays, (tuple, list)):
        items = [(str(i), a) for i, a in enumerate(arrays)]
    else:
        items = [("0", arrays)]
    fields = {}
    for name, array in items:
        array = np.asarray(array.numpy() if hasattr(array, "numpy") else array)
        if array.ndim == 0:
            raise ValueError(f"field {name!r} must have a first (sample) dimension, got a 0-d array")
        fields[str(name)] = array
    return fields


class ShardWriter:
    """Writes samples into shards of ``samples_per_shard`` under ``root``, then ``index.json`` on ``close()``.

    Args:
        root: the output directory (created if needed).
        samples_per_shard: samples per shard (the last shard may be shorter).
        format: ``"npy"`` (one memory-mappable file per field and shard) or ``"npz"`` (one uncompressed archive
            per shard, loaded whole when first used).

    Example:
        >>> with ShardWriter("ds", samples_per_shard=100) as w:
        ...     w.write(x=np.zeros((250, 3), np.float32), y=np.arange(250))
        >>> len(ShardedDataset("ds", num_replicas=1, rank=0))
        250
    """

    def __init__(self, root, samples_per_shard=10_000, format="npy"):
        if isinstance(samples_per_shard, bool) or not isinstance(samples_per_shard, int) or samples_per_shard < 1:
            raise ValueError(f"samples_per_shard should be a positive integer, got {samples_per_shard!r}")
        if format not in ("npy", "npz"):
            raise ValueError(f"format should be 'npy' or 'npz', got {format!r}")
        self.root = os.fspath(root)
        self.samples_per_shard = samples_per_shard
        self.format = format
        self._fields = None  # [{"name", "dtype", "shape"}] fixed by the first write
        self._pending = []  # dicts of arrays not yet in a shard
        self._pending_count = 0
        self._shards = []
        self._closed = False
        os.makedirs(self.root, exist_ok=True)

    def write(self, *arrays, **named):
        """Appends samples: arrays with equal first dimensions, positional or by name (not both)."""
        if self._closed:
            raise RuntimeError("ShardWriter is closed")
        if arrays and named:
            raise ValueError("pass the fields either positionally or by name, not both")
        fields = _as_fields(named if named else (arrays[0] if len(arrays) == 1 and isinstance(arrays[0], dict)
                                                 else tuple(arrays)))
        counts = {name: len(a) for name, a in fields.items()}
        if len(set(counts.values())) != 1:
            raise ValueError(f"all fields need the same number of samples, got {counts}")
        spec = [{"name": n, "dtype": a.dtype.str, "shape": list(a.shape[1:])} for n, a in fields.items()]
        if self._fields is None:
            self._fields = spec
        elif spec != self._fields:
            raise ValueError(f"fields {spec} differ from the first write's {self._fields}")
        self._pending.append(fields)
        self._pending_count += next(iter(counts.values()))
        while self._pending_count >= self.samples_per_shard:
            self._flush(self.samples_per_shard)

    def _flush(self, count):
        merged = {f["name"]: np.concatenate([p[f["name"]] for p in self._pending]) for f in self._fields}
        shard = {name: a[:count] for name, a in merged.items()}
        rest = {name: a[count:] for name, a in merged.items()}
        self._pending = [rest] if len(next(iter(rest.values()))) else []
        self._pending_count -= count
        stem = f"shard-{len(self._shards):05d}"
        if self.format == "npz":
            name = f"{stem}.npz"
            with open(os.path.join(self.root, name), "wb") as f:
                np.savez(f, **shard)
            self._shards.append({"num_samples": count, "npz": name})
            return
        files = {}
        for field, array in shard.items():
            files[field] = f"{stem}.{field}.npy"
            np.save(os.path.join(self.root, files[field]), np.ascontiguousarray(array))
        self._shards.append({"num_samples": count, "files": files})

    def close(self):
        """Writes the last, short shard and the index (atomically: a reader never sees a partial index)."""
        if self._closed:
            return
        if self._pending_count:
            self._flush(self._pending_count)
        self._closed = True
        index = {"format": _FORMAT, "version": 1, "num_samples": sum(s["num_samples"] for s in self._shards),
                 "fields": self._fields or [], "shards": self._shards}
        tmp = os.path.join(self.root, INDEX_FILE + ".tmp")
        with open(tmp, "w") as f:
            json.dump(index, f, indent=1)
        os.replace(tmp, os.path.join(self.root, INDEX_FILE))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write_shards(root, arrays, samples_per_shard=10_000, format="npy"):
    """Writes ``arrays`` (a dict of arrays, a tuple of arrays, or one array) as a sharded dataset under ``root``
    and returns the path of its index.

    Example:
        >>> write_shards("ds", {"x": np.zeros((10, 2)), "y": np.arange(10)}, 4)
        'ds/index.json'
    """
    with ShardWriter(root, samples_per_shard, format) as writer:
        writer.write(_as_fields(arrays))
    return os.path.join(os.fspath(root), INDEX_FILE)


# ---- reading --------------------------------------------------------------------------------------------------------

def shuffle_buffer_order(items, buffer_size, rng):
    """``items`` in the order a shuffle buffer of ``buffer_size`` emits them: the buffer fills up, then each new
    item replaces a uniformly chosen buffered one, which is emitted; at the end the buffer drains in random order."""
    n = len(items)
    if buffer_size <= 1 or n <= 1:
        return np.array(items, copy=True)
    size = min(buffer_size, n)
    buffer = np.array(items[:size], copy=True)
    out = np.empty(n, dtype=np.asarray(items).dtype)
    picks = rng.integers(0, size, size=n - size)
    for k in range(n - size):
        j = picks[k]
        out[k] = buffer[j]
        buffer[j] = items[size + k]
    out[n - size:] = buffer[rng.permutation(size)]
    return out


class ShardedDataset(IterableDataset):
    """A stream over a sharded dataset (see the module docstring for the order and the split).

    Args:
        root: the directory holding ``index.json``.
        batch_size: the DataLoader's batch size. Batches are dealt to workers whole; with another value in the
            DataLoader the split, the coverage and the equal counts per rank still hold, but the order within an
            epoch then depends on ``num_workers``.
        shuffle: permute the shards and pass each rank's range through a shuffle buffer, anew every epoch.
        seed: the base seed (the same on every rank).
        shuffle_buffer: samples in the shuffle buffer (used with ``shuffle``).
        drop_last: give every rank ``N // R`` samples (dropping the tail) instead of ``ceil(N / R)`` (padding by
            wrapping to the first samples of the epoch's order).
        num_replicas, rank: the split; default: the default process group's (1 and 0 without one).
        start_offset: samples of this epoch this rank has already consumed (resumption).
        transform: applied to each sample (a tuple of the fields in index order, or the array if one field).
        batched: yield whole batches (tuples of stacked arrays, read with one gather per shard) instead of
            samples; use with ``DataLoader(dataset, batch_size=None)``. Faster; ``transform`` then gets batches.

    Example:
        >>> _ = write_shards("ds", {"x": np.zeros((100, 2), np.float32), "y": np.arange(100)}, 32)
        >>> ds = ShardedDataset("ds", batch_size=8, shuffle=True, num_replicas=2, rank=0)
        >>> len(ds)        # this rank's half
        50
        >>> x, y = next(iter(ds)); x.shape
        (2,)
    """

    def __init__(self, root, batch_size=1, shuffle=False, seed=0, shuffle_buffer=8192, drop_last=False,
                 num_replicas=None, rank=None, start_offset=0, transform=None, batched=False):
        if num_replicas is None or rank is None:
            world, default_rank = _default_world("ShardedDataset")
            num_replicas = world if num_replicas is None else num_replicas
            rank = default_rank if rank is None else rank
        if isinstance(num_replicas, bool) or not isinstance(num_replicas, int) or num_replicas < 1:
            raise ValueError(f"num_replicas should be a positive integer, got {num_replicas!r}")
        if not isinstance(rank, int) or not 0 <= rank < num_replicas:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size should be a positive integer, got {batch_size!r}")
        if not isinstance(shuffle_buffer, int) or shuffle_buffer < 0:
            raise ValueError(f"shuffle_buffer should be a non-negative integer, got {shuffle_buffer!r}")
        self.root = os.fspath(root)
        with open(os.path.join(self.root, INDEX_FILE)) as f:
            self.index = json.load(f)
        if self.index.get("format") != _FORMAT:
            raise ValueError(f"{os.path.join(self.root, INDEX_FILE)} is not a dtorch shard index "
                             f"(format={self.index.get('format')!r})")
        self.fields = [f["name"] for f in self.index["fields"]]
        self.shard_sizes = np.array([s["num_samples"] for s in self.index["shards"]], dtype=np.int64)
        self.shard_starts = np.concatenate([[0], np.cumsum(self.shard_sizes)[:-1]]).astype(np.int64)
        self.total_samples = int(self.shard_sizes.sum())
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.shuffle_buffer = shuffle_buffer
        self.drop_last = drop_last
        self.num_replicas = num_replicas
        self.rank = rank
        self.transform = transform
        self.batched = batched
        self.epoch = 0
        self.samples_per_rank = (self.total_samples // num_replicas if drop_last
                                 else math.ceil(self.total_samples / num_replicas))
        self.set_offset(start_offset)
        self._open = {}  # shard number -> {field: array}, per process, filled lazily

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_open"] = {}  # memory maps stay behind: a spawned worker maps what it reads itself
        return state

    def set_epoch(self, epoch):
        """Selects the epoch whose order the next iteration follows (call it on every rank alike)."""
        self.epoch = epoch

    def _worker_epoch_state(self):
        """What a DataLoader passes to its (possibly persistent) workers at the start of every epoch."""
        return self.epoch, self.start_offset

    def _apply_worker_epoch_state(self, state):
        self.epoch, self.start_offset = state

    def set_offset(self, start_offset):
        """Skips the first ``start_offset`` samples of this rank's order in the next iteration."""
        if not isinstance(start_offset, int) or not 0 <= start_offset <= self.samples_per_rank:
            raise ValueError(f"start_offset should be in [0, {self.samples_per_rank}], got {start_offset!r}")
        self.start_offset = start_offset

    def __len__(self):
        """Samples this rank yields in one epoch (after ``start_offset``); batches if ``batched``."""
        n = self.samples_per_rank - self.start_offset
        return math.ceil(n / self.batch_size) if self.batched else n

    def rank_order(self, epoch=None, rank=None):
        """The global sample numbers rank ``rank`` visits in epoch ``epoch``, before ``start_offset``."""
        epoch = self.epoch if epoch is None else epoch
        rank = self.rank if rank is None else rank
        shard_order = np.arange(len(self.shard_sizes))
        if self.shuffle:  # seeded like DistributedSampler: the same on every rank, new every epoch
            shard_order = _rng.seeded_numpy_generator(self.seed + epoch).permutation(len(self.shard_sizes))
        length = self.samples_per_rank
        positions = np.arange(rank * length, (rank + 1) * length, dtype=np.int64) % max(self.total_samples, 1)
        ends = np.cumsum(self.shard_sizes[shard_order])
        k = np.searchsorted(ends, positions, side="right")
        shards = shard_order[k]
        order = self.shard_starts[shards] + positions - (ends[k] - self.shard_sizes[shards])
        if self.shuffle and self.shuffle_buffer > 1:
            buffer_seed = int(np.random.SeedSequence([self.seed, epoch, rank]).generate_state(1, np.uint64)[0] >> 1)
            order = shuffle_buffer_order(order, self.shuffle_buffer, _rng.seeded_numpy_generator(buffer_seed))
        return order

    def _shard(self, number):
        """The columns of shard ``number`` in field order: plain ndarray views of read-only memory maps (indexing
        a plain ndarray is cheaper than a ``np.memmap``), or arrays loaded whole for an ``.npz`` shard."""
        columns = self._open.get(number)
        if columns is None:
            entry = self.index["shards"][number]
            if "npz" in entry:
                with np.load(os.path.join(self.root, entry["npz"])) as archive:
                    columns = tuple(archive[name] for name in self.fields)
            else:
                columns = tuple(np.load(os.path.join(self.root, entry["files"][name]), mmap_mode="r").view(np.ndarray)
                                for name in self.fields)
            self._open[number] = columns
        return columns

    def _samples(self, global_indices):
        numbers = np.searchsorted(self.shard_starts, global_indices, side="right") - 1
        rows = (global_indices - self.shard_starts[numbers]).tolist()
        single = len(self.fields) == 1
        for number, row in zip(numbers.tolist(), rows):
            columns = self._shard(number)
            yield columns[0][row] if single else tuple(column[row] for column in columns)

    def _batch(self, global_indices):
        numbers = np.searchsorted(self.shard_starts, global_indices, side="right") - 1
        if numbers[0] == numbers[-1] and (numbers == numbers[0]).all():  # one shard: gather straight into place
            columns = self._shard(int(numbers[0]))
            local = global_indices - self.shard_starts[numbers[0]]
            if (np.diff(local) == 1).all():
                result = [np.array(column[local[0]:local[-1] + 1]) for column in columns]
            else:
                result = [np.take(column, local, axis=0) for column in columns]
            return result[0] if len(result) == 1 else tuple(result)
        result = [None] * len(self.fields)
        for number in np.unique(numbers):
            where = np.nonzero(numbers == number)[0]
            local = global_indices[where] - self.shard_starts[number]
            sort = np.argsort(local, kind="stable")  # read each shard front to back
            for f, column in enumerate(self._shard(int(number))):
                rows = column[local[sort]]
                if result[f] is None:
                    result[f] = np.empty((len(global_indices),) + rows.shape[1:], rows.dtype)
                result[f][where[sort]] = rows
        return result[0] if len(result) == 1 else tuple(result)

    def _collated_batches(self, batch_size, drop_last):
        """For a single-process ``DataLoader(self, batch_size, collate_fn=default_collate)`` over samples: its
        batches, each read with one gather per shard and already collated (what ``default_collate`` makes of the
        samples: one Tensor per field, in a list when there are several), instead of sample by sample. None where
        that does not hold: ``batched``, a ``transform`` (it sees samples), fields ``default_collate`` refuses.
        Called by the loader in the main process only (there ``get_worker_info()`` is None, one stream)."""
        if self.batched or self.transform is not None or get_worker_info() is not None:
            return None
        if any(np.dtype(f["dtype"]).kind in "OSUV" for f in self.index["fields"]):
            return None
        return self._gather_batches(batch_size, drop_last)

    def _gather_batches(self, batch_size, drop_last):
        order = self.rank_order()[self.start_offset:]
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            if drop_last and len(chunk) < batch_size:
                return
            batch = self._batch(chunk)
            if isinstance(batch, tuple):
                yield [factories.from_numpy(field) for field in batch]
            else:
                yield factories.from_numpy(batch)

    def __iter__(self):
        order = self.rank_order()[self.start_offset:]
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        batch = self.batch_size
        for start in range(worker * batch, len(order), workers * batch):
            chunk = order[start:start + batch]
            if self.batched:
                item = self._batch(chunk)
                yield self.transform(item) if self.transform is not None else item
                continue
            if self.transform is None:
                yield from self._samples(chunk)
            else:
                for sample in self._samples(chunk):
                    yield self.transform(sample)
