"""init_process_group, groups, rank environment, and the errors for misuse."""

import datetime
import os
import warnings

import numpy as np
import pytest

import dtorch
import dtorch.distributed as dist
from dtorch.distributed import rendezvous


def T(array):
    return dtorch.from_numpy(np.array(array, copy=True))


def test_rank_environment_is_set(world):
    assert int(os.environ["RANK"]) == dist.get_rank()
    assert int(os.environ["WORLD_SIZE"]) == dist.get_world_size()
    local_rank, local_size = int(os.environ["LOCAL_RANK"]), int(os.environ["LOCAL_WORLD_SIZE"])
    assert local_size == dist.get_world_size()  # one node here
    assert local_rank == dist.get_rank() == dist.get_node_local_rank()


def test_queries(world):
    assert dist.is_available() and dist.is_initialized() and dist.is_mpi_available()
    assert dist.get_backend() == "mpi"
    assert dist.group.WORLD is dist.GroupMember.WORLD is world
    assert dist.get_process_group_ranks(world) == list(range(dist.get_world_size()))
    assert "ProcessGroup WORLD" in repr(world)
    with pytest.raises(RuntimeError, match="initialize the default process group twice"):
        dist.init_process_group()


def test_new_group_rejects_bad_ranks(world):
    n = dist.get_world_size()
    with pytest.raises(ValueError, match=f"ranks \\[{n}\\] are outside the world of {n} ranks"):
        dist.new_group([0, n])
    with pytest.raises(ValueError, match="list a rank twice"):
        dist.new_group([0, 0])
    with pytest.raises(TypeError, match="expected a ProcessGroup"):
        dist.all_reduce(T(np.ones(1)), group="WORLD")


def test_backend_names():
    assert rendezvous.resolve_backend("gloo") == "mpi"
    assert rendezvous.resolve_backend("MPI") == "mpi"
    assert rendezvous.resolve_backend("cpu:gloo,cuda:nccl") == "nccl"
    with pytest.raises(ValueError, match="unknown backend 'ucc'"):
        rendezvous.resolve_backend("ucc")


def test_destroy_then_use_then_init_again(world):
    n = dist.get_world_size()
    sub = dist.new_group(list(range(n)))
    dist.destroy_process_group()
    assert not dist.is_initialized() and dist.group.WORLD is None
    with pytest.raises(RuntimeError, match="call init_process_group"):
        dist.all_reduce(T(np.ones(1)))
    with pytest.raises(RuntimeError, match="has not been initialized"):
        dist.get_rank()
    with pytest.raises(RuntimeError, match="was destroyed"):
        dist.all_reduce(T(np.ones(1)), group=sub)
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")  # what a script written for PyTorch sets; not needed here
    os.environ.setdefault("MASTER_PORT", "29500")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dist.init_process_group("gloo", init_method="env://", timeout=datetime.timedelta(seconds=60))
    assert world.__class__ is dist.ProcessGroup and dist.group.WORLD.timeout == 60
    t = T(np.ones(1))
    dist.all_reduce(t)
    assert t._array[0] == n


def test_other_init_methods_warn_and_world_size_is_checked(world):
    n, rank = dist.get_world_size(), dist.get_rank()
    dist.destroy_process_group()
    with pytest.raises(ValueError, match=f"world_size={n + 1}\\) but MPI started"):
        dist.init_process_group(world_size=n + 1)
    with pytest.warns(UserWarning, match="ranks meet through MPI"):
        dist.init_process_group("mpi", init_method="tcp://127.0.0.1:29500", timeout=60, rank=rank)
    assert dist.is_initialized()


def test_nccl_without_cupy_names_the_extra(world, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setitem(sys.modules, "cupy.cuda", None)
    assert not dist.is_nccl_available()
    with pytest.raises(RuntimeError, match=r"dtorch\[cuda12\]"):
        dist.new_group(backend="nccl")


class FakeNode:
    """The node communicator as _local_rank sees it: ``comm.allgather`` returns what each rank of the node set."""

    def __init__(self, rank, local_ranks, local_sizes):
        self.rank, self.size = rank, len(local_ranks)
        answers = iter([local_ranks, local_sizes])
        self.comm = type("Comm", (), {"allgather": staticmethod(lambda value: next(answers))})()


def test_local_rank_from_the_split_or_from_the_launcher(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert rendezvous._local_rank(FakeNode(1, [-1, -1, -1], [-1, -1, -1])) == (1, 3)
    monkeypatch.setenv("LOCAL_RANK", "2")  # a launcher's own numbering is kept
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")
    assert rendezvous._local_rank(FakeNode(0, [2, 0, 1], [3, 3, 3])) == (2, 3)
    with pytest.raises(RuntimeError, match=r"LOCAL_RANK environment variables do not number the 3 ranks .*"
                                           r"local rank 1: LOCAL_RANK=unset"):
        rendezvous._local_rank(FakeNode(0, [2, -1, 1], [3, 3, 3]))
    with pytest.raises(RuntimeError, match=r"LOCAL_WORLD_SIZE does not match the 3 ranks .*\[3, 4, 3\]"):
        rendezvous._local_rank(FakeNode(0, [2, 0, 1], [3, 4, 3]))


def test_barrier_with_its_own_timeout(world):
    dist.barrier(timeout=datetime.timedelta(seconds=30))
    assert dist.barrier(timeout=30, async_op=True).wait()
    assert world.inflight is None
