"""PyTorch's ``torch.distributed`` for dtorch: process groups and collectives over MPI (CPU) and NCCL (CUDA).

Run a script on several ranks with an MPI launcher (``mpiexec -n 4 python train.py``); a plain ``python train.py``
is a world of one. Importing this package starts nothing: :func:`init_process_group` initialises MPI.

What dtorch adds to PyTorch's behaviour, so that a job never hangs silently:

- ranks that call different collectives get a :class:`CollectiveMismatchError` naming the collective, its sequence
  number and what each rank passed, on every rank and before any result is returned (every call is checked by
  default; ``DTORCH_DISTRIBUTED_DEBUG=DETAIL`` adds each rank's recent calls to the message, ``OFF`` turns the
  checks off);
- a collective that waits past its group's ``timeout`` raises :class:`DistTimeoutError` naming the ranks that have
  not reached it, and the whole job is ended (``MPI_Abort``);
- an uncaught exception on any rank prints its traceback (prefixed ``[rank N]``) and ends every rank;
- a rank that leaves while others wait for it in a collective (its script returns, ``sys.exit(3)``) makes them
  raise a :class:`DistBackendError` naming it and its exit status within a second, and the job ends with that
  status;
- a Future callback that raises is logged, and the group's communication thread goes on.

>>> import dtorch, dtorch.distributed as dist
>>> dist.init_process_group()                           # doctest: +SKIP
>>> t = dtorch.ones(2); dist.all_reduce(t)              # doctest: +SKIP
>>> work = dist.all_reduce(t, async_op=True); work.wait()   # doctest: +SKIP
True
"""

import os

from dtorch.collectives.base import ReduceOp
from dtorch.distributed.checks import (
    CollectiveMismatchError,
    DebugLevel,
    get_debug_level,
    set_debug_level,
    set_debug_level_from_env,
)
from dtorch.distributed.distributed_c10d import (
    P2POp,
    all_gather,
    all_gather_into_tensor,
    all_gather_single,
    all_reduce,
    all_to_all,
    all_to_all_single,
    barrier,
    batch_isend_irecv,
    broadcast,
    gather,
    irecv,
    isend,
    monitored_barrier,
    recv,
    reduce,
    reduce_scatter,
    reduce_scatter_single,
    reduce_scatter_tensor,
    scatter,
    send,
)
from dtorch.distributed.objects import (
    all_gather_object,
    broadcast_object_list,
    gather_object,
    scatter_object_list,
)
from dtorch.distributed.process_group import (
    GroupMember,
    ProcessGroup,
    destroy_process_group,
    get_backend,
    get_global_rank,
    get_group_rank,
    get_node_local_rank,
    get_process_group_ranks,
    get_rank,
    get_world_size,
    group,
    init_process_group,
    is_available,
    is_gloo_available,
    is_initialized,
    is_mpi_available,
    is_nccl_available,
    new_group,
)
from dtorch.distributed.watchdog import DistBackendError, DistError, DistTimeoutError
from dtorch.distributed.work import Future, Work


class Backend:
    """Backend names, PyTorch's ``torch.distributed.Backend``."""

    MPI = "mpi"
    NCCL = "nccl"
    GLOO = "gloo"
    UNDEFINED = "undefined"


def is_torchelastic_launched():
    """True when this process was started by ``dtorchrun`` (as PyTorch's is by ``torchrun``): the launcher sets
    ``TORCHELASTIC_RUN_ID`` for every rank.

    >>> import dtorch.distributed as dist
    >>> isinstance(dist.is_torchelastic_launched(), bool)
    True
    """
    return os.getenv("TORCHELASTIC_RUN_ID") is not None


__all__ = [
    "Backend", "CollectiveMismatchError", "DebugLevel", "DistBackendError", "DistError", "DistTimeoutError", "Future",
    "GroupMember", "P2POp", "ProcessGroup", "ReduceOp", "Work", "all_gather", "all_gather_into_tensor",
    "all_gather_object", "all_gather_single", "all_reduce", "all_to_all", "all_to_all_single", "barrier",
    "batch_isend_irecv", "broadcast", "broadcast_object_list", "destroy_process_group", "gather", "gather_object",
    "get_backend", "get_debug_level", "get_global_rank", "get_group_rank", "get_node_local_rank",
    "get_process_group_ranks", "get_rank", "get_world_size", "group", "init_process_group", "irecv", "is_available",
    "is_gloo_available", "is_initialized", "is_mpi_available", "is_nccl_available", "is_torchelastic_launched",
    "isend", "monitored_barrier", "new_group", "recv", "reduce", "reduce_scatter", "reduce_scatter_single",
    "reduce_scatter_tensor", "scatter", "scatter_object_list", "send", "set_debug_level",
    "set_debug_level_from_env",
]

# what DDP's communication hooks receive (PyTorch's dist.GradBucket); last: the algorithms use the names above
from dtorch.distributed.algorithms.grad_bucket import GradBucket  # noqa: E402

__all__.append("GradBucket")
