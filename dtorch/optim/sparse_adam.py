"""SparseAdam: Adam that updates only the rows a gradient touches (the moments of other rows stay as they are).

dtorch has no sparse tensors, so SparseAdam takes dense gradients and reads their sparsity from the values: a row
(a slice along the first dimension; an element for a 0- or 1-dim parameter) takes part in a step when any of its
gradient entries is nonzero. That is PyTorch's SparseAdam given ``grad.to_sparse(sparse_dim=1)``, which is what
an ``Embedding(sparse=True)`` produces for the rows a batch looked up, except for a looked-up row whose gradient
is exactly zero: PyTorch decays that row's moments (and moves it by them), dtorch leaves it alone. PyTorch's
SparseAdam refuses dense gradients ("SparseAdam does not support dense gradients, please consider Adam instead").
"""

from dtorch import _backend
from dtorch.optim.optimizer import Optimizer, check_lr, _wrap

__all__ = ["SparseAdam", "sparse_adam_update"]


def sparse_adam_update(param, grad, exp_avg, exp_avg_sq, step, *, lr, beta1, beta2, eps, maximize):
    """One SparseAdam step on raw arrays, in place on the touched rows of ``param`` and the moments.

    With R the rows where g (negated when ``maximize``) has a nonzero entry and t the step count, on R only:

        m ← m + (1 − β₁)·(g − m),   v ← v + (1 − β₂)·(g² − v)
        θ ← θ − γ·√(1 − β₂ᵗ)/(1 − β₁ᵗ) · m / (√v + ε)

    >>> import numpy as np
    >>> p, m, v = np.zeros((2, 1)), np.zeros((2, 1)), np.zeros((2, 1))
    >>> sparse_adam_update(p, np.array([[1.0], [0.0]]), m, v, 1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8,
    ...                    maximize=False); p.round(6).tolist(), m.round(6).tolist()
    ([[-0.1], [0.0]], [[0.1], [0.0]])
    """
    xp = _backend.xp_of(param)
    if maximize:
        grad = xp.negative(grad)
    if param.ndim <= 1:
        param, grad, exp_avg, exp_avg_sq = (a.reshape(-1, 1) for a in (param, grad, exp_avg, exp_avg_sq))
    rows = xp.nonzero(grad.reshape(grad.shape[0], -1).any(axis=1))[0]
    if rows.size == 0:
        return
    values = grad[rows]
    old_avg = exp_avg[rows]
    avg_update = xp.subtract(values, old_avg)
    avg_update *= 1 - beta1
    exp_avg[rows] += avg_update
    old_sq = exp_avg_sq[rows]
    sq_update = xp.power(values, 2)
    sq_update -= old_sq
    sq_update *= 1 - beta2
    exp_avg_sq[rows] += sq_update
    numer = avg_update
    numer += old_avg
    sq_update += old_sq
    denom = xp.sqrt(sq_update, out=sq_update)
    denom += eps
    step_size = lr * (1 - beta2**step) ** 0.5 / (1 - beta1**step)
    numer /= denom
    numer *= -step_size
    param[rows] += numer


class SparseAdam(Optimizer):
    """SparseAdam, PyTorch's ``torch.optim.SparseAdam``, on dense gradients (see the module docstring for how
    their rows are chosen); the update rule is in :func:`sparse_adam_update`.

    The state is PyTorch's: ``step`` (a Python int), ``exp_avg``, ``exp_avg_sq``.

    Args:
        params: parameters or parameter groups (dense, real).
        lr (float): γ (default 1e-3).
        betas (tuple): (β₁, β₂) (default (0.9, 0.999)).
        eps (float): ε (default 1e-8).
        maximize (bool): ascend the objective instead.

    >>> import dtorch
    >>> emb = dtorch.nn.Embedding(4, 2)
    >>> opt = dtorch.optim.SparseAdam(emb.parameters(), lr=0.1)
    >>> before = emb.weight.detach().clone()
    >>> emb(dtorch.tensor([1])).sum().backward(); opt.step()
    >>> (emb.weight.detach() != before).any(dim=1).tolist()
    [False, True, False, False]
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, maximize=False):
        check_lr(lr)
        if not 0.0 < lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, maximize=maximize))
        complex_params = [[g, i] for g, group in enumerate(self.param_groups)
                          for i, p in enumerate(group["params"]) if p._array.dtype.kind == "c"]
        if complex_params:
            raise ValueError(
                f"Complex params at indices {complex_params}: SparseAdam does not support complex parameters"
            )

    def _step_group(self, group):
        # the base class's step runs the closure and calls this once per group; the flat-buffer path does not apply
        beta1, beta2 = group["betas"]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if not state:
                xp = _backend.xp_of(p._array)
                state["step"] = 0
                state["exp_avg"] = _wrap(xp.zeros_like(p._array))
                state["exp_avg_sq"] = _wrap(xp.zeros_like(p._array))
            state["step"] += 1
            sparse_adam_update(p._array, p.grad._array, state["exp_avg"]._array, state["exp_avg_sq"]._array,
                               state["step"], lr=float(group["lr"]), beta1=beta1, beta2=beta2, eps=group["eps"],
                               maximize=group.get("maximize", False))
            p._bump_version()
