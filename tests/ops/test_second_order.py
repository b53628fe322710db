"""Gradients of gradients (``create_graph=True``) against PyTorch for the elementwise, reduction and matmul ops."""

import numpy as np
import pytest
import torch

import dtorch
from helpers import check_op

CASES = [
    ("mul", lambda a, b: a * b, [(3, 4), (4,)], {}),
    ("div", lambda a, b: a / b, [(3, 4), (4,)], {"low": 0.5}),
    ("add sub", lambda a, b: (a + b) * (a - b), [(3,), (3,)], {}),
    ("pow tensor", lambda a, b: a ** b, [(3,), (3,)], {"low": 0.5}),
    ("pow scalar", lambda a: a ** 3, [(3,)], {}),
    ("rpow", lambda a: 2.0 ** a, [(3,)], {}),
    ("exp", lambda a: a.exp(), [(3,)], {}),
    ("log", lambda a: a.log(), [(3,)], {"low": 0.5}),
    ("log1p", lambda a: a.log1p(), [(3,)], {"low": 0.5}),
    ("sqrt", lambda a: a.sqrt(), [(3,)], {"low": 0.5}),
    ("rsqrt", lambda a: a.rsqrt(), [(3,)], {"low": 0.5}),
    ("sin cos", lambda a: a.sin() * a.cos(), [(3,)], {}),
    ("tanh", lambda a: a.tanh(), [(3,)], {}),
    ("sigmoid", lambda a: a.sigmoid(), [(3,)], {}),
    ("abs", lambda a: a.abs() * a, [(3,)], {}),
    ("relu", lambda a: a.relu() * a, [(3,)], {}),
    ("silu", lambda a: torch.nn.functional.silu(a) if isinstance(a, torch.Tensor) else dtorch.silu(a), [(4,)], {}),
    ("gelu", lambda a: torch.nn.functional.gelu(a) if isinstance(a, torch.Tensor) else dtorch.gelu(a), [(4,)], {}),
    ("gelu tanh", lambda a: torch.nn.functional.gelu(a, approximate="tanh") if isinstance(a, torch.Tensor)
     else dtorch.gelu(a, approximate="tanh"), [(4,)], {}),
    ("softplus", lambda a: torch.nn.functional.softplus(a) if isinstance(a, torch.Tensor) else dtorch.softplus(a),
     [(4,)], {}),
    ("erf", lambda a: a.erf(), [(4,)], {}),
    ("maximum", lambda a, b: a.maximum(b) * a, [(3, 4), (4,)], {}),
    ("minimum", lambda a, b: a.minimum(b) * b, [(3, 4), (4,)], {}),
    ("where", lambda a, b: (a > 0).float() * 0 + (a * a).where(a > b, b * b), [(3,), (3,)], {}),
    ("clamp", lambda a: a.clamp(-0.5, 0.5) * a, [(5,)], {}),
    ("sum", lambda a: (a * a).sum(1), [(3, 4)], {}),
    ("mean", lambda a: (a * a).mean((0, 1), keepdim=True), [(3, 4)], {}),
    ("var", lambda a: a.var(1), [(3, 4)], {}),
    ("std", lambda a: a.std(), [(3, 4)], {}),
    ("norm", lambda a: a.norm(dim=1), [(3, 4)], {}),
    ("logsumexp", lambda a: a.logsumexp(1), [(3, 4)], {}),
    ("amax", lambda a: (a * a).amax(1), [(3, 4)], {}),
    ("cumsum", lambda a: (a * a).cumsum(1), [(3, 4)], {}),
    ("matmul", lambda a, b: (a @ b) * (a @ b), [(2, 3), (3, 4)], {}),
    ("matmul batched", lambda a, b: (a @ b).pow(2), [(2, 2, 3), (3,)], {}),
    ("reshape transpose", lambda a: (a.t().reshape(-1) ** 2).expand(2, -1), [(3, 4)], {}),
    ("prod", lambda a: a.prod(1), [(3, 4)], {"low": 0.5}),
    ("max dim", lambda a: (a * a).max(1).values, [(3, 4)], {}),
    ("norm p", lambda a: a.norm(p=3, dim=0), [(3, 4)], {}),
    ("einsum", lambda a, b: (torch if isinstance(a, torch.Tensor) else dtorch).einsum("ij,jk->ik", a, b) ** 2,
     [(2, 3), (3, 4)], {}),
    ("bmm", lambda a, b: a.bmm(b) * a.sum(), [(2, 2, 3), (2, 3, 2)], {}),
    ("prod tuple", lambda a: a.prod() * a.prod(0).sum(), [(2, 3)], {"low": 0.5}),
    ("prod with a zero", lambda a: (a * a).prod(1), [np.array([[0.0, 1.5, -2.0], [1.0, 0.5, 2.0]])], {}),
    ("cumprod", lambda a: a.cumprod(1), [(2, 4)], {}),
    ("min dim", lambda a: (a ** 3).min(0).values, [(3, 4)], {}),
    ("cat stack", lambda a, b: (torch if isinstance(a, torch.Tensor) else dtorch).stack([a * b, a.exp()]), [(3,), (3,)],
     {}),
]


@pytest.mark.parametrize("name, fn, shapes, options", CASES, ids=[c[0] for c in CASES])
def test_second_order_matches_torch(name, fn, shapes, options):
    check_op(fn, None, shapes, second_order=True, **options)
    check_op(fn, None, shapes, second_order=True, dtype="float64", **options)
