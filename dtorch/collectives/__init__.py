"""Transport engines behind process groups, on raw arrays: MPI (mpi4py), NCCL (through CuPy), a world of one.

``base`` holds the interface (:class:`Communicator`, :class:`Work`, :class:`ReduceOp`); ``mpi``, ``nccl`` and
``local`` one backend each. Nothing here imports mpi4py or CuPy until a communicator is made.
"""

from dtorch.collectives.base import Communicator, FifoExecutor, Future, ReduceOp, Work

__all__ = ["Communicator", "FifoExecutor", "Future", "ReduceOp", "Work"]
