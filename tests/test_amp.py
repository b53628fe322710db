"""dtorch.amp against torch.amp: GradScaler's scale schedule, skipped steps and parameters follow PyTorch's over a
run with injected inf/NaN gradients; autocast is accepted and leaves dtypes alone; backends settings are kept."""

import math

import numpy as np
import pytest
import torch

import dtorch


def run_scaled_training(lib, steps=12, bad_steps=(2, 3, 7), **scaler_options):
    """A tiny model trained under a GradScaler; on ``bad_steps`` the loss is multiplied by inf (or NaN)."""
    weight = lib.nn.Parameter(lib.tensor([[0.5, -1.0], [2.0, 0.25]]))
    bias = lib.nn.Parameter(lib.tensor([0.1, -0.2]))
    optimizer = lib.optim.SGD([weight, bias], lr=0.05, momentum=0.9)
    scaler = lib.amp.GradScaler("cpu", **scaler_options)
    x = lib.tensor([[1.0, 2.0], [-1.0, 0.5], [0.3, -0.7]])
    scales, losses = [], []
    for step in range(steps):
        optimizer.zero_grad()
        loss = ((x @ weight + bias) ** 2).mean()
        if step in bad_steps:
            loss = loss * (math.inf if step % 2 else math.nan)
        scaler.scale(loss).backward()
        if step == 5:
            scaler.unscale_(optimizer)  # as before gradient clipping
            lib.nn.utils.clip_grad_norm_([weight, bias], 1.0)
        scaler.step(optimizer)
        scaler.update()
        scales.append(scaler.get_scale())
        losses.append(loss.item())
    return scales, weight.detach().numpy().copy(), bias.detach().numpy().copy(), scaler.state_dict()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the injected inf/NaN losses make NumPy warn, on purpose
@pytest.mark.parametrize("options", [{}, {"init_scale": 8.0, "growth_interval": 2},
                                     {"init_scale": 2.0 ** 10, "growth_factor": 4.0, "backoff_factor": 0.25,
                                      "growth_interval": 3}])
def test_grad_scaler_follows_torch(options):
    ours = run_scaled_training(dtorch, **options)
    theirs = run_scaled_training(torch, **options)
    assert ours[0] == theirs[0]  # the scale after every step
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-6)
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-6)
    assert ours[3].keys() == theirs[3].keys()
    for key in ours[3]:
        assert float(ours[3][key]) == float(theirs[3][key]), key


def test_grad_scaler_state_round_trip_and_errors():
    scaler = dtorch.amp.GradScaler("cpu", init_scale=16.0, growth_interval=5)
    restored = dtorch.amp.GradScaler("cpu")
    restored.load_state_dict(scaler.state_dict())
    assert restored.get_scale() == 16.0 and restored.get_growth_interval() == 5
    w = dtorch.nn.Parameter(dtorch.ones(1))
    optimizer = dtorch.optim.SGD([w], lr=0.1)
    scaler.scale(w.sum()).backward()
    scaler.unscale_(optimizer)
    with pytest.raises(RuntimeError, match="already been called on this optimizer"):
        scaler.unscale_(optimizer)
    scaler.step(optimizer)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        scaler.step(optimizer)
    with pytest.raises(ValueError, match="growth factor"):
        dtorch.amp.GradScaler("cpu", growth_factor=1.0)


def test_disabled_and_cuda_without_gpu_pass_through():
    if dtorch.cuda.is_available():
        pytest.skip("a GPU is present: the CUDA scaler stays enabled")
    with pytest.warns(UserWarning, match="CUDA is not available"):
        scaler = dtorch.cuda.amp.GradScaler()
    assert not scaler.is_enabled() and scaler.get_scale() == 1.0 and scaler.state_dict() == {}
    w = dtorch.nn.Parameter(dtorch.ones(1))
    optimizer = dtorch.optim.SGD([w], lr=0.5)
    loss = scaler.scale((w * 2).sum())
    loss.backward()
    scaler.step(optimizer)
    scaler.update()
    assert w.item() == 0.0


def test_autocast_is_accepted_and_keeps_dtypes():
    with dtorch.autocast("cpu", dtype=dtorch.bfloat16 if hasattr(dtorch, "bfloat16") else dtorch.float16):
        out = dtorch.ones(2, 3) @ dtorch.ones(3, 2)
    assert out.dtype == dtorch.float32

    @dtorch.autocast("cuda")
    def forward(x):
        return x * 2

    assert forward(dtorch.ones(1)).item() == 2.0
    with pytest.raises(RuntimeError, match="unsupported autocast device_type"):
        dtorch.autocast("tpu")


def test_backend_switches_are_kept():
    dtorch.backends.cudnn.benchmark = True
    dtorch.backends.cuda.matmul.allow_tf32 = True
    assert dtorch.backends.cudnn.benchmark and dtorch.backends.cuda.matmul.allow_tf32
    dtorch.set_float32_matmul_precision("high")
    assert dtorch.get_float32_matmul_precision() == "high"
    dtorch.set_float32_matmul_precision("highest")
    with pytest.raises(RuntimeError, match="Invalid precision"):
        dtorch.set_float32_matmul_precision("low")
    dtorch.use_deterministic_algorithms(True)
    assert dtorch.are_deterministic_algorithms_enabled()
    dtorch.use_deterministic_algorithms(False)
    assert dtorch.cuda.memory_allocated() == 0 or dtorch.cuda.is_available()
    dtorch.cuda.empty_cache()
