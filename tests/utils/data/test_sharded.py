"""Sharded .npy datasets in one process: writer round trip, the per-rank split simulated for several world
sizes, shuffle determinism, resumption, workers, and batched reads. The real multi-rank runs are in
test_sharded_mpi.py."""
import json
import os

import numpy as np
import pytest

from dtorch.utils.data import DataLoader, ShardedDataset, ShardWriter, write_shards

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def shards(tmp_path):
    n = 103
    x = np.arange(n * 6, dtype=np.float32).reshape(n, 2, 3)
    y = np.arange(n, dtype=np.int64)
    write_shards(tmp_path, {"x": x, "y": y}, samples_per_shard=10)
    return tmp_path, x, y


def ids(dataset):
    return [int(sample[1]) for sample in dataset]


def test_writer_layout_and_round_trip(shards):
    root, x, y = shards
    index = json.loads((root / "index.json").read_text())
    assert index["num_samples"] == 103 and len(index["shards"]) == 11
    assert [f["name"] for f in index["fields"]] == ["x", "y"]
    assert index["shards"][-1]["num_samples"] == 3
    ds = ShardedDataset(root)
    assert len(ds) == 103
    samples = list(ds)
    assert all(np.array_equal(s[0], x[i]) and int(s[1]) == i for i, s in enumerate(samples))


def test_writer_streams_batches_and_checks_fields(tmp_path):
    with ShardWriter(tmp_path, samples_per_shard=4) as writer:
        for start in range(0, 10, 3):
            writer.write(np.arange(start, min(start + 3, 10)))
    assert [int(v) for v in ShardedDataset(tmp_path)] == list(range(10))
    writer = ShardWriter(tmp_path / "b", samples_per_shard=4)
    writer.write(a=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="differ"):
        writer.write(a=np.zeros((2, 4)))
    with pytest.raises(ValueError, match="same number of samples"):
        writer.write(a=np.zeros((2, 3)), b=np.zeros(3))
    with pytest.raises(ValueError, match="samples_per_shard"):
        ShardWriter(tmp_path / "c", samples_per_shard=0)


def test_npz_shards(tmp_path):
    write_shards(tmp_path, (np.arange(7), np.arange(7) * 2), samples_per_shard=3, format="npz")
    assert [(int(a), int(b)) for a, b in ShardedDataset(tmp_path)] == [(i, 2 * i) for i in range(7)]


def test_shards_are_memory_mapped(shards):
    root, _, _ = shards
    ds = ShardedDataset(root)
    next(iter(ds))
    assert list(ds._open) == [0]  # only the shard that was read is open
    assert isinstance(ds._open[0][0].base, np.memmap) and not ds._open[0][0].flags.writeable


@pytest.mark.parametrize("world", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("shuffle", [False, True])
def test_rank_split_disjoint_covering_equal(shards, world, drop_last, shuffle):
    root, _, _ = shards
    parts = [ids(ShardedDataset(root, num_replicas=world, rank=r, shuffle=shuffle, drop_last=drop_last,
                                shuffle_buffer=16)) for r in range(world)]
    assert len({len(p) for p in parts}) == 1
    flat = [i for p in parts for i in p]
    if drop_last:
        assert len(flat) == len(set(flat)) == 103 - 103 % world
    else:
        assert set(flat) == set(range(103)) and len(flat) - 103 == (-103) % world


def test_rank_reads_only_its_shards(shards):
    root, _, _ = shards
    touched = []
    for rank in range(4):
        ds = ShardedDataset(root, num_replicas=4, rank=rank, drop_last=True)
        list(ds)
        touched.append(set(ds._open))
    for rank in range(4):
        others = set().union(*(touched[r] for r in range(4) if r != rank))
        assert len(touched[rank] & others) <= 2  # at most the shards at the two ends of its range are shared


def test_shuffle_is_deterministic_per_epoch(shards):
    root, _, _ = shards

    def order(epoch, seed=0):
        ds = ShardedDataset(root, shuffle=True, seed=seed, shuffle_buffer=20)
        ds.set_epoch(epoch)
        return ids(ds)

    assert order(0) == order(0) and sorted(order(0)) == list(range(103))
    assert order(0) != order(1) and order(0) != order(0, seed=1)
    assert order(0) != list(range(103))


def test_resume_from_offset(shards):
    root, _, _ = shards
    full = ids(ShardedDataset(root, num_replicas=2, rank=1, shuffle=True))
    resumed = ShardedDataset(root, num_replicas=2, rank=1, shuffle=True, start_offset=20)
    assert len(resumed) == len(full) - 20 and ids(resumed) == full[20:]
    with pytest.raises(ValueError, match="start_offset"):
        resumed.set_offset(10_000)


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_loader_order_independent_of_workers(shards, workers):
    root, _, _ = shards
    expected = ids(ShardedDataset(root, num_replicas=2, rank=0, shuffle=True, batch_size=8))
    ds = ShardedDataset(root, num_replicas=2, rank=0, shuffle=True, batch_size=8)
    loader = DataLoader(ds, batch_size=8, num_workers=workers)
    batches = [b[1].tolist() for b in loader]
    assert sum(batches, []) == expected
    assert len(batches) == len(loader) == -(-52 // 8)


def test_batched_reads_match_samples(shards):
    root, x, _ = shards
    ds = ShardedDataset(root, num_replicas=3, rank=2, shuffle=True, batch_size=7, batched=True)
    expected = ids(ShardedDataset(root, num_replicas=3, rank=2, shuffle=True, batch_size=7))
    batches = list(DataLoader(ds, batch_size=None, num_workers=2))
    assert len(batches) == len(ds)
    got = sum((b[1].tolist() for b in batches), [])
    assert got == expected
    assert all(np.array_equal(b[0].numpy(), x[b[1].numpy()]) for b in batches)


def test_bad_arguments(shards, tmp_path):
    root, _, _ = shards
    with pytest.raises(ValueError, match=r"Invalid rank 2"):
        ShardedDataset(root, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="batch_size"):
        ShardedDataset(root, batch_size=0)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "index.json").write_text(json.dumps({"format": "something"}))
    with pytest.raises(ValueError, match="not a dtorch shard index"):
        ShardedDataset(tmp_path / "other")
    assert not os.path.exists(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        ShardedDataset(tmp_path / "missing")


def test_pickled_dataset_leaves_memory_maps_behind(shards):
    import pickle

    root, _, _ = shards
    ds = ShardedDataset(root)
    list(ds)
    assert len(ds._open) == 11
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._open == {} and len(pickle.dumps(ds)) < 10_000
    assert ids(clone) == list(range(103))


def test_transform_applies_to_samples_and_batches(shards):
    root, x, _ = shards
    ds = ShardedDataset(root, transform=lambda s: (s[0].astype(np.float64) * 2, int(s[1])))
    first = next(iter(ds))
    assert first[0].dtype == np.float64 and np.array_equal(first[0], x[0] * 2) and first[1] == 0
    batched = ShardedDataset(root, batch_size=5, batched=True, transform=lambda b: b[1].sum())
    assert next(iter(batched)) == 0 + 1 + 2 + 3 + 4


def test_mismatched_loader_batch_size_keeps_split_and_counts(shards):
    root, _, _ = shards
    per_rank = []
    for rank in range(3):
        ds = ShardedDataset(root, batch_size=8, num_replicas=3, rank=rank, shuffle=True)
        per_rank.append([b[1].tolist() for b in DataLoader(ds, batch_size=5, num_workers=2)])
    assert len({len(batches) for batches in per_rank}) == 1
    flat = [i for batches in per_rank for b in batches for i in b]
    assert set(flat) == set(range(103)) and len(flat) == 105


def test_set_epoch_and_offset_reach_persistent_workers(shards):
    root, _, _ = shards

    def expected(epoch, offset=0):
        ds = ShardedDataset(root, num_replicas=2, rank=1, shuffle=True, batch_size=8, start_offset=offset)
        ds.set_epoch(epoch)
        return ids(ds)

    ds = ShardedDataset(root, num_replicas=2, rank=1, shuffle=True, batch_size=8)
    loader = DataLoader(ds, batch_size=8, num_workers=2, persistent_workers=True)
    seen = []
    for epoch in range(3):
        ds.set_epoch(epoch)
        seen.append(sum((b[1].tolist() for b in loader), []))
        assert seen[-1] == expected(epoch), epoch
    assert seen[0] != seen[1] != seen[2]
    ds.set_epoch(4)
    ds.set_offset(16)
    assert sum((b[1].tolist() for b in loader), []) == expected(4, 16)
    workers = loader._iterator._workers
    assert len(workers) == 2 and all(w.is_alive() for w in workers)  # the same processes served every epoch
