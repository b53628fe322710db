"""``spawn``: run ``fn(i, *args)`` in ``nprocs`` new processes that form an MPI world, PyTorch's way of starting a
DDP job from inside a script.

Design. PyTorch's children find each other over TCP at ``MASTER_ADDR:MASTER_PORT``; dtorch's process groups are
built on MPI, whose ranks are made by an MPI launcher. So ``spawn`` starts its children through ``mpiexec``
(the same machinery as ``dtorchrun``: ``dtorch.distributed.run.Job``), and child ``i`` is MPI rank ``i``:
``init_process_group("gloo" or "mpi", rank=i, world_size=nprocs)`` then works, collectives included, and
``MASTER_ADDR``/``MASTER_PORT`` set by the script are passed on and ignored. Each child is a fresh interpreter
that prepares itself as the standard library's ``spawn`` start method does: it imports the parent's main module
as ``__mp_main__`` (so ``fn`` must be importable, and the script's own start must sit under
``if __name__ == "__main__":``), unpickles ``fn`` and ``args``, and calls ``fn(i, *args)``. Doing it through MPI
rather than by joining separately started MPI singletons keeps one path (``mpiexec``'s) for every way of starting
ranks, with no port and no dynamic-process support asked of the MPI library.

Failures as PyTorch: a child that raises writes its traceback to a file and exits with code 1; the parent ends
every other child (SIGTERM, then SIGKILL after ``grace_period``) and raises :class:`ProcessRaisedException` with
that traceback; a child that exits with another code or dies by a signal gives :class:`ProcessExitedException`.

Where dtorch differs: ``start_method`` ``'fork'`` and ``'forkserver'`` start fresh interpreters too (``fn`` and
``args`` must be picklable), and ``daemon`` only decides whether the children are ended (True) or waited for
(False) when the parent exits without joining them. Needs ``mpiexec`` (``pip install dtorch[mpi]``).

>>> import dtorch.multiprocessing as mp
>>> def work(i, scale): print(i * scale)
>>> mp.spawn(work, args=(10,), nprocs=2)      # doctest: +SKIP
0
10

(the two children print in either order)
"""

import atexit
import json
import multiprocessing
import multiprocessing.spawn
import os
import pickle
import shutil
import signal
import sys
import tempfile
import time
import weakref
from multiprocessing.reduction import ForkingPickler


def _launcher():
    """dtorchrun's machinery, imported at first use (``python -m dtorch.distributed.run`` imports dtorch first,
    and must not find its own module already loaded)."""
    from dtorch.distributed import run

    return run

_START_METHODS = ("spawn", "fork", "forkserver")
_RANK_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
                   "ROLE_WORLD_SIZE", "GROUP_WORLD_SIZE", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT")


class ProcessException(Exception):
    """A child of :func:`spawn` failed: ``error_index`` is its index, ``error_pid`` its process id."""

    __slots__ = ["error_index", "error_pid"]

    def __init__(self, msg, error_index, pid):
        super().__init__(msg)
        self.msg = msg
        self.error_index = error_index
        self.pid = pid

    def __reduce__(self):
        return type(self), (self.msg, self.error_index, self.pid)


class ProcessRaisedException(ProcessException):
    """A child raised an exception; the message holds its traceback."""

    def __init__(self, msg, error_index, error_pid):
        super().__init__(msg, error_index, error_pid)
        self.error_pid = error_pid

    def __reduce__(self):
        return type(self), (self.msg, self.error_index, self.error_pid)


class ProcessExitedException(ProcessException):
    """A child exited with a non-zero code or was killed by a signal (``signal_name``)."""

    __slots__ = ["exit_code"]

    def __init__(self, msg, error_index, error_pid, exit_code, signal_name=None):
        super().__init__(msg, error_index, error_pid)
        self.error_pid = error_pid
        self.exit_code = exit_code
        self.signal_name = signal_name

    def __reduce__(self):
        return type(self), (self.msg, self.error_index, self.error_pid, self.exit_code, self.signal_name)


class _Child:
    """What the parent knows of one child (the role of ``multiprocessing.Process`` in PyTorch's context)."""

    def __init__(self, context, index):
        self._context, self.index = context, index

    @property
    def pid(self):
        info = self._context._job.started.get(self.index)
        return None if info is None else info["pid"]

    @property
    def exitcode(self):
        return self._context._job.exits.get(self.index)

    def is_alive(self):
        return self.pid is not None and self.exitcode is None and not self._context._job.ended.is_set()

    def __repr__(self):
        return f"<spawned child {self.index} pid={self.pid} exitcode={self.exitcode}>"


class ProcessContext:
    """The running children of :func:`start_processes`: :meth:`join` waits for them, :meth:`pids` lists them."""

    def __init__(self, job, nprocs, workdir, daemon):
        self._job, self._nprocs, self._workdir, self._daemon = job, nprocs, workdir, daemon
        self._done = False
        self.processes = [_Child(self, i) for i in range(nprocs)]
        self.error_files = [os.path.join(workdir, f"error_{i}.json") for i in range(nprocs)]
        _live.add(self)

    def pids(self):
        """The children's process ids, in index order (waits for them to have started)."""
        deadline = time.monotonic() + 60
        while not self._job.all_started.is_set() and not self._job.ended.is_set() and time.monotonic() < deadline:
            self._job.all_started.wait(0.05)
            self._job.wait(timeout=0)
        return [child.pid for child in self.processes]

    def join(self, timeout=None, grace_period=None):
        """Wait for the children; True once all have exited successfully, False if ``timeout`` (seconds) passed.

        Raises :class:`ProcessRaisedException` (with the child's traceback) or :class:`ProcessExitedException`
        after ending every other child, SIGTERM then SIGKILL after ``grace_period`` seconds.
        """
        if self._done:
            return True
        if grace_period is not None:
            self._job.grace = float(grace_period)
        try:
            if not self._job.wait(timeout):
                return False
        except KeyboardInterrupt:  # Ctrl-C reached the parent alone (mpiexec has a session of its own): pass it on
            self._job.terminate(signal.SIGINT)
            self._job.wait()
            self._done = True
            _live.discard(self)
            shutil.rmtree(self._workdir, ignore_errors=True)
            raise
        self._done = True
        _live.discard(self)
        try:
            failure = self._job.failure
            if failure is None:
                return True
            raise self._exception(failure)
        finally:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def _exception(self, failure):
        index = failure.rank if failure.rank is not None else 0
        pid = failure.pid or self.processes[index].pid
        error = _read_error(self.error_files[index])
        if error is not None:
            msg = f"\n\n-- Process {index} terminated with the following error:\n{error['traceback']}"
            return ProcessRaisedException(msg, index, error.get("pid", pid))
        code = failure.code if failure.code is not None else 1
        if code < 0:
            name = _launcher()._signal_name(-code)
            return ProcessExitedException(f"process {index} terminated with signal {name}", index, pid, code, name)
        return ProcessExitedException(f"process {index} terminated with exit code {code}", index, pid, code)

    def _at_exit(self):
        if self._done:
            return
        if self._daemon:
            self._job.terminate()
        try:
            self._job.wait()
        finally:
            shutil.rmtree(self._workdir, ignore_errors=True)


_live = weakref.WeakSet()


@atexit.register
def _end_children():
    """Like ``multiprocessing``: daemonic children end with the parent, the others are waited for."""
    for context in list(_live):
        context._at_exit()


def _read_error(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def start_processes(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn"):
    """Start ``nprocs`` processes running ``fn(i, *args)`` (``i`` = 0..nprocs-1) as the ranks of one MPI world.

    Args:
        fn: a function importable by name (module level of the script or of a module); its first argument is
            the process index, which is also its MPI rank.
        args: the remaining arguments (picklable).
        nprocs: how many processes.
        join: wait for them (and raise on a failure) before returning.
        daemon: end the children if the parent exits without joining them.
        start_method: ``'spawn'`` (``'fork'`` and ``'forkserver'`` behave as ``'spawn'`` here).

    Returns:
        None when ``join``, else a :class:`ProcessContext`.

    >>> ctx = start_processes(print, args=("hello",), nprocs=2, join=False)   # doctest: +SKIP
    >>> ctx.join()                                                           # doctest: +SKIP
    True
    """
    if start_method not in _START_METHODS:
        raise ValueError(f"start_method must be one of {_START_METHODS}, got {start_method!r}")
    if not isinstance(nprocs, int) or isinstance(nprocs, bool) or nprocs < 1:
        raise ValueError(f"nprocs must be a positive int, got {nprocs!r}")
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    if not isinstance(args, tuple):
        raise TypeError(f"args must be a tuple, got {type(args).__name__}")
    try:
        payload = bytes(ForkingPickler.dumps((fn, args)))
    except Exception as error:  # noqa: BLE001 - any pickling failure: say what must be importable
        raise RuntimeError(f"spawn sends fn and args to fresh interpreters by pickling, and they could not be "
                           f"pickled ({type(error).__name__}: {error}); define fn at the top level of a module or "
                           f"of the script (not a lambda or a nested function)") from error
    workdir = tempfile.mkdtemp(prefix="dtorch-spawn-")
    preparation = multiprocessing.spawn.get_preparation_data("dtorch-spawn")
    preparation["authkey"] = bytes(preparation["authkey"])  # an AuthenticationString refuses plain pickling
    with open(os.path.join(workdir, "payload.pickle"), "wb") as f:
        pickle.dump({"preparation": preparation, "payload": payload, "workdir": workdir}, f)
    program = [sys.executable, "-u", "-m", "dtorch.multiprocessing._child", os.path.join(workdir, "payload.pickle")]
    run = _launcher()
    command = run.mpiexec_command(nprocs, nprocs, run.agent_command(program))
    env = run.launcher_environment({"DTORCHRUN_RANK_VARIABLES": "0", "PYTHONUNBUFFERED": "1"})
    for name in _RANK_VARIABLES:  # the parent's own place in a job (spawn from a dtorchrun rank) is not theirs
        env.pop(name, None)
    job = run.Job(command, nprocs, env, console=True, prefix=False).start()
    context = ProcessContext(job, nprocs, workdir, daemon)
    if not join:
        return context
    while not context.join():
        pass
    return None


def spawn(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn"):
    """Run ``fn(i, *args)`` in ``nprocs`` processes, PyTorch's ``torch.multiprocessing.spawn``.

    The processes form an MPI world (process ``i`` is rank ``i``), so ``dist.init_process_group("gloo",
    rank=i, world_size=nprocs)`` inside ``fn`` works. A child that raises ends the others and the parent raises
    :class:`ProcessRaisedException` with its traceback. See :func:`start_processes` for the arguments.

    >>> import dtorch.multiprocessing as mp
    >>> def train(rank, world_size): ...
    >>> mp.spawn(train, args=(2,), nprocs=2, join=True)    # doctest: +SKIP
    """
    if start_method != "spawn":
        import warnings

        warnings.warn(f"This method only supports start_method=spawn (got: {start_method}).\nTo use a different "
                      f"start_method use:\n\t dtorch.multiprocessing.start_processes(...)", FutureWarning,
                      stacklevel=2)
    return start_processes(fn, args=args, nprocs=nprocs, join=join, daemon=daemon, start_method=start_method)

