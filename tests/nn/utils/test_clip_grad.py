"""Gradient clipping and parameter/vector conversion against PyTorch."""

import math
import warnings

import numpy as np
import pytest
import torch

import dtorch
import dtorch.nn
from dtorch.nn import utils
from dtorch.tensor import Tensor

SHAPES = [(3, 4), (5,), (2, 1, 3)]


def pair(dtype=np.float32, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    values = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [(scale * rng.standard_normal(s)).astype(dtype) for s in SHAPES]
    ours = [dtorch.nn.Parameter(Tensor._from_array(v.copy(), None)) for v in values]
    theirs = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in values]
    for p, q, g in zip(ours, theirs, grads):
        p.grad = Tensor._from_array(g.copy(), None)
        q.grad = torch.from_numpy(g.copy())
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, 0.5, math.inf, "inf", -math.inf, 0.0])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, dtype):
    ours, theirs = pair(dtype)
    total = utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type, foreach=False)
    assert isinstance(total, Tensor) and total._array.shape == () and total._array.dtype == dtype
    np.testing.assert_allclose(total._array, expected.numpy(), rtol=1e-6)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad._array, q.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_clip_grad_norm_scales_to_max_norm_and_skips_missing_grads():
    ours, _ = pair(np.float64, scale=10.0)
    ours.append(dtorch.nn.Parameter(Tensor._from_array(np.ones(2), None)))
    before = utils.clip_grad_norm_(ours, 2.0)
    assert float(before._array) > 2.0
    after = utils.get_total_norm([p.grad for p in ours if p.grad is not None])
    np.testing.assert_allclose(after._array, 2.0, rtol=1e-5)
    assert ours[-1].grad is None


def test_single_tensor_and_empty():
    p = dtorch.nn.Parameter(Tensor._from_array(np.zeros(2), None))
    p.grad = Tensor._from_array(np.array([3.0, 4.0]), None)
    assert float(utils.clip_grad_norm_(p, 1.0)._array) == 5.0
    np.testing.assert_allclose(p.grad._array, [0.6, 0.8], rtol=1e-6)
    assert float(utils.clip_grad_norm_([], 1.0)._array) == 0.0
    with pytest.warns(UserWarning, match="empty generator"):
        utils.clip_grad_norm_((q for q in []), 1.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_error_if_nonfinite(bad):
    ours, theirs = pair(np.float32)
    ours[0].grad._array[0, 0] = bad
    with pytest.raises(RuntimeError, match="is non-finite, so it cannot be clipped"):
        utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    # without the flag, the gradients are scaled by the non-finite norm, as PyTorch does
    theirs[0].grad[0, 0] = bad
    total = utils.clip_grad_norm_(ours, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0, foreach=False)
    assert np.isnan(total._array) == torch.isnan(expected).item()
    for p, q in zip(ours, theirs):
        np.testing.assert_array_equal(np.isnan(p.grad._array), torch.isnan(q.grad).numpy())


def test_foreach_is_accepted():
    ours, theirs = pair()
    utils.clip_grad_norm_(ours, 0.1, foreach=True)
    torch.nn.utils.clip_grad_norm_(theirs, 0.1)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad._array, q.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_deprecated_clip_grad_norm_warns():
    ours, _ = pair()
    with pytest.warns(FutureWarning):
        utils.clip_grad_norm(ours, 1.0)


@pytest.mark.parametrize("clip_value", [0.1, 1.0, 5])
def test_clip_grad_value_matches_torch(clip_value):
    ours, theirs = pair(scale=3.0)
    arrays = [p.grad._array for p in ours]
    assert utils.clip_grad_value_(ours, clip_value) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value, foreach=False)
    for p, q, a in zip(ours, theirs, arrays):
        np.testing.assert_array_equal(p.grad._array, q.grad.numpy())
        assert p.grad._array is a, "clipped in place"
