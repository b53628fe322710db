"""Follows the PyTorch tutorial "Learning PyTorch with Examples", part "Tensors and autograd": fit a third-order
polynomial to sin(x) with four scalar tensors (`requires_grad=True`), the update written by hand inside
`torch.no_grad()` and the gradients reset with `a.grad = None`."""
import math

import torch

dtype = torch.float
x = torch.linspace(-math.pi, math.pi, 200, dtype=dtype)
y = torch.sin(x)
a = torch.tensor(0.1, dtype=dtype, requires_grad=True)
b = torch.tensor(0.2, dtype=dtype, requires_grad=True)
c = torch.tensor(-0.1, dtype=dtype, requires_grad=True)
d = torch.tensor(0.05, dtype=dtype, requires_grad=True)
learning_rate = 1e-6
losses = []
for t in range(300):
    y_pred = a + b * x + c * x ** 2 + d * x ** 3
    loss = (y_pred - y).pow(2).sum()
    if t % 100 == 99 or t == 0:
        losses.append(loss.item())
    loss.backward()
    with torch.no_grad():
        a -= learning_rate * a.grad
        b -= learning_rate * b.grad
        c -= learning_rate * c.grad
        d -= learning_rate * d.grad
        a.grad = None
        b.grad = None
        c.grad = None
        d.grad = None
RESULT = {"losses": losses, "values": {"a": a.item(), "b": b.item(), "c": c.item(), "d": d.item()}}
