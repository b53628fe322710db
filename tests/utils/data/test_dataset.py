"""Datasets and random_split, checked against torch.utils.data where the result is deterministic."""
import numpy as np
import pytest
import torch.utils.data as tud

import dtorch
from dtorch.utils.data import (ChainDataset, ConcatDataset, Dataset, IterableDataset, StackDataset, Subset,
                               TensorDataset, random_split)


class Range(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return i


class Stream(IterableDataset):
    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)


def test_tensor_dataset_rows_and_length():
    x = np.arange(12).reshape(6, 2)
    ds = TensorDataset(x, np.arange(6))
    assert len(ds) == 6
    row, label = ds[4]
    assert row.tolist() == [8, 9] and int(label) == 4


def test_tensor_dataset_accepts_dtorch_tensors():
    ds = TensorDataset(dtorch.from_numpy(np.arange(6.0).reshape(3, 2)))
    assert len(ds) == 3 and ds[1][0].tolist() == [2.0, 3.0]


def test_tensor_dataset_size_mismatch_names_sizes():
    with pytest.raises(ValueError, match=r"\[3, 4\]"):
        TensorDataset(np.zeros(3), np.zeros(4))


def test_concat_matches_torch():
    parts = [list(range(3)), list(range(10, 12)), list(range(20, 24))]
    mine, ref = ConcatDataset(parts), tud.ConcatDataset(parts)
    assert len(mine) == len(ref) == 9
    assert mine.cumulative_sizes == ref.cumulative_sizes
    assert [mine[i] for i in range(-9, 9)] == [ref[i] for i in range(-9, 9)]
    with pytest.raises(ValueError):
        mine[-10]
    with pytest.raises(TypeError, match="IterableDataset"):
        ConcatDataset([Stream([1])])


def test_add_builds_concat_and_chain():
    assert isinstance(Range(2) + Range(3), ConcatDataset)
    assert len(Range(2) + Range(3)) == 5
    assert list(Stream([1, 2]) + Stream([3])) == [1, 2, 3]
    assert list(ChainDataset([Stream([1]), Stream([2, 3])])) == [1, 2, 3]


def test_subset_and_stack():
    sub = Subset(Range(10), [9, 2, 5])
    assert len(sub) == 3 and [sub[i] for i in range(3)] == [9, 2, 5]
    assert sub.__getitems__([0, 2]) == [9, 5]
    assert StackDataset(Range(3), Range(3))[2] == (2, 2)
    assert StackDataset(a=Range(2), b=["x", "y"])[1] == {"a": 1, "b": "y"}
    with pytest.raises(ValueError, match=r"\[2, 3\]"):
        StackDataset(Range(2), Range(3))


def test_random_split_lengths_fractions_and_cover():
    parts = random_split(Range(10), [3, 7], generator=dtorch.Generator().manual_seed(0))
    assert [len(p) for p in parts] == [3, 7]
    assert sorted(parts[0].indices + parts[1].indices) == list(range(10))
    # fractions: remainder dealt round-robin, as torch does
    for fractions in ([0.5, 0.5], [0.3, 0.3, 0.4], [0.1, 0.2, 0.7], [1 / 3] * 3):
        mine = [len(p) for p in random_split(Range(11), fractions)]
        ref = [len(p) for p in tud.random_split(range(11), fractions)]
        assert mine == ref, fractions


def test_random_split_reproducible_by_seed():
    def split(seed):
        dtorch.manual_seed(seed)
        return [p.indices for p in random_split(Range(20), [0.5, 0.5])]

    assert split(3) == split(3)
    assert split(3) != split(4)
    g1, g2 = dtorch.Generator().manual_seed(7), dtorch.Generator().manual_seed(7)
    assert random_split(Range(20), [5, 15], g1)[0].indices == random_split(Range(20), [5, 15], g2)[0].indices


def test_random_split_bad_lengths():
    with pytest.raises(ValueError, match="does not equal"):
        random_split(Range(5), [2, 2])
    with pytest.raises(ValueError):
        random_split(Range(5), [-1, 6])


@pytest.mark.parametrize("fractions", [[0.9, 0.05, 0.05], [0.25] * 4, [0.7, 0.3]])
def test_random_split_small_fractions_match_torch_and_warn(fractions):
    import warnings

    def run(fn):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lengths = [len(p) for p in fn(Range(2), fractions)]
        return lengths, [str(w.message) for w in caught]

    assert run(random_split) == run(tud.random_split)


def test_random_split_fractions_not_summing_to_one_are_refused():
    with pytest.raises(ValueError):
        random_split(Range(2), [0.5, 0.6])
    with pytest.raises(ValueError):
        tud.random_split(range(2), [0.5, 0.6])
