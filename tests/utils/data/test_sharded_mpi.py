"""The sharded dataset and DistributedSampler on real ranks: run under
``timeout 600 mpiexec -n 2 python -m mpi4py -m pytest --with-mpi -m mpi tests/utils`` (and ``-n 4``). Rank and
size come from mpi4py directly; only the last test uses dtorch.distributed (a default process group it makes and
destroys), for the defaults and a DDP-style epoch with forked workers. Skipped by plain serial pytest."""
import os
import tempfile

import numpy as np
import pytest

import dtorch
from dtorch.utils.data import DataLoader, DistributedSampler, ShardedDataset, TensorDataset, write_shards

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


def test_resume_mid_epoch_on_real_ranks(comm, root):
    """Every rank resumes after the same number of batches and gets exactly the rest of its epoch."""
    batch, done = 8, 3

    def batches(offset):
        ds = ShardedDataset(root, batch_size=batch, shuffle=True, seed=9, num_replicas=comm.size, rank=comm.rank,
                            start_offset=offset)
        ds.set_epoch(4)
        return [b[1].tolist() for b in DataLoader(ds, batch_size=batch, num_workers=2)]

    full, resumed = batches(0), batches(done * batch)
    assert resumed == full[done:]
    assert len(set(comm.allgather(len(resumed)))) == 1


def test_defaults_come_from_the_process_group(comm, root):
    import dtorch.distributed as dist

    created = not dist.is_initialized()
    if created:
        dist.init_process_group("mpi", timeout=60)
    try:
        assert (dist.get_world_size(), dist.get_rank()) == (comm.size, comm.rank)
        sampler = DistributedSampler(range(N), shuffle=False)
        assert (sampler.num_replicas, sampler.rank) == (comm.size, comm.rank)
        import torch.utils.data as tud

        assert list(sampler) == list(tud.DistributedSampler(range(N), comm.size, comm.rank, shuffle=False))
        ds = ShardedDataset(root)
        assert (ds.num_replicas, ds.rank) == (comm.size, comm.rank)
        assert list(ds.rank_order()) == list(ShardedDataset(root, num_replicas=comm.size, rank=comm.rank).rank_order())
        # a DDP-style epoch: forked workers while the group's threads run, then a collective on the same group
        data = TensorDataset(np.arange(N * 3, dtype=np.float32).reshape(N, 3), np.arange(N))
        sampler = DistributedSampler(data, seed=1)
        sampler.set_epoch(1)
        ids = [b[1].tolist() for b in DataLoader(data, batch_size=16, sampler=sampler, num_workers=2)]
        counts = dtorch.from_numpy(np.array([float(len(ids))]))
        dist.all_reduce(counts)
        assert counts.item() == comm.size * len(ids)  # every rank has the same number of batches
        everything = comm.allgather(sum(ids, []))
        assert set().union(*map(set, everything)) == set(range(N))
    finally:
        if created:
            dist.destroy_process_group()
