"""``dtorch.autograd``'s module-level API against PyTorch: ``grad`` keywords, ``Variable``, ``gradgradcheck``."""

import numpy as np
import pytest
import torch

import dtorch


def test_grad_accepts_only_inputs_as_pytorch_does():
    for library in (torch, dtorch):
        x = library.tensor([1.0, 2.0], requires_grad=True)
        (g,) = library.autograd.grad((x ** 3).sum(), x, only_inputs=True)
        np.testing.assert_allclose(g.numpy(), [3.0, 12.0])


def test_grad_rejects_batched_grad_outputs_clearly():
    x = dtorch.ones(2, requires_grad=True)
    with pytest.raises(NotImplementedError, match="is_grads_batched"):
        dtorch.autograd.grad(x * 2, x, dtorch.eye(2), is_grads_batched=True)


@pytest.mark.parametrize("requires_grad", [False, True])
def test_variable_is_a_detached_tensor_as_in_pytorch(requires_grad):
    results = []
    for library in (torch, dtorch):
        x = library.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        v = library.autograd.Variable(y, requires_grad=requires_grad)
        results.append((v is y, v.requires_grad, v.grad_fn is None, v.is_leaf, isinstance(v, library.Tensor),
                        isinstance(x, library.autograd.Variable)))
        v.data[0] = 7.0  # shares memory with y
        assert y[0].item() == 7.0
    assert results[0] == results[1]


def test_variable_old_style_training_step():
    x = dtorch.autograd.Variable(dtorch.ones(3, 2))
    w = dtorch.autograd.Variable(dtorch.full((2,), 0.5), requires_grad=True)
    (x @ w).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [3.0, 3.0])


def test_variable_rejects_what_pytorch_rejects():
    with pytest.raises(TypeError, match="Variable data has to be a tensor, but got list"):
        dtorch.autograd.Variable([1.0])


def test_gradgradcheck_default_grad_outputs_and_given_ones():
    x = dtorch.tensor([0.5, -1.0, 2.0], dtype=dtorch.float64, requires_grad=True)
    assert dtorch.autograd.gradgradcheck(lambda t: t.sin() * t, (x,))
    v = dtorch.tensor([1.0, 0.5, -2.0], dtype=dtorch.float64, requires_grad=True)
    assert dtorch.autograd.gradgradcheck(lambda t: t.exp(), (x,), (v,))
