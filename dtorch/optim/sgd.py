"""Stochastic gradient descent with momentum, dampening, Nesterov momentum, weight decay and maximize."""

from dtorch import _backend, _kernels
from dtorch.optim.optimizer import Optimizer, check_lr, direction_and_decay

__all__ = ["SGD", "sgd_update"]


def sgd_update(param, grad, momentum_buffer, *, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """One SGD step on raw arrays, in place on ``param`` (and ``momentum_buffer``).

    With g the gradient (negated when ``maximize``), λ the weight decay, μ the momentum, τ the dampening, γ the
    learning rate:

        g ← g + λ·θ
        b ← g                      on the first step (``momentum_buffer`` is None)
        b ← μ·b + (1 − τ)·g        afterwards
        g ← g + μ·b  (nesterov)    or    g ← b
        θ ← θ − γ·g

    (the momentum lines only when μ ≠ 0). Works on arrays of any shape, so the flat-buffer path calls it too.

    Args:
        param, grad: arrays of one shape and dtype (NumPy or CuPy).
        momentum_buffer: the array b, or None before the first step.

    Returns:
        the momentum buffer (a new array on the first step; None when μ = 0).

    >>> import numpy as np
    >>> p = np.ones(2); _ = sgd_update(p, np.ones(2), None, lr=0.5, momentum=0, dampening=0,
    ...                                weight_decay=0, nesterov=False, maximize=False); p
    array([0.5, 0.5])
    """
    xp = _backend.xp_of(param)
    grad = direction_and_decay(xp, param, grad, weight_decay, maximize)
    if momentum != 0:
        if momentum_buffer is None:
            momentum_buffer = xp.array(grad, copy=True)
        else:
            momentum_buffer *= momentum
            if dampening == 0:
                momentum_buffer += grad
            else:
                momentum_buffer += xp.multiply(grad, 1 - dampening, out=xp.empty_like(param))
        if nesterov:
            update = xp.multiply(momentum_buffer, momentum, out=xp.empty_like(param))
            update += grad
        else:
            update = momentum_buffer
    else:
        update = grad
    param += xp.multiply(update, -lr, out=xp.empty_like(param))
    return momentum_buffer


class SGD(Optimizer):
    """Stochastic gradient descent (optionally with momentum), PyTorch's ``torch.optim.SGD``.

    The update rule is in :func:`sgd_update`. The momentum buffer is created on a parameter's first step as a copy
    of its (decayed) gradient, as PyTorch does.

    Args:
        params: parameters or parameter groups.
        lr (float): learning rate γ (default 1e-3).
        momentum (float): μ (default 0).
        dampening (float): τ (default 0).
        weight_decay (float): L2 penalty λ (default 0).
        nesterov (bool): Nesterov momentum (needs μ > 0 and τ = 0).
        maximize (bool): ascend the objective instead.
        foreach (bool, optional): False forces the per-parameter loop; None/True allow the flat-buffer path.

    >>> import dtorch
    >>> w = dtorch.nn.Parameter(dtorch.tensor([1.0]))
    >>> opt = dtorch.optim.SGD([w], lr=0.1, momentum=0.9)
    >>> (w * w).sum().backward(); opt.step(); w.data
    tensor([0.8000])
    """

    _has_step = False

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        check_lr(lr)
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                        maximize=maximize, foreach=foreach, differentiable=differentiable, fused=fused)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)

    def _array_keys(self, group):
        return ("momentum_buffer",) if group["momentum"] != 0 else ()

    def _initial_value(self, key, group):
        return None  # created from the first gradient

    def _update(self, param, grad, arrays, step, group):
        if arrays and _kernels.select_kernel(param, grad) == "kernel":
            # CuPy float32 flat buffers with momentum: kernels/sgd.cu, sgd_update's arithmetic in one launch
            first_step = arrays[0] is None
            buffer = _backend.xp_of(param).empty_like(param) if first_step else arrays[0]
            _kernels.sgd_momentum_step(param, grad, buffer, lr=float(group["lr"]), momentum=group["momentum"],
                                       dampening=group["dampening"], weight_decay=group["weight_decay"],
                                       nesterov=group["nesterov"], maximize=group["maximize"], first_step=first_step)
            return [buffer]
        buffer = sgd_update(param, grad, arrays[0] if arrays else None, lr=float(group["lr"]),
                            momentum=group["momentum"], dampening=group["dampening"],
                            weight_decay=group["weight_decay"], nesterov=group["nesterov"],
                            maximize=group["maximize"])
        return [buffer] if arrays else []
