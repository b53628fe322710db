"""The fused CUDA kernels on a GPU against their xp references (marker `gpu`: skipped where there is none).

Run by ``scripts/gpu_check.sh`` on a lent GPU machine; CI has no GPU, so there these tests skip and
``test_kernels.py`` checks what can be checked without one.
"""

import numpy as np
import pytest

from dtorch import _backend, _kernels

pytestmark = pytest.mark.gpu
F32 = np.float32


@pytest.fixture
def cp():
    return _backend.cupy()


def both(cp, *arrays):
    """Each NumPy array as a (GPU copy, CPU copy) pair."""
    return [(cp.asarray(a), a.copy()) for a in arrays]


@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_kernel_equals_reference(cp, decoupled):
    rng = np.random.default_rng(0)
    n = 1_000_003  # not a multiple of the block size
    (p, p_ref), (m, m_ref), (v, v_ref) = both(cp, rng.standard_normal(n).astype(F32), np.zeros(n, F32),
                                              np.zeros(n, F32))
    for step in (1, 2, 3):
        g_host = rng.standard_normal(n).astype(F32)
        options = dict(step=step, lr=1e-3, weight_decay=0.01, decoupled=decoupled)
        assert _kernels.adam_step(p, cp.asarray(g_host), m, v, **options) == "kernel"
        _kernels.adam_step_reference(p_ref, g_host, m_ref, v_ref, **options)
    np.testing.assert_allclose(p.get(), p_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v.get(), v_ref, rtol=1e-5, atol=1e-7)


def test_sgd_momentum_kernel_equals_reference(cp):
    rng = np.random.default_rng(1)
    n = 100_001
    (p, p_ref), (buf, buf_ref) = both(cp, rng.standard_normal(n).astype(F32), np.zeros(n, F32))
    for step in range(3):
        g_host = rng.standard_normal(n).astype(F32)
        options = dict(lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True, first_step=step == 0)
        assert _kernels.sgd_momentum_step(p, cp.asarray(g_host), buf, **options) == "kernel"
        _kernels.sgd_momentum_step_reference(p_ref, g_host, buf_ref, **options)
    np.testing.assert_allclose(p.get(), p_ref, rtol=1e-6, atol=1e-6)


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
    assert _kernels.bucket_unpack(bucket, targets) == "kernel"
    for target, host in zip(targets, hosts):
        np.testing.assert_array_equal(target.get(), host * F32(0.25))
