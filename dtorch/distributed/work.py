"""Futures, work handles and the per-group FIFO queue that async collectives run on.

A :class:`CommQueue` belongs to one process group and runs that group's collectives one at a time, in the order
they were issued: async ones on a daemon *communication thread*, sync ones on the caller once what was issued
before them has run. A thread, rather than MPI's nonblocking collectives, because MPICH progresses a nonblocking
operation only while some thread is inside an MPI call: a thread blocked in the collective *is* that progress, with
no polling by the user. It needs ``MPI_THREAD_MULTIPLE`` (mpi4py's default).

Contracts:

- **One at a time.** Whoever runs a collective holds the queue's *token*: the communication thread, a thread that
  waits for queued work (``Work.wait()`` without a timeout runs the queued collectives up to its own itself, in
  order, instead of sleeping while the communication thread hands them over one wake-up at a time), or a sync
  caller with nothing queued ahead of it. So the order of the verbs on every rank is the order of issue.
- **Callbacks.** A future's callbacks run on the thread that completes it, while that thread still holds the token.
  A callback that raises is logged (logger ``dtorch.distributed``) and the other callbacks, the queue and the
  thread go on, as in PyTorch.
- **Collectives issued from a callback run in order**: right after the work whose callback issued them, ahead of
  anything queued before (async ones in the order the callback issued them; a sync one runs at once, on the
  callback's thread). The position depends only on the program, not on timing, so every rank that runs the same
  callbacks runs the same sequence of collectives. (Sequence numbers are given when a collective *starts*, for the
  same reason.)
- :class:`Work`, :class:`Future` and :class:`CommQueue` are thread-safe. (``Future._wait_done`` is shared with
  :class:`Work` within this module: a wait with a deadline that returns a flag instead of raising.)

>>> q = CommQueue("demo", lambda item: item * 2)
>>> works = [q.submit(i, Work(f"op{i}")) for i in range(3)]
>>> [w.wait() and w.result() for w in works]
[0, 2, 4]
>>> q.shutdown()
"""

import collections
import logging
import threading
import time

logger = logging.getLogger("dtorch.distributed")
_get_ident = threading.get_ident
_monotonic = time.monotonic

# one lock for every future's finish-or-add-callback step (held for a few bytecodes: one per future would cost a
# lock's creation on every async collective)
_FINISH_LOCK = threading.Lock()


def _run_callback(callback, future):
    try:
        callback(future)
    except Exception:  # noqa: BLE001 - PyTorch logs a failing callback and goes on
        logger.exception("dtorch.distributed: a Future callback raised; the error is logged and ignored (the "
                         "work and the communication thread go on)")


class Future:
    """The result of an operation that may not have finished, PyTorch's ``torch.futures.Future``.

    Completion is a lock held from creation until a result or error is set (cheaper to make and to wait on than
    a ``threading.Event``: one is made for every async collective).

    >>> f = Future(); f.done()
    False
    >>> f.set_result([1]); f.value()
    [1]
    >>> f = Future(); g = f.then(lambda fut: fut.value() * 2); f.set_result(21); g.wait()
    42
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
        """Complete the future with ``result`` (a second completion is ignored: the first one wins)."""
        self._finish(result, None)

    def set_exception(self, error):
        """Fail the future with ``error`` (a second completion is ignored: the first one wins)."""
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
                _run_callback(callback, self)

    def add_done_callback(self, callback):
        """Call ``callback(future)`` once done (at once, on this thread, when already done). A callback that raises
        is logged and ignored."""
        with _FINISH_LOCK:
            if not self._done:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(callback)
                return
        _run_callback(callback, self)

    def then(self, callback):
        """A new future holding ``callback(self)``, run once this one is done; errors go to the new future.

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

    ``get_future().value()`` is the list of output tensors of the collective (PyTorch's convention).

    >>> w = Work("all_reduce"); w.is_completed()
    False
    >>> w.future.set_result(None); w.wait()
    True
    """

    __slots__ = ("label", "future", "queue")

    def __init__(self, label="", future=None):
        self.label = label
        self.future = future if future is not None else Future()
        self.queue = None  # the CommQueue it is queued on, if any: wait() helps it along

    @classmethod
    def completed(cls, label="", result=None):
        """A handle on work that has already finished.

        >>> Work.completed("barrier", []).is_completed()
        True
        """
        work = cls(label)
        work.future.set_result(result)
        return work

    def wait(self, timeout=None):
        """Block until the operation finished; re-raise its error. Returns True, like PyTorch.

        ``timeout`` (seconds or a timedelta) bounds this wait only (the group's own timeout still applies). Without
        it, queued collectives that have not started are run by the waiting thread itself, in queue order
        (:meth:`CommQueue.wait_for`); with it the waiter only waits (a deadline cannot interrupt an operation it
        would be running)."""
        if timeout is not None and hasattr(timeout, "total_seconds"):
            timeout = timeout.total_seconds()
        future = self.future
        if not future.done():
            queue = self.queue
            done = queue.wait_for(self) if queue is not None and timeout is None else future._wait_done(timeout)
            if not done:
                raise RuntimeError(f"{self.label or 'work'}: wait(timeout={timeout}) expired before the operation "
                                   f"completed")
        error = future.exception()
        if error is not None:
            raise error
        return True

    def is_completed(self):
        return self.future.done()

    def is_success(self):
        return self.future.done() and self.future.exception() is None

    def exception(self):
        return self.future.exception()

    def result(self):
        """The work's value (its output tensors for a collective); raises its error."""
        return self.future.value()

    def get_future(self):
        return self.future

    def __repr__(self):
        state = "completed" if self.is_completed() else "pending"
        return f"<Work {self.label} {state}>"


class CommQueue:
    """Runs one group's operations one at a time, in issue order (see the module header for the contracts).

    ``run_item(item)`` does the work of one item and returns the value its Work gets (called by whichever thread
    holds the token). ``running_work`` is the Work of the item running now (None for a sync call run inline) and
    ``runner`` the ident of the thread running it; :meth:`stalled` tells about queued items that have not started:
    the watchdog reads them.

    >>> q = CommQueue("demo", lambda item: item + 1)
    >>> q.run(41)
    42
    >>> q.shutdown()
    """

    # how long a waiting thread sleeps before looking again at work another thread runs (a watchdog may fail that
    # work without waking the queue)
    POLL = 0.05
    # how long the communication thread leaves queued work to the thread that last waited (seconds): a program
    # that waits for its works one by one keeps running them itself, with no hand-off between the two threads
    GRACE = 0.0005

    def __init__(self, name, run_item):
        self.name = name
        self.run_item = run_item
        self.running_work = None  # the Work of the item running now
        self.runner = None  # the ident of the thread running it
        self._queue = collections.deque()  # (item, work, issued at)
        self._front = 0  # where the next item issued by the token holder's callbacks goes
        # one lock, two conditions on it; `with self._lock` (C) rather than `with self._cv` (a Python-level
        # __enter__) on the per-operation paths
        self._lock = threading.Lock()
        self._cv = threading.Condition(self._lock)  # the communication thread sleeps on it
        self._helper_cv = threading.Condition(self._lock)  # threads in wait_for sleep on it (woken apart: a wake costs)
        self._depth = 0  # nested holds of the token by its owner (a callback that waits for later work)
        self._owner = None  # ident of the thread holding the token, None when free
        self._helpers = 0  # threads in wait_for: the communication thread leaves the queue to them
        self._helpers_asleep = 0
        self._sleeping = False  # the communication thread waits on _cv and was not notified yet
        self._resume_at = 0.0  # monotonic time before which the communication thread leaves the queue to waiters
        self._moved = 0.0  # monotonic time an item last started or ended
        self._thread = None
        self._closed = False

    def idle(self):
        """True when nothing is queued or running."""
        return self._owner is None and not self._queue

    def stalled(self):
        """``(since, work)`` for the first queued item: ``since`` is the later of its issue and the last time the
        queue moved (an item started or ended); None when nothing is queued. A caller that knows nothing is running
        (no collective in flight) reads a ``since`` long ago as a queue that stopped: its thread blocked in a
        callback, say."""
        with self._lock:
            if not self._queue:
                return None
            _, work, issued = self._queue[0]
            return max(issued, self._moved), work

    # ---- issuing ----------------------------------------------------------------------------------------------------

    def submit(self, item, work):
        """Queue ``item``; its Work completes with ``run_item(item)``'s value (or error). Returns ``work``."""
        me = threading.get_ident()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name}: the communication thread was shut down (process group destroyed)")
            entry = (item, work, time.monotonic())
            if self._owner == me:  # issued by a callback of the item this thread just ran: it goes next
                self._queue.insert(self._front, entry)
                self._front += 1
            else:
                self._queue.append(entry)
            work.queue = self
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=f"dtorch-comm-{self.name}", daemon=True)
                self._thread.start()
            elif self._sleeping:  # wake it once, not once per submitted operation
                self._sleeping = False
                self._cv.notify()
        return work

    def run(self, item, label=""):
        """Run ``item`` now, after whatever was issued before it; return its value or raise its error here."""
        me = _get_ident()
        with self._lock:
            owner = self._owner
            if owner is None:
                inline = not self._queue
            else:  # a callback of the item this thread runs: at once, unless it queued async work first
                inline = owner == me and self._front == 0
            if inline:
                self._depth += 1
                self._owner = me
                self._front = 0
                self.running_work = None
                self.runner = me
                self._moved = _monotonic()
        if inline:
            try:
                return self.run_item(item)
            finally:
                self._release()
        work = self.submit(item, Work(label))
        self.wait_for(work)
        return work.future.value()

    # ---- running ----------------------------------------------------------------------------------------------------

    def _take(self, me):
        """Take the token (the lock is held)."""
        self._depth += 1
        self._owner = me
        self._front = 0
        self._moved = _monotonic()

    def _release(self):
        with self._lock:
            depth = self._depth - 1
            self._depth = depth
            self._moved = _monotonic()
            if depth == 0:
                self._owner = None
                self.running_work = self.runner = None
            if self._helpers_asleep:
                self._helper_cv.notify_all()
            if self._sleeping and self._queue:
                self._sleeping = False
                self._cv.notify()

    def _run_entry(self, entry):
        """Run one popped entry (this thread holds the token); complete its work, callbacks included; release."""
        item, work, _ = entry
        self.running_work, self.runner = work, _get_ident()
        try:
            try:
                result = self.run_item(item)
            except BaseException as error:  # noqa: BLE001 - delivered to whoever waits on the work
                work.future.set_exception(error)
            else:
                work.future.set_result(result)  # the callbacks run here, with the token held
        finally:
            self._release()

    def wait_for(self, work):
        """Block until ``work`` is done, running queued operations on this thread meanwhile; returns True.

        While a thread waits here the communication thread takes no new operation: this thread pops the queue, in
        order, until its work is done (or another thread finishes it), then hands the rest back.

        >>> q = CommQueue("demo", lambda item: item); w = q.submit(7, Work("op"))
        >>> q.wait_for(w), w.result()
        (True, 7)
        """
        future = work.future
        me = threading.get_ident()
        with self._lock:
            self._helpers += 1
            try:
                while not future.done():
                    if self._queue and (self._owner is None or self._owner == me):
                        entry = self._queue.popleft()
                        self._take(me)
                        self._lock.release()
                        try:
                            self._run_entry(entry)
                        finally:
                            self._lock.acquire()
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
                    self._cv.notify()
        return True

    def _loop(self):
        cv = self._cv
        me = threading.get_ident()
        while True:
            with self._lock:
                while True:
                    self._sleeping = False
                    if self._queue and self._owner is None:
                        if not self._helpers:
                            pause = self._resume_at - time.monotonic()
                            if pause <= 0:
                                break
                        else:
                            pause = self.GRACE
                        # a waiting thread runs the queue, or just did and may come back for its next work: look
                        # again shortly rather than be woken (a wake-up per operation is what this avoids)
                        cv.wait(pause)
                        continue
                    if self._closed and not self._queue:
                        return
                    self._sleeping = True  # woken by submit, or by a release when something is queued
                    cv.wait()
                entry = self._queue.popleft()
                self._take(me)
            try:
                self._run_entry(entry)
            except BaseException:  # noqa: BLE001 - the thread must outlive anything; errors went to the work
                logger.exception("dtorch.distributed: error on the communication thread of %s", self.name)

    def shutdown(self, wait=True):
        """Stop accepting work; with ``wait``, let the queued work finish first."""
        with self._lock:
            self._closed = True
            self._sleeping = False
            self._cv.notify_all()
        if wait and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
