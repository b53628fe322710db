"""Rprop: resilient backpropagation, a per-element step size driven by the sign of the gradient."""

from dtorch import _backend
from dtorch.optim.optimizer import Optimizer, check_lr

__all__ = ["Rprop", "rprop_update"]


def rprop_update(param, grad, prev, step_size, *, etaminus, etaplus, step_size_min, step_size_max, maximize):
    """One Rprop step on raw arrays, in place on ``param``, ``prev`` and ``step_size``.

    With g the gradient (negated when ``maximize``), g′ the previous one (``prev``) and s the step sizes:

        f ← η₊ where g·g′ > 0,  η₋ where g·g′ < 0,  1 elsewhere
        s ← clamp(s·f, step_size_min, step_size_max)
        g ← 0 where g·g′ < 0        (a sign change: skip this element once)
        θ ← θ − sign(g)·s
        g′ ← g

    >>> import numpy as np
    >>> p, prev, s = np.zeros(2), np.zeros(2), np.full(2, 0.01)
    >>> rprop_update(p, np.array([1.0, -2.0]), prev, s, etaminus=0.5, etaplus=1.2, step_size_min=1e-6,
    ...              step_size_max=50, maximize=False); p
    array([-0.01,  0.01])
    """
    xp = _backend.xp_of(param)
    if maximize:
        grad = xp.negative(grad)
    product = xp.multiply(grad, prev, out=xp.empty_like(param))
    factor = xp.ones_like(param)
    factor[product > 0] = etaplus  # stored at the parameter's precision, as PyTorch's sign tensor holds them
    flipped = product < 0
    factor[flipped] = etaminus
    step_size *= factor
    xp.clip(step_size, step_size_min, step_size_max, out=step_size)
    prev[...] = grad
    prev[flipped] = 0
    xp.sign(prev, out=product)
    product *= step_size
    param -= product


class Rprop(Optimizer):
    """Rprop, PyTorch's ``torch.optim.Rprop``; the update rule is in :func:`rprop_update`.

    Each parameter's ``step_size`` starts at the group's ``lr`` (when its state is created, on its first step).

    Args:
        params: parameters or parameter groups.
        lr (float): the initial step size (default 1e-2).
        etas (tuple): (η₋, η₊), the factors that shrink and grow the step sizes (default (0.5, 1.2)).
        step_sizes (tuple): the least and greatest step size (default (1e-6, 50)).
        capturable, foreach, differentiable: as in PyTorch (``foreach=False`` forces the per-parameter loop;
            ``differentiable=True`` raises at ``step``).
        maximize (bool): ascend the objective instead.

    >>> import dtorch
    >>> w = dtorch.nn.Parameter(dtorch.tensor([1.0]))
    >>> opt = dtorch.optim.Rprop([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step(); w.data.numpy().round(4)
    array([0.9], dtype=float32)
    """

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, capturable=False, foreach=None,
                 maximize=False, differentiable=False):
        check_lr(lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = dict(lr=lr, etas=etas, step_sizes=step_sizes, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def _array_keys(self, group):
        return ("prev", "step_size")

    def _initial_value(self, key, group):
        return float(group["lr"]) if key == "step_size" else 0.0

    def _update(self, param, grad, arrays, step, group):
        etaminus, etaplus = group["etas"]
        step_size_min, step_size_max = group["step_sizes"]
        rprop_update(param, grad, arrays[0], arrays[1], etaminus=etaminus, etaplus=etaplus,
                     step_size_min=step_size_min, step_size_max=step_size_max, maximize=group["maximize"])
        return arrays
