"""The CUDA path through CuPy: run where a GPU is present, skipped cleanly elsewhere (marker `gpu`)."""

import numpy as np
import pytest
import torch

import dtorch

pytestmark = pytest.mark.gpu


def test_round_trip_and_device():
    x = dtorch.arange(6.0).reshape(2, 3).cuda()
    assert x.device == dtorch.device("cuda", 0) and x.is_cuda
    assert "device='cuda:0'" in repr(x)
    np.testing.assert_array_equal(x.cpu().numpy(), np.arange(6.0).reshape(2, 3))
    with pytest.raises(TypeError, match="Use Tensor.cpu"):
        x.numpy()


def test_ops_and_backward_match_cpu():
    rng = np.random.default_rng(0)
    a_np, b_np = rng.standard_normal((4, 5)).astype(np.float32), rng.standard_normal((5, 3)).astype(np.float32)
    results = []
    for device in ("cpu", "cuda"):
        a = dtorch.tensor(a_np, device=device, requires_grad=True)
        b = dtorch.tensor(b_np, device=device, requires_grad=True)
        loss = ((a @ b).tanh().sigmoid() * 2 + a.sum(dim=1, keepdim=True)).logsumexp(dim=0).mean()
        loss.backward()
        results.append((loss.item(), a.grad.cpu().numpy(), b.grad.cpu().numpy()))
    (cpu_loss, cpu_ga, cpu_gb), (gpu_loss, gpu_ga, gpu_gb) = results
    assert cpu_loss == pytest.approx(gpu_loss, rel=1e-5)
    np.testing.assert_allclose(cpu_ga, gpu_ga, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(cpu_gb, gpu_gb, rtol=1e-4, atol=1e-6)


def test_mixing_devices_raises_naming_both():
    with pytest.raises(RuntimeError, match="cpu and cuda:0|cuda:0 and cpu"):
        dtorch.ones(2) + dtorch.ones(2).cuda()


def test_seeded_random_is_the_same_on_both_devices():
    dtorch.manual_seed(5)
    a = dtorch.randn(4, device="cuda")
    dtorch.manual_seed(5)
    b = dtorch.randn(4)
    np.testing.assert_array_equal(a.cpu().numpy(), b.numpy())


def test_gradient_moves_back_across_devices():
    x = dtorch.ones(3, requires_grad=True)
    (x.cuda() * 2).sum().backward()
    assert x.grad.device == dtorch.device("cpu")
    np.testing.assert_allclose(x.grad.numpy(), [2, 2, 2])
    assert torch is not None


def test_event_timing_and_peak_memory():
    start, end = dtorch.cuda.Event(enable_timing=True), dtorch.cuda.Event(enable_timing=True)
    dtorch.cuda.reset_peak_memory_stats()
    before = dtorch.cuda.memory_allocated()
    start.record()
    x = dtorch.ones(1 << 20, device="cuda")
    (x * 2).sum().item()
    end.record()
    end.synchronize()
    assert start.elapsed_time(end) >= 0 and end.query()
    assert dtorch.cuda.max_memory_allocated() >= before + x.nbytes
    assert dtorch.cuda.memory_reserved() >= dtorch.cuda.memory_allocated()
    assert len(dtorch.cuda.get_device_capability()) == 2
    with dtorch.cuda.device(0):
        assert dtorch.cuda.current_device() == 0
    with pytest.raises(RuntimeError, match="enable_timing"):
        dtorch.cuda.Event().elapsed_time(end)
