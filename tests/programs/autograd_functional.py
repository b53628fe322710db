"""Follows the PyTorch docs' `torch.autograd.functional` examples and the "Jacobians, Hessians, hvp, vhp, and more"
tutorial's eager parts: `jacobian(f, x)`, `hessian(f, x)`, `vjp`, `jvp`, `hvp`, `vhp` on small functions, a
Newton step on a quadratic using the Hessian with `torch.linalg.solve`, and `create_graph=True` through a jacobian."""
import torch
from torch.autograd.functional import hessian, hvp, jacobian, jvp, vhp, vjp


def f(x):
    return torch.stack([x[0] ** 2 * x[1], 5 * x[0] + torch.sin(x[1]), x[1] ** 3])


def scalar(x):
    return (x ** 4).sum() + x[0] * x[1]


x = torch.tensor([1.0, 2.0], dtype=torch.float64)
J = jacobian(f, x)
H = hessian(scalar, x)
v = torch.tensor([1.0, -1.0], dtype=torch.float64)
_, vjp_result = vjp(f, x, torch.ones(3, dtype=torch.float64))
_, jvp_result = jvp(f, x, v)
_, hvp_result = hvp(scalar, x, v)
_, vhp_result = vhp(scalar, x, v)
A = torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
b = torch.tensor([1.0, -1.0], dtype=torch.float64)
quadratic = lambda z: 0.5 * z @ A @ z - b @ z  # noqa: E731
z = torch.zeros(2, dtype=torch.float64, requires_grad=True)
losses = [quadratic(z).item()]
grad = torch.autograd.grad(quadratic(z), z)[0]
z_new = z.detach() - torch.linalg.solve(hessian(quadratic, z.detach()), grad)
losses.append(quadratic(z_new).item())
y = torch.tensor([0.5, 1.5], requires_grad=True)
Jg = jacobian(lambda t: t ** 3, y, create_graph=True)
(grad_of_trace,) = torch.autograd.grad(Jg.trace(), y)
RESULT = {"losses": losses, "values": {"J": J.tolist(), "H": H.tolist(), "vjp": vjp_result.tolist(),
                                       "jvp": jvp_result.tolist(), "hvp": hvp_result.tolist(),
                                       "vhp": vhp_result.tolist(), "newton": z_new.tolist(),
                                       "grad_of_trace": grad_of_trace.tolist()},
          "shapes": {"J": list(J.shape), "H": list(H.shape)}}
