"""The collectives of ``torch.distributed`` on dtorch Tensors: unwrap, check the arguments, and hand the group one
:class:`~dtorch.distributed.process_group.Collective` record (the transport's verb, its raw arrays, what the ranks
must agree on).

Every function takes PyTorch's arguments: ``group`` (None: the default group), roots and peers as *global* ranks
(``src``/``dst``, or ``group_src``/``group_dst`` for ranks of the group), ``async_op``. What they return, as in
PyTorch: a collective returns None once the result is in place, or with ``async_op=True`` a
:class:`~dtorch.distributed.work.Work` at once, whose ``get_future().value()`` is the list of output tensors; async
work of one group runs in the order it was issued, and a later sync call of the group waits for it first. ``recv``
returns the sender's global rank, ``isend``/``irecv`` a Work. On a rank outside ``group`` a collective does nothing
and returns None (``recv``: -1), with a warning, as in PyTorch.

Tensors are used in place: outputs must be contiguous (ValueError otherwise), list outputs must all have the
input's shape and dtype. Point-to-point transfers run beside the collectives (a separate communicator), so a
``recv`` never waits behind queued collectives.

>>> import dtorch, dtorch.distributed as dist
>>> dist.init_process_group()                            # doctest: +SKIP
>>> t = dtorch.ones(3) * (dist.get_rank() + 1)           # doctest: +SKIP
>>> dist.all_reduce(t); t                                # doctest: +SKIP
tensor([3., 3., 3.])
"""

import threading
import time
import warnings

import numpy as np

from dtorch.collectives.base import ReduceOp
from dtorch.distributed import process_group as _pg
from dtorch.distributed.process_group import Collective, resolve, state as _state
from dtorch.distributed.progress import RequestPoller
from dtorch.distributed.work import Work

_Tensor = None  # dtorch.tensor.Tensor, bound at the first call (the core may be absent: raw arrays still work)


def _array(tensor, what, output=False):
    """The raw array under a Tensor (raw NumPy/CuPy arrays are taken too); clear errors for anything else."""
    # exact class tests first: this runs on every collective, and isinstance cascades cost more
    cls = tensor.__class__
    if cls is _Tensor:
        array = tensor._array
    elif cls is np.ndarray:
        array = tensor
    else:
        array = _unwrap(tensor, what)
    if not array.flags.c_contiguous:
        raise ValueError(f"{what}: tensors must be contiguous; got {'an output' if output else 'a'} tensor of shape "
                         f"{tuple(array.shape)} with strides {tuple(array.strides)} (call .contiguous() first)")
    if array.dtype.hasobject:
        raise TypeError(f"{what}: dtype {array.dtype} is not supported: collectives move numbers, not Python "
                        f"objects (use all_gather_object and the other *_object collectives)")
    return array


def _unwrap(tensor, what):
    global _Tensor
    if _Tensor is None:
        try:
            from dtorch.tensor import Tensor

            _Tensor = Tensor
        except Exception:  # noqa: BLE001 - the core may be absent; raw arrays still work
            _Tensor = False
    if _Tensor and isinstance(tensor, _Tensor):
        return tensor._array
    if isinstance(tensor, np.ndarray) or hasattr(tensor, "__cuda_array_interface__"):
        return tensor
    raise TypeError(f"{what} expects a Tensor, got {type(tensor).__name__}")


def _arrays(tensors, what, like=None):
    """Arrays of a list of tensors, all of one shape and dtype (``like``'s when given)."""
    if not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{what} expects a list of Tensors, got {type(tensors).__name__}")
    arrays = [_array(t, what, output=True) for t in tensors]
    ref = like if like is not None else (arrays[0] if arrays else None)
    for i, a in enumerate(arrays):
        if a.shape != ref.shape or a.dtype != ref.dtype:
            raise ValueError(f"{what}: tensor {i} of the list has shape {tuple(a.shape)} and dtype {a.dtype}, but "
                             f"{'the input' if like is not None else 'tensor 0'} has shape {tuple(ref.shape)} and "
                             f"dtype {ref.dtype}; every tensor of the list must match")
    return arrays


def _xp(array):
    if type(array) is np.ndarray:
        return np
    from dtorch import _backend

    return _backend.xp_of(array)


def _not_member(what):
    warnings.warn(f"Running {what} on global rank that does not belong to the given group.", stacklevel=3)
    return None


def _root(pg, global_rank, group_rank, what, name):
    """The group rank of a root given as a global rank (``src``/``dst``) or a group rank."""
    if group_rank is not None:
        if global_rank not in (None, 0) and global_rank != pg.ranks[group_rank]:
            raise ValueError(f"{what}: pass either {name} or group_{name}, not both")
        if not 0 <= group_rank < pg.size():
            raise ValueError(f"{what}: group_{name}={group_rank} is outside group {pg.name} of {pg.size()} ranks")
        return group_rank
    return pg.group_rank(0 if global_rank is None else global_rank, what=f"{what}: {name}")


def _transport(pg, array):
    """The communicator for an array: NCCL for CUDA arrays of an NCCL group, MPI otherwise (CUDA staged)."""
    if pg.nccl is not None and type(array) is not np.ndarray:
        return pg.nccl
    return pg.comm


def _check_op(op, what):
    if not isinstance(op, ReduceOp):
        raise TypeError(f"{what}: op must be a dtorch.distributed.ReduceOp, got {op!r}")


# ---- collectives --------------------------------------------------------------------------------------------------


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce ``tensor`` across the group, in place on every rank.

    Returns:
        None once the result is in place; with ``async_op=True`` a Work at once, whose future's value is the list
        of output tensors. None (with a warning) on a rank outside ``group``.

    >>> t = dtorch.tensor([float(dist.get_rank())]); dist.all_reduce(t, op=dist.ReduceOp.MAX)   # doctest: +SKIP
    """
    # the hot path of DDP: no more calls than needed
    pg = _state.default if group is None else resolve(group)
    if pg is None:
        if group is None:
            _pg.default_group()  # raises: not initialised
        return _not_member("all_reduce")
    array = _array(tensor, "all_reduce")
    if op.__class__ is not ReduceOp:
        _check_op(op, "all_reduce")
    comm = pg.comm if pg.nccl is None else _transport(pg, array)
    if async_op:
        comm.check_reduction(op, array.dtype)  # here, not at wait(); a sync call's verb checks it on every rank
        return pg.issue(Collective("all_reduce", comm.allreduce, (None, array, op), (array.dtype, array.shape, op),
                                   [tensor]), True)
    return pg.issue(Collective("all_reduce", comm.allreduce, (None, array, op), (array.dtype, array.shape, op)))


def broadcast(tensor, src=None, group=None, async_op=False, group_src=None):
    """Copy ``tensor`` of rank ``src`` (global) into ``tensor`` on every rank of the group.

    Returns:
        None once the result is in place; with ``async_op=True`` a Work at once, whose future's value is the list
        of output tensors. None (with a warning) on a rank outside ``group``.
    """
    pg = resolve(group)
    if pg is None:
        return _not_member("broadcast")
    array = _array(tensor, "broadcast")
    root = _root(pg, src, group_src, "broadcast", "src")
    comm = _transport(pg, array)
    return pg.issue(Collective("broadcast", comm.bcast, (array, root), (array.dtype, array.shape, pg.ranks[root]),
                               [tensor]), async_op)


def reduce(tensor, dst=None, op=ReduceOp.SUM, group=None, async_op=False, group_dst=None):
    """Reduce ``tensor`` across the group into ``tensor`` of rank ``dst`` (other ranks' tensors are unchanged).

    Returns:
        None once the result is in place; with ``async_op=True`` a Work at once, whose future's value is the list
        of output tensors. None (with a warning) on a rank outside ``group``.
    """
    pg = resolve(group)
    if pg is None:
        return _not_member("reduce")
    array = _array(tensor, "reduce")
    _check_op(op, "reduce")
    root = _root(pg, dst, group_dst, "reduce", "dst")
    comm = _transport(pg, array)
    comm.check_reduction(op, array.dtype)
    return pg.issue(Collective("reduce", comm.reduce, (None, array, op, root),
                               (array.dtype, array.shape, op, pg.ranks[root]), [tensor]), async_op)


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """Fill ``tensor_list`` (one tensor per rank, each like ``tensor``) with every rank's ``tensor``.

    Returns:
        None once the result is in place; with ``async_op=True`` a Work at once, whose future's value is the list
        of output tensors. None (with a warning) on a rank outside ``group``.
    """
    pg = resolve(group)
    if pg is None:
        return _not_member("all_gather")
    array = _array(tensor, "all_gather")
    outputs = _arrays(tensor_list, "all_gather", like=array)
    if len(outputs) != pg.size():
        raise ValueError(f"all_gather: tensor_list has {len(outputs)} tensors but group {pg.name} has "
                         f"{pg.size()} ranks")
    xp = _xp(array)
    packed = xp.empty((pg.size(),) + array.shape, array.dtype)

    def unpack():
        for r, out in enumerate(outputs):
            out[...] = packed[r]

    comm = _transport(pg, array)
    return pg.issue(Collective("all_gather", comm.allgather, (array, packed), (array.dtype, array.shape),
                               outputs=list(tensor_list), finish=unpack), async_op)


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op=False):
    """Gather every rank's ``input_tensor`` into ``output_tensor`` (``world_size`` times as large: concatenated
    along dim 0, or stacked).

    Returns:
        None once the result is in place; with ``async_op=True`` a Work at once, whose future's value is the list
        of output tensors. None (with a warning) on a rank outside ``group``.
    """
    pg = resolve(group)
    if pg is None:
        return _not_member("all_gather_into_tensor")
    array = _array(input_tensor, "all_gather_into_tensor")
    out = _array(output_tensor, "all_gather_into_tensor", output=True)
    if out.size != array.size * pg.size() or out.dtype != array.dtype:
        raise ValueError(f"all_gather_into_tensor: the output must hold {pg.size()} x the input "
                         f"({pg.size()} x {array.size} {array.dtype} elements), got {out.size} {out.dtype} elements "
                         f"(shape {tuple(out.shape)})")
    comm = _transport(pg, array)
    return pg.issue(Collective("all_gather_into_tensor", comm.allgather, (array, out), (array.dtype, array.shape),
                               [output_tensor]), async_op)


all_gather_single = all_gather_into_tensor
_all_gather_base = all_gather_into_tensor


def gather(tensor, gather_list=None, dst=None, group=None, async_op=False, group_dst=None):
    """Collect every rank's ``tensor`` into ``gather_list`` on rank ``dst`` (None elsewhere).

    Returns:
        None once the result is in place; with ``async_op=True`` a Work at once, whose future's value is the list
        of output tensors. None (with a warning) on a rank outside ``group``.
    """
    pg = resolve(group)
    if pg is None:
        return _not_member("gather")
    array = _array(tensor, "gather")
    root = _root(pg, dst, group_dst, "gather", "dst")
    packed, outputs = None, []
    if pg.rank() == root:
        if gather_list is None:
            raise ValueError("gather: gather_list is required on the destination rank")
        outputs = _arrays(gather_list, "gather", like=array)
        if len(outputs) != pg.size():
            raise ValueError(f"gather: gather_list has {len(outputs)} tensors but the group has {pg.size()} ranks")
        packed = _xp(array).empty((pg.size(),) + array.shape, array.dtype)
    elif gather_list:
        raise ValueError("gather: gather_list must be None or empty on non-destination ranks")

    def unpack():
        for r, out in enumerate(outputs):
            out[...] = packed[r]

    comm = _transport(pg, array)
    return pg.issue(Collective("gather", comm.gather, (array, packed, root),
                               (array.dtype, array.shape, pg.ranks[root]), outputs=list(gather_list or []),
                               finish=unpack), async_op)


def scatter(tensor, scatter_list=None, src=None, group=None, async_op=False, group_src=None):
    """Give rank ``i`` the tensor ``scatter_list[i]`` of rank ``src``, written into its ``tensor``.

    Returns:
        None once the result is in place; with ``async_op=True`` a Work at once, whose future's value is the list
        of output tensors. None (with a warning) on a rank outside ``group``.
    """
    pg = resolve(group)
    if pg is None:
        return _not_member("scatter")
    array = _array(tensor, "scatter", output=True)
    root = _root(pg, src, group_src, "scatter", "src")
    packed = None
    if pg.rank() == root:
        if scatter_list is None:
            raise ValueError("scatter: scatter_list is required on the source rank")
        inputs = _arrays(scatter_list, "scatter", like=array)
        if len(inputs) != pg.size():
            raise ValueError(f"scatter: scatter_list has {len(inputs)} tensors but the group has {pg.size()} ranks")
        packed = _xp(array).stack(inputs)
    elif scatter_list:
        raise ValueError("scatter: scatter_list must be None or empty on non-source ranks")
    comm = _transport(pg, array)
    return pg.issue(Collective("scatter", comm.scatter, (packed, array, root),
                               (array.dtype, array.shape, pg.ranks[root]), [tensor]), async_op)


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce ``input_list`` (one tensor per rank) across the group; rank ``i`` gets the reduced ``input_list[i]``.

    Returns:
        None once the result is in place; with ``async_op=True`` a Work at once, whose future's value is the list
        of output tensors. None (with a warning) on a rank outside ``group``.
    """
    pg = resolve(group)
    if pg is None:
        return _not_member("reduce_scatter")
    out = _array(output, "reduce_scatter", output=True)
    _check_op(op, "reduce_scatter")
    inputs = _arrays(input_list, "reduce_scatter", like=out)
    if len(inputs) != pg.size():
        raise ValueError(f"reduce_scatter: input_list has {len(inputs)} tensors but the group has {pg.size()} ranks")
    comm = _transport(pg, out)
    comm.check_reduction(op, out.dtype)
    packed = _xp(out).stack(inputs)
    return pg.issue(Collective("reduce_scatter", comm.reduce_scatter, (packed, out, op), (out.dtype, out.shape, op),
                               [output]), async_op)


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op=False):  # noqa: A002 - PyTorch's name
    """Reduce ``input`` (``world_size`` blocks of ``output``'s size) across the group; rank ``i`` gets block ``i``.

    Returns:
        None once the result is in place; with ``async_op=True`` a Work at once, whose future's value is the list
        of output tensors. None (with a warning) on a rank outside ``group``.
    """
    pg = resolve(group)
    if pg is None:
        return _not_member("reduce_scatter_tensor")
    out = _array(output, "reduce_scatter_tensor", output=True)
    array = _array(input, "reduce_scatter_tensor")
    _check_op(op, "reduce_scatter_tensor")
    if array.size != out.size * pg.size() or out.dtype != array.dtype:
        raise ValueError(f"reduce_scatter_tensor: the input must hold {pg.size()} x the output "
                         f"({pg.size()} x {out.size} {out.dtype} elements), got {array.size} {array.dtype} elements")
    comm = _transport(pg, out)
    comm.check_reduction(op, out.dtype)
    return pg.issue(Collective("reduce_scatter_tensor", comm.reduce_scatter, (array, out, op),
                               (out.dtype, out.shape, op), [output]), async_op)


reduce_scatter_single = reduce_scatter_tensor
_reduce_scatter_base = reduce_scatter_tensor


def all_to_all(output_tensor_list, input_tensor_list, group=None, async_op=False):
    """Send ``input_tensor_list[j]`` to rank ``j``; receive rank ``j``'s tensor for this rank into
    ``output_tensor_list[j]``. Sizes may differ between pairs.

    Returns:
        None once the result is in place; with ``async_op=True`` a Work at once, whose future's value is the list
        of output tensors. None (with a warning) on a rank outside ``group``.
    """
    pg = resolve(group)
    if pg is None:
        return _not_member("all_to_all")
    n = pg.size()
    inputs = [_array(t, "all_to_all") for t in input_tensor_list]
    outputs = [_array(t, "all_to_all", output=True) for t in output_tensor_list]
    if len(inputs) != n or len(outputs) != n:
        raise ValueError(f"all_to_all: need {n} input and {n} output tensors (one per rank), got {len(inputs)} "
                         f"and {len(outputs)}")
    dtype = inputs[0].dtype
    bad = [i for i, a in enumerate(inputs + outputs) if a.dtype != dtype]
    if bad:
        raise ValueError(f"all_to_all: every tensor must have dtype {dtype}; tensors {bad} of inputs+outputs do not")
    xp = _xp(inputs[0])
    send = xp.concatenate([a.reshape(-1) for a in inputs]) if n else xp.empty(0, dtype)
    recv = xp.empty(sum(a.size for a in outputs), dtype)
    sendcounts = [a.size for a in inputs]
    recvcounts = [a.size for a in outputs]

    def unpack():
        offset = 0
        for out in outputs:
            out.reshape(-1)[...] = recv[offset:offset + out.size]
            offset += out.size

    comm = _transport(pg, send)
    return pg.issue(Collective("all_to_all", comm.alltoallv, (send, sendcounts, recv, recvcounts), (dtype, n),
                               outputs=list(output_tensor_list), finish=unpack), async_op)


def all_to_all_single(output, input, output_split_sizes=None, input_split_sizes=None, group=None,  # noqa: A002
                      async_op=False):
    """Split ``input`` along dim 0 into one block per rank (``input_split_sizes`` rows each, equal by default), send
    block ``j`` to rank ``j``, and concatenate the received blocks into ``output``.

    Returns:
        None once the result is in place; with ``async_op=True`` a Work at once, whose future's value is the list
        of output tensors. None (with a warning) on a rank outside ``group``.
    """
    pg = resolve(group)
    if pg is None:
        return _not_member("all_to_all_single")
    n = pg.size()
    array = _array(input, "all_to_all_single")
    out = _array(output, "all_to_all_single", output=True)
    if out.dtype != array.dtype:
        raise ValueError(f"all_to_all_single: output dtype {out.dtype} differs from input dtype {array.dtype}")

    def counts(split, a, which):
        rows = a.shape[0] if a.ndim else 1
        row = a.size // rows if rows else 0
        if split is None or len(split) == 0:
            if rows % n:
                raise ValueError(f"all_to_all_single: the {which} has {rows} rows, not divisible by the {n} ranks; "
                                 f"pass {which}_split_sizes")
            return [rows // n * row] * n
        split = [int(s) for s in split]
        if len(split) != n or sum(split) != rows:
            raise ValueError(f"all_to_all_single: {which}_split_sizes {split} must have {n} entries summing to "
                             f"the {which}'s {rows} rows")
        return [s * row for s in split]

    sendcounts = counts(input_split_sizes, array, "input")
    recvcounts = counts(output_split_sizes, out, "output")
    comm = _transport(pg, array)
    if input_split_sizes is None and output_split_sizes is None and comm is pg.comm:
        return pg.issue(Collective("all_to_all_single", comm.alltoall, (array, out), (array.dtype,), [output]),
                        async_op)
    return pg.issue(Collective("all_to_all_single", comm.alltoallv, (array, sendcounts, out, recvcounts),
                               (array.dtype,), [output]), async_op)


def barrier(group=None, async_op=False, device_ids=None, timeout=None):
    """Wait until every rank of the group reaches it.

    ``timeout`` (a ``timedelta`` or seconds) replaces the group's timeout for this barrier: past it the rank
    reports the ranks that have not arrived and the job is ended, as for any collective.

    Returns:
        None once every rank arrived; with ``async_op=True`` a Work at once (its future's value is ``[]``). None
        (with a warning) on a rank outside ``group``.

    >>> dist.barrier(timeout=datetime.timedelta(seconds=30))     # doctest: +SKIP
    """
    pg = resolve(group)
    if pg is None:
        return _not_member("barrier")
    limit = None
    if timeout is not None:
        limit = _pg._seconds(timeout)
        _pg.watchdog.tighten(limit)
    return pg.issue(Collective("barrier", pg.comm.barrier, (), (), outputs=[], timeout=limit), async_op)


# ---- point to point ------------------------------------------------------------------------------------------------

_poller = None


def _request_poller():
    global _poller
    if _poller is None:
        _poller = RequestPoller()
    return _poller


def _peer(pg, global_rank, group_rank, what, name):
    if global_rank is None and group_rank is None:
        return None
    peer = _root(pg, global_rank, group_rank, what, name)
    if peer == pg.rank():
        raise ValueError(f"{what}: {name} {pg.ranks[peer]} is this rank itself")
    return peer


def _p2p_blocking(pg, what, peer, fn, *args):
    key = pg.open_p2p(what, None, threading.current_thread() is threading.main_thread(),
                      None if peer is None else pg.ranks[peer])
    try:
        return fn(*args)
    finally:
        pg.close_p2p(key)


def send(tensor, dst=None, group=None, tag=0, group_dst=None):
    """Send ``tensor`` to rank ``dst`` (global); returns when the buffer may be reused."""
    pg = resolve(group)
    if pg is None:
        return _not_member("send")
    array = _array(tensor, "send")
    peer = _peer(pg, dst, group_dst, "send", "dst")
    if peer is None:
        raise ValueError("send: dst is required")
    _p2p_blocking(pg, f"send to rank {pg.ranks[peer]} (tag {tag})", peer, pg.p2p.send, array, peer, tag)


def recv(tensor, src=None, group=None, tag=0, group_src=None):
    """Receive into ``tensor`` from rank ``src`` (any rank when None); returns the sender's global rank."""
    pg = resolve(group)
    if pg is None:
        _not_member("recv")
        return -1
    array = _array(tensor, "recv", output=True)
    peer = _peer(pg, src, group_src, "recv", "src")
    who = "any rank" if peer is None else f"rank {pg.ranks[peer]}"
    source = _p2p_blocking(pg, f"recv from {who} (tag {tag})", peer, pg.p2p.recv, array, peer, tag)
    return pg.ranks[source]


class _RequestWork(Work):
    """A transfer's Work where no progress thread may call MPI: completed by testing or waiting on the request."""

    __slots__ = ("request", "outputs")

    def __init__(self, label, request, outputs):
        super().__init__(label)
        self.request, self.outputs = request, outputs

    def is_completed(self):
        if not self.future.done() and self.request.test():
            self.future.set_result(self.outputs)
        return self.future.done()

    def wait(self, timeout=None):
        if not self.future.done():
            if timeout is None:
                self.request.wait()
            else:  # poll: a blocking MPI wait cannot be given a deadline
                seconds = timeout.total_seconds() if hasattr(timeout, "total_seconds") else float(timeout)
                deadline = time.monotonic() + seconds
                while not self.request.test():
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{self.label}: wait(timeout={seconds:g}) expired before the transfer "
                                           f"completed")
                    time.sleep(0.0002)
            self.future.set_result(self.outputs)
        return True


def _p2p_async(pg, what, peer, request, tensor):
    if not _pg.state.threaded:
        return _RequestWork(what, request, [tensor])
    work = Work(what)
    key = pg.open_p2p(what, work, False, None if peer is None else pg.ranks[peer])

    def done(req):
        pg.close_p2p(key)
        return [tensor]

    return _request_poller().watch(request, work, result=done)


def isend(tensor, dst=None, group=None, tag=0, group_dst=None):
    """Start sending ``tensor`` to rank ``dst``; returns a Work (do not change ``tensor`` until it completes)."""
    pg = resolve(group)
    if pg is None:
        return _not_member("isend")
    array = _array(tensor, "isend")
    peer = _peer(pg, dst, group_dst, "isend", "dst")
    if peer is None:
        raise ValueError("isend: dst is required")
    return _p2p_async(pg, f"isend to rank {pg.ranks[peer]} (tag {tag})", peer, pg.p2p.isend(array, peer, tag),
                      tensor)


def irecv(tensor, src=None, group=None, tag=0, group_src=None):
    """Start receiving into ``tensor`` from rank ``src`` (any when None); returns a Work."""
    pg = resolve(group)
    if pg is None:
        return _not_member("irecv")
    array = _array(tensor, "irecv", output=True)
    peer = _peer(pg, src, group_src, "irecv", "src")
    who = "any rank" if peer is None else f"rank {pg.ranks[peer]}"
    return _p2p_async(pg, f"irecv from {who} (tag {tag})", peer, pg.p2p.irecv(array, peer, tag), tensor)


class P2POp:
    """One transfer of :func:`batch_isend_irecv`: ``P2POp(dist.isend, tensor, peer)``."""

    def __init__(self, op, tensor, peer=None, group=None, tag=0, group_peer=None):
        if op not in (isend, irecv, send, recv):
            raise ValueError(f"P2POp: op must be dist.isend or dist.irecv, got {op!r}")
        self.op = isend if op in (isend, send) else irecv
        self.tensor, self.peer, self.group, self.tag, self.group_peer = tensor, peer, group, tag, group_peer


def batch_isend_irecv(p2p_op_list):
    """Start every transfer of the list; returns their Works."""
    works = []
    for p in p2p_op_list:
        if p.op is isend:
            works.append(isend(p.tensor, p.peer, p.group, p.tag, group_dst=p.group_peer))
        else:
            works.append(irecv(p.tensor, p.peer, p.group, p.tag, group_src=p.group_peer))
    return works


# ---- monitored barrier -------------------------------------------------------------------------------------------

_MONITOR_TAG = 0x7D70


def monitored_barrier(group=None, timeout=None, wait_all_ranks=False):
    """A barrier that names the ranks that did not arrive within ``timeout`` (PyTorch's ``monitored_barrier``).

    Rank 0 of the group waits for a message from every other rank; it raises RuntimeError naming the first missing
    rank (every missing rank with ``wait_all_ranks=True``). The others then wait for rank 0's release and raise
    if it does not come in time. Runs on the point-to-point communicator, so it works even when a collective of
    the group is stuck.

    >>> dist.monitored_barrier(timeout=datetime.timedelta(seconds=5), wait_all_ranks=True)   # doctest: +SKIP
    """
    pg = resolve(group)
    if pg is None:
        return _not_member("monitored_barrier")
    seconds = pg.timeout if timeout is None else _pg._seconds(timeout)
    if pg.size() == 1:
        return None
    comm = pg.p2p
    token = np.zeros(1, np.int64)

    def wait_all(requests, names):
        deadline = time.monotonic() + seconds
        pause = 0.0
        while time.monotonic() < deadline:
            if all(r.test() for r in requests):
                return []
            pause = min(0.005, pause * 2 or 0.0001)
            time.sleep(pause)
        late = [name for r, name in zip(requests, names) if not r.test()]
        for r in requests:
            r.cancel()
        return late

    pg.p2p_seq += 1
    tag = _MONITOR_TAG + pg.p2p_seq % 1024
    ms = int(seconds * 1000)
    if pg.rank() == 0:
        others = list(range(1, pg.size()))
        requests = [comm.irecv(np.zeros(1, np.int64), r, tag) for r in others]
        late = wait_all(requests, [pg.ranks[r] for r in others])
        if late:
            if wait_all_ranks:
                raise RuntimeError(f"Ranks {late} failed to pass monitoredBarrier in {ms} ms")
            raise RuntimeError(f"Rank {late[0]} failed to pass monitoredBarrier in {ms} ms")
        for r in others:
            comm.send(token, r, tag)
        return None
    comm.send(token, 0, tag)
    late = wait_all([comm.irecv(np.zeros(1, np.int64), 0, tag)], [pg.ranks[0]])
    if late:
        raise RuntimeError(f"monitored_barrier: rank {pg.ranks[0]} did not release rank {pg.global_rank} within "
                           f"{ms} ms (it may have found other ranks missing)")
    return None
