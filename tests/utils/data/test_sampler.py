"""Samplers: torch's deterministic samplers as the oracle, properties for the random ones."""
import collections
import itertools

import numpy as np
import pytest
import torch.utils.data as tud

import dtorch
from dtorch.utils.data import (BatchSampler, RandomSampler, SequentialSampler, SubsetRandomSampler,
                               WeightedRandomSampler)


def test_sequential_and_batch_match_torch():
    data = list(range(11))
    assert list(SequentialSampler(data)) == list(tud.SequentialSampler(data))
    for size in (1, 3, 4, 11, 12):
        for drop in (False, True):
            mine = BatchSampler(SequentialSampler(data), size, drop)
            ref = tud.BatchSampler(tud.SequentialSampler(data), size, drop)
            assert list(mine) == list(ref) and len(mine) == len(ref), (size, drop)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_batch_sampler_checks_batch_size(bad):
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(range(3), bad, False)
    with pytest.raises(ValueError, match="drop_last"):
        BatchSampler(range(3), 2, "no")


def test_random_sampler_is_a_permutation_seeded_by_dtorch():
    dtorch.manual_seed(0)
    first = list(RandomSampler(range(50)))
    second = list(RandomSampler(range(50)))
    assert sorted(first) == list(range(50)) and first != second
    dtorch.manual_seed(0)
    assert list(RandomSampler(range(50))) == first
    g = dtorch.Generator().manual_seed(5)
    h = dtorch.Generator().manual_seed(5)
    assert list(RandomSampler(range(50), generator=g)) == list(RandomSampler(range(50), generator=h))


def test_random_sampler_num_samples_and_replacement():
    sampler = RandomSampler(range(5), num_samples=12)
    out = list(sampler)
    assert len(out) == len(sampler) == 12
    assert collections.Counter(out[:10]) == collections.Counter(list(range(5)) * 2)
    drawn = list(RandomSampler(range(3), replacement=True, num_samples=300))
    assert len(drawn) == 300 and set(drawn) == {0, 1, 2}
    with pytest.raises(ValueError, match="num_samples=0"):
        RandomSampler(range(3), num_samples=0)
    with pytest.raises(TypeError, match="replacement"):
        RandomSampler(range(3), replacement=1)


def test_subset_random_sampler():
    out = list(SubsetRandomSampler([4, 8, 15, 16]))
    assert sorted(out) == [4, 8, 15, 16]


def test_weighted_random_sampler():
    drawn = list(WeightedRandomSampler([0.0, 3.0, 1.0], 4000, generator=dtorch.Generator().manual_seed(1)))
    counts = collections.Counter(drawn)
    assert counts[0] == 0 and 2.5 < counts[1] / counts[2] < 3.5
    unique = list(WeightedRandomSampler([1, 1, 1, 0], 3, replacement=False))
    assert sorted(unique) == [0, 1, 2]
    with pytest.raises(RuntimeError):
        WeightedRandomSampler([1, 0], 2, replacement=False)
    with pytest.raises(ValueError, match="non-negative"):
        WeightedRandomSampler([1, -1], 2)


def test_random_sampler_generator_streams():
    g = dtorch.Generator().manual_seed(11)
    sampler = RandomSampler(range(30), generator=g)
    epoch1, epoch2 = list(sampler), list(sampler)
    assert sorted(epoch1) == sorted(epoch2) == list(range(30)) and epoch1 != epoch2  # the generator advances
    g.manual_seed(11)
    assert list(sampler) == epoch1
    drawn = [list(RandomSampler(range(7), replacement=True, num_samples=50,
                                generator=dtorch.Generator().manual_seed(2))) for _ in range(2)]
    assert drawn[0] == drawn[1] and len(set(drawn[0])) > 3 and all(0 <= i < 7 for i in drawn[0])
    assert len(RandomSampler(range(3), replacement=True)) == len(tud.RandomSampler(range(3), replacement=True)) == 3
    with pytest.raises(ValueError, match="num_samples=1.5"):
        RandomSampler(range(3), num_samples=1.5)


def test_random_sampler_without_replacement_repeats_whole_permutations():
    out = list(RandomSampler(range(4), num_samples=11, generator=dtorch.Generator().manual_seed(0)))
    assert [sorted(out[k:k + 4]) for k in (0, 4)] == [[0, 1, 2, 3]] * 2
    assert len(out) == 11 and len(set(out[8:])) == 3  # the tail is a prefix of a third permutation


def test_subset_random_sampler_generator_and_default_seed():
    indices = [3, 9, 27, 81, 243]
    a = list(SubsetRandomSampler(indices, generator=dtorch.Generator().manual_seed(4)))
    b = list(SubsetRandomSampler(indices, generator=dtorch.Generator().manual_seed(4)))
    assert a == b and sorted(a) == indices and len(SubsetRandomSampler(indices)) == 5
    dtorch.manual_seed(1)
    first = list(SubsetRandomSampler(list(range(40))))
    dtorch.manual_seed(1)
    assert list(SubsetRandomSampler(list(range(40)))) == first != list(range(40))


def test_weighted_random_sampler_options_and_checks():
    weights = dtorch.from_numpy(np.array([1.0, 2.0, 7.0]))  # a Tensor of weights, as in torch
    g = dtorch.Generator().manual_seed(3)
    first = list(WeightedRandomSampler(weights, 20, generator=g))
    assert first == list(WeightedRandomSampler(weights, 20, generator=dtorch.Generator().manual_seed(3)))
    assert len(WeightedRandomSampler(weights, 20)) == 20
    # without replacement: each draw is proportional to the remaining weights, so the first index of a draw is
    # 2 with probability 0.7 and a full draw is a permutation
    firsts = collections.Counter(next(iter(WeightedRandomSampler(weights, 3, replacement=False, generator=g)))
                                 for _ in range(2000))
    assert 0.65 < firsts[2] / 2000 < 0.75 and 0.05 < firsts[0] / 2000 < 0.15
    assert sorted(WeightedRandomSampler(weights, 3, replacement=False)) == [0, 1, 2]
    for kwargs in ({"weights": [[1.0, 2.0]], "num_samples": 2}, {"weights": [1.0, 2.0], "num_samples": 0},
                   {"weights": [1.0, 2.0], "num_samples": 2, "replacement": 1}):
        with pytest.raises(ValueError) as mine:
            WeightedRandomSampler(**kwargs)
        with pytest.raises(ValueError) as ref:
            tud.WeightedRandomSampler(**kwargs)
        assert str(mine.value) == str(ref.value)


def _peak_bytes(iterator, count):
    """Peak Python allocation while taking ``count`` items from ``iterator`` (tracemalloc)."""
    import tracemalloc

    tracemalloc.start()
    try:
        for _ in itertools.islice(iterator, count):
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("make", [
    lambda: RandomSampler(range(10), replacement=True, num_samples=int(1e10)),
    lambda: RandomSampler(range(10), num_samples=int(1e10)),
    lambda: WeightedRandomSampler([1.0, 2.0, 3.0], num_samples=int(1e10)),
    lambda: BatchSampler(RandomSampler(range(10), replacement=True, num_samples=int(1e10)), 64, False),
], ids=["random-replacement", "random-repeated-permutations", "weighted", "batched"])
def test_samplers_are_lazy_in_their_length(make):
    """minGPT's RandomSampler(ds, replacement=True, num_samples=int(1e10)): the length is known at once and
    iterating holds a chunk, not 10**10 indices (which would be 74.5 GiB)."""
    sampler = make()
    assert len(sampler) == (int(1e10) // 64 if isinstance(sampler, BatchSampler) else int(1e10))
    peak = _peak_bytes(iter(sampler), 50_000)
    assert peak < 2_000_000, f"{peak} bytes while drawing 50,000 indices"
    first = next(iter(sampler))
    assert (0 <= first < 10) if isinstance(first, int) else all(0 <= i < 10 for i in first)


def test_chunked_draws_keep_their_distribution_and_seed():
    g = dtorch.Generator().manual_seed(3)
    h = dtorch.Generator().manual_seed(3)
    a = list(RandomSampler(range(7), replacement=True, num_samples=10_000, generator=g))
    b = list(RandomSampler(range(7), replacement=True, num_samples=10_000, generator=h))
    assert a == b and len(a) == 10_000
    counts = collections.Counter(a)
    assert set(counts) == set(range(7)) and min(counts.values()) > 1200
    # the weighted sampler's chunked CDF lookup is NumPy's choice(p=...) drawn a chunk at a time: the same stream
    weights = np.array([0.5, 0.0, 2.0, 1.5])
    drawn = list(WeightedRandomSampler(weights, 9_000, generator=dtorch.Generator().manual_seed(4)))
    from dtorch.utils.data import _rng

    rng = _rng.numpy_generator(dtorch.Generator().manual_seed(4))
    assert drawn == rng.choice(4, size=9_000, p=weights / weights.sum()).tolist()
