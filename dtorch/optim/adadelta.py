"""Adadelta, with weight decay and maximize."""

from dtorch import _backend
from dtorch.optim.optimizer import Optimizer, check_lr, direction_and_decay

__all__ = ["Adadelta", "adadelta_update"]


def adadelta_update(param, grad, square_avg, acc_delta, *, lr, rho, eps, weight_decay, maximize):
    """One Adadelta step on raw arrays, in place on ``param``, ``square_avg`` and ``acc_delta``.

    With g the gradient (negated when ``maximize``), ρ the decay, λ the weight decay and γ the learning rate:

        g ← g + λ·θ
        v ← ρ·v + (1 − ρ)·g²                 (v is ``square_avg``)
        Δ ← √(u + ε) / √(v + ε) · g          (u is ``acc_delta``)
        u ← ρ·u + (1 − ρ)·Δ²
        θ ← θ − γ·Δ

    >>> import numpy as np
    >>> p, v, u = np.zeros(1), np.zeros(1), np.zeros(1)
    >>> adadelta_update(p, np.ones(1), v, u, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, maximize=False)
    >>> p.round(5)
    array([-0.00316])
    """
    xp = _backend.xp_of(param)
    grad = direction_and_decay(xp, param, grad, weight_decay, maximize)
    scratch = xp.multiply(grad, 1 - rho, out=xp.empty_like(param))
    scratch *= grad
    square_avg *= rho
    square_avg += scratch
    std = xp.add(square_avg, eps, out=xp.empty_like(param))
    xp.sqrt(std, out=std)
    delta = xp.add(acc_delta, eps, out=scratch)
    xp.sqrt(delta, out=delta)
    delta /= std
    delta *= grad
    acc_delta *= rho
    xp.multiply(delta, 1 - rho, out=std)
    std *= delta
    acc_delta += std
    delta *= -lr
    param += delta


class Adadelta(Optimizer):
    """Adadelta, PyTorch's ``torch.optim.Adadelta``; the update rule is in :func:`adadelta_update`.

    Args:
        params: parameters or parameter groups.
        lr (float): γ, a factor on the update (default 1.0).
        rho (float): decay ρ of both running averages (default 0.9).
        eps (float): ε (default 1e-6).
        weight_decay (float): λ, an L2 term added to the gradient (default 0).
        foreach (bool, optional): False forces the per-parameter loop; None/True allow the flat-buffer path.
        capturable, differentiable: accepted as in PyTorch (``differentiable=True`` raises at ``step``).
        maximize (bool): ascend the objective instead.

    >>> import dtorch
    >>> w = dtorch.nn.Parameter(dtorch.tensor([1.0]))
    >>> opt = dtorch.optim.Adadelta([w])
    >>> (w * w).sum().backward(); opt.step(); sorted(opt.state[w])
    ['acc_delta', 'square_avg', 'step']
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, capturable=False,
                 maximize=False, differentiable=False):
        check_lr(lr)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                        capturable=capturable, foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults)

    def _array_keys(self, group):
        return ("square_avg", "acc_delta")

    def _update(self, param, grad, arrays, step, group):
        adadelta_update(param, grad, arrays[0], arrays[1], lr=float(group["lr"]), rho=group["rho"],
                        eps=group["eps"], weight_decay=group["weight_decay"], maximize=group["maximize"])
        return arrays
