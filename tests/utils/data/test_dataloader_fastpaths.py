"""Batched fetching: ``__getitems__`` (PyTorch's protocol), TensorDataset's and Subset's one gather per batch, the
collate fast path for stacked batches, and ShardedDataset's batch gathers, each held equal to the reference path
(sample by sample, then ``default_collate``)."""
import numpy as np
import pytest

import dtorch
from dtorch.utils.data import (DataLoader, Dataset, ShardedDataset, Subset, TensorDataset, default_collate,
                               write_shards)
from dtorch.utils.data.dataloader import _CollateStacked
from dtorch.utils.data.dataset import StackedSamples


def assert_same_batch(a, b):
    """Equal structure, types, dtypes, shapes and values."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, dtorch.Tensor):
        assert a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape)
        assert a.requires_grad == b.requires_grad
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    elif isinstance(a, np.ndarray) or isinstance(a, np.generic):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_batch(x, y)
    else:
        assert a == b


class Reference(Dataset):
    """The same samples without ``__getitems__``: the DataLoader fetches them one by one (the reference path)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        return self.dataset[i]


def datasets():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3, 4)).astype(np.float32)
    y = rng.integers(0, 10, 40)
    return {
        "tensors": TensorDataset(dtorch.from_numpy(x), dtorch.from_numpy(y)),
        "arrays": TensorDataset(x, y),
        "mixed": TensorDataset(dtorch.from_numpy(x.reshape(40, 12)), y.astype(np.int32), rng.random(40) > 0.5),
        "one": TensorDataset(dtorch.from_numpy(x[:, 0, 0].astype(np.float64))),
    }


@pytest.mark.parametrize("name", list(datasets()))
@pytest.mark.parametrize("indices", [[3, 1, 4, 1, 5, 9, 2, 6], [0], list(range(40)), [39, -1, -40]])
def test_tensor_dataset_getitems_is_one_gather_equal_to_samples(name, indices):
    ds = datasets()[name]
    batch = ds.__getitems__(indices)
    assert type(batch) is StackedSamples and len(batch) == len(indices)
    samples = [ds[i] for i in indices]
    assert_same_batch(list(batch), samples)
    assert_same_batch(batch[1:3], samples[1:3])
    # the collate fast path gives what default_collate gives for the samples one by one
    assert_same_batch(_CollateStacked(default_collate)(batch), default_collate(samples))
    assert_same_batch(batch.collate(), default_collate(samples))


def test_getitems_falls_back_to_samples_where_a_gather_would_differ():
    w = dtorch.randn(5, 2, requires_grad=True)
    ds = TensorDataset(w, dtorch.arange(5))
    batch = ds.__getitems__([0, 2])
    assert type(batch) is list and batch[0][0].grad_fn is not None
    strings = TensorDataset(np.array(["a", "b", "c"]))
    assert type(strings.__getitems__([0, 1])) is list
    assert ds.__getitems__([]) == []
    with pytest.raises(IndexError):
        TensorDataset(np.zeros((3, 2))).__getitems__([0, 3])


@pytest.mark.parametrize("name", list(datasets()))
@pytest.mark.parametrize("workers", [0, 2])
def test_loader_epochs_equal_the_reference_path(name, workers):
    ds = datasets()[name]
    for kwargs in (dict(batch_size=7, shuffle=True), dict(batch_size=8, drop_last=True), dict(batch_size=64)):
        fast = DataLoader(ds, num_workers=workers, generator=dtorch.Generator().manual_seed(1), **kwargs)
        ref = DataLoader(Reference(ds), num_workers=workers, generator=dtorch.Generator().manual_seed(1), **kwargs)
        got, want = list(fast), list(ref)
        assert len(got) == len(want) == len(fast)
        for a, b in zip(got, want):
            assert_same_batch(a, b)


def test_the_collate_step_pickles_for_spawned_workers():
    import pickle

    step = pickle.loads(pickle.dumps(_CollateStacked(default_collate)))
    batch = datasets()["arrays"].__getitems__([1, 2])
    assert step.collate_fn is default_collate
    assert_same_batch(step(batch), default_collate(list(batch)))


@pytest.mark.parametrize("context", ["spawn"])
def test_spawned_workers_take_the_fast_path_too(context):
    ds = datasets()["arrays"]
    fast = DataLoader(ds, batch_size=16, num_workers=1, multiprocessing_context=context)
    for a, b in zip(fast, DataLoader(Reference(ds), batch_size=16)):
        assert_same_batch(a, b)


def test_a_custom_collate_fn_gets_a_list_of_samples():
    ds = datasets()["tensors"]
    seen = []

    def collate(batch):
        seen.append(batch)
        return len(batch)

    for workers in (0, 1):
        assert list(DataLoader(ds, batch_size=16, collate_fn=collate, num_workers=workers)) == [16, 16, 8]
    assert type(seen[0]) is list and type(seen[0][0]) is tuple
    assert_same_batch(seen[0], [ds[i] for i in range(16)])


@pytest.mark.parametrize("indices", [list(range(39, -1, -2)), np.arange(0, 40, 3), dtorch.arange(5, 25)])
def test_subset_gathers_through_its_dataset(indices):
    ds = datasets()["tensors"]
    sub = Subset(ds, indices)
    batch = sub.__getitems__([4, 0, 2])
    assert type(batch) is StackedSamples
    assert_same_batch(list(batch), [sub[i] for i in (4, 0, 2)])
    fast = DataLoader(sub, batch_size=5, shuffle=True, generator=dtorch.Generator().manual_seed(2))
    ref = DataLoader(Reference(sub), batch_size=5, shuffle=True, generator=dtorch.Generator().manual_seed(2))
    for a, b in zip(fast, ref):
        assert_same_batch(a, b)


def test_the_fetcher_calls_getitems_of_any_dataset():
    """PyTorch's protocol: a dataset with __getitems__ gets one call per batch with the batch's indices."""
    calls = []

    class Batched(Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            raise AssertionError("fetched one by one")

        def __getitems__(self, indices):
            calls.append(list(indices))
            return [i * 10 for i in indices]

    out = [b.tolist() for b in DataLoader(Batched(), batch_size=4)]
    assert out == [[0, 10, 20, 30], [40, 50, 60, 70], [80, 90]]
    assert calls == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


# ---- ShardedDataset --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    rng = np.random.default_rng(0)
    roots = {}
    for fmt in ("npy", "npz"):
        root = tmp_path_factory.mktemp(f"shards-{fmt}")
        write_shards(root, {"x": rng.integers(0, 255, (103, 2, 3), dtype=np.uint8), "y": np.arange(103),
                            "w": rng.random((103, 4)).astype(np.float32)}, samples_per_shard=16, format=fmt)
        roots[fmt] = root
    single = tmp_path_factory.mktemp("shards-single")
    write_shards(single, np.arange(50, dtype=np.float64).reshape(25, 2), samples_per_shard=7)
    roots["single"] = single
    return roots


def sample_collate(batch):
    """default_collate behind another function object: the loader then takes the sample-by-sample path."""
    return default_collate(batch)


@pytest.mark.parametrize("fmt", ["npy", "npz", "single"])
@pytest.mark.parametrize("options", [
    dict(ds_batch=8, batch_size=8), dict(ds_batch=8, batch_size=5), dict(ds_batch=8, batch_size=8, drop_last=True),
    dict(ds_batch=16, batch_size=16, shuffle=True, shuffle_buffer=20), dict(ds_batch=4, batch_size=4, start_offset=9),
    dict(ds_batch=8, batch_size=8, num_replicas=3, rank=1, shuffle=True),
])
def test_sharded_batches_equal_collated_samples(shards, fmt, options):
    options = dict(options)
    ds_batch, batch_size = options.pop("ds_batch"), options.pop("batch_size")
    drop_last = options.pop("drop_last", False)
    num_replicas, rank = options.pop("num_replicas", 1), options.pop("rank", 0)

    def make():
        ds = ShardedDataset(shards[fmt], batch_size=ds_batch, num_replicas=num_replicas, rank=rank, **options)
        ds.set_epoch(3)
        return ds

    fast = DataLoader(make(), batch_size=batch_size, drop_last=drop_last)
    assert iter(fast)._batches is not None, "the batch-gather path is taken"
    ref = DataLoader(make(), batch_size=batch_size, drop_last=drop_last, collate_fn=sample_collate)
    assert iter(ref)._batches is None
    got, want = list(fast), list(ref)
    assert len(got) == len(want) > 0
    for a, b in zip(got, want):
        assert_same_batch(a, b)


def test_sharded_fast_path_steps_aside_for_transforms_and_batched_mode(shards):
    ds = ShardedDataset(shards["npy"], batch_size=8, transform=lambda s: s[1])
    loader = DataLoader(ds, batch_size=8)
    assert iter(loader)._batches is None
    assert list(loader)[0].tolist() == list(range(8))
    batched = ShardedDataset(shards["npy"], batch_size=8, batched=True)
    assert iter(DataLoader(batched, batch_size=None))._batches is None
