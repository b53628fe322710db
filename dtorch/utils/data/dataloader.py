"""``DataLoader``: batches from a dataset, in the main process or in worker processes, as ``torch.utils.data``.

With ``num_workers=0`` the main process fetches and collates each batch. With ``num_workers > 0`` it starts that
many worker processes (``fork`` on Linux, or the given ``multiprocessing_context``), hands them batch indices
round-robin, at most ``prefetch_factor`` tasks per worker in flight, and yields their batches strictly in sampler
order. Batches come back through shared memory (see ``_worker``). The main process waits on the workers' pipes
and on their process sentinels together, so a worker that dies is reported at once with its exit code, never
waited on; an exception inside a worker is raised again in the main process, naming the worker and showing the
worker's traceback. Workers end with the epoch (or with the loader, when ``persistent_workers``); an iterator
dropped early, a loader garbage-collected, or a main process that exits or is killed leaves no worker behind.

Fork safety: ``fork`` (the default on Linux, as in PyTorch) copies the main process, so the dataset must hold no
CUDA state, and workers never touch MPI. Where the main process already runs helper threads that hold locks
(asynchronous collectives, for example), pass ``multiprocessing_context="forkserver"`` or ``"spawn"``; the dataset,
``collate_fn`` and ``worker_init_fn`` then have to be picklable.
"""
import itertools
import multiprocessing
import multiprocessing.connection
import os
import secrets
import sys
import time
import weakref
from collections import deque

from dtorch.utils.data import _rng, _worker
from dtorch.utils.data._collate import default_collate, default_convert
from dtorch.utils.data.dataset import IterableDataset, StackedSamples
from dtorch.utils.data.sampler import BatchSampler, RandomSampler, SequentialSampler

_SHUTDOWN_GRACE = 1.0  # seconds a worker gets to leave on its own before it is terminated
_STATUS_INTERVAL = 5.0  # the longest single wait before the main process re-checks timeouts

# token -> (processes, index queues, result connections) of every iterator whose workers still run. An iterator
# dropped inside a reference cycle (one kept by an exception's traceback, say) is collected together with whatever
# only it references, and the garbage collector finalizes those objects in no fixed order: a Queue's finalizer stops
# its feeder thread, so the None that tells a worker to leave would never be written, and a closed result pipe
# would break the shutdown. Holding them here keeps them alive until the iterator's own shutdown has used them.
_LIVE = {}


class _InfiniteConstantSampler:
    """The sampler of an IterableDataset: ``None`` forever (the dataset decides what comes next)."""

    def __iter__(self):
        while True:
            yield None


class _CollateStacked:
    """The collate step of an auto-collating loader: the fast path for batches a dataset gathered already stacked.

    A ``StackedSamples`` (from ``TensorDataset.__getitems__``, also through ``Subset``) is collated by taking its
    stacked fields when the collate function is ``default_collate``, which gives what ``default_collate`` of its
    samples gives; any other collate function gets ``list(batch)``, the list of samples PyTorch would pass it.
    Everything else goes to the collate function unchanged. Picklable (workers under spawn get it).
    """

    __slots__ = ("collate_fn",)

    def __init__(self, collate_fn):
        self.collate_fn = collate_fn

    def __call__(self, batch):
        if type(batch) is StackedSamples:
            if self.collate_fn is default_collate:
                return batch.collate()
            batch = list(batch)
        return self.collate_fn(batch)

    def __getstate__(self):
        return (self.collate_fn,)  # a tuple: pickle skips __setstate__ for a falsy state

    def __setstate__(self, state):
        (self.collate_fn,) = state


def _fetch_collate(loader):
    """The collate function the fetchers call: ``loader.collate_fn``, behind the stacked-batch fast path when
    batches are collated (without auto-collation a sample never arrives stacked)."""
    return _CollateStacked(loader.collate_fn) if loader._auto_collation else loader.collate_fn


def _default_context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else methods[0])


class DataLoader:
    """Iterates over a dataset in batches.

    Args:
        dataset: a map-style ``Dataset`` (or any sized object with ``__getitem__``) or an ``IterableDataset``.
        batch_size: samples per batch; None turns automatic batching off (each sample goes through
            ``collate_fn``, default ``default_convert``).
        shuffle: reshuffle every epoch (a ``RandomSampler`` drawing from ``generator``).
        sampler: an iterable of indices; excludes ``shuffle``.
        batch_sampler: an iterable of index lists; excludes ``batch_size``, ``shuffle``, ``sampler``, ``drop_last``.
        num_workers: worker processes; 0 loads in the main process.
        collate_fn: turns a list of samples into a batch (default ``default_collate``).
        pin_memory: accepted for compatibility; dtorch's CPU batches need no pinning, so it changes nothing.
        drop_last: drop the last, incomplete batch.
        timeout: seconds to wait for a batch from the workers before raising RuntimeError (0: no limit).
        worker_init_fn: called as ``worker_init_fn(worker_id)`` in each worker after seeding.
        multiprocessing_context: a start method name (``"fork"``, ``"spawn"``, ``"forkserver"``) or a context.
        generator: the ``dtorch.Generator`` for ``RandomSampler`` and for the workers' base seed.
        prefetch_factor: batches in flight per worker (default 2 when ``num_workers > 0``).
        persistent_workers: keep the workers alive between epochs.
        pin_memory_device: accepted and ignored, like ``pin_memory``.
        in_order: accepted; batches always come in sampler order (``in_order=False`` only permits reordering).

    Example:
        >>> loader = DataLoader(list(range(10)), batch_size=4)
        >>> [b.tolist() for b in loader]
        [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device="", in_order=True):
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable "
                             f"multiprocessing, got num_workers={num_workers!r}")
        if timeout < 0:
            raise ValueError(f"timeout option should be non-negative, got timeout={timeout!r}")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing. Let num_workers > 0 "
                             "to enable multiprocessing, otherwise set prefetch_factor to None "
                             f"(got {prefetch_factor!r})")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        if prefetch_factor is not None and (not isinstance(prefetch_factor, int) or prefetch_factor < 1):
            raise ValueError(f"prefetch_factor option should be a positive integer, got {prefetch_factor!r}")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")

        is_iterable = isinstance(dataset, IterableDataset)
        if is_iterable:
            if shuffle not in (None, False):
                raise ValueError("DataLoader with IterableDataset: expected unspecified shuffle option, "
                                 f"but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified sampler option, "
                                 f"but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified batch_sampler option, "
                                 f"but got batch_sampler={batch_sampler}")
        shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                                 "and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with drop_last")

        if sampler is None:
            if is_iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        if isinstance(multiprocessing_context, str):
            multiprocessing_context = multiprocessing.get_context(multiprocessing_context)

        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn if collate_fn is not None else (
            default_collate if batch_sampler is not None else default_convert)
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.in_order = in_order
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self._is_iterable = is_iterable
        self._iterator = None

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __iter__(self):
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        if self.persistent_workers:
            if self._iterator is None or self._iterator._shut_down:
                self._iterator = _MultiProcessIter(self)
            else:
                self._iterator._reset()
            return self._iterator
        return _MultiProcessIter(self)

    def __len__(self):
        if self._is_iterable:
            length = len(self.dataset)  # a TypeError for an unsized stream, as in PyTorch
            if self.batch_size is not None:
                length = length // self.batch_size if self.drop_last else -(-length // self.batch_size)
            return length
        return len(self._index_sampler)

    def __del__(self):
        iterator = getattr(self, "_iterator", None)
        if iterator is not None:
            iterator._shutdown()


class _SingleProcessIter:
    """Fetches every batch in the main process."""

    def __init__(self, loader):
        # PyTorch draws a base seed from the loader's generator in every iterator, workers or not; doing the same
        # keeps the shuffle order of a seeded generator independent of num_workers
        _rng.draw_seed(loader.generator)
        self._batches = None
        if loader._is_iterable and loader._auto_collation and loader.collate_fn is default_collate:
            # a stream that can gather whole batches itself (ShardedDataset) gives them already collated, equal
            # to collating its samples (a test holds the two equal); None where it cannot
            batches = getattr(loader.dataset, "_collated_batches", None)
            if callable(batches):
                self._batches = batches(loader.batch_size, loader.drop_last)
        if self._batches is None:
            fetcher_type = _worker.IterableFetcher if loader._is_iterable else _worker.MapFetcher
            self._fetcher = fetcher_type(loader.dataset, loader._auto_collation, _fetch_collate(loader),
                                         loader.drop_last)
            self._sampler_iter = iter(loader._index_sampler)

    def __iter__(self):
        return self

    def __next__(self):
        if self._batches is not None:
            return next(self._batches)
        return self._fetcher.fetch(next(self._sampler_iter))


class _MultiProcessIter:
    """Drives ``num_workers`` worker processes; see the module docstring for the protocol."""

    def __init__(self, loader):
        self._index_sampler = loader._index_sampler  # no reference to the loader: its __del__ must be able to run
        self._dataset = loader.dataset
        try:
            self._length = len(loader)
        except TypeError:
            self._length = None
        self._num_workers = loader.num_workers
        self._prefetch = loader.prefetch_factor * loader.num_workers
        self._persistent = loader.persistent_workers
        self._timeout = loader.timeout
        self._token = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._shut_down = True  # until the workers exist
        ctx = loader.multiprocessing_context or _default_context()
        base_seed = _rng.draw_seed(loader.generator)
        self._workers, self._index_queues, self._conns = [], [], []
        _LIVE[self._token] = (self._workers, self._index_queues, self._conns)
        try:
            for worker_id in range(self._num_workers):
                index_queue = ctx.Queue()
                index_queue.cancel_join_thread()
                reader, writer = ctx.Pipe(duplex=False)
                process = ctx.Process(
                    target=_worker.worker_loop,
                    args=(loader._is_iterable, loader.dataset, index_queue, writer, loader._auto_collation,
                          _fetch_collate(loader), loader.drop_last, base_seed, loader.worker_init_fn, worker_id,
                          self._num_workers, self._token, os.getpid()),
                    daemon=True)
                process.start()
                writer.close()
                self._workers.append(process)
                self._index_queues.append(index_queue)
                self._conns.append(reader)
                self._shut_down = False
        except BaseException:
            self._shutdown()
            raise
        # at interpreter exit multiprocessing terminates the daemonic workers; sweep what they leave in /dev/shm
        weakref.finalize(self, _worker.sweep, self._token)
        self._epoch = 0
        self._reset()

    def _reset(self):
        self._epoch += 1
        # an iterable dataset may hand its workers the per-epoch settings made in the main process since they were
        # started (ShardedDataset: set_epoch, set_offset); persistent workers would otherwise keep their copy's
        self._dataset_state = None
        state_fn = getattr(self._dataset, "_worker_epoch_state", None)
        if isinstance(self._dataset, IterableDataset) and callable(state_fn):
            self._dataset_state = state_fn()
        self._sampler_iter = iter(self._index_sampler)
        self._send_idx = 0
        self._rcvd_idx = 0
        self._task_info = {}  # idx -> [worker_id] while pending, [worker_id, batch] when it arrived early
        self._active = [True] * self._num_workers
        self._cycle = itertools.cycle(range(self._num_workers))
        self._ready = deque()
        for _ in range(self._prefetch):
            self._try_put_index()

    def __iter__(self):
        return self

    def _try_put_index(self):
        try:
            index = next(self._sampler_iter)
        except StopIteration:
            return
        for _ in range(self._num_workers):
            worker_id = next(self._cycle)
            if self._active[worker_id]:
                break
        else:
            return
        self._index_queues[worker_id].put((self._epoch, self._send_idx, index, self._dataset_state))
        self._task_info[self._send_idx] = [worker_id]
        self._send_idx += 1

    def __next__(self):
        while True:
            while self._rcvd_idx < self._send_idx:  # skip tasks sent to a worker whose stream has ended
                info = self._task_info[self._rcvd_idx]
                if len(info) == 2 or self._active[info[0]]:
                    break
                del self._task_info[self._rcvd_idx]
                self._rcvd_idx += 1
            else:
                if not self._persistent:
                    self._shutdown()
                raise StopIteration
            info = self._task_info[self._rcvd_idx]
            if len(info) == 2:
                del self._task_info[self._rcvd_idx]
                self._rcvd_idx += 1
                return self._deliver(info[1])
            epoch, idx, worker_id, data = self._get_data()
            if epoch != self._epoch:
                continue  # a batch of an epoch that was abandoned early
            if isinstance(data, _worker._IterableEnd):
                self._active[data.worker_id] = False
                self._try_put_index()
                continue
            if idx != self._rcvd_idx:
                self._task_info[idx].append(data)
                continue
            del self._task_info[idx]
            self._rcvd_idx += 1
            return self._deliver(data)

    def _deliver(self, data):
        self._try_put_index()
        if isinstance(data, _worker.ExceptionWrapper):
            data.reraise()  # the iterator stays usable, as PyTorch's: the next batch may still be fine
        return data

    def _get_data(self):
        """The next message from any worker, decoded; raises if a worker died or ``timeout`` passed."""
        if self._shut_down:
            raise RuntimeError("this DataLoader iterator's workers were shut down after an earlier error; "
                               "start a new iteration over the loader")
        deadline = time.monotonic() + self._timeout if self._timeout > 0 else None
        while not self._ready:
            wait_for = _STATUS_INTERVAL if deadline is None else max(0.0, deadline - time.monotonic())
            sentinels = {w.sentinel: i for i, w in enumerate(self._workers)}
            ready = multiprocessing.connection.wait(self._conns + list(sentinels), timeout=wait_for)
            for obj in ready:
                if obj in sentinels:
                    continue
                try:
                    self._ready.append(obj.recv())
                except EOFError:
                    pass  # its process ended; the sentinel below reports it
            if not self._ready:
                for obj in ready:
                    if obj in sentinels:
                        self._report_dead(sentinels[obj])
                if deadline is not None and time.monotonic() >= deadline:
                    self._shutdown()
                    raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds")
        epoch, idx, worker_id, payload, path, size = self._ready.popleft()
        if epoch != self._epoch:
            _worker.discard(path)
            return epoch, idx, worker_id, None
        return epoch, idx, worker_id, _worker.decode(payload, path, size)

    def _report_dead(self, worker_id):
        process = self._workers[worker_id]
        process.join(0.1)
        code = process.exitcode
        self._shutdown()
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        raise RuntimeError(f"DataLoader worker {worker_id} (pid {process.pid}) exited unexpectedly ({how})")

    def _shutdown(self):
        if self._shut_down:
            return
        self._shut_down = True
        for index_queue in self._index_queues:
            try:
                index_queue.put(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + _SHUTDOWN_GRACE
        alive = [w for w in self._workers if w.is_alive()]
        open_conns = list(self._conns)
        while alive and time.monotonic() < deadline:
            # keep reading so that a worker blocked on a full pipe can reach its None
            ready = multiprocessing.connection.wait(open_conns + [w.sentinel for w in alive], timeout=0.1)
            for obj in ready:
                if obj in open_conns:
                    try:
                        _worker.discard(obj.recv()[4])
                    except (EOFError, OSError):
                        open_conns.remove(obj)
            alive = [w for w in alive if w.is_alive()]
        for process in alive:
            process.terminate()
        for process in self._workers:
            process.join(1.0)
            if process.is_alive():
                process.kill()
                process.join()
        for message in self._ready:
            _worker.discard(message[4])
        self._ready.clear()
        for index_queue in self._index_queues:
            index_queue.close()
        for conn in self._conns:
            conn.close()
        _worker.sweep(self._token)
        _LIVE.pop(self._token, None)

    def __len__(self):
        if self._length is None:
            raise TypeError("this DataLoader iterates over a dataset without a length")
        return self._length

    def __del__(self):
        if sys is not None and not getattr(self, "_shut_down", True):
            self._shutdown()
