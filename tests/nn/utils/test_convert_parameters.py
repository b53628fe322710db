"""parameters_to_vector / vector_to_parameters against PyTorch."""

import numpy as np
import pytest
import torch

import dtorch
import dtorch.nn
from dtorch.nn.utils import parameters_to_vector, vector_to_parameters
from dtorch.tensor import Tensor

SHAPES = [(3, 4), (5,), (2, 1, 3), ()]


def params():
    rng = np.random.default_rng(0)
    values = [np.asarray(rng.standard_normal(s), dtype=np.float32) for s in SHAPES]
    return ([dtorch.nn.Parameter(Tensor._from_array(v.copy(), None)) for v in values],
            [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in values])


def test_parameters_to_vector_matches_torch():
    ours, theirs = params()
    vec = parameters_to_vector(ours)
    expected = torch.nn.utils.parameters_to_vector(theirs)
    assert vec.shape == tuple(expected.shape)
    np.testing.assert_array_equal(vec._array, expected.detach().numpy())
    vec._array[0] = 100.0
    assert ours[0]._array[0, 0] != 100.0, "a copy"


def test_parameters_to_vector_is_differentiable():
    ours, _ = params()
    vec = parameters_to_vector(ours)
    assert vec.requires_grad
    (vec * vec).sum().backward()
    for p in ours:
        np.testing.assert_allclose(p.grad._array, 2 * p._array)


def test_vector_to_parameters_round_trip_in_place():
    ours, theirs = params()
    arrays = [p._array for p in ours]
    source = np.arange(sum(max(1, int(np.prod(s))) for s in SHAPES), dtype=np.float32)
    vector_to_parameters(Tensor._from_array(source.copy(), None), ours)
    torch.nn.utils.vector_to_parameters(torch.from_numpy(source.copy()), theirs)
    for p, q, a in zip(ours, theirs, arrays):
        np.testing.assert_array_equal(p._array, q.detach().numpy())
        assert p._array is a
    np.testing.assert_array_equal(parameters_to_vector(ours)._array, source)


def test_vector_to_parameters_checks():
    ours, _ = params()
    with pytest.raises(TypeError, match="expected torch.Tensor, but got: ndarray"):
        vector_to_parameters(np.zeros(3), ours)
    with pytest.raises(RuntimeError, match="too short"):
        vector_to_parameters(Tensor._from_array(np.zeros(3, np.float32), None), ours)
