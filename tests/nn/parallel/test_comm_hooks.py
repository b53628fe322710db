"""The built-in DDP communication hooks (dtorch.distributed.algorithms.ddp_comm_hooks) against DDP's own average,
at any world size."""

import numpy as np
import pytest

import dtorch
import dtorch.distributed as dist
from dtorch import nn
from dtorch.distributed.algorithms.ddp_comm_hooks import default_hooks
from dtorch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook as powerSGD
from dtorch.nn.parallel import DistributedDataParallel as DDP


def _model(dtype=dtorch.float64):
    dtorch.manual_seed(5)
    return nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 2)).to(dtype)


def _grads(model, steps=1, hook=None, state=None, dtype=dtorch.float64):
    """This rank's gradients after ``steps`` backward passes (each on fresh data) of a DDP model."""
    rank = dist.get_rank()
    ddp = DDP(model)
    if hook is not None:
        ddp.register_comm_hook(state, hook)
    rng = np.random.default_rng(rank)  # different data on every rank
    for _ in range(steps):
        ddp.zero_grad()
        x = dtorch.tensor(rng.standard_normal((8, 6)), dtype=dtype)  # 8 rows: full-rank gradients
        ddp(x).pow(2).sum().backward()
    return [p.grad.numpy().copy() for p in ddp.parameters()]


def _assert_close(ours, theirs, rtol, atol):
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def test_allreduce_hook_equals_the_builtin_average(world):
    _assert_close(_grads(_model(), hook=default_hooks.allreduce_hook), _grads(_model()), 1e-12, 1e-12)


def test_fp16_compress_hook_averages_with_float16_rounding(world):
    ours = _grads(_model(), hook=default_hooks.fp16_compress_hook)
    exact = _grads(_model())
    _assert_close(ours, exact, 2e-3, 2e-3)
    assert ours[0].dtype == np.float64  # written back in the bucket's dtype


def test_power_sgd_is_a_plain_average_before_start_iteration(world):
    state = powerSGD.PowerSGDState(None, start_powerSGD_iter=5)
    _assert_close(_grads(_model(), steps=2, hook=powerSGD.powerSGD_hook, state=state), _grads(_model(), steps=2),
                  1e-12, 1e-12)
    assert state.iter == 2


def test_power_sgd_with_full_rank_reproduces_the_average(world):
    # rank >= the matrices' smaller side: P spans the whole column space, so P P^T M = M exactly
    state = powerSGD.PowerSGDState(None, matrix_approximation_rank=6, start_powerSGD_iter=0, min_compression_rate=0,
                                   use_error_feedback=True)
    _assert_close(_grads(_model(), steps=2, hook=powerSGD.powerSGD_hook, state=state), _grads(_model(), steps=2),
                  1e-9, 1e-9)
    rate, before, after = state.compression_stats()
    assert before > 0 and after > 0


def test_power_sgd_low_rank_keeps_what_it_missed_as_error_feedback(world):
    state = powerSGD.PowerSGDState(None, matrix_approximation_rank=1, start_powerSGD_iter=0, min_compression_rate=1)
    ours = _grads(_model(), hook=powerSGD.powerSGD_hook, state=state)
    exact = _grads(_model())
    # every weight is compressed to rank 1; the biases travel uncompressed
    np.testing.assert_allclose(ours[1], exact[1], rtol=1e-9, atol=1e-12)
    assert np.linalg.matrix_rank(ours[0], tol=1e-9) == 1
    assert state.error_dict and all(np.abs(e).max() > 0 for e in state.error_dict.values())
    with pytest.raises(ValueError, match="matrix_approximation_rank"):
        powerSGD.PowerSGDState(None, matrix_approximation_rank=0)



class _UsedOutOfOrder(nn.Module):
    """Layers used in an order other than their registration, so DDP rebuilds its bucket after the first step."""

    def __init__(self):
        super().__init__()
        dtorch.manual_seed(5)
        self.a = nn.Linear(5, 4)
        self.b = nn.Linear(6, 5)
        self.c = nn.Linear(4, 2)

    def forward(self, x):
        return self.c(dtorch.tanh(self.a(dtorch.tanh(self.b(x)))))


@pytest.mark.parametrize("hook", ["powerSGD_hook", "batched_powerSGD_hook"])
def test_power_sgd_from_the_first_iteration_survives_the_bucket_rebuild(world, hook):
    # error feedback and warm-start Q kept for the first layout would not fit the rebuilt one (a crash or misplaced
    # errors): a rebuilt bucket starts afresh, and full rank still reproduces the average
    state = powerSGD.PowerSGDState(None, matrix_approximation_rank=8, start_powerSGD_iter=0, min_compression_rate=0)
    ours = _grads(_UsedOutOfOrder().double(), steps=3, hook=getattr(powerSGD, hook), state=state)
    _assert_close(ours, _grads(_UsedOutOfOrder().double(), steps=3), 1e-8, 1e-9)
    assert state.iter == 3 and len(state.bucket_parameters) == 1

def test_batched_power_sgd_with_full_rank_reproduces_the_average(world):
    # a model of exactly 64 gradient numbers is one full 8 x 8 matrix (zero padding would make it rank-deficient),
    # so rank 8 spans it all

    def square_model():
        dtorch.manual_seed(5)
        return nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 1)).double()

    assert sum(p.numel() for p in square_model().parameters()) == 64
    state = powerSGD.PowerSGDState(None, matrix_approximation_rank=8, start_powerSGD_iter=0)
    _assert_close(_grads(square_model(), steps=2, hook=powerSGD.batched_powerSGD_hook, state=state),
                  _grads(square_model(), steps=2), 1e-8, 1e-9)


def test_batched_power_sgd_low_rank_differs_and_keeps_the_error(world):
    state = powerSGD.PowerSGDState(None, matrix_approximation_rank=1, start_powerSGD_iter=0)
    ours = _grads(_model(), hook=powerSGD.batched_powerSGD_hook, state=state)
    exact = _grads(_model())
    assert max(np.abs(a - b).max() for a, b in zip(ours, exact)) > 1e-6
    assert all(np.abs(e).max() > 0 for e in state.error_dict.values())


def test_fp16_compress_wrapper_around_allreduce(world):
    ours = _grads(_model(), hook=default_hooks.fp16_compress_wrapper(default_hooks.allreduce_hook))
    _assert_close(ours, _grads(_model()), 2e-3, 2e-3)
    assert ours[0].dtype == np.float64


def test_register_ddp_comm_hook_by_name(world):
    from dtorch.distributed.algorithms.ddp_comm_hooks import DDPCommHookType, register_ddp_comm_hook

    ddp = DDP(_model())
    register_ddp_comm_hook(DDPCommHookType.POWER_SGD, ddp)
    assert ddp.reducer.comm_hook is powerSGD.powerSGD_hook
    assert ddp.reducer.comm_state.matrix_approximation_rank == 1
    with pytest.raises(TypeError, match="DDPCommHookType"):
        register_ddp_comm_hook("fp16", ddp)
