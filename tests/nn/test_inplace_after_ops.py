"""Changing an nn op's output in place (an in-place ReLU after pooling or normalisation) gives PyTorch's gradients,
or PyTorch's error where PyTorch raises; never silently wrong gradients from a buffer the op kept for backward."""

import numpy as np
import pytest
import torch

import dtorch

F_OPS = {
    "max_pool2d": lambda lib, t: lib.nn.functional.max_pool2d(t, 2),
    "batch_norm no affine": lambda lib, t: lib.nn.functional.batch_norm(t, None, None, training=True),
    "group_norm no affine": lambda lib, t: lib.nn.functional.group_norm(t, 1),
    "layer_norm no affine": lambda lib, t: lib.nn.functional.layer_norm(t, (4, 4)),
    "instance-like group_norm": lambda lib, t: lib.nn.functional.group_norm(t, 2),
}


def _input():
    return np.random.default_rng(3).standard_normal((2, 2, 4, 4)).astype(np.float32) - 0.5


@pytest.mark.parametrize("name", list(F_OPS))
@pytest.mark.parametrize("change", ["relu_", "add_"])
def test_output_changed_in_place_keeps_torch_gradients(name, change):
    grads = []
    for lib in (dtorch, torch):
        x = lib.tensor(_input(), requires_grad=True)
        y = F_OPS[name](lib, x * 1)
        if change == "relu_":
            lib.nn.functional.relu(y, inplace=True)
        else:
            y.add_(3.0)
        weights = lib.arange(y.numel(), dtype=lib.float32).reshape(y.shape) / y.numel()
        (y * weights).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["softmax", "exp", "sigmoid"])
def test_saved_output_changed_in_place_raises_like_torch(name):
    for lib in (dtorch, torch):
        x = lib.tensor(_input(), requires_grad=True)
        y = lib.softmax(x * 1, -1) if name == "softmax" else getattr(x * 1, name)()
        y.add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()
