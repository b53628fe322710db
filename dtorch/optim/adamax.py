"""Adamax: Adam with the infinity norm in place of the second moment."""

from dtorch import _backend
from dtorch.optim.adam import _check_adam_args
from dtorch.optim.optimizer import Optimizer, direction_and_decay, lerp_

__all__ = ["Adamax", "adamax_update"]


def adamax_update(param, grad, exp_avg, exp_inf, step, *, lr, beta1, beta2, eps, weight_decay, maximize):
    """One Adamax step on raw arrays, in place on ``param``, ``exp_avg`` and ``exp_inf``.

    With g the gradient (negated when ``maximize``), t the step count after incrementing, λ the weight decay and
    γ the learning rate:

        g ← g + λ·θ
        m ← m + (1 − β₁)·(g − m)
        u ← max(β₂·u, |g| + ε)              (u is ``exp_inf``)
        θ ← θ − γ/(1 − β₁ᵗ) · m / u

    >>> import numpy as np
    >>> p, m, u = np.zeros(1), np.zeros(1), np.zeros(1)
    >>> adamax_update(p, np.ones(1), m, u, 1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0,
    ...               maximize=False); p.round(6)
    array([-0.1])
    """
    xp = _backend.xp_of(param)
    grad = direction_and_decay(xp, param, grad, weight_decay, maximize)
    scratch = xp.empty_like(param)
    lerp_(xp, exp_avg, grad, 1 - beta1, scratch)
    exp_inf *= beta2
    xp.abs(grad, out=scratch)
    scratch += eps
    xp.maximum(exp_inf, scratch, out=exp_inf)
    clr = lr / (1 - beta1**step)
    xp.multiply(exp_avg, -clr, out=scratch)
    scratch /= exp_inf
    param += scratch


class Adamax(Optimizer):
    """Adamax, PyTorch's ``torch.optim.Adamax``; the update rule is in :func:`adamax_update`.

    Args:
        params: parameters or parameter groups.
        lr (float): γ (default 2e-3).
        betas (tuple): (β₁, β₂) (default (0.9, 0.999)).
        eps (float): ε (default 1e-8).
        weight_decay (float): λ (default 0).
        foreach (bool, optional): False forces the per-parameter loop; None/True allow the flat-buffer path.
        maximize (bool): ascend the objective instead.
        differentiable, capturable: accepted as in PyTorch (``differentiable=True`` raises at ``step``).

    >>> import dtorch
    >>> w = dtorch.nn.Parameter(dtorch.tensor([1.0]))
    >>> opt = dtorch.optim.Adamax([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step(); w.data.numpy().round(4)
    array([0.9], dtype=float32)
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False):
        _check_adam_args(lr, betas, eps, weight_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def _array_keys(self, group):
        return ("exp_avg", "exp_inf")

    def _update(self, param, grad, arrays, step, group):
        beta1, beta2 = group["betas"]
        adamax_update(param, grad, arrays[0], arrays[1], step, lr=float(group["lr"]), beta1=beta1, beta2=beta2,
                      eps=group["eps"], weight_decay=group["weight_decay"], maximize=group["maximize"])
        return arrays
