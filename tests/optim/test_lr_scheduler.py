"""Learning-rate schedulers against PyTorch: the same LR sequence (exactly, not merely close), state round trips."""

import math
import warnings

import numpy as np
import pytest
import torch

import dtorch
import dtorch.nn
from dtorch import optim, serialization
from dtorch.optim import lr_scheduler as dsched
from dtorch.tensor import Tensor
from torch.optim import lr_scheduler as tsched

EPOCHS = 30


def make_param(array):
    return dtorch.nn.Parameter(Tensor._from_array(array, None))


def optimizers(opt_name="SGD", **kwargs):
    kwargs.setdefault("lr", 0.1)
    ours = getattr(optim, opt_name)(
        [{"params": [make_param(np.ones(2))]}, {"params": [make_param(np.ones(3))], "lr": 0.05}], **kwargs)
    theirs = getattr(torch.optim, opt_name)(
        [{"params": [torch.nn.Parameter(torch.ones(2))]}, {"params": [torch.nn.Parameter(torch.ones(3))], "lr": 0.05}],
        **kwargs)
    return ours, theirs


def sequence(opt, scheduler, epochs=EPOCHS, metrics=None, watch=("lr",)):
    seen = [scheduler.get_last_lr()]
    for epoch in range(epochs):
        opt.step()
        if metrics is None:
            scheduler.step()
        else:
            scheduler.step(metrics[epoch])
        seen.append(list(scheduler.get_last_lr()))
        for key in watch:
            seen.append([group[key] for group in opt.param_groups])
    return seen


CASES = {
    "StepLR": lambda L, o: L.StepLR(o, step_size=3, gamma=0.5),
    "MultiStepLR": lambda L, o: L.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.3),
    "ExponentialLR": lambda L, o: L.ExponentialLR(o, gamma=0.9),
    "CosineAnnealingLR": lambda L, o: L.CosineAnnealingLR(o, T_max=7, eta_min=0.001),
    "CosineAnnealingLR-zero-min": lambda L, o: L.CosineAnnealingLR(o, T_max=10),
    "LambdaLR": lambda L, o: L.LambdaLR(o, lambda epoch: 0.95**epoch),
    "LambdaLR-per-group": lambda L, o: L.LambdaLR(o, [lambda e: 1 / (e + 1), lambda e: 0.9**e]),
    "LinearLR": lambda L, o: L.LinearLR(o, start_factor=0.25, total_iters=4),
    "LinearLR-decay": lambda L, o: L.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=12),
    "ConstantLR": lambda L, o: L.ConstantLR(o, factor=0.5, total_iters=4),
    "OneCycleLR": lambda L, o: L.OneCycleLR(o, max_lr=[0.5, 0.2], total_steps=EPOCHS),
    "OneCycleLR-linear-3phase": lambda L, o: L.OneCycleLR(o, max_lr=0.3, epochs=5, steps_per_epoch=6,
                                                          anneal_strategy="linear", three_phase=True),
    "SequentialLR": lambda L, o: L.SequentialLR(
        o, [L.LinearLR(o, start_factor=0.1, total_iters=5), L.CosineAnnealingLR(o, T_max=20)], milestones=[5]),
    "SequentialLR-3": lambda L, o: L.SequentialLR(
        o, [L.ConstantLR(o, factor=0.3, total_iters=2), L.ExponentialLR(o, gamma=0.8),
            L.StepLR(o, step_size=4, gamma=0.5)], milestones=[3, 8]),
    "MultiplicativeLR": lambda L, o: L.MultiplicativeLR(o, lambda epoch: 0.9 if epoch % 2 else 0.99),
    "PolynomialLR": lambda L, o: L.PolynomialLR(o, total_iters=12, power=2.0),
    "CosineAnnealingWarmRestarts": lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=4, eta_min=0.001),
    "CosineAnnealingWarmRestarts-mult": lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2),
    "CyclicLR": lambda L, o: L.CyclicLR(o, base_lr=[0.01, 0.02], max_lr=0.1, step_size_up=4, step_size_down=3),
    "CyclicLR-triangular2": lambda L, o: L.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=3,
                                                     mode="triangular2", base_momentum=0.7),
    "CyclicLR-exp_range": lambda L, o: L.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=2, mode="exp_range",
                                                   gamma=0.9, cycle_momentum=False),
    "CyclicLR-scale_fn": lambda L, o: L.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=3,
                                                  scale_fn=lambda x: 0.8**x, scale_mode="iterations"),
    "ChainedScheduler": lambda L, o: L.ChainedScheduler(
        [L.LinearLR(o, start_factor=0.2, total_iters=4), L.ExponentialLR(o, gamma=0.95)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_lr_sequence_equals_torch(name):
    ours_opt, theirs_opt = optimizers(momentum=0.9)
    ours = sequence(ours_opt, CASES[name](dsched, ours_opt), watch=("lr", "momentum"))
    theirs = sequence(theirs_opt, CASES[name](tsched, theirs_opt), watch=("lr", "momentum"))
    assert ours == theirs


@pytest.mark.parametrize("name", ["OneCycleLR", "CyclicLR"])
def test_cycles_adam_beta1_like_torch(name):
    def make(L, o):
        if name == "OneCycleLR":
            return L.OneCycleLR(o, max_lr=0.1, total_steps=EPOCHS)
        return L.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=5)

    ours_opt, theirs_opt = optimizers("Adam", lr=0.01)
    ours = sequence(ours_opt, make(dsched, ours_opt), watch=("lr", "betas"))
    theirs = sequence(theirs_opt, make(tsched, theirs_opt), watch=("lr", "betas"))
    assert ours == theirs


def _comparable_state(state):
    """A scheduler state_dict with what cannot be compared across libraries (callables) left out."""
    if isinstance(state, dict):
        return {k: _comparable_state(v) for k, v in state.items() if not callable(v)}
    if isinstance(state, list):
        return [_comparable_state(v) for v in state]
    return state


@pytest.mark.parametrize("name", list(CASES))
def test_state_dict_equals_torch(name):
    """Same keys in the same order and the same values as torch's, before and after some epochs."""
    ours_opt, theirs_opt = optimizers(momentum=0.9)
    ours, theirs = CASES[name](dsched, ours_opt), CASES[name](tsched, theirs_opt)
    for _ in range(3):
        assert _comparable_state(ours.state_dict()) == _comparable_state(theirs.state_dict())
        for _ in range(4):
            ours_opt.step()
            ours.step()
            theirs_opt.step()
            theirs.step()


def test_reduce_lr_on_plateau_state_dict_equals_torch():
    ours_opt, theirs_opt = optimizers()
    ours, theirs = dsched.ReduceLROnPlateau(ours_opt, patience=1), tsched.ReduceLROnPlateau(theirs_opt, patience=1)
    for metric in METRICS[:8]:
        ours.step(metric)
        theirs.step(metric)
    assert ours.state_dict() == theirs.state_dict()


def test_warm_restarts_with_fractional_epochs_equals_torch():
    ours_opt, theirs_opt = optimizers()
    ours = dsched.CosineAnnealingWarmRestarts(ours_opt, T_0=2, T_mult=3, eta_min=0.01)
    theirs = tsched.CosineAnnealingWarmRestarts(theirs_opt, T_0=2, T_mult=3, eta_min=0.01)
    for epoch in [0.25, 1.5, 2.0, 3.75, 7.9, 8.0, 8.5, 26.0, 30.2]:
        ours_opt.step()
        theirs_opt.step()
        ours.step(epoch)
        theirs.step(epoch)
        assert ours.get_last_lr() == theirs.get_last_lr()
        assert (ours.T_i, ours.T_cur, ours.last_epoch) == (theirs.T_i, theirs.T_cur, theirs.last_epoch)
    with pytest.raises(ValueError, match="Expected positive integer T_0, but got 0"):
        dsched.CosineAnnealingWarmRestarts(ours_opt, T_0=0)
    with pytest.raises(ValueError, match="Expected non-negative epoch, but got -1"):
        ours.step(-1)


def test_stepping_before_the_optimizer_warns_like_torch():
    for lib, opt in zip((dsched, tsched), optimizers()):
        scheduler = lib.StepLR(opt, step_size=2)
        with pytest.warns(UserWarning, match=r"Detected call of `lr_scheduler.step\(\)` before `optimizer.step\(\)`"):
            scheduler.step()
    for lib, opt in zip((dsched, tsched), optimizers()):
        scheduler = lib.ExponentialLR(opt, gamma=0.5)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for _ in range(3):
                opt.step()
                scheduler.step()
        with pytest.warns(UserWarning, match=r"please use `get_last_lr\(\)`"):
            scheduler.get_lr()
    ours_opt, _ = optimizers()
    dsched.StepLR(ours_opt, step_size=2)
    dsched.LinearLR(ours_opt)  # a second scheduler wraps optimizer.step once
    assert ours_opt.step._wrapped_by_lr_sched and not hasattr(ours_opt.step.__wrapped__, "_wrapped_by_lr_sched")
    ours_opt.step()
    assert ours_opt._opt_called
    assert issubclass(dsched._LRScheduler, dsched.LRScheduler)


def test_one_cycle_past_total_steps_raises():
    opt, _ = optimizers(momentum=0.9)
    scheduler = dsched.OneCycleLR(opt, max_lr=0.1, total_steps=2)
    for _ in range(2):
        opt.step()
        scheduler.step()
    opt.step()
    with pytest.raises(ValueError, match="Tried to step 3 times"):
        scheduler.step()


def test_two_chained_schedulers_compose_like_torch():
    ours_opt, theirs_opt = optimizers()

    def run(L, opt):
        a, b = L.StepLR(opt, step_size=2, gamma=0.5), L.ExponentialLR(opt, gamma=0.9)
        seen = []
        for _ in range(12):
            opt.step()
            a.step()
            b.step()
            seen.append([g["lr"] for g in opt.param_groups])
        return seen

    assert run(dsched, ours_opt) == run(tsched, theirs_opt)


METRICS = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85, 0.85, 0.85, 0.7, 0.71, 0.72, 0.73, 0.74,
           0.74, 0.74, 0.74, 0.74, 0.74, 0.74, 0.74, 0.74, 0.74, 0.74, 0.74, 0.74]


@pytest.mark.parametrize("kwargs", [
    dict(patience=2),
    dict(patience=1, factor=0.5, cooldown=2),
    dict(mode="max", patience=1, threshold_mode="abs", threshold=0.01),
    dict(patience=0, factor=0.5, min_lr=[0.01, 0.02]),
    dict(patience=1, factor=0.5, threshold_mode="abs", min_lr=0.04, eps=1e-3),
])
def test_reduce_lr_on_plateau_equals_torch(kwargs):
    ours_opt, theirs_opt = optimizers()
    ours = sequence(ours_opt, dsched.ReduceLROnPlateau(ours_opt, **kwargs), metrics=METRICS)
    theirs = sequence(theirs_opt, tsched.ReduceLROnPlateau(theirs_opt, **kwargs), metrics=METRICS)
    assert ours == theirs


def test_reduce_lr_on_plateau_rejects_bad_arguments():
    opt, _ = optimizers()
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        dsched.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode maxi is unknown"):
        dsched.ReduceLROnPlateau(opt, mode="maxi")


def test_step_with_epoch_uses_closed_form_and_warns():
    ours_opt, theirs_opt = optimizers()
    ours, theirs = dsched.StepLR(ours_opt, 3, 0.5), tsched.StepLR(theirs_opt, 3, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in (4, 9, 2):
            theirs_opt.step()
            theirs.step(epoch)
            with pytest.warns(UserWarning, match="deprecated"):
                ours.step(epoch)
            assert ours.get_last_lr() == theirs.get_last_lr()


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "CosineAnnealingLR", "OneCycleLR", "SequentialLR",
                                  "LinearLR", "LambdaLR", "PolynomialLR", "CosineAnnealingWarmRestarts-mult",
                                  "ChainedScheduler", "MultiplicativeLR", "CyclicLR-triangular2"])
def test_resume_from_state_dict_through_save_load(name, tmp_path):
    """Build, step 7 epochs, save optimizer+scheduler state, rebuild, load, continue: the same LRs as one run."""
    full_opt, _ = optimizers(momentum=0.9)
    full = sequence(full_opt, CASES[name](dsched, full_opt), watch=("lr", "momentum"))

    opt, _ = optimizers(momentum=0.9)
    scheduler = CASES[name](dsched, opt)
    first = sequence(opt, scheduler, epochs=7, watch=("lr", "momentum"))
    path = tmp_path / "sched.pt"
    serialization.save({"optimizer": opt.state_dict(), "scheduler": scheduler.state_dict()}, path)

    opt2, _ = optimizers(momentum=0.9)
    scheduler2 = CASES[name](dsched, opt2)
    loaded = serialization.load(path)
    opt2.load_state_dict(loaded["optimizer"])
    scheduler2.load_state_dict(loaded["scheduler"])
    rest = sequence(opt2, scheduler2, epochs=EPOCHS - 7, watch=("lr", "momentum"))
    assert first + rest[1:] == full


def test_scheduler_state_dict_loads_into_torch():
    ours_opt, theirs_opt = optimizers()
    ours, theirs = dsched.MultiStepLR(ours_opt, [2, 4], 0.5), tsched.MultiStepLR(theirs_opt, [2, 4], 0.5)
    for _ in range(3):
        ours_opt.step()
        ours.step()
    theirs_opt.load_state_dict(ours_opt.state_dict())
    theirs.load_state_dict(ours.state_dict())
    for _ in range(3):
        ours_opt.step()
        ours.step()
        theirs_opt.step()
        theirs.step()
    assert ours.get_last_lr() == theirs.get_last_lr()


def test_resuming_with_last_epoch_needs_initial_lr():
    opt, _ = optimizers()
    with pytest.raises(KeyError, match="initial_lr"):
        dsched.StepLR(opt, 2, last_epoch=3)


def test_cosine_annealing_values():
    opt, _ = optimizers(lr=1.0)
    scheduler = dsched.CosineAnnealingLR(opt, T_max=4)
    lrs = []
    for _ in range(4):
        opt.step()
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
    expected = [(1 + math.cos(math.pi * t / 4)) / 2 for t in range(1, 5)]
    np.testing.assert_allclose(lrs, expected, atol=1e-15)
