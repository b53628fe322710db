"""Samplers: torch's deterministic samplers as the oracle, properties for the random ones."""
import collections

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
