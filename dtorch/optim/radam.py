"""RAdam: Adam with a rectified adaptive learning rate, optionally with decoupled weight decay."""

from dtorch import _backend
from dtorch.optim.adam import _check_adam_args, _decay_and_moments
from dtorch.optim.optimizer import Optimizer

__all__ = ["RAdam", "radam_update"]


def radam_update(param, grad, exp_avg, exp_avg_sq, step, *, lr, beta1, beta2, eps, weight_decay,
                 decoupled_weight_decay, maximize):
    """One RAdam step on raw arrays, in place on ``param`` and the moments.

    With g the gradient (negated when ``maximize``), t the step count after incrementing, λ the weight decay and
    γ the learning rate:

        θ ← θ·(1 − γλ)   (``decoupled_weight_decay``)   or   g ← g + λ·θ
        m ← m + (1 − β₁)·(g − m),   v ← β₂·v + (1 − β₂)·g²
        m̂ ← m / (1 − β₁ᵗ)
        ρ∞ ← 2/(1 − β₂) − 1,   ρₜ ← ρ∞ − 2t·β₂ᵗ/(1 − β₂ᵗ)
        if ρₜ > 5:  r ← √((ρₜ − 4)(ρₜ − 2)ρ∞ / ((ρ∞ − 4)(ρ∞ − 2)ρₜ)),
                    θ ← θ − m̂·γ · √(1 − β₂ᵗ)/(√v + ε) · r
        else:       θ ← θ − m̂·γ

    >>> import numpy as np
    >>> p, m, v = np.zeros(1), np.zeros(1), np.zeros(1)
    >>> radam_update(p, np.ones(1), m, v, 1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0,
    ...              decoupled_weight_decay=False, maximize=False); p.round(6)
    array([-0.1])
    """
    xp = _backend.xp_of(param)
    grad, scratch = _decay_and_moments(xp, param, grad, exp_avg, exp_avg_sq, lr=lr, beta1=beta1, beta2=beta2,
                                       weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay,
                                       maximize=maximize)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    update = xp.divide(exp_avg, bias_correction1, out=xp.empty_like(param))
    update *= lr
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
    if rho_t > 5.0:
        adaptive = xp.sqrt(exp_avg_sq, out=scratch)
        adaptive += eps
        xp.reciprocal(adaptive, out=adaptive)  # PyTorch's scalar / tensor is reciprocal(tensor) * scalar
        adaptive *= bias_correction2**0.5
        update *= adaptive
        update *= ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
    param -= update


class RAdam(Optimizer):
    """RAdam, PyTorch's ``torch.optim.RAdam``; the update rule is in :func:`radam_update`.

    Args:
        params: parameters or parameter groups.
        lr (float): γ (default 1e-3).
        betas (tuple): (β₁, β₂) (default (0.9, 0.999)).
        eps (float): ε (default 1e-8).
        weight_decay (float): λ (default 0).
        decoupled_weight_decay (bool): decay the weights directly, as AdamW does (RAdamW).
        foreach (bool, optional): False forces the per-parameter loop; None/True allow the flat-buffer path.
        maximize (bool): ascend the objective instead.
        capturable, differentiable: accepted as in PyTorch (``differentiable=True`` raises at ``step``).

    >>> import dtorch
    >>> w = dtorch.nn.Parameter(dtorch.tensor([1.0]))
    >>> opt = dtorch.optim.RAdam([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step(); w.data.numpy().round(4)
    array([0.8], dtype=float32)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False,
                 *, foreach=None, maximize=False, capturable=False, differentiable=False):
        _check_adam_args(lr, betas, eps, weight_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, decoupled_weight_decay=decoupled_weight_decay,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    def _array_keys(self, group):
        return ("exp_avg", "exp_avg_sq")

    def _update(self, param, grad, arrays, step, group):
        beta1, beta2 = group["betas"]
        radam_update(param, grad, arrays[0], arrays[1], step, lr=float(group["lr"]), beta1=beta1, beta2=beta2,
                     eps=group["eps"], weight_decay=group["weight_decay"],
                     decoupled_weight_decay=group["decoupled_weight_decay"], maximize=group["maximize"])
        return arrays
