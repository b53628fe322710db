"""dtorch.testing.assert_close agrees with torch.testing.assert_close on what passes and what fails."""

import numpy as np
import pytest
import torch

import dtorch

CASES = [
    ([1.0, 2.0], [1.0, 2.0 + 1e-6], {}),
    ([1.0, 2.0], [1.0, 2.001], {}),
    ([1.0, 2.0], [1.0, 2.001], {"atol": 0.01, "rtol": 0.0}),
    ([1.0, float("nan")], [1.0, float("nan")], {}),
    ([1.0, float("nan")], [1.0, float("nan")], {"equal_nan": True}),
    ([1, 2], [1, 3], {}),
    ([1, 2], [1, 2], {}),
]


@pytest.mark.parametrize("actual, expected, options", CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_passes_and_fails_like_torch(actual, expected, options, dtype):
    integer = isinstance(actual[0], int)
    outcomes = []
    for lib in (dtorch, torch):
        kind = lib.int64 if integer else getattr(lib, dtype)
        try:
            lib.testing.assert_close(lib.tensor(actual, dtype=kind), lib.tensor(expected, dtype=kind), **options)
            outcomes.append("pass")
        except AssertionError:
            outcomes.append("fail")
    assert outcomes[0] == outcomes[1]


def test_messages_name_the_problem():
    with pytest.raises(AssertionError, match="Mismatched elements: 1 / 2"):
        dtorch.testing.assert_close(dtorch.tensor([1.0, 2.0]), dtorch.tensor([1.0, 3.0]))
    with pytest.raises(AssertionError, match="'shape' do not match"):
        dtorch.testing.assert_close(dtorch.ones(2), dtorch.ones(3))
    with pytest.raises(AssertionError, match="'dtype' do not match"):
        dtorch.testing.assert_close(dtorch.ones(2), dtorch.ones(2, dtype=dtorch.float64))
    dtorch.testing.assert_close({"a": [dtorch.ones(1)]}, {"a": [dtorch.ones(1)]})
    with pytest.raises(AssertionError, match="keys"):
        dtorch.testing.assert_close({"a": 1}, {"b": 1})
    dtorch.testing.assert_close(dtorch.ones(2), np.ones(2, np.float32))
