"""DistributedSampler: torch's indices exactly without shuffle; properties with shuffle."""
import pytest
import torch.utils.data as tud

from dtorch.utils.data import DistributedSampler

CASES = [(n, r) for n in (0, 1, 5, 7, 10, 16, 17) for r in (1, 2, 3, 4, 8)]


@pytest.mark.parametrize("n,replicas", CASES)
@pytest.mark.parametrize("drop_last", [False, True])
def test_unshuffled_indices_equal_torch(n, replicas, drop_last):
    data = list(range(n))
    for rank in range(replicas):
        mine = DistributedSampler(data, replicas, rank, shuffle=False, drop_last=drop_last)
        ref = tud.DistributedSampler(data, replicas, rank, shuffle=False, drop_last=drop_last)
        assert list(mine) == list(ref), (n, replicas, rank, drop_last)
        assert len(mine) == len(ref) == mine.num_samples and mine.total_size == ref.total_size


def _shares(n, replicas, epoch, seed=0, drop_last=False):
    shares = []
    for rank in range(replicas):
        sampler = DistributedSampler(range(n), replicas, rank, shuffle=True, seed=seed, drop_last=drop_last)
        sampler.set_epoch(epoch)
        shares.append(list(sampler))
    return shares


@pytest.mark.parametrize("n,replicas", [(20, 4), (23, 4), (7, 3), (100, 8)])
def test_shuffled_shares_disjoint_covering_equal(n, replicas):
    shares = _shares(n, replicas, epoch=1)
    sizes = {len(s) for s in shares}
    assert len(sizes) == 1
    flat = [i for s in shares for i in s]
    assert set(flat) == set(range(n))
    assert len(flat) - len(set(flat)) == (-n) % replicas  # only the padding repeats
    dropped = _shares(n, replicas, epoch=1, drop_last=True)
    flat = [i for s in dropped for i in s]
    assert len(flat) == len(set(flat)) == n - n % replicas


def test_shuffled_ranks_view_one_permutation_and_epoch_changes_it():
    n, replicas = 40, 4
    shares = _shares(n, replicas, epoch=3)
    permutation = [shares[i % replicas][i // replicas] for i in range(n)]  # undo the interleaving
    assert sorted(permutation) == list(range(n))
    again = _shares(n, replicas, epoch=3)
    assert again == shares
    assert _shares(n, replicas, epoch=4) != shares
    assert _shares(n, replicas, epoch=3, seed=1) != shares


def test_defaults_fall_back_to_a_world_of_one():
    sampler = DistributedSampler(range(5), shuffle=False)
    assert (sampler.num_replicas, sampler.rank) == (1, 0)
    assert list(sampler) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("rank", [-1, 2, 5])
def test_bad_rank_names_the_interval(rank):
    with pytest.raises(ValueError, match=r"Invalid rank .*\[0, 1\]"):
        DistributedSampler(range(5), num_replicas=2, rank=rank)


def test_defaults_come_from_an_initialised_process_group(monkeypatch):
    import dtorch.distributed as dist

    # a default group of 4 ranks, as this process (rank 3) would see it
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 4)
    monkeypatch.setattr(dist, "get_rank", lambda: 3)
    sampler = DistributedSampler(range(10), shuffle=False)
    assert (sampler.num_replicas, sampler.rank) == (4, 3)
    assert list(sampler) == list(tud.DistributedSampler(range(10), 4, 3, shuffle=False))
    assert DistributedSampler(range(10), num_replicas=2, rank=0).num_replicas == 2  # explicit values win


@pytest.mark.parametrize("n,replicas", [(10, 4), (3, 8), (9, 3), (1, 2)])
def test_shuffled_padding_repeats_the_front_of_the_permutation(n, replicas):
    shares = _shares(n, replicas, epoch=2, seed=7)
    total = len(shares[0]) * replicas
    order = [shares[i % replicas][i // replicas] for i in range(total)]  # undo the interleaving
    permutation = order[:n]
    assert sorted(permutation) == list(range(n))
    assert order[n:] == (permutation * (total // n + 1))[: total - n]  # padding cycles from the front, as torch


def test_set_epoch_only_matters_with_shuffle():
    sampler = DistributedSampler(range(12), num_replicas=3, rank=1, shuffle=False)
    before = list(sampler)
    sampler.set_epoch(5)
    assert list(sampler) == before == [1, 4, 7, 10]
    shuffled = DistributedSampler(range(12), num_replicas=3, rank=1, shuffle=True, seed=0)
    orders = []
    for epoch in range(3):
        shuffled.set_epoch(epoch)
        orders.append(list(shuffled))
        assert list(shuffled) == orders[-1]  # iterating twice within an epoch repeats it
    assert len({tuple(o) for o in orders}) == 3


@pytest.mark.parametrize("variable", ["WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE"])
def test_world_of_one_under_a_launcher_warns(monkeypatch, variable):
    import warnings

    for name in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DistributedSampler(range(4))  # a plain single process: silent
        monkeypatch.setenv(variable, "1")
        DistributedSampler(range(4))
    monkeypatch.setenv(variable, "4")
    with pytest.warns(RuntimeWarning, match="launcher started 4 processes"):
        sampler = DistributedSampler(range(4))
    assert (sampler.num_replicas, sampler.rank) == (1, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DistributedSampler(range(4), num_replicas=4, rank=2)  # explicit values: nothing to warn about


def test_sharded_dataset_warns_too(monkeypatch, tmp_path):
    import numpy as np

    from dtorch.utils.data import ShardedDataset, write_shards

    write_shards(tmp_path, np.arange(4), samples_per_shard=2)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.warns(RuntimeWarning, match="ShardedDataset: dtorch.distributed is not initialised"):
        ShardedDataset(tmp_path)
