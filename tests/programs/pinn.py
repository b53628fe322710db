"""Follows the physics-informed neural network tutorials (e.g. the PINN examples solving u'' = f with PyTorch):
collocation points with `requires_grad=True`, first and second derivatives from `torch.autograd.grad(u, x,
grad_outputs=torch.ones_like(u), create_graph=True)`, a residual loss plus boundary loss, Adam then a few LBFGS
steps with a closure."""
import math

import torch
import torch.nn as nn

torch.manual_seed(0)
net = nn.Sequential(nn.Linear(1, 20), nn.Tanh(), nn.Linear(20, 20), nn.Tanh(), nn.Linear(20, 1))
x = torch.linspace(0, 1, 40).view(-1, 1).requires_grad_(True)
boundary = torch.tensor([[0.0], [1.0]])


def pde_loss():
    u = net(x)
    u_x = torch.autograd.grad(u, x, grad_outputs=torch.ones_like(u), create_graph=True)[0]
    u_xx = torch.autograd.grad(u_x, x, grad_outputs=torch.ones_like(u_x), create_graph=True)[0]
    residual = u_xx + (math.pi ** 2) * torch.sin(math.pi * x)  # u = sin(pi x) solves u'' = -pi^2 sin(pi x)
    return (residual ** 2).mean() + (net(boundary) ** 2).mean()


optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
losses = []
for step in range(150):
    optimizer.zero_grad()
    loss = pde_loss()
    loss.backward()
    optimizer.step()
    if step % 50 == 0:
        losses.append(loss.item())
lbfgs = torch.optim.LBFGS(net.parameters(), lr=0.5, max_iter=10, line_search_fn="strong_wolfe")


def closure():
    lbfgs.zero_grad()
    loss = pde_loss()
    loss.backward()
    return loss


lbfgs.step(closure)
losses.append(pde_loss().item())
t = torch.tensor([0.3, 0.7], requires_grad=True)
f = (t ** 3).sum()
(d1,) = torch.autograd.grad(f, t, create_graph=True)
(d2,) = torch.autograd.grad(d1.sum(), t)
RESULT = {"losses": losses, "values": {"d1": d1.tolist(), "d2": d2.tolist()}}
