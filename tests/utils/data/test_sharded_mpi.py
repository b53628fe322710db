"""The sharded dataset on real ranks: run under
``timeout 300 mpiexec -n 2 python -m mpi4py -m pytest --with-mpi tests/utils`` (and ``-n 4``). Rank and size come
from mpi4py directly, so these tests do not depend on dtorch.distributed. Skipped by plain serial pytest."""
import os
import tempfile

import numpy as np
import pytest

from dtorch.utils.data import DataLoader, DistributedSampler, ShardedDataset, write_shards

pytestmark = [pytest.mark.mpi(min_size=2), pytest.mark.timeout(120)]

N = 250


@pytest.fixture(scope="module")
def comm():
    from mpi4py import MPI

    return MPI.COMM_WORLD


@pytest.fixture(scope="module")
def root(comm):
    path = tempfile.mkdtemp(prefix="dtorch-shards-") if comm.rank == 0 else None
    path = comm.bcast(path, root=0)
    if comm.rank == 0:
        write_shards(path, {"x": np.arange(N * 4, dtype=np.float32).reshape(N, 4), "y": np.arange(N)},
                     samples_per_shard=16)
    comm.Barrier()
    yield path
    comm.Barrier()
    if comm.rank == 0:
        for name in os.listdir(path):
            os.unlink(os.path.join(path, name))
        os.rmdir(path)


def gathered_ids(comm, root, epoch, drop_last, workers, batch_size=8):
    ds = ShardedDataset(root, batch_size=batch_size, shuffle=True, seed=3, shuffle_buffer=32, drop_last=drop_last,
                        num_replicas=comm.size, rank=comm.rank)
    ds.set_epoch(epoch)
    loader = DataLoader(ds, batch_size=batch_size, num_workers=workers)
    batches = [b[1].tolist() for b in loader]
    return comm.allgather((len(batches), sum(batches, [])))


@pytest.mark.parametrize("drop_last", [False, True])
def test_ranks_disjoint_covering_equal_batches(comm, root, drop_last):
    per_rank = gathered_ids(comm, root, epoch=0, drop_last=drop_last, workers=0)
    counts = {n for n, _ in per_rank}
    assert len(counts) == 1  # equal batch counts: DDP would hang otherwise
    assert len({len(ids) for _, ids in per_rank}) == 1
    flat = [i for _, ids in per_rank for i in ids]
    if drop_last:
        assert len(flat) == len(set(flat)) == N - N % comm.size
    else:
        assert set(flat) == set(range(N)) and len(flat) == N + (-N) % comm.size


def test_workers_do_not_change_the_split(comm, root):
    assert gathered_ids(comm, root, 1, False, workers=2) == gathered_ids(comm, root, 1, False, workers=0)


def test_epochs_differ_and_repeat(comm, root):
    first = gathered_ids(comm, root, 0, True, workers=0)
    assert gathered_ids(comm, root, 0, True, workers=0) == first
    assert gathered_ids(comm, root, 1, True, workers=0) != first


def test_distributed_sampler_on_real_ranks(comm):
    sampler = DistributedSampler(range(N), num_replicas=comm.size, rank=comm.rank, seed=5)
    sampler.set_epoch(2)
    shares = comm.allgather(list(sampler))
    assert len({len(s) for s in shares}) == 1
    assert set().union(*map(set, shares)) == set(range(N))
