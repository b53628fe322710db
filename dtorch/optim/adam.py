"""Adam and AdamW (decoupled weight decay), with AMSGrad and maximize."""

from dtorch import _backend, _kernels
from dtorch.optim.optimizer import Optimizer, check_lr, direction_and_decay, lerp_

__all__ = ["Adam", "AdamW", "adam_update"]


def adam_update(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, *, lr, beta1, beta2, eps, weight_decay,
                amsgrad, maximize, decoupled_weight_decay=False):
    """One Adam (or AdamW) step on raw arrays, in place on ``param`` and the moment arrays.

    With g the gradient (negated when ``maximize``), t the step count *after* incrementing, γ the learning rate and
    λ the weight decay:

        θ ← θ·(1 − γλ)                                  (AdamW: ``decoupled_weight_decay``)
        g ← g + λ·θ                                     (Adam: coupled L2)
        m ← m + (1 − β₁)·(g − m)
        v ← β₂·v + (1 − β₂)·g²
        v̂ ← max(v̂, v)                                   (``amsgrad``; v̂ is ``max_exp_avg_sq``)
        θ ← θ − γ/(1 − β₁ᵗ) · m / (√v̂ / √(1 − β₂ᵗ) + ε)  (v in place of v̂ without amsgrad)

    The operations run in PyTorch's order, so float32 results agree with it to rounding.

    Args:
        param, grad, exp_avg, exp_avg_sq: arrays of one shape and dtype; ``max_exp_avg_sq`` too, or None unless
            ``amsgrad``.
        step (float): t, at least 1.

    >>> import numpy as np
    >>> p, m, v = np.zeros(1), np.zeros(1), np.zeros(1)
    >>> adam_update(p, np.ones(1), m, v, None, 1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0,
    ...             amsgrad=False, maximize=False); p.round(6)
    array([-0.1])
    """
    xp = _backend.xp_of(param)
    if decoupled_weight_decay and weight_decay != 0:  # AdamW: shrink the parameter, not through the gradient
        param *= 1 - lr * weight_decay
    grad = direction_and_decay(xp, param, grad, 0 if decoupled_weight_decay else weight_decay, maximize)
    scratch = xp.subtract(grad, exp_avg, out=xp.empty_like(param))
    scratch *= 1 - beta1
    exp_avg += scratch
    exp_avg_sq *= beta2
    xp.multiply(grad, 1 - beta2, out=scratch)
    scratch *= grad
    exp_avg_sq += scratch
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2**0.5
    if amsgrad:
        xp.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second = max_exp_avg_sq
    else:
        second = exp_avg_sq
    denom = xp.sqrt(second, out=xp.empty_like(param))
    denom /= bias_correction2_sqrt
    denom += eps
    xp.multiply(exp_avg, -step_size, out=scratch)
    scratch /= denom
    param += scratch


def _decay_and_moments(xp, param, grad, exp_avg, exp_avg_sq, *, lr, beta1, beta2, weight_decay,
                       decoupled_weight_decay, maximize):
    """The start NAdam and RAdam share with Adam, in PyTorch's order: weight decay (decoupled: θ ← θ·(1 − γλ);
    otherwise g ← g + λ·θ), then m ← lerp(m, g, 1 − β₁) and v ← β₂·v + (1 − β₂)·g², in place.

    Returns:
        ``(grad, scratch)``: the gradient the rule goes on with, and a free temporary of ``param``'s shape.
    """
    if weight_decay != 0 and decoupled_weight_decay:
        param *= 1 - lr * weight_decay
    grad = direction_and_decay(xp, param, grad, 0 if decoupled_weight_decay else weight_decay, maximize)
    scratch = xp.empty_like(param)
    lerp_(xp, exp_avg, grad, 1 - beta1, scratch)
    exp_avg_sq *= beta2
    xp.multiply(grad, 1 - beta2, out=scratch)
    scratch *= grad
    exp_avg_sq += scratch
    return grad, scratch


def _check_adam_args(lr, betas, eps, weight_decay):
    """PyTorch's argument checks of the Adam family (Adam, AdamW, Adamax, NAdam, RAdam)."""
    check_lr(lr)
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


class Adam(Optimizer):
    """Adam, PyTorch's ``torch.optim.Adam``; the update rule is in :func:`adam_update`.

    Args:
        params: parameters or parameter groups.
        lr (float): γ (default 1e-3).
        betas (tuple): (β₁, β₂) (default (0.9, 0.999)).
        eps (float): ε (default 1e-8).
        weight_decay (float): λ, as an L2 term added to the gradient (default 0).
        amsgrad (bool): use the running maximum of v (default False).
        maximize (bool): ascend the objective instead.
        foreach (bool, optional): False forces the per-parameter loop; None/True allow the flat-buffer path.
        decoupled_weight_decay (bool): decay the weights directly, as AdamW does.

    >>> import dtorch
    >>> w = dtorch.nn.Parameter(dtorch.tensor([1.0]))
    >>> opt = dtorch.optim.Adam([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step(); w.data.numpy().round(4)
    array([0.9], dtype=float32)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        _check_adam_args(lr, betas, eps, weight_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                        foreach=foreach, capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _array_keys(self, group):
        return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq") if group["amsgrad"] else ("exp_avg", "exp_avg_sq")

    def _update(self, param, grad, arrays, step, group):
        beta1, beta2 = group["betas"]
        decoupled = group.get("decoupled_weight_decay", False)
        if not group["amsgrad"] and _kernels.select_kernel(param, grad, arrays[0], arrays[1]) == "kernel":
            # CuPy float32 flat buffers: kernels/adam.cu, adam_update's arithmetic in one launch
            _kernels.adam_step(param, grad, arrays[0], arrays[1], step=step, lr=float(group["lr"]), beta1=beta1,
                               beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                               decoupled=decoupled, maximize=group["maximize"])
            return arrays
        adam_update(param, grad, arrays[0], arrays[1], arrays[2] if group["amsgrad"] else None, step,
                    lr=float(group["lr"]), beta1=beta1, beta2=beta2, eps=group["eps"],
                    weight_decay=group["weight_decay"], amsgrad=group["amsgrad"], maximize=group["maximize"],
                    decoupled_weight_decay=decoupled)
        return arrays


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay (θ ← θ·(1 − γλ) before the moment update), ``torch.optim.AdamW``.

    Same arguments as :class:`Adam` except ``weight_decay`` defaults to 1e-2 and is always decoupled.

    >>> import dtorch
    >>> opt = dtorch.optim.AdamW([dtorch.nn.Parameter(dtorch.ones(1))])
    >>> opt.param_groups[0]["weight_decay"], opt.param_groups[0]["decoupled_weight_decay"]
    (0.01, True)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         foreach=foreach, maximize=maximize, capturable=capturable, differentiable=differentiable,
                         fused=fused, decoupled_weight_decay=True)
