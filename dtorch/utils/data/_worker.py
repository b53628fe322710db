"""What runs inside a DataLoader worker process, and how its batches reach the main process.

Transport. A worker pickles each batch with a pickler that lifts every NumPy array of at least
``SHM_MIN_BYTES`` (the arrays under Tensors included) out of the pickle into one file in ``/dev/shm``; only the
small pickle and the file's name travel through the worker's pipe. The main process maps the file, unlinks it at
once and wraps the mapped memory as arrays without a copy; the memory is freed when the last array over it dies.
Files are named ``dtorch-dl-<token>-w<worker id>-<n>`` so that whichever side outlives the other can sweep the
leftovers of one loader.

Lifetime. A worker leaves its loop when it reads ``None`` from its index queue, when its parent process is gone
(it polls ``os.getppid()``), or when its result pipe breaks. Workers are daemonic, so the main process's exit
terminates them as well.

Seeding. Worker ``i`` seeds dtorch's default generator and Python's ``random`` with ``base_seed + i`` and NumPy's
global RNG with a 32-bit mix of both, where the main process draws ``base_seed`` from the loader's generator.
"""
import functools
import glob
import io
import mmap
import os
import pickle
import queue
import random
import sys
import tempfile
import traceback

import numpy as np

from dtorch import random as dtorch_random

SHM_MIN_BYTES = 32 * 1024
POLL_INTERVAL = 0.5  # seconds between checks for a dead parent while idle
_ALIGN = 64

_worker_info = None


class WorkerInfo:
    """What a worker knows about itself: ``id``, ``num_workers``, ``seed`` and its copy of ``dataset``."""

    __slots__ = ("id", "num_workers", "seed", "dataset")

    def __init__(self, id, num_workers, seed, dataset):
        self.id = id
        self.num_workers = num_workers
        self.seed = seed
        self.dataset = dataset

    def __repr__(self):
        return f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed}, dataset={self.dataset!r})"


def get_worker_info():
    """The ``WorkerInfo`` of the current DataLoader worker process, or None in the main process.

    An ``IterableDataset`` uses it to shard its stream across workers.

    Example:
        >>> get_worker_info() is None  # not inside a worker
        True
    """
    return _worker_info


class _IterableEnd:
    """A worker's signal that its copy of an IterableDataset is exhausted for this epoch."""

    def __init__(self, worker_id):
        self.worker_id = worker_id


class KeyErrorMessage(str):
    """A KeyError message that prints its newlines (KeyError would show the repr)."""

    def __repr__(self):
        return self


class ExceptionWrapper:
    """An exception caught in a worker, carried to the main process with its formatted traceback."""

    def __init__(self, exc_info, where):
        exc_type = exc_info[0]
        self.exc_name = exc_type.__name__
        try:
            pickle.dumps(exc_type)
        except Exception:  # a class defined where the main process cannot import it
            exc_type = RuntimeError
        self.exc_type = exc_type
        self.exc_msg = "".join(traceback.format_exception(*exc_info))
        self.where = where

    def reraise(self):
        message = f"Caught {self.exc_name} {self.where}.\nOriginal {self.exc_msg}"
        if self.exc_type is KeyError:
            message = KeyErrorMessage(message)
        try:
            exception = self.exc_type(message)
        except Exception:  # an exception type that needs other arguments
            raise RuntimeError(message) from None
        raise exception


# ---- shared-memory transport ----------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def shm_dir():
    """Where batch files go: ``/dev/shm`` (RAM) where it exists, else the temporary directory."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


class _ArrayLifter(pickle.Pickler):
    """Pickles everything except large plain NumPy arrays, which it records for the shared-memory file."""

    def __init__(self, file):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.arrays = []
        self.size = 0

    def persistent_id(self, obj):
        if type(obj) is not np.ndarray or obj.nbytes < SHM_MIN_BYTES or obj.dtype.hasobject:
            return None
        offset = self.size
        self.arrays.append((offset, obj))
        self.size = offset + (obj.nbytes + _ALIGN - 1) // _ALIGN * _ALIGN
        return (offset, obj.dtype, obj.shape)


class _ArrayRestorer(pickle.Unpickler):
    def __init__(self, file, buffer):
        super().__init__(file)
        self.buffer = buffer

    def persistent_load(self, pid):
        offset, dtype, shape = pid
        return np.ndarray(shape, dtype=dtype, buffer=self.buffer, offset=offset)


def _write_all(fd, data, offset):
    view = memoryview(data).cast("B")
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def encode(obj, path):
    """``(payload, path or None, size)``: ``obj`` pickled with its large arrays written to the file ``path``."""
    buf = io.BytesIO()
    lifter = _ArrayLifter(buf)
    lifter.dump(obj)
    if not lifter.arrays:
        return buf.getvalue(), None, 0
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        os.ftruncate(fd, lifter.size)
        for offset, array in lifter.arrays:
            _write_all(fd, np.ascontiguousarray(array), offset)
    finally:
        os.close(fd)
    return buf.getvalue(), path, lifter.size


def decode(payload, path, size):
    """The object ``encode`` sent; unlinks its shared-memory file (the mapping lives on with the arrays)."""
    if path is None:
        return pickle.loads(payload)
    fd = os.open(path, os.O_RDWR)
    try:
        buffer = mmap.mmap(fd, size)
    finally:
        os.close(fd)
        os.unlink(path)
    return _ArrayRestorer(io.BytesIO(payload), buffer).load()


def discard(path):
    """Frees an encoded message that will never be decoded."""
    if path is not None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def sweep(token, worker_id="*"):
    """Unlinks the leftover shared-memory files of one loader (or of one of its workers)."""
    for path in glob.glob(os.path.join(shm_dir(), f"dtorch-dl-{token}-w{worker_id}-*")):
        discard(path)


# ---- fetching -------------------------------------------------------------------------------------------------------

class MapFetcher:
    """Fetches the samples at given indices from a map-style dataset and collates them."""

    def __init__(self, dataset, auto_collation, collate_fn, drop_last):
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        getitems = getattr(dataset, "__getitems__", None)
        self.getitems = getitems if callable(getitems) else None

    def fetch(self, index):
        if not self.auto_collation:
            return self.collate_fn(self.dataset[index])
        if self.getitems is not None:
            return self.collate_fn(self.getitems(index))
        dataset = self.dataset
        return self.collate_fn([dataset[i] for i in index])


class IterableFetcher:
    """Pulls the next sample (or ``len(index)`` samples) from an iterable dataset; StopIteration at its end."""

    def __init__(self, dataset, auto_collation, collate_fn, drop_last):
        self.iterator = iter(dataset)
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.ended = False

    def fetch(self, index):
        if self.ended:
            raise StopIteration
        if not self.auto_collation:
            return self.collate_fn(next(self.iterator))
        data = []
        for _ in index:
            try:
                data.append(next(self.iterator))
            except StopIteration:
                self.ended = True
                break
        if not data or (self.drop_last and len(data) < len(index)):
            self.ended = True
            raise StopIteration
        return self.collate_fn(data)


def _wrapped(error, where):
    """An ``ExceptionWrapper`` for an exception made here rather than caught."""
    try:
        raise error
    except Exception:
        return ExceptionWrapper(sys.exc_info(), where)


def _numpy_seed(base_seed, worker_id):
    """A 32-bit seed for NumPy's legacy global RNG, mixed from the loader's base seed and the worker id."""
    return int(np.random.SeedSequence([base_seed & 0xFFFFFFFF, base_seed >> 32, worker_id]).generate_state(1)[0])


def _seed_worker(seed, base_seed, worker_id):
    random.seed(seed)
    np.random.seed(_numpy_seed(base_seed, worker_id))
    dtorch_random.manual_seed(seed)


class _Worker:
    """The state of one worker process: its fetcher, the epoch it serves and the error it still owes."""

    def __init__(self, is_iterable, dataset, auto_collation, collate_fn, drop_last, worker_id, token):
        self.is_iterable = is_iterable
        self.dataset = dataset
        self.fetcher_args = (dataset, auto_collation, collate_fn, drop_last)
        self.worker_id = worker_id
        self.token = token
        self.where = f"in DataLoader worker process {worker_id}"
        self.fetcher = None
        self.epoch = None
        self.pending_error = None  # an exception from set-up, answered to the first task
        self.broken = None  # why set-up failed: every later task is answered with this, not a fetch
        self.sent = 0

    def start(self, seed, base_seed, num_workers, init_fn):
        global _worker_info
        stage = "its seeding"
        try:
            _seed_worker(seed, base_seed, self.worker_id)
            _worker_info = WorkerInfo(id=self.worker_id, num_workers=num_workers, seed=seed, dataset=self.dataset)
            if init_fn is not None:
                stage = "its worker_init_fn"
                init_fn(self.worker_id)
            if not self.is_iterable:
                stage = "its set-up"
                self.fetcher = MapFetcher(*self.fetcher_args)
        except Exception as error:
            self.pending_error = ExceptionWrapper(sys.exc_info(), self.where)
            self.broken = (f"DataLoader worker process {self.worker_id} could not start: {stage} raised "
                           f"{type(error).__name__}: {error} (its traceback came with an earlier batch)")

    def answer(self, epoch, index, dataset_state=None):
        """The batch for ``index``, an ``_IterableEnd``, or an ``ExceptionWrapper``. ``dataset_state`` comes from
        the main process's ``dataset._worker_epoch_state()`` and is applied before an iterable's epoch starts."""
        if self.broken is not None:  # set-up failed: the full error once, then a short one naming it
            error, self.pending_error = self.pending_error, None
            return error if error is not None else _wrapped(RuntimeError(self.broken), self.where)
        if self.is_iterable and epoch != self.epoch and self.pending_error is None:
            try:  # an iterable restarts its stream every epoch (persistent workers see several)
                if dataset_state is not None:
                    self.dataset._apply_worker_epoch_state(dataset_state)
                self.fetcher = IterableFetcher(*self.fetcher_args)
            except Exception:
                self.pending_error = ExceptionWrapper(sys.exc_info(), self.where)
        self.epoch = epoch
        if self.pending_error is not None:
            error, self.pending_error = self.pending_error, None
            return error
        try:
            return self.fetcher.fetch(index)
        except StopIteration:
            return _IterableEnd(self.worker_id)
        except Exception:
            return ExceptionWrapper(sys.exc_info(), self.where)

    def encode(self, data):
        path = os.path.join(shm_dir(), f"dtorch-dl-{self.token}-w{self.worker_id}-{self.sent}")
        self.sent += 1
        try:
            return encode(data, path)
        except Exception:  # e.g. a batch that cannot be pickled, or /dev/shm full
            discard(path)
            return encode(ExceptionWrapper(sys.exc_info(), self.where), None)


def worker_loop(is_iterable, dataset, index_queue, result_conn, auto_collation, collate_fn, drop_last,
                base_seed, init_fn, worker_id, num_workers, token, parent_pid):
    """The body of worker ``worker_id``: answers ``(epoch, idx, index, dataset_state)`` tasks with encoded
    batches until it reads None, its parent is gone, or its pipe breaks."""
    worker = _Worker(is_iterable, dataset, auto_collation, collate_fn, drop_last, worker_id, token)
    worker.start(base_seed + worker_id, base_seed, num_workers, init_fn)
    try:
        while True:
            try:
                task = index_queue.get(timeout=POLL_INTERVAL)
            except queue.Empty:
                if os.getppid() != parent_pid:
                    break
                continue
            if task is None:
                break
            epoch, idx, index, dataset_state = task
            payload, path, size = worker.encode(worker.answer(epoch, index, dataset_state))
            try:
                result_conn.send((epoch, idx, worker_id, payload, path, size))
            except (BrokenPipeError, EOFError, OSError):
                discard(path)
                break
    except KeyboardInterrupt:
        pass  # the main process handles Ctrl-C
    finally:
        if os.getppid() != parent_pid:
            sweep(token, worker_id)
        result_conn.close()
