"""A world of one without MPI: what dtorch runs on where no MPI library can be loaded.

Every collective of a group of one is a copy (or nothing); AVG divides by one. Only rank 0 exists. The verbs
return None, as every transport's do (``allgather_bytes`` returns ``[data]``).

>>> import numpy as np
>>> from dtorch.collectives.base import ReduceOp
>>> comm = LocalCommunicator(); x = np.arange(3.0)
>>> comm.allreduce(None, x, ReduceOp.SUM); x
array([0., 1., 2.])
"""

from dtorch.collectives.base import Communicator, check_sizes


def _copy(sendbuf, recvbuf):
    if sendbuf is not None and recvbuf is not None and sendbuf is not recvbuf:
        recvbuf.reshape(-1)[...] = sendbuf.reshape(-1)


class LocalCommunicator(Communicator):
    """The communicator of a single process (rank 0 of 1)."""

    backend = "local"

    def __init__(self):
        super().__init__(0, 1)

    def _root(self, rank):
        if rank != 0:
            raise ValueError(f"rank {rank} is outside a group of one (only rank 0 exists)")

    def allreduce(self, sendbuf, recvbuf, op):
        _copy(sendbuf, recvbuf)

    def bcast(self, buf, root):
        self._root(root)

    def reduce(self, sendbuf, recvbuf, op, root):
        self._root(root)
        _copy(sendbuf, recvbuf)

    def allgather(self, sendbuf, recvbuf):
        _copy(sendbuf, recvbuf)

    def allgatherv(self, sendbuf, recvbuf, counts):
        _copy(sendbuf, recvbuf)

    def gather(self, sendbuf, recvbuf, root):
        self._root(root)
        _copy(sendbuf, recvbuf)

    def scatter(self, sendbuf, recvbuf, root):
        self._root(root)
        _copy(sendbuf, recvbuf)

    def reduce_scatter(self, sendbuf, recvbuf, op):
        _copy(sendbuf, recvbuf)

    def alltoall(self, sendbuf, recvbuf):
        _copy(sendbuf, recvbuf)

    def alltoallv(self, sendbuf, sendcounts, recvbuf, recvcounts):
        _copy(sendbuf, recvbuf)

    def send(self, buf, dest, tag=0):
        raise RuntimeError("send in a world of one: there is no other rank to send to")

    def recv(self, buf, source, tag=0):
        raise RuntimeError("recv in a world of one: there is no other rank to receive from")

    def barrier(self):
        pass

    def allgather_bytes(self, data, limit=None):
        check_sizes([len(data)], limit)
        return [bytes(data)]

    def split(self, ranks):
        return LocalCommunicator() if 0 in list(ranks) else None

    def abort(self, code=1):
        import os

        os._exit(code)
