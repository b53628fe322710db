"""Transport engines behind process groups, on raw arrays: MPI (mpi4py), NCCL (through CuPy), a world of one.

``base`` holds the interface (:class:`Communicator`, :class:`ReduceOp`); ``mpi``, ``nccl`` and ``local`` one backend
each. The verbs are blocking and move arrays only: ordering, checks, timeouts and async work are the process
group's (:mod:`dtorch.distributed`). Nothing here imports mpi4py or CuPy until a communicator is made.
"""

from dtorch.collectives.base import Communicator, ReduceOp

__all__ = ["Communicator", "ReduceOp"]
