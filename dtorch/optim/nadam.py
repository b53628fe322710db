"""NAdam: Adam with Nesterov momentum (and a momentum schedule), optionally with decoupled weight decay."""

from dtorch import _backend
from dtorch.optim.adam import _check_adam_args, _decay_and_moments
from dtorch.optim.optimizer import Optimizer

__all__ = ["NAdam", "nadam_update"]


def nadam_update(param, grad, mu_product, exp_avg, exp_avg_sq, step, *, lr, beta1, beta2, eps, weight_decay,
                 momentum_decay, decoupled_weight_decay, maximize):
    """One NAdam step on raw arrays, in place on ``param``, ``mu_product`` (a 0-dim array) and the moments.

    With g the gradient (negated when ``maximize``), t the step count after incrementing, ψ the momentum decay,
    λ the weight decay and γ the learning rate:

        θ ← θ·(1 − γλ)   (``decoupled_weight_decay``)   or   g ← g + λ·θ
        μₜ ← β₁·(1 − ½·0.96^(t·ψ)),  μₜ₊₁ ← β₁·(1 − ½·0.96^((t+1)·ψ))
        Π ← Π·μₜ                                 (Π is ``mu_product``, kept at its own precision: float32)
        m ← m + (1 − β₁)·(g − m)
        v ← β₂·v + (1 − β₂)·g²
        d ← √(v / (1 − β₂ᵗ)) + ε
        θ ← θ − γ(1 − μₜ)/(1 − Π) · g/d − γμₜ₊₁/(1 − Π·μₜ₊₁) · m/d

    >>> import numpy as np
    >>> p, mu, m, v = np.zeros(1), np.ones((), np.float32), np.zeros(1), np.zeros(1)
    >>> nadam_update(p, np.ones(1), mu, m, v, 1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0,
    ...              momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False); p.round(4)
    array([-0.1056])
    """
    xp = _backend.xp_of(param)
    grad, scratch = _decay_and_moments(xp, param, grad, exp_avg, exp_avg_sq, lr=lr, beta1=beta1, beta2=beta2,
                                       weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay,
                                       maximize=maximize)
    bias_correction2 = 1 - beta2**step
    mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
    mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
    mu_product *= mu
    product = float(mu_product)
    denom = xp.divide(exp_avg_sq, bias_correction2, out=xp.empty_like(param))
    xp.sqrt(denom, out=denom)
    denom += eps
    xp.multiply(grad, -lr * (1.0 - mu) / (1.0 - product), out=scratch)
    scratch /= denom
    param += scratch
    xp.multiply(exp_avg, (-lr * mu_next) / (1.0 - product * mu_next), out=scratch)
    scratch /= denom
    param += scratch


class NAdam(Optimizer):
    """NAdam, PyTorch's ``torch.optim.NAdam``; the update rule is in :func:`nadam_update`.

    Each parameter's state holds ``step``, ``mu_product`` (0-dim float32, as in PyTorch), ``exp_avg`` and
    ``exp_avg_sq``. Because ``mu_product`` changes once per step, NAdam always runs the per-parameter loop.

    Args:
        params: parameters or parameter groups.
        lr (float): γ (default 2e-3).
        betas (tuple): (β₁, β₂) (default (0.9, 0.999)).
        eps (float): ε (default 1e-8).
        weight_decay (float): λ (default 0).
        momentum_decay (float): ψ (default 4e-3).
        decoupled_weight_decay (bool): decay the weights directly, as AdamW does (NAdamW).
        foreach, capturable, differentiable: accepted as in PyTorch (``differentiable=True`` raises at ``step``).
        maximize (bool): ascend the objective instead.

    >>> import dtorch
    >>> w = dtorch.nn.Parameter(dtorch.tensor([1.0]))
    >>> opt = dtorch.optim.NAdam([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step(); list(opt.state[w])
    ['step', 'mu_product', 'exp_avg', 'exp_avg_sq']
    """

    _scalar_keys = ("mu_product",)

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        _check_adam_args(lr, betas, eps, weight_decay)
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def _array_keys(self, group):
        return ("mu_product", "exp_avg", "exp_avg_sq")

    def _initial_value(self, key, group):
        return 1.0 if key == "mu_product" else 0.0

    def _update(self, param, grad, arrays, step, group):
        beta1, beta2 = group["betas"]
        nadam_update(param, grad, arrays[0], arrays[1], arrays[2], step, lr=float(group["lr"]), beta1=beta1,
                     beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                     momentum_decay=group["momentum_decay"],
                     decoupled_weight_decay=group["decoupled_weight_decay"], maximize=group["maximize"])
        return arrays
