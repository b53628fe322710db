"""Random sampling from dtorch's generators (``multinomial``, ``bernoulli``) against PyTorch's rules: shapes,
dtypes, replacement, statistics, and the same draws after the same seed."""

import numpy as np
import pytest

import dtorch


def test_multinomial_and_bernoulli():
    dtorch.manual_seed(0)
    probabilities = dtorch.tensor([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]])
    drawn = dtorch.multinomial(probabilities, 50, replacement=True)
    assert drawn.shape == (2, 50) and drawn.dtype == dtorch.int64
    assert (drawn[0] == 1).all() and set(drawn[1].tolist()) == {0, 2}
    without = dtorch.multinomial(dtorch.tensor([1.0, 2.0, 3.0, 4.0]), 4)
    assert sorted(without.tolist()) == [0, 1, 2, 3]
    frequencies = np.bincount(dtorch.multinomial(dtorch.tensor([1.0, 3.0]), 4000, True).numpy()) / 4000
    np.testing.assert_allclose(frequencies, [0.25, 0.75], atol=0.03)
    with pytest.raises(RuntimeError, match="cannot sample n_sample > prob_dist.size"):
        dtorch.multinomial(dtorch.tensor([0.5, 0.5]), 3)
    with pytest.raises(RuntimeError, match="probability tensor contains either"):
        dtorch.multinomial(dtorch.tensor([0.5, -1.0]), 1)
    dtorch.manual_seed(1)
    first = dtorch.bernoulli(dtorch.full((1000,), 0.3))
    dtorch.manual_seed(1)
    np.testing.assert_array_equal(first.numpy(), dtorch.bernoulli(dtorch.full((1000,), 0.3)).numpy())
    assert first.dtype == dtorch.float32 and abs(first.mean().item() - 0.3) < 0.05
    assert set(dtorch.bernoulli(dtorch.tensor([0.0, 1.0])).tolist()) == {0.0, 1.0}
