"""``dtorch.ops._util``: undoing broadcasting (``sum_to``), against PyTorch's ``sum_to_size``."""

import numpy as np
import pytest
import torch

import dtorch
from dtorch.ops._util import sum_to


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "grad_shape, shape",
    [
        ((2, 3), (2, 3)),  # nothing to undo
        ((2, 3), (3,)),  # a leading dimension added
        ((2, 3), (1, 3)),  # an extent-1 dimension broadcast
        ((4, 2, 3), (2, 1)),  # both
        ((4, 1, 3), (1, 1, 3)),
        ((2, 3), ()),  # a scalar operand
        ((0, 3), (3,)),  # empty
        ((0, 3), (0, 3)),
    ],
)
@pytest.mark.parametrize("shape_type", [tuple, list, dtorch.Size])
def test_sum_to_equals_torch_sum_to_size(dtype, grad_shape, shape, shape_type):
    grad = np.random.default_rng(0).standard_normal(grad_shape).astype(dtype)
    result = sum_to(np, grad, shape_type(shape))
    expected = torch.from_numpy(grad).sum_to_size(shape).numpy()
    assert result.shape == tuple(shape) and result.dtype == grad.dtype
    np.testing.assert_allclose(result, expected, rtol=1e-6)


def test_sum_to_returns_the_gradient_itself_when_shapes_match():
    grad = np.ones((3, 2), np.float32)[:, ::-1]  # non-contiguous: passed through as it is
    assert sum_to(np, grad, (3, 2)) is grad
    assert sum_to(np, grad, [3, 2]) is grad
