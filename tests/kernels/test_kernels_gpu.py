"""The fused CUDA kernels on a GPU against their xp references (marker `gpu`: skipped where there is none).

Run by ``scripts/gpu_check.sh`` on a lent GPU machine; CI has no GPU, so there these tests skip and
``test_kernels.py`` checks what can be checked without one.
"""

import numpy as np
import pytest

from dtorch import _backend, _kernels
from dtorch.optim.adam import adam_update
from dtorch.optim.sgd import sgd_update

pytestmark = pytest.mark.gpu
F32 = np.float32


@pytest.fixture
def cp():
    return _backend.cupy()


def both(cp, *arrays):
    """Each NumPy array as a (GPU copy, CPU copy) pair."""
    return [(cp.asarray(a), a.copy()) for a in arrays]


@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_kernel_equals_adam_update(cp, decoupled):
    rng = np.random.default_rng(0)
    n = 1_000_003  # not a multiple of the block size
    (p, p_ref), (m, m_ref), (v, v_ref) = both(cp, rng.standard_normal(n).astype(F32), np.zeros(n, F32),
                                              np.zeros(n, F32))
    for step in (1, 2, 3):
        g_host = rng.standard_normal(n).astype(F32)
        _kernels.adam_step(p, cp.asarray(g_host), m, v, step=step, lr=1e-3, weight_decay=0.01, decoupled=decoupled)
        adam_update(p_ref, g_host, m_ref, v_ref, None, float(step), lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                    weight_decay=0.01, amsgrad=False, maximize=False, decoupled_weight_decay=decoupled)
    np.testing.assert_allclose(p.get(), p_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v.get(), v_ref, rtol=1e-5, atol=1e-7)


def test_sgd_momentum_kernel_equals_sgd_update(cp):
    rng = np.random.default_rng(1)
    n = 100_001
    (p, p_ref), (buf, _) = both(cp, rng.standard_normal(n).astype(F32), np.zeros(n, F32))
    buf_ref = None
    for step in range(3):
        g_host = rng.standard_normal(n).astype(F32)
        options = dict(lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True, maximize=False)
        _kernels.sgd_momentum_step(p, cp.asarray(g_host), buf, first_step=step == 0, dampening=0.0, **options)
        buf_ref = sgd_update(p_ref, g_host, buf_ref, dampening=0.0, **options)
    np.testing.assert_allclose(p.get(), p_ref, rtol=1e-6, atol=1e-6)


def test_optimizers_on_cuda_use_the_kernels_and_follow_the_cpu(cp):
    import dtorch

    for name, kwargs in (("Adam", dict(lr=1e-2)), ("SGD", dict(lr=0.1, momentum=0.9))):
        trajectories = []
        for device in ("cpu", "cuda"):
            dtorch.manual_seed(0)
            w = dtorch.nn.Parameter(dtorch.randn(1000, device=device))
            optimizer = getattr(dtorch.optim, name)([w], **kwargs)
            for _ in range(3):
                optimizer.zero_grad()
                (w * w).sum().backward()
                optimizer.step()
            trajectories.append(w.detach().cpu().numpy())
        np.testing.assert_allclose(trajectories[1], trajectories[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("classes", [10, 1000, 50_257])
def test_softmax_xent_kernels_equal_reference(cp, classes):
    rng = np.random.default_rng(2)
    logits_host = (rng.standard_normal((64, classes)) * 4).astype(F32)
    targets_host = rng.integers(0, classes, 64).astype(np.int64)
    targets_host[5] = -100
    logits, targets = cp.asarray(logits_host), cp.asarray(targets_host)
    loss, lse = _kernels.softmax_xent_forward(logits, targets)
    ref_loss, ref_lse = _kernels.softmax_xent_forward_reference(logits_host, targets_host)
    np.testing.assert_allclose(loss.get(), ref_loss, rtol=1e-5, atol=1e-5)
    dloss_host = rng.standard_normal(64).astype(F32)
    grad = _kernels.softmax_xent_backward(logits, targets, lse, cp.asarray(dloss_host))
    ref = _kernels.softmax_xent_backward_reference(logits_host, targets_host, ref_lse, dloss_host)
    np.testing.assert_allclose(grad.get(), ref, rtol=1e-5, atol=1e-6)



@pytest.mark.parametrize("kind", ["int32", "strided"])
def test_softmax_xent_targets_the_kernels_cannot_read_take_the_reference_both_ways(cp, kind):
    rng = np.random.default_rng(4)
    logits_host = rng.standard_normal((16, 7)).astype(F32)
    targets_host = rng.integers(0, 7, 32).astype(np.int64)
    targets = cp.asarray(targets_host.astype(np.int32)) if kind == "int32" else cp.asarray(targets_host)[::2]
    targets_host = targets.get()
    logits = cp.asarray(logits_host)
    loss, lse = _kernels.softmax_xent_forward(logits, targets)
    ref_loss, ref_lse = _kernels.softmax_xent_forward_reference(logits_host, targets_host)
    np.testing.assert_allclose(loss.get(), ref_loss, rtol=1e-5, atol=1e-5)
    dloss_host = rng.standard_normal(16).astype(F32)
    grad = _kernels.softmax_xent_backward(logits, targets, cp.asarray(ref_lse), cp.asarray(dloss_host))
    ref = _kernels.softmax_xent_backward_reference(logits_host, targets_host, ref_lse, dloss_host)
    np.testing.assert_allclose(grad.get(), ref, rtol=1e-5, atol=1e-6)

def test_layer_norm_kernels_equal_reference(cp):
    rng = np.random.default_rng(3)
    x_host = rng.standard_normal((4096, 512)).astype(F32)
    w_host, b_host = rng.standard_normal(512).astype(F32), rng.standard_normal(512).astype(F32)
    y, mean, rstd = _kernels.layer_norm_forward(cp.asarray(x_host), cp.asarray(w_host), cp.asarray(b_host), 1e-5)
    ref_y, ref_mean, ref_rstd = _kernels.layer_norm_forward_reference(x_host, w_host, b_host, 1e-5)
    np.testing.assert_allclose(y.get(), ref_y, rtol=1e-4, atol=1e-4)
    dy_host = rng.standard_normal(x_host.shape).astype(F32)
    dx, dw, db = _kernels.layer_norm_backward(cp.asarray(x_host), cp.asarray(dy_host), cp.asarray(w_host), mean, rstd)
    for ours, theirs in zip((dx, dw, db), _kernels.layer_norm_backward_reference(x_host, dy_host, w_host, ref_mean,
                                                                                 ref_rstd)):
        np.testing.assert_allclose(ours.get(), theirs, rtol=1e-3, atol=1e-3)


def test_bucket_pack_unpack_kernels_round_trip(cp):
    rng = np.random.default_rng(4)
    hosts = [rng.standard_normal(shape).astype(F32) for shape in [(512, 256), (7,), (3, 3, 3), (100_000,)]]
    arrays = [cp.asarray(h) for h in hosts]
    bucket = cp.empty(sum(h.size for h in hosts), dtype=cp.float32)
    assert _kernels.bucket_pack(arrays, bucket, 0.25) == "kernel"
    np.testing.assert_array_equal(bucket.get(), np.concatenate([h.ravel() for h in hosts]) * F32(0.25))
    targets = [cp.zeros_like(a) for a in arrays]
    assert _kernels.bucket_unpack(bucket, targets, 2.0) == "kernel"
    for target, host in zip(targets, hosts):
        np.testing.assert_array_equal(target.get(), host * F32(0.25) * F32(2.0))
