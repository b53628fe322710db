"""The NCCL transport for CuPy arrays, through CuPy's maintained binding ``cupy.cuda.nccl``.

Imported only when an NCCL group is made. The communicator is bootstrapped over MPI: rank 0 makes NCCL's unique
id, MPI broadcasts it, and each rank builds its communicator on its local GPU (``local_rank % device_count``).
Sub-groups are made the same way over the MPI sub-communicator (CuPy exposes no ``ncclCommSplit``). Every verb is
queued on the *current* CuPy stream and returns None at once: the host is not synchronised, as in PyTorch; later
work on that stream sees the result. ``check_async_error`` and ``abort`` are what the timeout watchdog uses.

NCCL has no bitwise reductions and no 16-bit integers; bool reduces as uint8 (SUM/MAX/BOR: max, i.e. or;
PRODUCT/MIN/BAND: min, i.e. and). Gather, scatter and all-to-all are grouped sends and receives.

>>> nccl_dtype(np.dtype("float32"), FakeNccl)          # doctest: +SKIP
"""

import numpy as np

from dtorch.collectives.base import Communicator, ReduceOp

INSTALL_HINT = ("the nccl backend needs CuPy with NCCL: install dtorch with the 'cuda12' or 'cuda13' extra "
                "(pip install 'dtorch[cuda12]', which brings cupy-cuda12x and nvidia-nccl-cu12)")


def load_nccl():
    """``cupy.cuda.nccl``, or a RuntimeError naming the extra to install."""
    try:
        from cupy.cuda import nccl
    except Exception as error:  # ImportError, or CUDA libraries that fail to load
        raise RuntimeError(f"{INSTALL_HINT} ({error})") from error
    if not getattr(nccl, "available", True):
        raise RuntimeError(f"{INSTALL_HINT} (CuPy was built without NCCL)")
    return nccl


_DTYPE_NAMES = {
    "int8": "NCCL_INT8", "uint8": "NCCL_UINT8", "int32": "NCCL_INT32", "uint32": "NCCL_UINT32",
    "int64": "NCCL_INT64", "uint64": "NCCL_UINT64", "float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32",
    "float64": "NCCL_FLOAT64", "bfloat16": "NCCL_BFLOAT16", "bool": "NCCL_UINT8",
}

_OP_NAMES = {ReduceOp.SUM: "NCCL_SUM", ReduceOp.PRODUCT: "NCCL_PROD", ReduceOp.MIN: "NCCL_MIN",
             ReduceOp.MAX: "NCCL_MAX", ReduceOp.AVG: "NCCL_AVG"}
_BOOL_OPS = {ReduceOp.SUM: "NCCL_MAX", ReduceOp.MAX: "NCCL_MAX", ReduceOp.BOR: "NCCL_MAX",
             ReduceOp.PRODUCT: "NCCL_MIN", ReduceOp.MIN: "NCCL_MIN", ReduceOp.BAND: "NCCL_MIN"}


def nccl_dtype(dtype, nccl):
    """NCCL's datatype constant for a NumPy/CuPy dtype; TypeError naming the dtype when NCCL has none."""
    name = _DTYPE_NAMES.get(np.dtype(dtype).name)
    if name is None or not hasattr(nccl, name):
        raise TypeError(f"dtype {np.dtype(dtype)} is not supported by the nccl backend (it takes int8, uint8, int32, "
                        f"uint32, int64, uint64, float16, bfloat16, float32, float64 and bool)")
    return getattr(nccl, name)


def nccl_op(op, dtype, nccl):
    """NCCL's reduction constant for a :class:`ReduceOp` on ``dtype``; TypeError for what NCCL cannot do."""
    if not isinstance(op, ReduceOp):
        raise TypeError(f"expected a dtorch.distributed.ReduceOp, got {op!r}")
    table = _BOOL_OPS if np.dtype(dtype) == np.bool_ else _OP_NAMES
    name = table.get(op)
    if name is None:
        raise TypeError(f"ReduceOp.{op.name} is not supported by the nccl backend for {np.dtype(dtype)} "
                        f"(NCCL has SUM, PRODUCT, MIN, MAX, AVG; bool also BAND/BOR)")
    if op is ReduceOp.AVG and np.dtype(dtype).kind not in "f":
        raise TypeError(f"ReduceOp.AVG is not supported for {np.dtype(dtype)} (floating dtypes only)")
    if not hasattr(nccl, name):  # ncclAvg came with NCCL 2.10
        raise TypeError(f"ReduceOp.{op.name} is not supported by this NCCL build ({name} is missing)")
    return getattr(nccl, name)


def encode_uid(uid):
    """NCCL's unique id (CuPy gives a tuple of 128 small ints, or bytes) as an int64 array MPI can broadcast."""
    values = list(uid) if not isinstance(uid, (bytes, bytearray)) else list(np.frombuffer(uid, np.int8))
    return np.asarray(values, dtype=np.int64)


def decode_uid(array):
    """The tuple CuPy's ``NcclCommunicator`` takes, from :func:`encode_uid`'s array."""
    return tuple(int(v) for v in array)


def pick_device(local_rank, device_count):
    """The GPU of a rank: its local rank modulo the GPUs of the node; RuntimeError when there is none."""
    if device_count < 1:
        raise RuntimeError("the nccl backend needs a GPU, but CUDA reports none; use backend='mpi'")
    return local_rank % device_count


def _pointer(array):
    return array.data.ptr


class NcclCommunicator(Communicator):
    """A :class:`~dtorch.collectives.base.Communicator` over one NCCL communicator (CuPy arrays only).

    >>> world = NcclCommunicator.from_mpi(MpiCommunicator.world(), local_rank=0)   # doctest: +SKIP
    """

    backend = "nccl"

    def __init__(self, comm, rank, size, bootstrap, nccl, stream_of, new_event=None):
        super().__init__(rank, size)
        self.comm = comm
        self.bootstrap = bootstrap  # the MPI communicator of the same ranks
        self.nccl = nccl
        self._stream_of = stream_of  # () -> the current stream's handle
        self._new_event = new_event  # () -> a CUDA event (``query()`` is True once the stream passed it)

    @classmethod
    def from_mpi(cls, mpi_comm, local_rank=0, nccl=None, cupy=None):
        """Build the communicator of ``mpi_comm``'s ranks (collective over them)."""
        nccl = nccl or load_nccl()
        if cupy is None:
            from dtorch import _backend

            cupy = _backend.cupy()
        if local_rank is not None:  # None: stay on the current device (sub-groups)
            cupy.cuda.Device(pick_device(local_rank, cupy.cuda.runtime.getDeviceCount())).use()
        uid = encode_uid(nccl.get_unique_id()) if mpi_comm.rank == 0 else np.zeros(128, np.int64)
        mpi_comm.bcast(uid, 0)
        comm = nccl.NcclCommunicator(mpi_comm.size, decode_uid(uid), mpi_comm.rank)
        return cls(comm, mpi_comm.rank, mpi_comm.size, mpi_comm, nccl,
                   lambda: cupy.cuda.get_current_stream().ptr, new_event=cupy.cuda.Event)

    def mark(self):
        """A CUDA event recorded on the current stream after the work queued so far (for the watchdog)."""
        event = self._new_event()
        event.record()
        return event

    def _args(self, array):
        return _pointer(array), array.size, nccl_dtype(array.dtype, self.nccl)

    def check_reduction(self, op, dtype):
        nccl_op(op, dtype, self.nccl)
        nccl_dtype(dtype, self.nccl)

    def allreduce(self, sendbuf, recvbuf, op):
        recv, count, dtype = self._args(recvbuf)
        send = recv if sendbuf is None else _pointer(sendbuf)
        self.comm.allReduce(send, recv, count, dtype, nccl_op(op, recvbuf.dtype, self.nccl), self._stream_of())

    def bcast(self, buf, root):
        ptr, count, dtype = self._args(buf)
        self.comm.bcast(ptr, count, dtype, root, self._stream_of())

    def reduce(self, sendbuf, recvbuf, op, root):
        recv, count, dtype = self._args(recvbuf)
        send = recv if sendbuf is None else _pointer(sendbuf)
        self.comm.reduce(send, recv, count, dtype, nccl_op(op, recvbuf.dtype, self.nccl), root, self._stream_of())

    def allgather(self, sendbuf, recvbuf):
        send, count, dtype = self._args(sendbuf)
        self.comm.allGather(send, _pointer(recvbuf), count, dtype, self._stream_of())

    def reduce_scatter(self, sendbuf, recvbuf, op):
        recv, count, dtype = self._args(recvbuf)
        self.comm.reduceScatter(_pointer(sendbuf), recv, count, dtype, nccl_op(op, recvbuf.dtype, self.nccl),
                                self._stream_of())

    def _grouped(self, sends, recvs):
        """Run ``(array, peer)`` sends and receives as one NCCL group (no ordering deadlock between them)."""
        stream = self._stream_of()
        self.nccl.groupStart()
        try:
            for array, peer in sends:
                ptr, count, dtype = self._args(array)
                self.comm.send(ptr, count, dtype, peer, stream)
            for array, peer in recvs:
                ptr, count, dtype = self._args(array)
                self.comm.recv(ptr, count, dtype, peer, stream)
        finally:
            self.nccl.groupEnd()

    def gather(self, sendbuf, recvbuf, root):
        recvs = []
        if self.rank == root:
            blocks = recvbuf.reshape(self.size, -1)
            recvs = [(blocks[r], r) for r in range(self.size) if r != root]
            blocks[root][...] = sendbuf.reshape(-1)
        self._grouped([] if self.rank == root else [(sendbuf.reshape(-1), root)], recvs)

    def scatter(self, sendbuf, recvbuf, root):
        sends = []
        if self.rank == root:
            blocks = sendbuf.reshape(self.size, -1)
            sends = [(blocks[r], r) for r in range(self.size) if r != root]
            recvbuf.reshape(-1)[...] = blocks[root]
        self._grouped(sends, [] if self.rank == root else [(recvbuf.reshape(-1), root)])

    def alltoall(self, sendbuf, recvbuf):
        n = self.size
        self.alltoallv(sendbuf, [sendbuf.size // n] * n, recvbuf, [recvbuf.size // n] * n)

    def alltoallv(self, sendbuf, sendcounts, recvbuf, recvcounts):
        flat_send, flat_recv = sendbuf.reshape(-1), recvbuf.reshape(-1)
        sends, recvs, s, r = [], [], 0, 0
        for peer in range(self.size):
            sends.append((flat_send[s:s + sendcounts[peer]], peer))
            recvs.append((flat_recv[r:r + recvcounts[peer]], peer))
            s += sendcounts[peer]
            r += recvcounts[peer]
        self._grouped(sends, recvs)

    def allgatherv(self, sendbuf, recvbuf, counts):
        flat, offset, recvs = recvbuf.reshape(-1), 0, []
        for peer, count in enumerate(counts):
            recvs.append((flat[offset:offset + count], peer))
            offset += count
        self._grouped([(sendbuf.reshape(-1), peer) for peer in range(self.size)], recvs)

    def send(self, buf, dest, tag=0):
        self._grouped([(buf, dest)], [])

    def recv(self, buf, source, tag=0):
        if source is None:
            raise ValueError("the nccl backend cannot receive from any source: pass src")
        self._grouped([], [(buf, source)])
        return source

    def barrier(self):
        self.bootstrap.barrier()

    def allgather_bytes(self, data, limit=None):
        return self.bootstrap.allgather_bytes(data, limit)

    def split(self, ranks):
        sub = self.bootstrap.split(ranks)
        if sub is None:
            return None
        return NcclCommunicator.from_mpi(sub, local_rank=None, nccl=self.nccl)

    def check_async_error(self):
        """Raise NCCL's asynchronous error, if any (the watchdog polls this)."""
        self.comm.check_async_error()

    def abort(self, code=1):
        try:
            self.comm.abort()
        finally:
            self.bootstrap.abort(code)

    def free(self):
        self.comm.destroy()
