"""Never a silent hang: the timeout watchdog, and ending every rank when one rank fails or leaves.

**Timeouts.** Each process group records the operation it runs now (``ProcessGroup.inflight``: name, sequence
number, start time, timeout), its queue of collectives not started yet, and the point-to-point transfers it has
open. One daemon thread, the :class:`Watchdog`, looks at them a few times a second (at least every 0.25 s where a
group has other ranks). When one has run past its timeout (the group's, or its own for ``barrier(timeout=...)``;
for queued work: the queue has not moved for the group's timeout) it

1. reads the group's progress board to learn which ranks have not reached that collective (each rank posts the
   sequence number it entered last; see :class:`dtorch.distributed.progress.ProgressBoard`),
2. fails the operation's :class:`~dtorch.distributed.work.Work` with a :class:`DistTimeoutError` naming the
   collective, its sequence number and those ranks, so a rank blocked in ``work.wait()`` raises it (when the
   communication thread runs the work; a waiting thread that took the work over is blocked inside MPI, as a
   sync call is, and gets the report of step 3),
3. after a short grace (``DTORCH_ABORT_GRACE`` seconds, default 1; the raised error usually ends the job sooner
   through the exception hook) prints the error, prefixed with the rank, with the stack of the rank's main thread
   when it is stuck inside a blocking MPI call (where Python cannot raise), and calls ``MPI_Abort``: the launcher
   then ends every rank. A job never stays hung.

**Ranks that leave.** A process that leaves without an uncaught exception (its script returns, ``sys.exit(3)``,
the thread that ran its collectives died) posts its exit status on the world group's board at exit (see
:mod:`dtorch.distributed.process_group`); MPI's finalisation then holds it until the job ends. Each watchdog round
reads the departure words of the members of every group that has a collective in flight: a member that left
without reaching that collective will never come, so the watchdog fails the work with a :class:`DistBackendError`
naming that rank and its exit status, prints it (with the blocked main thread's stack) and ends the job with that
status through ``MPI_Abort`` (status 1 when the rank left with 0: the job did not finish). The exit status is
learned by wrapping ``sys.exit`` (:func:`install_exit_status_hooks`; a ``SystemExit`` raised directly is not seen
and reads as 0), a thread's death by ``threading.excepthook`` (the traceback is printed, prefixed by the rank). A
process killed by a signal posts nothing: MPI's launcher ends the job then.

**Uncaught exceptions.** :func:`install_excepthook` replaces ``sys.excepthook``: the traceback is printed once, each
line prefixed by ``[rank N]``, then ``MPI_Abort`` ends every rank (a rank that merely exited would leave the others
blocked in their next collective). ``DTORCH_ABORT_ON_EXCEPTION=0`` turns this off.

**Robustness.** The watchdog thread survives an exception in its own checks (logged to ``dtorch.distributed``).
"""

import logging
import os
import sys
import threading
import time
import traceback
import weakref

logger = logging.getLogger("dtorch.distributed")


class DistError(RuntimeError):
    """PyTorch's ``torch.distributed.DistError``: an error of the distributed runtime."""


class DistBackendError(DistError):
    """An error raised by a communication backend (PyTorch's ``DistBackendError``)."""


class DistTimeoutError(DistBackendError):
    """A collective or transfer waited past its group's timeout; the job is being ended."""


def _grace():
    try:
        return float(os.environ.get("DTORCH_ABORT_GRACE", "1.0"))
    except ValueError:
        return 1.0


def _say(rank, text):
    """Write ``text`` to stderr with every line prefixed by the rank, in one write."""
    prefix = f"[rank {rank}] "
    sys.stderr.write("".join(prefix + line + "\n" for line in text.rstrip("\n").split("\n")))
    sys.stderr.flush()


class Watchdog:
    """One daemon thread watching every live process group for operations past their timeout and for members that
    left the job.

    Groups register themselves (weakly); the thread polls every ``interval`` seconds: a twentieth of the shortest
    timeout, between 0.02 s and 1 s, and at most 0.25 s once a group has other ranks (departures are seen within
    that).
    """

    DEPARTURE_POLL = 0.25

    def __init__(self):
        self._groups = weakref.WeakSet()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None
        self.interval = 1.0
        self.firing = False

    def watch(self, group):
        with self._lock:
            self._groups.add(group)
            limit = group.timeout / 20.0
            if group.size() > 1:
                limit = min(limit, self.DEPARTURE_POLL)
            self.interval = max(0.02, min(self.interval, limit))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="dtorch-watchdog", daemon=True)
                self._thread.start()
        self._wake.set()

    def tighten(self, seconds):
        """Poll often enough for an operation given its own, shorter, timeout (``barrier(timeout=...)``).

        >>> watchdog.tighten(2.0); watchdog.interval <= 0.1
        True
        """
        with self._lock:
            self.interval = max(0.02, min(self.interval, seconds / 20.0))
        self._wake.set()

    def forget(self, group):
        with self._lock:
            self._groups.discard(group)

    def _loop(self):
        while not self.firing:
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.check(time.monotonic())
            except BaseException:  # noqa: BLE001 - the watchdog must outlive anything
                logger.exception("dtorch.distributed: the watchdog's round failed (it goes on)")

    def check(self, now):
        """One round over every group: fire for the first operation past its timeout or waiting for a rank that
        left. A group whose own checks raise is logged and skipped; the others are still checked."""
        with self._lock:
            groups = list(self._groups)
        for group in groups:
            try:
                expired = group.expired(now)
                departed = None if expired is not None else group.departed()
            except Exception:  # noqa: BLE001 - one group's failure must not blind the watchdog to the others
                logger.exception("dtorch.distributed: the watchdog could not check group %s (it goes on)",
                                 getattr(group, "name", group))
                continue
            if expired is not None:
                self.fire(group, *expired)
                return
            if departed is not None:
                self.fire_departure(group, *departed)
                return

    def fire(self, group, what, started, work, on_main_thread):
        """End the job for an operation of ``group`` that ran past its timeout."""
        waited = time.monotonic() - started
        message = group.timeout_message(what, waited)
        self._end(group, DistTimeoutError(message), work, on_main_thread, 1)

    def fire_departure(self, group, message, work, on_main_thread, code):
        """End the job, with the leaving rank's exit status (1 for 0), for a collective waiting for a rank that
        left."""
        self._end(group, DistBackendError(message), work, on_main_thread, code or 1)

    def _end(self, group, error, work, on_main_thread, code):
        self.firing = True
        message = str(error)
        if work is not None:
            work.future.set_exception(error)
            time.sleep(_grace())  # let the waiting thread raise; the exception hook usually aborts before this ends
        report = message
        if on_main_thread:
            frame = sys._current_frames().get(threading.main_thread().ident)
            if frame is not None:
                stack = "".join(traceback.format_list(_user_frames(frame)))
                report = ("Traceback (the main thread is blocked in this collective):\n" + stack
                          + f"{type(error).__name__}: {message}")
        _say(group.global_rank, report + f"\nEnding every rank of the job (MPI_Abort, exit status {code}) rather "
                                         f"than leaving it hung.")
        time.sleep(0.2)  # let the launcher forward the report before it kills the job
        group.abort(code)


def _user_frames(frame):
    """The stack up to and including the first dtorch.distributed call: where the user's code is blocked."""
    frames = traceback.extract_stack(frame)
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../dtorch
    for i, entry in enumerate(frames):
        if os.path.abspath(entry.filename).startswith(package + os.sep):
            return frames[: i + 1]
    return frames


watchdog = Watchdog()


# ---- uncaught exceptions -------------------------------------------------------------------------------------------

_hook_installed = False


def install_excepthook(rank, abort):
    """Make an uncaught exception on this rank print its traceback (prefixed ``[rank N]``) and end every rank.

    ``abort(code)`` ends the job (``MPI_Abort``). Installed by ``init_process_group`` on worlds larger than one.
    """
    global _hook_installed
    if _hook_installed or os.environ.get("DTORCH_ABORT_ON_EXCEPTION", "1").strip().lower() in ("0", "false", "no"):
        return

    def hook(kind, value, tb):
        text = "".join(traceback.format_exception(kind, value, tb))
        _say(rank, text + "Uncaught exception: ending every rank of the job (MPI_Abort).")
        time.sleep(0.1)  # let the launcher forward the traceback before it kills the job
        abort(1)

    sys.excepthook = hook
    _hook_installed = True


# ---- how a process leaves ------------------------------------------------------------------------------------------

_exit = {"code": None, "thread_died": False, "installed": False}


def exit_status():
    """``(exit status, a thread died of an uncaught exception)`` of this process as far as dtorch saw: the status
    given to ``sys.exit`` (0 for None, 1 for a message), else 0.

    >>> exit_status()[0] in range(256)
    True
    """
    code = _exit["code"]
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code & 0xFF
    else:
        status = 1  # sys.exit("message") prints it and exits with 1
    return status, _exit["thread_died"]


def install_exit_status_hooks(rank):
    """Learn how this process leaves: wrap ``sys.exit`` (to record the status) and set ``threading.excepthook`` (to
    note that a thread died, and print its traceback prefixed by the rank). Installed by ``init_process_group`` on
    worlds larger than one."""
    if _exit["installed"]:
        return
    _exit["installed"] = True
    original_exit = sys.exit

    def recording_exit(status=None):
        _exit["code"] = status
        original_exit(status)

    recording_exit.__doc__ = original_exit.__doc__
    sys.exit = recording_exit

    def thread_hook(args):
        if args.exc_type is SystemExit:
            return  # a thread's SystemExit ends the thread quietly, as without the hook
        _exit["thread_died"] = True
        name = args.thread.name if args.thread is not None else "?"
        text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
        _say(rank, f"Exception in thread {name}:\n{text}")

    threading.excepthook = thread_hook
