"""ASGD: averaged stochastic gradient descent."""

from dtorch import _backend
from dtorch.optim.optimizer import Optimizer, check_lr, direction_and_decay

__all__ = ["ASGD", "asgd_update"]


def asgd_update(param, grad, eta, mu, ax, step, *, lr, lambd, alpha, t0, weight_decay, maximize):
    """One ASGD step on raw arrays, in place on ``param``, ``ax`` and the 0-dim arrays ``eta`` and ``mu``.

    With g the gradient (negated when ``maximize``), t the step count after incrementing, λ the weight decay and
    γ the learning rate (η and μ are read before this step's update, at their stored precision, float32):

        g ← g + λ·θ
        θ ← θ·(1 − lambd·η) − η·g
        a ← a + μ·(θ − a)        if μ ≠ 1,  else  a ← θ        (a is ``ax``, the average)
        η ← γ / (1 + lambd·γ·t)^alpha
        μ ← 1 / max(1, t − t0)

    >>> import numpy as np
    >>> p, eta, mu, ax = np.ones(1), np.array(0.1, np.float32), np.ones((), np.float32), np.zeros(1)
    >>> asgd_update(p, np.ones(1), eta, mu, ax, 1, lr=0.1, lambd=0.0, alpha=0.75, t0=1e6, weight_decay=0,
    ...             maximize=False); p.round(4), ax.round(4)
    (array([0.9]), array([0.9]))
    """
    xp = _backend.xp_of(param)
    grad = direction_and_decay(xp, param, grad, weight_decay, maximize)
    eta_value = float(eta)
    param *= 1 - lambd * eta_value
    param += xp.multiply(grad, -eta_value, out=xp.empty_like(param))
    if float(mu) != 1:
        scratch = xp.subtract(param, ax, out=xp.empty_like(param))
        scratch *= param.dtype.type(mu)  # μ's float32 value at the parameter's precision, as PyTorch's mul_
        ax += scratch
    else:
        ax[...] = param
    eta[...] = lr / ((1 + lambd * lr * step) ** alpha)
    mu[...] = 1 / max(1, step - t0)


class ASGD(Optimizer):
    """Averaged SGD, PyTorch's ``torch.optim.ASGD``; the update rule is in :func:`asgd_update`.

    Each parameter's state holds ``step``, ``eta``, ``mu`` (0-dim float32, as in PyTorch) and ``ax``, the running
    average of the parameter from step ``t0`` on. Because ``eta`` and ``mu`` change once per step, ASGD always
    runs the per-parameter loop.

    Args:
        params: parameters or parameter groups.
        lr (float): γ (default 1e-2).
        lambd (float): decay term (default 1e-4).
        alpha (float): power for the η update (default 0.75).
        t0 (float): step at which averaging starts (default 1e6).
        weight_decay (float): λ (default 0).
        foreach, differentiable, capturable: accepted as in PyTorch (``differentiable=True`` raises at ``step``).
        maximize (bool): ascend the objective instead.

    >>> import dtorch
    >>> w = dtorch.nn.Parameter(dtorch.tensor([1.0]))
    >>> opt = dtorch.optim.ASGD([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step(); list(opt.state[w])
    ['step', 'eta', 'mu', 'ax']
    """

    _scalar_keys = ("eta", "mu")

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0, foreach=None,
                 maximize=False, differentiable=False, capturable=False):
        check_lr(lr)
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def _array_keys(self, group):
        return ("eta", "mu", "ax")

    def _initial_value(self, key, group):
        return {"eta": float(group["lr"]), "mu": 1.0, "ax": 0.0}[key]

    def _update(self, param, grad, arrays, step, group):
        asgd_update(param, grad, arrays[0], arrays[1], arrays[2], step, lr=float(group["lr"]), lambd=group["lambd"],
                    alpha=group["alpha"], t0=group["t0"], weight_decay=group["weight_decay"],
                    maximize=group["maximize"])
        return arrays
