"""How a process finds its place in the job: rank, world size, local rank, from MPI.

MPI decides (``mpiexec``/``mpirun``, ``srun`` through PMI, the ``dtorchrun`` launcher); a plain ``python script.py``
is a world of one, also where no MPI library can be loaded. ``WORLD_SIZE`` and ``init_process_group``'s
``world_size``/``rank`` are checked against MPI; ``RANK``, when every rank has one and together they number the
ranks ``0..n-1``, reorders them. A ``WORLD_SIZE`` above one in a process MPI started alone is an error that says how
to launch.

>>> comm, local_rank, local_size, threaded = world_communicator()     # doctest: +SKIP
"""

import os
import warnings


def _env_int(name):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def _launch_hint(n):
    return (f"start {n} ranks with an MPI launcher: `mpiexec -n {n} python script.py`, "
            f"`dtorchrun --nproc-per-node {n} script.py`, or `srun -n {n} python script.py` under Slurm")


def world_communicator(world_size=-1, rank=-1):
    """``(communicator, local rank, local world size, thread_multiple)`` of this process (collective).

    From MPI, or a world of one where no MPI library loads. Checks ``WORLD_SIZE`` and the arguments against MPI,
    reorders by ``RANK``, and finds the local rank by MPI's shared-memory split.
    """
    env_world = _env_int("WORLD_SIZE")
    try:
        from dtorch.collectives.mpi import MpiCommunicator, mpi

        MPI = mpi()
    except ImportError as error:
        if (env_world or 1) > 1 or world_size > 1:
            raise RuntimeError(f"a world of {max(env_world or 1, world_size)} ranks needs MPI, but mpi4py or the MPI "
                               f"library could not be loaded ({error}); install dtorch[mpi]") from error
        from dtorch.collectives.local import LocalCommunicator

        return LocalCommunicator(), 0, 1, True
    comm = MpiCommunicator.world()
    size = comm.size
    if size == 1 and (env_world or 1) > 1:
        comm.free()
        raise RuntimeError(f"WORLD_SIZE is {env_world} but MPI started this process as a world of one: it was not "
                           f"launched by an MPI launcher (PMI). To run {env_world} ranks, {_launch_hint(env_world)}.")
    if env_world is not None and env_world != size:
        comm.free()
        raise RuntimeError(f"WORLD_SIZE={env_world} in the environment but MPI started {size} ranks; "
                           f"unset WORLD_SIZE or launch {env_world} ranks")
    if world_size not in (-1, None) and world_size != size:
        comm.free()
        if size == 1:
            raise ValueError(f"init_process_group(world_size={world_size}) but MPI started this process as a world "
                             f"of one: {_launch_hint(world_size)}")
        raise ValueError(f"init_process_group(world_size={world_size}) but MPI started {size} ranks")
    threaded = MPI.Query_thread() == MPI.THREAD_MULTIPLE
    if not threaded:
        warnings.warn("MPI was initialised without MPI_THREAD_MULTIPLE (mpi4py.rc.thread_level): async_op=True "
                      "collectives run at the call, without overlap; keep mpi4py's default 'multiple' for overlap",
                      RuntimeWarning, stacklevel=3)
    comm = _order_by_env_rank(comm, MPI)
    if rank not in (-1, None) and rank != comm.rank:
        raise ValueError(f"init_process_group(rank={rank}) but MPI gave this process rank {comm.rank}")
    node = comm.local_split()
    try:
        local = _local_rank(node) if comm.size > 1 else (0, 1)  # a world of one ignores stale variables, as RANK
    finally:
        node.free()
    return comm, local[0], local[1], threaded


def _local_rank(node):
    """``(local rank, local world size)`` from the node's communicator (MPI's shared-memory split, ordered by
    global rank), honouring ``LOCAL_RANK``/``LOCAL_WORLD_SIZE`` when a launcher set them consistently.

    Collective over ``node``. ``LOCAL_RANK`` set on every rank of the node and numbering them ``0..n-1`` is
    kept (a launcher may pin its own order to GPUs); a partial or inconsistent setting, or a ``LOCAL_WORLD_SIZE``
    other than the node's rank count, is an error naming every rank's value.
    """
    env_size = _env_int("LOCAL_WORLD_SIZE")
    mine = _env_int("LOCAL_RANK")
    values = [int(v) for v in node.comm.allgather(-1 if mine is None else mine)]
    sizes = [int(v) for v in node.comm.allgather(-1 if env_size is None else env_size)]
    if any(v not in (-1, node.size) for v in sizes):
        raise RuntimeError(f"LOCAL_WORLD_SIZE does not match the {node.size} ranks MPI placed on this node "
                           f"(values by local rank: {['unset' if v == -1 else v for v in sizes]}); unset it or "
                           f"launch {node.size} ranks per node")
    if all(v == -1 for v in values):
        return node.rank, node.size
    if sorted(values) != list(range(node.size)):
        listing = ", ".join(f"local rank {r}: LOCAL_RANK={'unset' if v == -1 else v}" for r, v in enumerate(values))
        raise RuntimeError(f"the LOCAL_RANK environment variables do not number the {node.size} ranks of this node "
                           f"0..{node.size - 1} ({listing}); unset LOCAL_RANK and let MPI number them")
    return mine, node.size


def _order_by_env_rank(comm, MPI):
    """Honour ``RANK`` set by a launcher: reorder MPI's ranks by it when every rank has one."""
    if comm.size == 1:
        return comm
    mine = _env_int("RANK")
    values = [int(v) for v in comm.comm.allgather(-1 if mine is None else mine)]
    if all(v == -1 for v in values) or values == list(range(comm.size)):
        return comm
    if sorted(values) != list(range(comm.size)):
        comm.free()
        listing = ", ".join(f"MPI rank {r}: RANK={'unset' if v == -1 else v}" for r, v in enumerate(values))
        raise RuntimeError(f"the RANK environment variables do not number the {len(values)} ranks 0..{len(values) - 1} "
                           f"({listing}); unset RANK and let MPI number the ranks")
    from dtorch.collectives.mpi import MpiCommunicator

    ordered = MpiCommunicator(comm.comm.Split(0, mine))
    comm.free()
    return ordered


def resolve_backend(backend):
    """dtorch's backend name for PyTorch's ``backend`` argument (None: NCCL when CUDA is available, else MPI)."""
    if backend is None or backend in ("", "undefined"):
        try:
            from dtorch import _backend

            return "nccl" if _backend.cuda_is_available() else "mpi"
        except Exception:  # noqa: BLE001 - no core, no CUDA
            return "mpi"
    name = str(backend).lower()
    if "," in name or ":" in name:  # PyTorch's "cpu:gloo,cuda:nccl"
        return "nccl" if "nccl" in name else "mpi"
    if name in ("mpi", "gloo"):  # gloo is PyTorch's CPU backend: MPI does that job here
        return "mpi"
    if name == "nccl":
        return "nccl"
    raise ValueError(f"unknown backend {backend!r}: dtorch has 'mpi' (CPU tensors, and the bootstrap) and 'nccl' "
                     f"(CUDA tensors); 'gloo' is accepted as a name for 'mpi'")
