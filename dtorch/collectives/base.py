"""The communicator interface every transport implements: blocking verbs on raw arrays.

A :class:`Communicator` moves raw arrays (NumPy, or CuPy for the backends that take them) between the ranks of one
group. Its verbs carry MPI's names in lower case (``allreduce``, ``bcast``, ``reduce``, ``allgather``, ``gather``,
``scatter``, ``reduce_scatter``, ``alltoall``, ``send``, ``recv``, ``barrier``) and are *blocking*: they return None
(``recv`` returns the sender's rank, ``allgather_bytes`` the list of every rank's bytes) once the output buffer holds
the result (for NCCL: once the work is queued on the current CUDA stream, as in PyTorch).

A transport only moves arrays. Ordering, sequence numbers, mismatch checks, timeouts and asynchrony (the per-group
FIFO queue and its communication thread, work handles) belong to the process group in :mod:`dtorch.distributed`.

Contracts: every rank of a communicator calls its verbs in the same order; a communicator's verbs are not called by
two threads at once (the process group's queue sees to it).

>>> ReduceOp.AVG
<ReduceOp.AVG: 7>
"""

import enum

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


# the largest total a peer may report for the bytes of an allgather_bytes (a desynchronised peer's "size" is
# whatever number it was sending: refuse it before allocating, rather than try to allocate exabytes)
MAX_GATHERED_BYTES = 1 << 40


def check_sizes(sizes, limit=None):
    """Refuse byte counts reported by the peers that cannot be right, before anything is allocated for them.

    ``sizes[r]`` is rank ``r``'s count; each must be in ``0..limit`` (default :data:`MAX_GATHERED_BYTES` in all).

    >>> check_sizes([3, 4])
    >>> check_sizes([3, -1])                      # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    RuntimeError: rank 1 reported -1 bytes to gather (the limit is 1099511627776 in all): the ranks are out of step ...
    """
    limit = MAX_GATHERED_BYTES if limit is None else limit
    total = 0
    for rank, size in enumerate(sizes):
        size = int(size)
        total += size
        if size < 0 or total > limit:
            raise RuntimeError(f"rank {rank} reported {size} bytes to gather (the limit is {limit} in all): the ranks "
                               f"are out of step (a rank runs a different collective): keep the checks on "
                               f"(DTORCH_DISTRIBUTED_DEBUG=INFO, the default) to have every call checked")


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

    def allgather_bytes(self, data, limit=None):
        """Returns every rank's ``bytes``, in rank order (the path for pickled objects and mismatch reports). The
        sizes the peers report are checked by :func:`check_sizes` (``limit``: bytes in all) before allocating."""
        raise NotImplementedError

    def slot_window(self, slots):
        """Returns a window of ``slots`` int64 words per rank that peers read one-sidedly (``mine``, ``read(slot)``,
        ``free()``), or None where the transport has none (collective)."""
        return None

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
        """Release the communicator (collective)."""
