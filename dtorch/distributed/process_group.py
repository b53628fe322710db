"""Process groups: who talks to whom, in what order, with which transport, and how long anyone may wait.

A :class:`ProcessGroup` owns an MPI communicator for its collectives (a private duplicate, so user code on
``MPI.COMM_WORLD`` never matches its messages), a second one for point-to-point transfers (so a ``send`` never
interleaves with a queued collective), optionally an NCCL communicator for CUDA tensors, and everything that is
not moving data: the order of the collectives (a per-group :class:`~dtorch.distributed.work.CommQueue`, whose
communication thread runs ``async_op=True`` work), their sequence numbers, the mismatch check of every call
(:mod:`dtorch.distributed.checks`), the progress board (:mod:`dtorch.distributed.progress`) and the timeouts the
watchdog enforces (:mod:`dtorch.distributed.watchdog`). The public functions hand it one :class:`Collective` record
per call; the transport gets only the verb and its arrays.

Data flows one way: ``distributed_c10d`` (Tensors to arrays, argument checks) → :meth:`ProcessGroup.issue` (order,
sequence number, board, check, timeout) → the communicator's verb (arrays). Groups are made collectively: every
rank of the world calls ``init_process_group`` and ``new_group`` in the same order, like PyTorch.

**Leaving.** At exit (``atexit``, so before MPI is finalised) a process finishes its queued async work and posts
on the world group's board that it leaves, with its exit status (from ``sys.exit``; a normal end is 0) and whether
one of its threads died of an uncaught exception. A rank still waiting in a collective that the leaving rank never
reached then raises within a fraction of a second an error naming that rank and its exit status, and the job ends
with that status (1 when it was 0: the job did not finish). See :mod:`dtorch.distributed.watchdog`.

How ranks are found is :mod:`dtorch.distributed.rendezvous`; ``init_process_group`` then sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE`` in ``os.environ`` for the script.

Threads: the order of a group's collectives is the order of the calls; call them from one thread, or from Future
callbacks (which run in order, see :mod:`dtorch.distributed.work`). Groups' communication threads and the watchdog
are daemon threads. A process forked while groups exist (DataLoader
workers) must not use them: the child has the parent's MPI state but none of its threads.

>>> import dtorch.distributed as dist
>>> dist.init_process_group()               # doctest: +SKIP
>>> dist.get_rank(), dist.get_world_size()  # doctest: +SKIP
(0, 1)
"""

import atexit
import collections
import dataclasses
import datetime
import os
import threading
import time
import warnings
import zlib

from dtorch.distributed import watchdog as _watchdog
from dtorch.distributed.checks import Checker
from dtorch.distributed.progress import ProgressBoard
from dtorch.distributed.rendezvous import resolve_backend, world_communicator
from dtorch.distributed.watchdog import watchdog
from dtorch.distributed.work import CommQueue, Work

DEFAULT_TIMEOUT = datetime.timedelta(minutes=10)

# board op codes (ints in shared memory); index into OP_NAMES
OP_NAMES = ("?", "all_reduce", "broadcast", "reduce", "all_gather", "all_gather_into_tensor", "gather", "scatter",
            "reduce_scatter", "reduce_scatter_tensor", "all_to_all", "all_to_all_single", "barrier",
            "all_gather_object", "broadcast_object_list", "gather_object", "scatter_object_list", "new_group",
            "destroy_process_group")
OP_CODES = {name: code for code, name in enumerate(OP_NAMES)}
_monotonic = time.monotonic


def _nothing():
    pass


def _seconds(timeout):
    if timeout is None:
        return DEFAULT_TIMEOUT.total_seconds()
    if isinstance(timeout, datetime.timedelta):
        return timeout.total_seconds()
    return float(timeout)


@dataclasses.dataclass(slots=True)
class Collective:
    """One collective as the public functions hand it to a process group: what to run and what to check.

    ``verb(*args)`` is the transport's call that moves the arrays (a bound method of the group's communicator, or
    a function of several verbs for the object collectives); ``spec`` is what every rank must agree on (see
    :mod:`dtorch.distributed.checks`); ``finish()`` runs after the verb (copying out of a packed buffer);
    ``outputs`` is the value of the async Work's future (PyTorch's list of output tensors); ``timeout`` (seconds)
    replaces the group's timeout for this call.

    >>> Collective("barrier", print, (), ()).name
    'barrier'
    """

    name: str
    verb: object
    args: tuple
    spec: tuple
    outputs: object = None
    finish: object = None
    timeout: float = None


class ProcessGroup:
    """A set of ranks that run collectives together (PyTorch's ``ProcessGroup``).

    ``ranks`` are the global ranks of the members, in group-rank order. Use ``rank()``/``size()`` for this process's
    place in the group. :meth:`issue` runs a :class:`Collective` in the group's order; everything else here is the
    bookkeeping the checks and the watchdog need.

    >>> pg = dist.new_group([0, 1])             # doctest: +SKIP
    >>> pg.rank(), pg.size()                    # doctest: +SKIP
    (0, 2)
    """

    def __init__(self, comm, ranks, global_rank, timeout, backend="mpi", name="WORLD", nccl=None, world_board=None):
        self.comm = comm  # collectives (MPI, or the local world of one)
        self.p2p = comm.split(list(range(comm.size))) if comm.size > 1 else comm  # point-to-point transfers
        self.nccl = nccl
        self.ranks = list(ranks)
        self.global_rank = global_rank
        self.timeout = _seconds(timeout)
        self.backend = backend
        self.name = name
        # the next sequence number, given when a collective starts: only the holder of the queue's token touches it
        self.seq = 0
        self.p2p_seq = 0
        self.inflight = None  # (name, seq, start, timeout) of the collective running now, read by the watchdog
        self.p2p_open = {}  # key -> (description, start, work, on_main_thread, peer's global rank or None)
        self.gpu_pending = collections.deque()  # (name, seq, start, CUDA event) of launched NCCL collectives
        self.queue = CommQueue(name, self._execute)
        window = comm.slot_window(ProgressBoard.SLOTS) if comm.size > 1 else None
        self.board = ProgressBoard(window) if window is not None else None
        # where the processes of the job post that they left: the world group's board
        self.world_board = world_board if world_board is not None else self.board
        self.checker = Checker(comm, name, self.ranks) if comm.size > 1 else None
        self._group_rank = {g: i for i, g in enumerate(self.ranks)}
        self.alive = True
        watchdog.watch(self)

    # ---- identity ---------------------------------------------------------------------------------------------------

    def rank(self):
        return self.comm.rank

    def size(self):
        return self.comm.size

    def group_rank(self, global_rank, what="rank"):
        """This group's rank of a global rank; ValueError naming the group's ranks when it is not a member."""
        found = self._group_rank.get(global_rank)
        if found is None:
            raise ValueError(f"{what} {global_rank} is not in group {self.name} (its global ranks are {self.ranks})")
        return found

    def __repr__(self):
        return f"<ProcessGroup {self.name} backend={self.backend} ranks={self.ranks} rank={self.rank()}>"

    # ---- running a collective ---------------------------------------------------------------------------------------

    def issue(self, op, async_op=False):
        """Run the :class:`Collective` ``op`` after everything issued before it on this group.

        Returns None for a sync call (once the outputs hold the result; errors raise here), and a
        :class:`~dtorch.distributed.work.Work` at once for ``async_op=True``, whose future's value is ``op.outputs``
        (errors raise at ``wait()``). NCCL collectives are queued on the current CUDA stream, already asynchronous
        to the host as in PyTorch, so their Work comes back completed.
        """
        if not self.alive:
            raise RuntimeError(f"process group {self.name} was destroyed")
        if not async_op:
            self.queue.run(op, op.name)
            return None
        if not state.threaded or (self.nccl is not None and getattr(op.verb, "__self__", None) is self.nccl):
            # no MPI_THREAD_MULTIPLE (no communication thread), or an NCCL launch: run at the call
            self.queue.run(op, op.name)
            return Work.completed(op.name, op.outputs)
        return self.queue.submit(op, Work(op.name))

    def _execute(self, op):
        """Run one collective (the caller holds the queue's token): number it, post it, check it, move the data."""
        seq = self.seq
        self.seq = seq + 1
        board = self.board
        if board is not None:  # read by the other ranks' watchdogs
            code = OP_CODES[op.name]
            board.post(seq, code, True)
        self.inflight = (op.name, seq, _monotonic(), self.timeout if op.timeout is None else op.timeout)
        try:
            if self.checker is not None:
                self.checker.verify(op.name, seq, op.spec)
            op.verb(*op.args)
            if op.finish is not None:
                op.finish()
            if self.nccl is not None and getattr(op.verb, "__self__", None) is self.nccl:
                # the watchdog ends the job when this event has not completed within the timeout (a hang on the
                # GPU, not on the host)
                self.gpu_pending.append((op.name, seq, _monotonic(), self.nccl.mark()))
        finally:
            self.inflight = None
            if board is not None:
                board.post(seq, code, False)
        return op.outputs

    def open_p2p(self, description, work, on_main_thread, peer=None):
        """Register a point-to-point transfer with the watchdog (``peer``: the other side's global rank, None for
        any); returns the key to ``close_p2p`` it."""
        key = object()
        self.p2p_open[key] = (description, time.monotonic(), work, on_main_thread, peer)
        return key

    def close_p2p(self, key):
        self.p2p_open.pop(key, None)

    # ---- timeouts and departures (read by the watchdog thread) -----------------------------------------------------

    def expired(self, now):
        """``(what, start, work, on_main_thread)`` of an operation past the timeout, or None (for the watchdog).

        Looks at the collective running now, at queued collectives that have not started while nothing runs (a
        queue that stopped), at open point-to-point transfers and at launched NCCL work."""
        current = self.inflight
        queue = self.queue
        if current is not None:
            if now - current[2] > current[3]:
                name, seq, started, limit = current
                work = queue.running_work
                on_main = queue.runner == threading.main_thread().ident
                return ((name, seq) if limit == self.timeout else (name, seq, limit), started, work, on_main)
        else:
            stalled = queue.stalled()
            if stalled is not None and now - stalled[0] > self.timeout:
                since, work = stalled
                return (f"{work.label} (queued, not started: the group's queue did not move)", since, work, False)
        for description, started, work, on_main, _ in list(self.p2p_open.values()):
            if now - started > self.timeout:
                return (description, started, work, on_main)
        if self.nccl is not None:
            return self._gpu_expired(now)
        return None

    # a transfer with a rank that left is given this long to complete (what it sent before leaving is delivered)
    P2P_GRACE = 1.0

    def departed(self, now=None):
        """``(message, work, on_main_thread, exit code)`` when a member that left the job keeps this rank waiting in
        a collective it never reached, or in a transfer with it; None otherwise (for the watchdog)."""
        current = self.inflight
        board = self.world_board
        if (current is None and not self.p2p_open) or board is None or self.board is None:
            return None
        gone = board.departures(timeout=0.5)
        if all(d is None for d in gone):
            return None
        if current is None:
            return self._p2p_departed(gone, time.monotonic() if now is None else now)
        name, seq = current[0], current[1]
        states = self.board.read(timeout=0.5)
        for group_rank, global_rank in enumerate(self.ranks):
            left = gone[global_rank] if global_rank < len(gone) else None
            if global_rank == self.global_rank or left is None:
                continue
            state = states[group_rank]
            if state is not None and state[0] >= seq:
                continue  # it reached this collective before leaving: the collective completes without it
            code, thread_died = left
            where = ("never entered a collective of this group" if state is None or state[0] < 0 else
                     f"last entered {OP_NAMES[state[1]]} #{state[0]}")
            why = ", after an uncaught exception in one of its threads" if thread_died else ""
            message = (f"dtorch.distributed: rank {global_rank} left the job (exit code {code}{why}) while rank "
                       f"{self.global_rank} waits for it in {name} (sequence number {seq}) on group {self.name}; "
                       f"rank {global_rank} {where}.")
            return message, self.queue.running_work, self.queue.runner == threading.main_thread().ident, code
        return None

    def _p2p_departed(self, gone, now):
        for description, started, work, on_main, peer in list(self.p2p_open.values()):
            left = gone[peer] if peer is not None and peer < len(gone) else None
            if left is None or now - started < self.P2P_GRACE:
                continue
            code, thread_died = left
            why = ", after an uncaught exception in one of its threads" if thread_died else ""
            message = (f"dtorch.distributed: rank {peer} left the job (exit code {code}{why}) while rank "
                       f"{self.global_rank} waits for it in {description} on group {self.name}.")
            return message, work, on_main, code
        return None

    def _gpu_expired(self, now):
        pending = self.gpu_pending
        while pending and pending[0][3].query():
            pending.popleft()
        if pending and now - pending[0][2] > self.timeout:
            name, seq, started, _ = pending[0]
            return ((name, seq), started, None, False)
        try:
            self.nccl.check_async_error()
        except Exception as error:  # noqa: BLE001 - any NCCL error ends the job
            return (f"an NCCL collective (NCCL reported: {error})", now - self.timeout, None, False)
        return None

    def timeout_message(self, what, waited):
        if isinstance(what, tuple):  # (name, seq), or (name, seq, timeout) for a call with its own timeout
            name, seq = what[:2]
            limit = (f"its timeout of {what[2]:g} s" if len(what) > 2 else
                     f"the group's timeout of {self.timeout:g} s")
            head = (f"dtorch.distributed: {name} (sequence number {seq}) on group {self.name} did not complete "
                    f"within {limit} (waited {waited:.1f} s) on rank {self.global_rank}.")
            return head + "\n" + self._laggards(seq)
        return (f"dtorch.distributed: {what} on group {self.name} did not complete within the group's timeout of "
                f"{self.timeout:g} s (waited {waited:.1f} s) on rank {self.global_rank}.")

    def _laggards(self, seq):
        if self.board is None:
            return "Could not tell which ranks have not reached it (no progress board on this group)."
        try:
            states = self.board.read(timeout=1.0)
        except Exception as error:  # noqa: BLE001 - the report must not fail
            return f"Could not read the other ranks' progress ({error})."
        missing, unknown, notes = [], [], []
        for group_rank, state in enumerate(states):
            global_rank = self.ranks[group_rank]
            if state is None:
                unknown.append(global_rank)
                continue
            their_seq, code, inside = state
            if their_seq < seq:
                missing.append(global_rank)
                where = (f"waiting in {OP_NAMES[code]} #{their_seq}" if inside else
                         f"last entered {OP_NAMES[code]} #{their_seq}, now outside any collective" if their_seq >= 0
                         else "has not entered any collective of this group")
                notes.append(f"  rank {global_rank}: {where}")
        text = f"Ranks that have not reached it: {missing}."
        if not missing and not unknown:
            text = ("Every rank has reached it, so a transfer is stuck (or the ranks disagree on its arguments and "
                    "the checks are off: DTORCH_DISTRIBUTED_DEBUG=OFF).")
        if notes:
            text += "\n" + "\n".join(notes)
        if unknown:
            text += f"\nRanks whose progress could not be read (busy outside MPI, so not there either): {unknown}."
        return text

    def abort(self, code=1):
        if self.nccl is not None:
            self.nccl.abort(code)  # ncclCommAbort frees the GPU from the stuck kernel, then MPI_Abort
        self.comm.abort(code)

    # ---- teardown ---------------------------------------------------------------------------------------------------

    def destroy(self):
        """Finish queued work and free the communicators (collective over the group).

        Checked like any collective of the group: a rank that destroys it while another still runs collectives on
        it gets a mismatch error on both, not a hang inside MPI's free."""
        if not self.alive:
            return
        if self.checker is not None:
            self.issue(Collective("destroy_process_group", _nothing, (), ()))
        self.queue.shutdown(wait=True)
        self.alive = False
        watchdog.forget(self)
        if self.board is not None:
            self.board.free()
        if self.p2p is not self.comm:
            self.p2p.free()
        if self.nccl is not None:
            self.nccl.free()
        self.comm.free()


class _NonMember:
    """What ``new_group`` returns on ranks outside the group (PyTorch's ``GroupMember.NON_GROUP_MEMBER``)."""

    def __repr__(self):
        return "GroupMember.NON_GROUP_MEMBER"


class GroupMember:
    """``GroupMember.WORLD`` is the default group once initialised; ``NON_GROUP_MEMBER`` marks non-members."""

    WORLD = None
    NON_GROUP_MEMBER = _NonMember()


class group:  # noqa: N801 - PyTorch's name
    """``dist.group.WORLD``: the default process group."""

    WORLD = None


class _State:
    """The process's distributed state: the default group and every group made since."""

    def __init__(self):
        self.default = None
        self.groups = []
        self.world_comm = None
        self.local_rank = 0
        self.local_world_size = 1
        self.group_count = 0
        self.exit_hook = False
        self.threaded = True  # MPI allows calls from several threads at once (MPI_THREAD_MULTIPLE)
        self.pid = None  # the process that initialised (a forked child is not a rank)


state = _State()


def _make_nccl(comm):
    from dtorch.collectives.nccl import NcclCommunicator

    return NcclCommunicator.from_mpi(comm, local_rank=state.local_rank)


def is_available():
    """True: dtorch always has its distributed package (MPI may still be missing; see ``init_process_group``)."""
    return True


def is_initialized():
    """Whether the default process group exists."""
    return state.default is not None


def is_mpi_available():
    try:
        import mpi4py  # noqa: F401

        return True
    except ImportError:
        return False


def is_nccl_available():
    try:
        from dtorch.collectives.nccl import load_nccl

        load_nccl()
        return True
    except Exception:  # noqa: BLE001
        return False


def is_gloo_available():
    return False


def init_process_group(backend=None, init_method=None, timeout=None, world_size=-1, rank=-1, store=None,
                       group_name="", pg_options=None, device_id=None):
    """Join the job's default process group (collective over every rank). PyTorch's signature.

    Args:
        backend: ``'mpi'`` (CPU tensors; ``'gloo'`` is taken as ``'mpi'``), ``'nccl'`` (CUDA tensors; CPU tensors of
            an NCCL group still go over MPI), or None: NCCL when CUDA is available, MPI otherwise.
        init_method: None or ``'env://'``. Ranks meet through MPI, so ``MASTER_ADDR``/``MASTER_PORT`` are not needed;
            other methods are accepted with a warning and ignored.
        timeout: how long a collective may wait (a ``timedelta`` or seconds; default 10 minutes) before the job is
            ended with an error naming the collective and the ranks that did not reach it.
        world_size, rank: checked against MPI's when given.

    >>> dist.init_process_group("mpi", timeout=datetime.timedelta(seconds=30))   # doctest: +SKIP
    """
    if state.default is not None:
        raise RuntimeError("trying to initialize the default process group twice!")
    if init_method not in (None, "", "env://"):
        warnings.warn(f"init_method={init_method!r} is ignored: dtorch's ranks meet through MPI (launch with mpiexec "
                      f"or dtorchrun)", stacklevel=2)
    if store is not None:
        warnings.warn("store= is ignored: dtorch's ranks meet through MPI", stacklevel=2)
    name = resolve_backend(backend)
    comm, local_rank, local_size, state.threaded = world_communicator(world_size, rank)
    state.pid = os.getpid()
    state.world_comm = comm
    state.local_rank, state.local_world_size = local_rank, local_size
    for key, value in (("RANK", comm.rank), ("WORLD_SIZE", comm.size), ("LOCAL_RANK", local_rank),
                       ("LOCAL_WORLD_SIZE", local_size)):
        os.environ[key] = str(value)
    nccl = _make_nccl(comm) if name == "nccl" else None
    pg = ProcessGroup(comm, range(comm.size), comm.rank, timeout, backend=name, name=group_name or "WORLD", nccl=nccl)
    state.default = pg
    state.groups = [pg]
    GroupMember.WORLD = group.WORLD = pg
    if comm.size > 1:
        _watchdog.install_excepthook(comm.rank, comm.abort)
        _watchdog.install_exit_status_hooks(comm.rank)
    if not state.exit_hook:
        # runs before mpi4py's own exit hook (registered earlier, so run later) finalises MPI
        atexit.register(_leave)
        state.exit_hook = True


def _leave():
    """At exit: finish queued async work, then post on the world board that this process leaves, and with which
    exit status, so that ranks still waiting for it raise at once instead of waiting for the timeout. A forked
    child (which inherits this hook and the board's shared memory) is not the rank and posts nothing."""
    if os.getpid() != state.pid:
        return
    for pg in list(state.groups):
        pg.queue.shutdown(wait=True)
    world = state.default
    if world is not None and world.board is not None:
        code, thread_died = _watchdog.exit_status()
        world.board.depart(code, thread_died)


def destroy_process_group(group=None):
    """Free a group, or with no argument every group and the default one (collective over the group's ranks)."""
    if group is None or group is state.default:
        for pg in reversed(state.groups):
            pg.destroy()
        state.groups = []
        state.default = None
        state.world_comm = None
        GroupMember.WORLD = globals()["group"].WORLD = None
        return
    if group is GroupMember.NON_GROUP_MEMBER:
        return
    group.destroy()
    if group in state.groups:
        state.groups.remove(group)


def default_group():
    """The default group; RuntimeError saying what to call when there is none."""
    pg = state.default
    if pg is None:
        raise RuntimeError("Default process group has not been initialized, please make sure to call "
                           "init_process_group.")
    return pg


def new_group(ranks=None, timeout=None, backend=None, pg_options=None, use_local_synchronization=False,
              group_desc=None, device_id=None, sort_ranks=True):
    """A process group over ``ranks`` (global ranks; all ranks when None), PyTorch's ``new_group``.

    Every rank of the world must call it, in the same order (unless ``use_local_synchronization``: then only the
    members do). It is a checked collective of the world group: a rank that calls it while another rank calls a
    different collective gets a :class:`~dtorch.distributed.checks.CollectiveMismatchError` on every rank. Ranks
    outside get ``GroupMember.NON_GROUP_MEMBER``. The group's ranks are sorted, as in PyTorch;
    with ``sort_ranks=False`` group rank ``i`` is ``ranks[i]``.

    >>> evens = dist.new_group([0, 2], timeout=60)   # doctest: +SKIP
    """
    world = default_group()
    size = world.size()
    listed = list(range(size)) if ranks is None else [int(r) for r in ranks]
    members = sorted(set(listed)) if sort_ranks else listed
    if len(set(listed)) != len(listed):
        raise ValueError(f"new_group: ranks {listed} list a rank twice")
    outside = [r for r in members if not 0 <= r < size]
    if outside:
        raise ValueError(f"new_group: ranks {outside} are outside the world of {size} ranks (0..{size - 1})")
    state.group_count += 1
    name = group_desc or f"group{state.group_count}{members}"
    if use_local_synchronization:
        # the tag must be the same on every member, and counters differ between ranks that made different groups.
        # Over the world's point-to-point communicator: the members alone take part, so this must not run on the
        # communicator where the world group's queued collectives run
        sub = world.p2p.create_group(members, tag=zlib.crc32(repr(members).encode()) & 0x7FFF)
    else:
        # a collective of the world group like any other: in its order, and checked, so that a rank that calls
        # new_group while another calls something else gets a mismatch error, not an MPI fatal error
        made = []
        world.issue(Collective("new_group", lambda: made.append(world.comm.split(members)), (), (tuple(members),)))
        sub = made[0]
    if sub is None:
        return GroupMember.NON_GROUP_MEMBER
    backend_name = world.backend if backend is None else resolve_backend(backend)
    nccl = _make_nccl(sub) if backend_name == "nccl" else None
    pg = ProcessGroup(sub, members, world.global_rank, world.timeout if timeout is None else _seconds(timeout),
                      backend=backend_name, name=name, nccl=nccl, world_board=world.board)
    state.groups.append(pg)
    return pg


def resolve(group):
    """The group a collective runs on: the default one for None; None for ``NON_GROUP_MEMBER``."""
    if group is None:
        return default_group()
    if group is GroupMember.NON_GROUP_MEMBER:
        return None
    if not isinstance(group, ProcessGroup):
        raise TypeError(f"expected a ProcessGroup (from new_group) or None, got {group!r}")
    return group


def get_rank(group=None):
    """This process's rank in ``group`` (the world by default); -1 when it is not a member."""
    pg = resolve(group)
    return -1 if pg is None else pg.rank()


def get_world_size(group=None):
    """The number of ranks in ``group``; -1 when this process is not a member."""
    pg = resolve(group)
    return -1 if pg is None else pg.size()


def get_backend(group=None):
    pg = resolve(group)
    if pg is None:
        raise ValueError("Invalid process group specified")
    return pg.backend


def get_global_rank(group, group_rank):
    pg = resolve(group)
    if not 0 <= group_rank < len(pg.ranks):
        raise ValueError(f"group rank {group_rank} is outside group {pg.name} of {len(pg.ranks)} ranks")
    return pg.ranks[group_rank]


def get_group_rank(group, global_rank):
    return resolve(group).group_rank(global_rank)


def get_process_group_ranks(group):
    return list(resolve(group).ranks)


def get_node_local_rank(fallback_rank=None):
    if state.default is None and fallback_rank is not None:
        return fallback_rank
    return state.local_rank
