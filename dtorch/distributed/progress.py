"""What the distributed layer posts and watches so that no rank waits silently: the progress board, and the poller
that completes point-to-point work.

**The board.** Each group with more than one rank has a :class:`ProgressBoard`: two int64 words per rank in a
one-sided window of the transport (:class:`dtorch.collectives.mpi.SlotWindow`), readable by the other ranks
without their help.

- word 0, the collective a rank entered last: ``(sequence number, op code, inside)`` packed by :meth:`encode` (the
  one place that knows the layout), posted on entering and leaving every collective;
- word 1, on the world group's board only, the *departure* word: 0 while the process is in the job; set by
  :meth:`ProgressBoard.depart` when the process leaves (its exit code, and whether a thread of it had died of an
  uncaught exception). The watchdog reads it (see :mod:`dtorch.distributed.watchdog`).

**The poller.** MPICH moves a nonblocking transfer forward only while some thread is inside an MPI call, so
:class:`RequestPoller`, one daemon thread, tests the outstanding ``isend``/``irecv`` requests and completes their
Work; a callback that raises is logged and the thread goes on.

>>> ProgressBoard.decode(ProgressBoard.encode(41, 3, 1))
(41, 3, 1)
>>> ProgressBoard.decode(ProgressBoard.encode(-1, 0, 0))     # no collective entered yet
(-1, 0, 0)
>>> ProgressBoard.decode_departure(ProgressBoard.encode_departure(3, thread_died=True))
(3, True)
"""

import logging
import threading
import time

logger = logging.getLogger("dtorch.distributed")


class ProgressBoard:
    """A group's progress words over a transport window (two int64 words per rank; see the module header).

    >>> board = ProgressBoard(comm.slot_window(2))      # doctest: +SKIP
    >>> board.post(0, 1, True); board.read()             # doctest: +SKIP
    [(0, 1, 1), (-1, 0, 0)]
    """

    SLOTS = 2
    CODE_BITS = 15  # op codes below 2**15
    SEQ_SHIFT = CODE_BITS + 1
    NONE_YET = -1 << SEQ_SHIFT  # encode(-1, 0, 0): no collective entered yet
    _DEPARTED = 1 << 40  # set in a departure word once the process left

    @staticmethod
    def encode(seq, code, inside):
        """The word of ``(seq, code, inside)``: ``seq`` in the high bits, then the op code, then the flag."""
        return (seq << ProgressBoard.SEQ_SHIFT) | (code << 1) | (1 if inside else 0)

    @staticmethod
    def decode(value):
        """``(seq, code, inside)`` of a word (``seq`` keeps its sign: -1 is "none yet")."""
        return (value >> ProgressBoard.SEQ_SHIFT, (value >> 1) & ((1 << ProgressBoard.CODE_BITS) - 1), value & 1)

    @staticmethod
    def encode_departure(code, thread_died=False):
        """The departure word of a process that leaves with exit status ``code`` (0..255)."""
        return ProgressBoard._DEPARTED | (2 if thread_died else 0) << 8 | (int(code) & 0xFF)

    @staticmethod
    def decode_departure(value):
        """``(exit code, a thread died of an uncaught exception)``, or None while the process is in the job."""
        if not value & ProgressBoard._DEPARTED:
            return None
        return value & 0xFF, bool((value >> 8) & 2)

    def __init__(self, window):
        self.window = window
        self.mine = window.mine  # this rank's words (a memoryview of int64)
        self.mine[0] = self.NONE_YET
        self.mine[1] = 0

    def post(self, seq, code, inside):
        """Post that this rank entered (``inside``) or left collective number ``seq`` with op ``code``."""
        self.mine[0] = self.encode(seq, code, inside)

    def read(self, timeout=1.0):
        """Every rank's ``(seq, code, inside)``, None where it could not be read within ``timeout`` s."""
        return [None if value is None else self.decode(value) for value in self.window.read(0, timeout)]

    def depart(self, code, thread_died=False):
        """Post that this process leaves the job with exit status ``code``."""
        self.mine[1] = self.encode_departure(code, thread_died)

    def departures(self, timeout=1.0):
        """Every rank's ``(exit code, thread died)`` or None (still there, or could not be read)."""
        return [None if value is None else self.decode_departure(value) for value in self.window.read(1, timeout)]

    def free(self):
        self.mine = None
        self.window.free()


class RequestPoller:
    """Completes the Work of started point-to-point transfers without the user polling.

    One daemon thread tests the outstanding requests, sleeping a little longer each round nothing finished (up to
    1 ms); idle when there is nothing to test. An error of a request goes to its Work; the thread never dies.
    """

    def __init__(self):
        self._items = []
        self._cv = threading.Condition()
        self._thread = None

    def watch(self, request, work, result=None):
        """Complete ``work`` (with ``result(request)`` if given) once ``request.test()`` is True; returns ``work``."""
        with self._cv:
            self._items.append((request, work, result))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="dtorch-p2p-progress", daemon=True)
                self._thread.start()
            self._cv.notify()
        return work

    def _loop(self):
        pause = 0.0
        while True:
            try:
                pause = self._round(pause)
            except BaseException:  # noqa: BLE001 - the poller must outlive anything
                logger.exception("dtorch.distributed: error in the point-to-point poller (it goes on)")
                pause = 0.001
            if pause:
                time.sleep(pause)

    def _round(self, pause):
        """Test every outstanding request once; return how long to sleep before the next round."""
        with self._cv:
            while not self._items:
                self._cv.wait()
                pause = 0.0
            items = list(self._items)
        finished = []
        for item in items:
            request, work, result = item
            try:
                if not request.test():
                    continue
                value = result(request) if result else None
            except BaseException as error:  # noqa: BLE001 - handed to the waiter
                finished.append(item)
                work.future.set_exception(error)
                continue
            finished.append(item)
            work.future.set_result(value)  # callbacks run here; one that raises is logged by the Future
        if finished:
            with self._cv:
                for item in finished:
                    self._items.remove(item)
            return 0.0
        return min(0.001, pause * 2 or 0.00002)
