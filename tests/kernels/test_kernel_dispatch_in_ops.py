"""The ops that launch fused kernels on CuPy float32 (LayerNorm, cross-entropy) take the kernel branch, and that
branch gives the same values and gradients (first and second order) as the plain one and as PyTorch.

Without a GPU the branch is forced and the kernels' NumPy references stand in for the launches
(``_kernels.*`` fall back to them on NumPy arrays), so what is tested here is the ops' use of the kernels: the
arguments, the kept state, the reductions and the backward, including create_graph.
"""

import numpy as np
import pytest
import torch

import dtorch
from dtorch import _kernels
from dtorch.ops import loss as loss_ops
from dtorch.ops import norm as norm_ops


@pytest.fixture
def forced(monkeypatch):
    calls = []

    def spy(name, fn):
        def wrapped(*args, **kwargs):
            calls.append(name)
            return fn(*args, **kwargs)
        monkeypatch.setattr(_kernels, name, wrapped)

    for name in ("layer_norm_forward", "layer_norm_backward", "softmax_xent_forward", "softmax_xent_backward"):
        spy(name, getattr(_kernels, name))
    monkeypatch.setattr(norm_ops, "_fused_layer_norm", lambda *args: True)
    monkeypatch.setattr(loss_ops, "_fused_cross_entropy", lambda xp, logits, axis, weight, probabilities, smoothing:
                        axis == 1 and logits.ndim == 2 and weight is None and not probabilities and not smoothing)
    return calls


def _run(lib, x_np, w_np, b_np, targets_np, reduction, create_graph):
    x = lib.tensor(x_np, requires_grad=True)
    w = lib.tensor(w_np, requires_grad=True)
    b = lib.tensor(b_np, requires_grad=True)
    h = lib.nn.functional.layer_norm(x, (x_np.shape[1],), w, b)
    loss = lib.nn.functional.cross_entropy(h * 3, lib.tensor(targets_np), reduction=reduction)
    total = loss.sum() if reduction == "none" else loss
    grads = lib.autograd.grad(total, (x, w, b), create_graph=create_graph)
    if not create_graph:
        return [t.detach().numpy() for t in (loss, *grads)]
    second = lib.autograd.grad(sum((g * g).sum() for g in grads), (x, w))
    return [t.detach().numpy() for t in (loss, *grads, *second)]


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_fused_branches_match_torch(forced, reduction, create_graph):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    w, b = rng.standard_normal(5).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    targets = np.array([0, 4, 2, -100, 1, 3])
    ours = _run(dtorch, x, w, b, targets, reduction, create_graph)
    expected = {"layer_norm_forward", "softmax_xent_forward"}
    if not create_graph:  # a create_graph backward differentiates the plain formulas instead of launching kernels
        expected |= {"layer_norm_backward", "softmax_xent_backward"}
    assert expected <= set(forced)
    theirs = _run(torch, x, w, b, targets, reduction, create_graph)
    for a, t in zip(ours, theirs):
        np.testing.assert_allclose(a, t, rtol=2e-4, atol=2e-5)


def test_the_plain_branch_runs_without_cupy():
    x = dtorch.randn(3, 4)
    assert not norm_ops._fused_layer_norm(np, x._array, dtorch.ones(4)._array, dtorch.zeros(4)._array)
    assert not loss_ops._fused_cross_entropy(np, x._array, 1, None, False, 0.0)


@pytest.mark.filterwarnings("ignore:invalid value")  # NumPy stands in for CuPy here; CuPy does not warn
def test_fused_cross_entropy_with_every_target_ignored_is_nan_with_zero_gradient(forced):
    x = dtorch.randn(2, 3, requires_grad=True)
    loss = dtorch.nn.functional.cross_entropy(x, dtorch.tensor([-100, -100]))
    assert loss.isnan().item()
    loss.backward()
    assert (x.grad == 0).all().item()
