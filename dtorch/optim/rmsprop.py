"""RMSprop, with momentum, the centered variant, weight decay and maximize."""

from dtorch import _backend
from dtorch.optim.optimizer import Optimizer, check_lr, direction_and_decay

__all__ = ["RMSprop", "rmsprop_update"]


def rmsprop_update(param, grad, square_avg, momentum_buffer, grad_avg, *, lr, alpha, eps, weight_decay, momentum,
                   centered, maximize):
    """One RMSprop step on raw arrays, in place on ``param`` and the state arrays.

    With g the gradient (negated when ``maximize``), α the smoothing constant, λ the weight decay, μ the momentum
    and γ the learning rate:

        g ← g + λ·θ
        v ← α·v + (1 − α)·g²
        ḡ ← ḡ + (1 − α)·(g − ḡ)        (``centered``; ḡ is ``grad_avg``)
        d ← √(v − ḡ²) + ε   (centered)   or   d ← √v + ε
        b ← μ·b + g / d,  θ ← θ − γ·b   (μ > 0; b is ``momentum_buffer``)
        θ ← θ − γ·g / d                 (μ = 0)

    Args:
        param, grad, square_avg: arrays of one shape and dtype; ``momentum_buffer`` (μ > 0) and ``grad_avg``
            (``centered``) too, otherwise None.

    >>> import numpy as np
    >>> p, v = np.zeros(1), np.zeros(1)
    >>> rmsprop_update(p, np.ones(1), v, None, None, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0,
    ...                momentum=0, centered=False, maximize=False); p.round(4)
    array([-0.1])
    """
    xp = _backend.xp_of(param)
    grad = direction_and_decay(xp, param, grad, weight_decay, maximize)
    scratch = xp.multiply(grad, 1 - alpha, out=xp.empty_like(param))
    square_avg *= alpha
    scratch *= grad
    square_avg += scratch
    if centered:
        xp.subtract(grad, grad_avg, out=scratch)
        scratch *= 1 - alpha
        grad_avg += scratch
        avg = xp.multiply(grad_avg, -1, out=xp.empty_like(param))
        avg *= grad_avg
        avg += square_avg
        xp.sqrt(avg, out=avg)
    else:
        avg = xp.sqrt(square_avg, out=xp.empty_like(param))
    avg += eps
    if momentum > 0:
        momentum_buffer *= momentum
        xp.divide(grad, avg, out=scratch)
        momentum_buffer += scratch
        xp.multiply(momentum_buffer, -lr, out=scratch)
        param += scratch
    else:
        xp.multiply(grad, -lr, out=scratch)
        scratch /= avg
        param += scratch


class RMSprop(Optimizer):
    """RMSprop, PyTorch's ``torch.optim.RMSprop``; the update rule is in :func:`rmsprop_update`.

    Args:
        params: parameters or parameter groups.
        lr (float): γ (default 1e-2).
        alpha (float): smoothing constant α (default 0.99).
        eps (float): ε (default 1e-8).
        weight_decay (float): λ (default 0).
        momentum (float): μ (default 0).
        centered (bool): normalise by an estimate of the gradient's variance instead of its second moment.
        maximize (bool): ascend the objective instead.
        foreach (bool, optional): False forces the per-parameter loop; None/True allow the flat-buffer path.

    >>> import dtorch
    >>> opt = dtorch.optim.RMSprop([dtorch.nn.Parameter(dtorch.ones(1))], momentum=0.9, centered=True)
    >>> opt.param_groups[0]["alpha"]
    0.99
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        check_lr(lr)
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered, weight_decay=weight_decay,
                        capturable=capturable, foreach=foreach, maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def _array_keys(self, group):
        keys = ("square_avg",)
        if group["momentum"] > 0:
            keys += ("momentum_buffer",)
        if group["centered"]:
            keys += ("grad_avg",)
        return keys

    def _update(self, param, grad, arrays, step, group):
        named = dict(zip(self._array_keys(group), arrays))
        rmsprop_update(param, grad, named["square_avg"], named.get("momentum_buffer"), named.get("grad_avg"),
                       lr=float(group["lr"]), alpha=group["alpha"], eps=group["eps"],
                       weight_decay=group["weight_decay"], momentum=group["momentum"], centered=group["centered"],
                       maximize=group["maximize"])
        return arrays
