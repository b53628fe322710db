"""The communicator interface every transport implements, and the pieces async collectives are built from.

A :class:`Communicator` moves raw arrays (NumPy, or CuPy for the backends that take them) between the ranks of one
group. Its verbs carry MPI's names in lower case (``allreduce``, ``bcast``, ``reduce``, ``allgather``, ``gather``,
``scatter``, ``reduce_scatter``, ``alltoall``, ``send``, ``recv``, ``barrier``) and are *blocking*: when a verb returns,
the output buffer holds the result (for NCCL: the work is queued on the current CUDA stream, as in PyTorch).

Asynchrony is layered on top, once for every backend: :meth:`Communicator.start` queues a verb on the communicator's
:class:`FifoExecutor`, one daemon thread per communicator that runs the operations strictly in the order they were
submitted, and returns a :class:`Work` handle at once. A thread, rather than MPI's nonblocking collectives, because
MPICH progresses a nonblocking operation only while some thread is inside an MPI call: a thread blocked in the
collective *is* that progress, with no polling by the user. It needs ``MPI_THREAD_MULTIPLE`` (mpi4py's default).
A thread that waits for queued work (``Work.wait()``) runs the not-yet-started operations up to its own itself,
in order, instead of sleeping while the communication thread hands them over one wake-up at a time.

Contracts:

- Every rank of a communicator calls its collectives in the same order; the executor keeps that order for async work.
- Verbs of one communicator are never run by two threads at once: queued work runs one operation at a time, on the
  executor's thread or on a thread waiting for it, and the caller runs a verb inline only when nothing is queued
  (see :class:`FifoExecutor`).
- :class:`Work` and :class:`Future` are thread-safe; callbacks run on the thread that completes the work.

>>> from dtorch.collectives.base import Future
>>> f = Future(); g = f.then(lambda fut: fut.value() * 2); f.set_result(21); g.wait()
42
"""

import collections
import enum
import threading
import time


class ReduceOp(enum.Enum):
    """How a reduction combines the ranks' values, PyTorch's ``torch.distributed.ReduceOp``.

    ``AVG`` is a sum divided by the group size (floating dtypes only); ``BAND``/``BOR``/``BXOR`` take integer or
    bool dtypes only.

    >>> ReduceOp.SUM
    <ReduceOp.SUM: 0>
    """

    SUM = 0
    PRODUCT = 1
    MIN = 2
    MAX = 3
    BAND = 4
    BOR = 5
    BXOR = 6
    AVG = 7

    # members are singletons: identity hashing is correct and, unlike Enum's hash of the name, costs no Python call
    # (ops are dictionary keys on every collective's path)
    __hash__ = object.__hash__

    def __repr__(self):
        return f"<ReduceOp.{self.name}: {self.value}>"


# one lock for every future's finish-or-add-callback step (held for a few bytecodes: one per future would cost a
# lock's creation on every async collective)
_FINISH_LOCK = threading.Lock()


class Future:
    """The result of an operation that may not have finished, PyTorch's ``torch.futures.Future``.

    Completion is a lock held from creation until a result or error is set (cheaper to make and to wait on than
    a ``threading.Event``: one is made for every async collective).

    >>> f = Future(); f.done()
    False
    >>> f.set_result([1]); f.value()
    [1]
    """

    __slots__ = ("_done", "_latch", "_result", "_error", "_callbacks")

    def __init__(self):
        self._done = False
        self._latch = threading.Lock()
        self._latch.acquire()  # released once, by the first set_result/set_exception
        self._result = None
        self._error = None
        self._callbacks = None

    def done(self):
        """True once a result or an error is set."""
        return self._done

    def _wait_done(self, timeout=None):
        """Block until done (True) or until ``timeout`` seconds passed (False)."""
        if self._done:
            return True
        if not self._latch.acquire(timeout=-1 if timeout is None else max(timeout, 0)):
            return self._done
        self._latch.release()  # let every other waiter through too
        return True

    def wait(self, timeout=None):
        """Block until done and return the value; raise the operation's error, or RuntimeError after ``timeout`` s."""
        if not self._wait_done(timeout):
            raise RuntimeError(f"Future not completed within {timeout} s")
        if self._error is not None:
            raise self._error
        return self._result

    def value(self):
        """The value of a finished future (raises its error); RuntimeError while it is still running."""
        if not self._done:
            raise RuntimeError("Future.value() called before the future completed; call wait() first")
        if self._error is not None:
            raise self._error
        return self._result

    def exception(self):
        """The error the future failed with, or None."""
        return self._error

    def set_result(self, result):
        self._finish(result, None)

    def set_exception(self, error):
        self._finish(None, error)

    def _finish(self, result, error):
        with _FINISH_LOCK:
            if self._done:
                return  # a watchdog and the operation may race to finish it: the first one wins
            self._result, self._error = result, error
            self._done = True
            self._latch.release()
            callbacks, self._callbacks = self._callbacks, None
        if callbacks:
            for callback in callbacks:
                callback(self)

    def add_done_callback(self, callback):
        """Call ``callback(future)`` once done (at once when already done)."""
        with _FINISH_LOCK:
            if not self._done:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(callback)
                return
        callback(self)

    def then(self, callback):
        """A new future holding ``callback(self)``, run once this one is done; errors propagate to it.

        >>> f = Future(); g = f.then(lambda fut: fut.value() + 1); f.set_result(1); g.wait()
        2
        """
        chained = Future()

        def run(future):
            try:
                chained.set_result(callback(future))
            except BaseException as error:  # noqa: BLE001 - handed to whoever waits on the chained future
                chained.set_exception(error)

        self.add_done_callback(run)
        return chained


class Work:
    """A handle on one operation, PyTorch's ``Work``: ``wait``, ``is_completed``, ``is_success``, ``get_future``.

    >>> w = Work("all_reduce"); w.is_completed()
    False
    >>> w.future.set_result(None); w.wait()
    True
    """

    __slots__ = ("label", "future", "executor")

    def __init__(self, label="", future=None):
        self.label = label
        self.future = future if future is not None else Future()
        self.executor = None  # the FifoExecutor it is queued on, if any: wait() helps it along

    @classmethod
    def completed(cls, label="", result=None):
        """A handle on work that has already finished (the sync path)."""
        work = cls(label)
        work.future.set_result(result)
        return work

    def wait(self, timeout=None):
        """Block until the operation finished; re-raise its error. ``timeout`` (seconds or a timedelta) bounds this
        wait only (the group's own timeout still applies). Returns True, like PyTorch.

        Without ``timeout``, work queued on a :class:`FifoExecutor` that has not started yet is run by the waiting
        thread itself, in queue order (see :meth:`FifoExecutor.wait_for`): no thread hand-off per operation. With a
        ``timeout`` the waiter only waits (a deadline cannot interrupt an operation it would be running)."""
        if timeout is not None and hasattr(timeout, "total_seconds"):
            timeout = timeout.total_seconds()
        future = self.future
        if not future._done:
            executor = self.executor
            done = executor.wait_for(self) if executor is not None and timeout is None else \
                future._wait_done(timeout)
            if not done:
                raise RuntimeError(f"{self.label or 'work'}: wait(timeout={timeout}) expired before the operation "
                                   f"completed")
        if future._error is not None:
            raise future._error
        return True

    def is_completed(self):
        return self.future.done()

    def is_success(self):
        return self.future.done() and self.future.exception() is None

    def exception(self):
        return self.future.exception()

    def result(self):
        return self.future.value()

    def get_future(self):
        return self.future

    def __repr__(self):
        state = "completed" if self.is_completed() else "pending"
        return f"<Work {self.label} {state}>"


class FifoExecutor:
    """Runs operations one at a time, in submission order: on a daemon thread, or on a thread waiting for them.

    ``submit`` queues and returns at once; the communication thread (started at first use) runs the queue, so
    queued work progresses while the caller computes. A thread that *waits* for queued work (``Work.wait``, and
    ``run``, the sync path) does not sleep while the communication thread hands the operations over one by one:
    it takes the queue over and runs the operations up to its own, in order, while the communication thread
    pauses (:meth:`wait_for`). One operation runs at a time whichever thread runs it, so the order of the verbs is
    the order of submission. ``run`` is inline on the caller when nothing is queued. ``current`` names the
    operation running now and when it started, ``runner`` the ident of the thread running it (read by a timeout
    watchdog).

    >>> ex = FifoExecutor("demo"); out = []
    >>> works = [ex.submit(out.append, (i,), Work(f"op{i}")) for i in range(3)]
    >>> works[-1].wait(); out
    True
    [0, 1, 2]
    """

    # how long a waiting thread sleeps before looking again at a work another thread runs (a watchdog may fail
    # that work without waking the executor)
    POLL = 0.05
    # how long the communication thread leaves queued work to the thread that last waited (seconds): a program
    # that waits for its works one by one keeps running them itself, with no hand-off between the two threads
    GRACE = 0.0005

    def __init__(self, name, on_start=None):
        self.name = name
        self.on_start = on_start  # called as on_start(work) on the running thread before each queued operation
        self.current = None  # (work label, monotonic start time) of the queued operation running now
        self.running_work = None  # its Work
        self.runner = None  # the ident of the thread running it
        self._queue = collections.deque()
        # one lock, two conditions on it; `with self._lock` (C) rather than `with self._cv` (a Python-level
        # __enter__) on the per-operation paths
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)  # the communication thread sleeps on it
        self._helper_cv = threading.Condition(self._lock)  # threads in wait_for sleep on it (woken apart: a wake costs)
        self._pending = 0  # submitted and not finished
        self._busy = False  # a thread is running a queued operation now
        self._helpers = 0  # threads in wait_for: the communication thread leaves the queue to them
        self._helpers_asleep = 0  # of those, the ones sleeping on _helper_cv (notify only when there are some)
        self._sleeping = False  # the communication thread waits on _cv and was not notified yet
        self._resume_at = 0.0  # monotonic time before which the communication thread leaves the queue to waiters
        self._thread = None
        self._closed = False

    def idle(self):
        """True when no submitted operation is queued or running."""
        return self._pending == 0

    def submit(self, fn, args, work, finish=None):
        """Queue ``fn(*args)``; the work's future gets ``finish(fn_result)`` (or the result itself) when it is done."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name}: the communication thread was shut down (process group destroyed)")
            self._queue.append((fn, args, work, finish))
            self._pending += 1
            work.executor = self
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=f"dtorch-comm-{self.name}", daemon=True)
                self._thread.start()
            elif self._sleeping:  # wake it once, not once per submitted operation
                self._sleeping = False
                self._cv.notify()
        return work

    def run(self, fn, args, work, finish=None):
        """Run ``fn(*args)`` now, after whatever is queued; raise its error here."""
        if self._pending == 0:
            return fn(*args)
        self.submit(fn, args, work, finish=None)
        work.wait()
        return work.future.value()

    def wait_for(self, work):
        """Block until ``work`` is done, running queued operations on this thread meanwhile; returns True.

        While a thread waits here the communication thread takes no new operation: this thread pops the queue,
        in order, until its work is done (or another thread finishes it), then hands the rest back.

        >>> ex = FifoExecutor("demo"); w = ex.submit(lambda: 7, (), Work("op"))
        >>> ex.wait_for(w), w.result()
        (True, 7)
        """
        future = work.future
        cv = self._cv
        with self._lock:
            self._helpers += 1
            try:
                while not future._done:
                    if not self._busy and self._queue:
                        item = self._queue.popleft()
                        self._busy = True
                        cv.release()
                        try:
                            self._run_item(item)
                        finally:
                            cv.acquire()
                        continue
                    # another thread runs an operation (maybe this one): sleep until it finishes
                    self._helpers_asleep += 1
                    self._helper_cv.wait(self.POLL)
                    self._helpers_asleep -= 1
            finally:
                self._helpers -= 1
                # the communication thread takes the rest after GRACE, unless this thread is back for more by then
                self._resume_at = time.monotonic() + self.GRACE
                if self._sleeping and self._queue:
                    self._sleeping = False
                    cv.notify()
        return True

    def _loop(self):
        cv = self._cv
        while True:
            with self._lock:
                while True:
                    if self._queue:
                        if not self._helpers and not self._busy:
                            pause = self._resume_at - time.monotonic()
                            if pause <= 0:
                                break
                        else:
                            pause = self.GRACE
                        # a waiting thread runs the queue, or just did and may come back for its next work: look
                        # again shortly rather than be woken (a wake-up per operation is what this avoids)
                        cv.wait(pause)
                        continue
                    if self._closed:
                        return
                    self._sleeping = True
                    cv.wait()
                item = self._queue.popleft()
                self._busy = True
            self._run_item(item)

    def _run_item(self, item):
        """Run one popped operation (``_busy`` is set) and complete its work."""
        fn, args, work, finish = item
        self.running_work = work
        self.runner = threading.get_ident()
        self.current = (work.label, time.monotonic())
        try:
            if self.on_start is not None:
                self.on_start(work)
            result = fn(*args)
            if finish is not None:
                result = finish(result)
        except BaseException as error:  # noqa: BLE001 - delivered to whoever waits on the work
            self._done_one()
            work.future.set_exception(error)
        else:
            self._done_one()
            work.future.set_result(result)
        if self._helpers:
            # after the future is set, and under the lock a waiter holds from its last look to its sleep: either it
            # saw the work done, or it sleeps now and is woken
            with self._lock:
                if self._helpers_asleep:
                    self._helper_cv.notify_all()

    def _done_one(self):
        self.current = None
        self.running_work = None
        self.runner = None
        with self._lock:
            self._pending -= 1
            self._busy = False

    def shutdown(self, wait=True):
        """Stop accepting work; with ``wait``, let the queued work finish first."""
        with self._lock:
            self._closed = True
            self._sleeping = False
            self._cv.notify_all()
        if wait and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()


class Communicator:
    """A group of ranks that exchange raw arrays; subclasses implement the blocking verbs.

    Buffers are C-contiguous arrays. ``sendbuf=None`` means in place (MPI's ``IN_PLACE``): the operation reads from
    and writes to ``recvbuf``. Roots and peers are ranks *of this communicator*. Use ``start`` for async work.

    >>> from dtorch.collectives.mpi import MpiCommunicator
    >>> import numpy as np
    >>> comm = MpiCommunicator.world()            # doctest: +SKIP
    >>> x = np.ones(4, np.float32); comm.allreduce(None, x, ReduceOp.SUM)   # doctest: +SKIP
    """

    backend = "base"

    def __init__(self, rank, size):
        self.rank = rank
        self.size = size
        self._executor = None

    # ---- the verbs (blocking) ---------------------------------------------------------------------------------------

    def allreduce(self, sendbuf, recvbuf, op):
        raise NotImplementedError

    def bcast(self, buf, root):
        raise NotImplementedError

    def reduce(self, sendbuf, recvbuf, op, root):
        """Reduce into ``recvbuf`` on ``root`` (ignored elsewhere); ``sendbuf=None``: in place on ``recvbuf``."""
        raise NotImplementedError

    def allgather(self, sendbuf, recvbuf):
        """``recvbuf`` holds ``size`` blocks of ``sendbuf``'s size, rank order."""
        raise NotImplementedError

    def allgatherv(self, sendbuf, recvbuf, counts):
        """Blocks of different sizes: ``counts[r]`` elements from rank ``r``."""
        raise NotImplementedError

    def gather(self, sendbuf, recvbuf, root):
        raise NotImplementedError

    def scatter(self, sendbuf, recvbuf, root):
        raise NotImplementedError

    def reduce_scatter(self, sendbuf, recvbuf, op):
        """Reduce ``sendbuf`` (``size`` equal blocks) and keep block ``rank`` in ``recvbuf``."""
        raise NotImplementedError

    def alltoall(self, sendbuf, recvbuf):
        raise NotImplementedError

    def alltoallv(self, sendbuf, sendcounts, recvbuf, recvcounts):
        raise NotImplementedError

    def send(self, buf, dest, tag=0):
        raise NotImplementedError

    def recv(self, buf, source, tag=0):
        """Receive into ``buf``; ``source=None`` takes any rank. Returns the sender's rank."""
        raise NotImplementedError

    def barrier(self):
        raise NotImplementedError

    def allgather_bytes(self, data):
        """Every rank's ``bytes``, in rank order: the path for fingerprints and pickled objects."""
        raise NotImplementedError

    def check_reduction(self, op, dtype):
        """Raise TypeError, before any rank communicates, when this backend cannot reduce ``dtype`` with ``op``."""

    # ---- lifecycle --------------------------------------------------------------------------------------------------

    def split(self, ranks):
        """A communicator over ``ranks`` (ranks of this one, in the new rank order); None on ranks not listed.
        Collective over this communicator."""
        raise NotImplementedError

    def abort(self, code=1):
        """End every process of the job now (never returns)."""
        raise NotImplementedError

    def free(self):
        """Release the communicator (collective); queued work is finished first."""
        if self._executor is not None:
            self._executor.shutdown()

    # ---- async ------------------------------------------------------------------------------------------------------

    @property
    def executor(self):
        """This communicator's FIFO communication thread (created on first use)."""
        if self._executor is None:
            self._executor = FifoExecutor(f"{self.backend}{id(self):x}")
        return self._executor

    def start(self, verb, *args, label=None, finish=None):
        """Queue ``self.<verb>(*args)`` and return its :class:`Work` at once.

        >>> work = comm.start("allreduce", None, x, ReduceOp.SUM)    # doctest: +SKIP
        >>> work.wait()                                               # doctest: +SKIP
        True
        """
        return self.executor.submit(getattr(self, verb), args, Work(label or verb), finish)
