"""Never a silent hang: the timeout watchdog, and ending every rank when one rank fails.

**Timeouts.** Each process group records the operation it runs now (``ProcessGroup.inflight``: name, sequence
number, start time, timeout) and the point-to-point transfers it has open. One daemon thread, the :class:`Watchdog`,
looks at them a few times a second. When one has run past its timeout (the group's, or its own for
``barrier(timeout=...)``) it

1. reads the group's progress board to learn which ranks have not reached that collective (each rank posts the
   sequence number it entered last; see :class:`dtorch.collectives.mpi.ProgressBoard`),
2. fails the operation's :class:`~dtorch.collectives.base.Work` with a :class:`DistTimeoutError` naming the
   collective, its sequence number and those ranks, so a rank blocked in ``work.wait()`` raises it (when the
   communication thread runs the work; a waiting thread that took the work over is blocked inside MPI, as a
   sync call is, and gets the report of step 3),
3. after a short grace (``DTORCH_ABORT_GRACE`` seconds, default 1; the raised error usually ends the job sooner
   through the exception hook) prints the error, prefixed with the rank, with the stack of the rank's main thread
   when it is stuck inside a blocking MPI call (where Python cannot raise), and calls ``MPI_Abort``: the launcher
   then ends every rank. A job never stays hung.

**Uncaught exceptions.** :func:`install_excepthook` replaces ``sys.excepthook``: the traceback is printed once, each
line prefixed by ``[rank N]``, then ``MPI_Abort`` ends every rank (a rank that merely exited would leave the others
blocked in their next collective). ``DTORCH_ABORT_ON_EXCEPTION=0`` turns this off.
"""

import os
import sys
import threading
import time
import traceback
import weakref


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
    """One daemon thread watching every live process group for operations past their timeout.

    Groups register themselves (weakly); the thread polls every ``interval`` seconds, a twentieth of the shortest
    timeout, between 0.02 s and 1 s.
    """

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
            self.interval = max(0.02, min(self.interval, group.timeout / 20.0))
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
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            now = time.monotonic()
            with self._lock:
                groups = list(self._groups)
            for group in groups:
                expired = group.expired(now)
                if expired is not None:
                    self.fire(group, *expired)
                    return

    def fire(self, group, what, started, work, on_main_thread):
        """End the job for an operation of ``group`` that ran past its timeout."""
        self.firing = True
        waited = time.monotonic() - started
        message = group.timeout_message(what, waited)
        error = DistTimeoutError(message)
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
        _say(group.global_rank, report + "\nEnding every rank of the job (MPI_Abort) rather than leaving it hung.")
        time.sleep(0.2)  # let the launcher forward the report before it kills the job
        group.abort()


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
