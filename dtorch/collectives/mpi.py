"""The MPI transport: mpi4py on array buffers, with no pickling and no copies beyond those that are needed.

NumPy arrays go to MPI through the buffer protocol as they are. CuPy arrays go as they are when the MPI library is
CUDA-aware (:func:`detect_cuda_aware`), and are staged through host memory otherwise (the MPI wheels on PyPI are not
CUDA-aware). Reductions use MPI's datatypes (float16 included: MPICH and Open MPI reduce it natively); moves of data
(broadcast, gathers, all-to-all, send/recv) go as bytes, so any dtype moves.

The verbs block and return None (``recv`` returns the sender's rank); ``isend``/``irecv`` start a transfer and
return a :class:`P2PRequest`; :class:`SlotWindow` is the one-sided memory the process group posts its progress in.
``mpi4py.MPI`` is imported, and MPI initialised, only when a communicator is made: ``import dtorch`` never starts MPI.

>>> import numpy as np
>>> from dtorch.collectives.mpi import MpiCommunicator
>>> from dtorch.collectives.base import ReduceOp
>>> comm = MpiCommunicator.world()            # doctest: +SKIP
>>> x = np.full(3, comm.rank, np.float32)     # doctest: +SKIP
>>> comm.allreduce(None, x, ReduceOp.SUM)     # doctest: +SKIP
"""

import ctypes
import os
import threading

import numpy as np

from dtorch.collectives.base import Communicator, ReduceOp, check_sizes

_MPI = None


def mpi():
    """The ``mpi4py.MPI`` module, importing it (and so initialising MPI, with thread level MULTIPLE) on first use."""
    global _MPI
    if _MPI is None:
        from mpi4py import MPI

        _MPI = MPI
    return _MPI


# ---- dtypes and reduce ops -----------------------------------------------------------------------------------------

_DATATYPES = {}
_REDUCTIONS = {}


def mpi_datatype(dtype):
    """The MPI datatype of a NumPy dtype; TypeError naming the dtype when MPI has none."""
    found = _DATATYPES.get(dtype)
    if found is None:
        # the predefined types: a datatype built from the dtype (mpi4py.util.dtlib) is a derived one, and MPI's
        # reduce ops refuse derived datatypes
        found = mpi()._typedict.get(dtype.char) if dtype.isnative and dtype.kind in "biufc" else None
        if found is None:
            raise TypeError(f"dtype {dtype} is not supported by the mpi backend for reductions")
        _DATATYPES[dtype] = found
    return found


# (op, dtype kind) -> name of the MPI op; a missing pair is unsupported. 'b' is bool: its sum is a logical or.
_OP_NAMES = {
    (ReduceOp.SUM, "f"): "SUM", (ReduceOp.SUM, "i"): "SUM", (ReduceOp.SUM, "u"): "SUM", (ReduceOp.SUM, "c"): "SUM",
    (ReduceOp.SUM, "b"): "LOR",
    (ReduceOp.AVG, "f"): "SUM", (ReduceOp.AVG, "c"): "SUM",
    (ReduceOp.PRODUCT, "f"): "PROD", (ReduceOp.PRODUCT, "i"): "PROD", (ReduceOp.PRODUCT, "u"): "PROD",
    (ReduceOp.PRODUCT, "c"): "PROD", (ReduceOp.PRODUCT, "b"): "LAND",
    (ReduceOp.MIN, "f"): "MIN", (ReduceOp.MIN, "i"): "MIN", (ReduceOp.MIN, "u"): "MIN", (ReduceOp.MIN, "b"): "LAND",
    (ReduceOp.MAX, "f"): "MAX", (ReduceOp.MAX, "i"): "MAX", (ReduceOp.MAX, "u"): "MAX", (ReduceOp.MAX, "b"): "LOR",
    (ReduceOp.BAND, "i"): "BAND", (ReduceOp.BAND, "u"): "BAND", (ReduceOp.BAND, "b"): "LAND",
    (ReduceOp.BOR, "i"): "BOR", (ReduceOp.BOR, "u"): "BOR", (ReduceOp.BOR, "b"): "LOR",
    (ReduceOp.BXOR, "i"): "BXOR", (ReduceOp.BXOR, "u"): "BXOR", (ReduceOp.BXOR, "b"): "LXOR",
}


def reduction(op, dtype):
    """``(typed_buffer_datatype, MPI op, is_average)`` for reducing ``dtype`` with ``op``.

    >>> reduction(ReduceOp.AVG, np.dtype("int32"))
    Traceback (most recent call last):
        ...
    TypeError: ReduceOp.AVG is not supported for int32 on the mpi backend (floating dtypes only)
    """
    key = (op, dtype)
    found = _REDUCTIONS.get(key)
    if found is None:
        name = _OP_NAMES.get((op, dtype.kind))
        if name is None:
            if dtype.kind not in "biufc":
                raise TypeError(f"dtype {dtype} is not supported by the mpi backend for reductions")
            if not isinstance(op, ReduceOp):
                raise TypeError(f"expected a dtorch.distributed.ReduceOp, got {op!r}")
            need = "floating dtypes only" if op is ReduceOp.AVG else (
                "integer or bool dtypes only" if op in (ReduceOp.BAND, ReduceOp.BOR, ReduceOp.BXOR) else "real dtypes")
            raise TypeError(f"ReduceOp.{op.name} is not supported for {dtype} on the mpi backend ({need})")
        found = (mpi_datatype(dtype), getattr(mpi(), name), op is ReduceOp.AVG)
        _REDUCTIONS[key] = found
    return found


# ---- CUDA-aware MPI ------------------------------------------------------------------------------------------------

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def detect_cuda_aware(environ=None, query=None):
    """Whether the MPI library takes CUDA device buffers, so CuPy arrays need no staging through host memory.

    In order: ``DTORCH_MPI_CUDA_AWARE=0|1`` decides when set; then the switches that turn GPU support on in the
    common CUDA-aware builds (Cray MPICH ``MPICH_GPU_SUPPORT_ENABLED``, MVAPICH2 ``MV2_USE_CUDA``, MPICH
    ``MPIR_CVAR_ENABLE_GPU``: each only counts when the library also says yes); then the library's own answer,
    ``MPIX_Query_cuda_support()`` (Open MPI, MPICH), looked up by ``query`` (a callable returning 0/1, or None when
    the symbol is missing). The PyPI ``mpich`` wheel answers 0.

    >>> detect_cuda_aware({"DTORCH_MPI_CUDA_AWARE": "1"})
    True
    >>> detect_cuda_aware({}, query=lambda: 0)
    False
    """
    environ = os.environ if environ is None else environ
    forced = environ.get("DTORCH_MPI_CUDA_AWARE", "").strip().lower()
    if forced in _TRUE:
        return True
    if forced in _FALSE:
        return False
    for switch in ("MPICH_GPU_SUPPORT_ENABLED", "MV2_USE_CUDA", "MPIR_CVAR_ENABLE_GPU"):
        if environ.get(switch, "").strip().lower() in _FALSE:
            return False  # the library can, but was told not to
    answer = (query or _query_cuda_support)()
    return bool(answer)


def _query_cuda_support():
    """``MPIX_Query_cuda_support()`` of the MPI library mpi4py is linked with; 0 when it has none."""
    try:
        library = ctypes.CDLL(mpi().__file__)
        function = library.MPIX_Query_cuda_support
    except (OSError, AttributeError):
        return 0
    function.restype = ctypes.c_int
    return function()


# ---- buffers -------------------------------------------------------------------------------------------------------


def _is_host(array):
    return isinstance(array, np.ndarray)


class _Stage:
    """Host copies of device arrays for one verb, written back when it ends (no-ops for host arrays)."""

    __slots__ = ("writebacks",)

    def __init__(self):
        self.writebacks = []

    def read(self, array):
        if array is None or _is_host(array):
            return array
        return array.get()

    def write(self, array, keep_input):
        if array is None or _is_host(array):
            return array
        host = array.get() if keep_input else np.empty(array.shape, array.dtype)
        self.writebacks.append((array, host))
        return host

    def finish(self):
        for device_array, host in self.writebacks:
            device_array.set(host)


class _NoStage(_Stage):
    """CUDA-aware MPI takes device buffers directly; only the stream must be synchronised first."""

    def read(self, array):
        if array is not None and not _is_host(array):
            _synchronize_stream()
        return array

    def write(self, array, keep_input):
        return self.read(array)

    def finish(self):
        pass


def _synchronize_stream():
    from dtorch import _backend

    _backend.cupy().cuda.get_current_stream().synchronize()


# ---- the communicator ----------------------------------------------------------------------------------------------


class MpiCommunicator(Communicator):
    """A :class:`~dtorch.collectives.base.Communicator` over one mpi4py ``Comm``.

    >>> comm = MpiCommunicator.world()            # doctest: +SKIP
    >>> sub = comm.split([0, 1])                  # ranks 0 and 1 of comm; None elsewhere   # doctest: +SKIP
    """

    backend = "mpi"

    def __init__(self, comm, cuda_aware=None):
        mpi()  # the verbs read the module global
        super().__init__(comm.Get_rank(), comm.Get_size())
        self.comm = comm
        self._cuda_aware = cuda_aware

    @classmethod
    def world(cls):
        """A private duplicate of ``MPI.COMM_WORLD`` (so user code on COMM_WORLD never matches our messages)."""
        return cls(mpi().COMM_WORLD.Dup())

    @property
    def cuda_aware(self):
        if self._cuda_aware is None:
            self._cuda_aware = detect_cuda_aware()
        return self._cuda_aware

    def _stage(self, *arrays):
        for array in arrays:
            if array is not None and not _is_host(array):
                return _NoStage() if self.cuda_aware else _Stage()
        return None

    # ---- reductions -------------------------------------------------------------------------------------------------

    def check_reduction(self, op, dtype):
        reduction(op, dtype)

    def allreduce(self, sendbuf, recvbuf, op):
        # the hot path of DDP: a cached lookup, and exact type tests instead of the general staging check
        found = _REDUCTIONS.get((op, recvbuf.dtype))
        datatype, mpi_op, average = found if found is not None else reduction(op, recvbuf.dtype)
        MPI = _MPI
        if recvbuf.__class__ is np.ndarray and (sendbuf is None or sendbuf.__class__ is np.ndarray):
            send = MPI.IN_PLACE if sendbuf is None else (sendbuf, datatype)
            self.comm.Allreduce(send, (recvbuf, datatype), mpi_op)
            if average:
                recvbuf /= self.size
            return
        stage = self._stage(sendbuf, recvbuf)
        if stage is None:  # NumPy subclasses
            self.comm.Allreduce(MPI.IN_PLACE if sendbuf is None else [sendbuf, datatype], [recvbuf, datatype],
                                mpi_op)
            if average:
                recvbuf /= self.size
            return
        send, recv = stage.read(sendbuf), stage.write(recvbuf, keep_input=sendbuf is None)
        self.comm.Allreduce(MPI.IN_PLACE if send is None else [send, datatype], [recv, datatype], mpi_op)
        if average:
            recv /= self.size
        stage.finish()

    def reduce(self, sendbuf, recvbuf, op, root):
        datatype, mpi_op, average = reduction(op, recvbuf.dtype)
        MPI = _MPI
        stage = self._stage(sendbuf, recvbuf) or _Stage()
        send, recv = stage.read(sendbuf), stage.write(recvbuf, keep_input=sendbuf is None or self.rank != root)
        if send is None:
            send = MPI.IN_PLACE if self.rank == root else recv  # IN_PLACE is only allowed at the root
        else:
            send = [send, datatype]
        self.comm.Reduce(send, [recv, datatype] if self.rank == root else None, mpi_op, root)
        if self.rank == root:
            if average:
                recv /= self.size
            stage.finish()

    def reduce_scatter(self, sendbuf, recvbuf, op):
        datatype, mpi_op, average = reduction(op, recvbuf.dtype)
        stage = self._stage(sendbuf, recvbuf) or _Stage()
        send, recv = stage.read(sendbuf), stage.write(recvbuf, keep_input=False)
        self.comm.Reduce_scatter_block([send, datatype], [recv, datatype], mpi_op)
        if average:
            recv /= self.size
        stage.finish()

    # ---- moves of data (as bytes) -----------------------------------------------------------------------------------

    def bcast(self, buf, root):
        BYTE = _MPI.BYTE
        stage = self._stage(buf)
        if stage is None:
            self.comm.Bcast([buf, BYTE], root)
            return
        host = stage.write(buf, keep_input=self.rank == root)
        self.comm.Bcast([host, BYTE], root)
        if self.rank != root:
            stage.finish()

    def allgather(self, sendbuf, recvbuf):
        BYTE = _MPI.BYTE
        stage = self._stage(sendbuf, recvbuf) or _Stage()
        send, recv = stage.read(sendbuf), stage.write(recvbuf, keep_input=sendbuf is None)
        self.comm.Allgather(_MPI.IN_PLACE if send is None else [send, BYTE], [recv, BYTE])
        stage.finish()

    def allgatherv(self, sendbuf, recvbuf, counts):
        BYTE = _MPI.BYTE
        item = recvbuf.dtype.itemsize
        sizes = [int(c) * item for c in counts]
        offsets = np.concatenate([[0], np.cumsum(sizes[:-1], dtype=np.int64)]).tolist() if sizes else []
        stage = self._stage(sendbuf, recvbuf) or _Stage()
        send, recv = stage.read(sendbuf), stage.write(recvbuf, keep_input=False)
        self.comm.Allgatherv([send, BYTE], [recv, (sizes, offsets), BYTE])
        stage.finish()

    def gather(self, sendbuf, recvbuf, root):
        BYTE = _MPI.BYTE
        stage = self._stage(sendbuf, recvbuf) or _Stage()
        send = stage.read(sendbuf)
        recv = stage.write(recvbuf, keep_input=False) if self.rank == root else None
        self.comm.Gather([send, BYTE], [recv, BYTE] if self.rank == root else None, root)
        stage.finish()

    def scatter(self, sendbuf, recvbuf, root):
        BYTE = _MPI.BYTE
        stage = self._stage(sendbuf, recvbuf) or _Stage()
        send = stage.read(sendbuf) if self.rank == root else None
        recv = stage.write(recvbuf, keep_input=False)
        self.comm.Scatter([send, BYTE] if self.rank == root else None, [recv, BYTE], root)
        stage.finish()

    def alltoall(self, sendbuf, recvbuf):
        BYTE = _MPI.BYTE
        stage = self._stage(sendbuf, recvbuf) or _Stage()
        send, recv = stage.read(sendbuf), stage.write(recvbuf, keep_input=False)
        self.comm.Alltoall([send, BYTE], [recv, BYTE])
        stage.finish()

    def alltoallv(self, sendbuf, sendcounts, recvbuf, recvcounts):
        BYTE = _MPI.BYTE

        def layout(counts, item):
            sizes = [int(c) * item for c in counts]
            offsets = [0] * len(sizes)
            for i in range(1, len(sizes)):
                offsets[i] = offsets[i - 1] + sizes[i - 1]
            return sizes, offsets

        stage = self._stage(sendbuf, recvbuf) or _Stage()
        send, recv = stage.read(sendbuf), stage.write(recvbuf, keep_input=False)
        self.comm.Alltoallv([send, layout(sendcounts, sendbuf.dtype.itemsize), BYTE],
                            [recv, layout(recvcounts, recvbuf.dtype.itemsize), BYTE])
        stage.finish()

    def send(self, buf, dest, tag=0):
        stage = self._stage(buf) or _Stage()
        self.comm.Send([stage.read(buf), _MPI.BYTE], dest, tag)

    def recv(self, buf, source, tag=0):
        MPI = _MPI
        stage = self._stage(buf) or _Stage()
        host = stage.write(buf, keep_input=False)
        status = MPI.Status()
        self.comm.Recv([host, MPI.BYTE], MPI.ANY_SOURCE if source is None else source, tag, status)
        stage.finish()
        return status.Get_source()

    def isend(self, buf, dest, tag=0):
        """Start a send; returns a :class:`P2PRequest` (keep ``buf`` alive and unchanged until it completes)."""
        stage = self._stage(buf) or _Stage()
        host = stage.read(buf)
        return P2PRequest(self.comm.Isend([host, _MPI.BYTE], dest, tag), keep=host)

    def irecv(self, buf, source, tag=0):
        """Start a receive into ``buf``; returns a :class:`P2PRequest` whose result is the sender's rank."""
        MPI = _MPI
        stage = self._stage(buf) or _Stage()
        host = stage.write(buf, keep_input=False)
        request = self.comm.Irecv([host, MPI.BYTE], MPI.ANY_SOURCE if source is None else source, tag)
        return P2PRequest(request, keep=host, finish=stage.finish)

    def barrier(self):
        self.comm.Barrier()

    def allgather_bytes(self, data, limit=None):
        sizes = np.empty(self.size, np.int64)
        self.comm.Allgather([np.array([len(data)], np.int64), _MPI.INT64_T], [sizes, _MPI.INT64_T])
        check_sizes(sizes, limit)
        out = np.empty(int(sizes.sum()), np.uint8)
        self.allgatherv(np.frombuffer(data, np.uint8) if data else np.empty(0, np.uint8), out, sizes.tolist())
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        return [out[offsets[r]:offsets[r + 1]].tobytes() for r in range(self.size)]

    # ---- lifecycle --------------------------------------------------------------------------------------------------

    def split(self, ranks):
        """Collective over this communicator: a communicator over ``ranks`` (new rank i is ``ranks[i]``)."""
        ranks = list(ranks)
        MPI = _MPI
        if self.rank in ranks:
            sub = self.comm.Split(0, ranks.index(self.rank))
            return MpiCommunicator(sub, cuda_aware=self._cuda_aware)
        self.comm.Split(MPI.UNDEFINED, 0)
        return None

    def create_group(self, ranks, tag=0):
        """Collective over ``ranks`` only (MPI-3 ``Comm_create_group``): for groups made without the others."""
        ranks = list(ranks)
        if self.rank not in ranks:
            return None
        group = self.comm.Get_group().Incl(ranks)
        sub = self.comm.Create_group(group, tag)
        group.Free()
        return MpiCommunicator(sub, cuda_aware=self._cuda_aware)

    def local_split(self):
        """The communicator of the ranks sharing this node's memory (MPI's shared-memory split)."""
        node = self.comm.Split_type(_MPI.COMM_TYPE_SHARED, key=self.rank)
        return MpiCommunicator(node, cuda_aware=self._cuda_aware)

    def slot_window(self, slots):
        """A :class:`SlotWindow` of ``slots`` int64 words per rank (collective; the caller frees it)."""
        return SlotWindow(self.comm, slots)

    def abort(self, code=1):
        mpi().COMM_WORLD.Abort(code)

    def free(self):
        if self.comm != mpi().COMM_WORLD and self.comm != mpi().COMM_SELF:
            self.comm.Free()


class P2PRequest:
    """A started point-to-point transfer: ``test()`` returns whether it is done (without blocking), ``wait()`` blocks
    and returns the peer's rank, ``cancel()`` gives it up."""

    __slots__ = ("request", "keep", "finish", "status", "done")

    def __init__(self, request, keep=None, finish=None):
        self.request = request
        self.keep = keep  # the (host) buffer, alive until MPI is done with it
        self.finish = finish
        self.status = mpi().Status()
        self.done = False

    def test(self):
        if not self.done and self.request.Test(self.status):
            self._complete()
        return self.done

    def wait(self):
        if not self.done:
            self.request.Wait(self.status)
            self._complete()
        return self.status.Get_source()

    def _complete(self):
        self.done = True
        if self.finish is not None:
            self.finish()

    def cancel(self):
        if not self.done:
            self.request.Cancel()


def _int64_slots(buffer, count):
    """The first ``count`` int64 slots of an MPI memory buffer, as a memoryview (stores cost less than NumPy's)."""
    return memoryview(buffer).cast("B")[: 8 * count].cast("q")


class SlotWindow:
    """``slots`` int64 words per rank in an MPI window: each rank writes its own, and reads every rank's without
    their help (one-sided). Collective to make and to free.

    When the whole communicator is on one node the window is shared memory: ``mine`` is this rank's words and a
    peer's are read with plain loads. Across nodes a peer's words are read by a one-sided ``Get`` that is given
    ``timeout`` seconds (a rank busy outside MPI may not answer: its words come back as None). A word is one aligned
    8-byte store, so a reader never sees half of an update.

    >>> window = comm.slot_window(2)              # doctest: +SKIP
    >>> window.mine[0] = 7; window.read(0)        # doctest: +SKIP
    [7, 7]
    """

    def __init__(self, comm, slots):
        MPI = mpi()
        self.comm = comm
        self.slots = slots
        node = comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.shared = node.Get_size() == comm.Get_size()
        node.Free()
        # a cache line per rank at least: a rank's stores must not make the ranks' caches fight over one line
        nbytes = max(64, 8 * slots)
        if self.shared:
            self.win = MPI.Win.Allocate_shared(nbytes, 8, comm=comm)
            self.peers = [_int64_slots(self.win.Shared_query(r)[0], slots) for r in range(comm.Get_size())]
            self.mine = self.peers[comm.Get_rank()]
        else:
            self.win = MPI.Win.Allocate(nbytes, 8, comm=comm)
            self.mine = _int64_slots(self.win.tomemory(), slots)
            self.peers = None
        for i in range(slots):
            self.mine[i] = 0
        comm.Barrier()

    def read(self, slot, timeout=1.0):
        """Word ``slot`` of every rank, in rank order; None where it could not be read within ``timeout`` s."""
        if self.peers is not None:
            return [peer[slot] for peer in self.peers]
        size, me = self.comm.Get_size(), self.comm.Get_rank()
        found = [None] * size
        found[me] = self.mine[slot]

        def fetch():
            MPI = mpi()
            for r in range(size):
                if r == me:
                    continue
                buf = np.zeros(1, np.int64)
                self.win.Lock(r, MPI.LOCK_SHARED)
                self.win.Get([buf, MPI.INT64_T], r, target=(slot, 1, MPI.INT64_T))
                self.win.Unlock(r)
                found[r] = int(buf[0])

        reader = threading.Thread(target=fetch, name="dtorch-window-read", daemon=True)
        reader.start()
        reader.join(timeout)
        return found

    def free(self):
        self.peers = None
        self.mine = None
        self.win.Free()
