"""Adagrad, with learning-rate decay, weight decay, an initial accumulator value and maximize."""

from dtorch import _backend
from dtorch.optim.optimizer import Optimizer, check_lr, direction_and_decay

__all__ = ["Adagrad", "adagrad_update"]


def adagrad_update(param, grad, state_sum, step, *, lr, lr_decay, weight_decay, eps, maximize):
    """One Adagrad step on raw arrays, in place on ``param`` and ``state_sum``.

    With g the gradient (negated when ``maximize``), t the step count after incrementing, γ the learning rate,
    η the learning-rate decay and λ the weight decay:

        g ← g + λ·θ
        γₜ ← γ / (1 + (t − 1)·η)
        s ← s + g²
        θ ← θ − γₜ·g / (√s + ε)

    >>> import numpy as np
    >>> p, s = np.zeros(1), np.zeros(1)
    >>> adagrad_update(p, np.ones(1), s, 1, lr=0.1, lr_decay=0, weight_decay=0, eps=1e-10, maximize=False); p
    array([-0.1])
    """
    xp = _backend.xp_of(param)
    grad = direction_and_decay(xp, param, grad, weight_decay, maximize)
    clr = lr / (1 + (step - 1) * lr_decay)
    scratch = xp.multiply(grad, grad, out=xp.empty_like(param))
    state_sum += scratch
    std = xp.sqrt(state_sum, out=xp.empty_like(param))
    std += eps
    xp.multiply(grad, -clr, out=scratch)
    scratch /= std
    param += scratch


class Adagrad(Optimizer):
    """Adagrad, PyTorch's ``torch.optim.Adagrad``; the update rule is in :func:`adagrad_update`.

    As in PyTorch, each parameter's state (``step`` 0 and ``sum`` filled with ``initial_accumulator_value``) is
    created when the optimizer is.

    Args:
        params: parameters or parameter groups.
        lr (float): γ (default 1e-2).
        lr_decay (float): η (default 0).
        weight_decay (float): λ (default 0).
        initial_accumulator_value (float): starting value of s (default 0).
        eps (float): ε (default 1e-10).
        maximize (bool): ascend the objective instead.
        foreach (bool, optional): False forces the per-parameter loop; None/True allow the flat-buffer path.

    >>> import dtorch
    >>> w = dtorch.nn.Parameter(dtorch.ones(1))
    >>> sorted(dtorch.optim.Adagrad([w]).state[w])
    ['step', 'sum']
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        check_lr(lr)
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group, self.state[p])

    def _array_keys(self, group):
        return ("sum",)

    def _initial_value(self, key, group):
        return group["initial_accumulator_value"]

    def _update(self, param, grad, arrays, step, group):
        adagrad_update(param, grad, arrays[0], step, lr=float(group["lr"]), lr_decay=group["lr_decay"],
                       weight_decay=group["weight_decay"], eps=group["eps"], maximize=group["maximize"])
        return arrays
