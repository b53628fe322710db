"""Follows the MAML inner/outer loop as written in the common PyTorch implementations (e.g. the `learn2learn`-free
MAML tutorials): a functional forward `F.linear(x, params[0], params[1])`, inner-loop adaptation
`fast = [w - inner_lr * g for w, g in zip(params, grads)]` with `torch.autograd.grad(loss, params,
create_graph=True)`, and the meta-gradient through the adapted weights into Adam on sine-regression tasks."""
import math

import torch
import torch.nn.functional as F


def forward(x, params):
    h = F.relu(F.linear(x, params[0], params[1]))
    h = torch.tanh(F.linear(h, params[2], params[3]))
    return F.linear(h, params[4], params[5])


def sample_task(generator_phase):
    amplitude = 1.0 + 0.5 * math.sin(generator_phase)
    phase = generator_phase % math.pi
    x = torch.linspace(-5, 5, 20).unsqueeze(1)
    return x, amplitude * torch.sin(x + phase)


torch.manual_seed(0)
params = [torch.randn(32, 1) * 0.3, torch.zeros(32), torch.randn(32, 32) * 0.15, torch.zeros(32),
          torch.randn(1, 32) * 0.15, torch.zeros(1)]
params = [p.requires_grad_() for p in params]
meta_opt = torch.optim.Adam(params, lr=1e-2)
inner_lr, meta_losses = 0.05, []
for iteration in range(40):
    meta_opt.zero_grad()
    total = 0.0
    for task in range(3):
        x, y = sample_task(iteration * 3 + task)
        loss = F.mse_loss(forward(x[::2], params), y[::2])
        grads = torch.autograd.grad(loss, params, create_graph=True)
        fast = [w - inner_lr * g for w, g in zip(params, grads)]
        total = total + F.mse_loss(forward(x[1::2], fast), y[1::2])
    total.backward()
    meta_opt.step()
    meta_losses.append(total.item() / 3)
with torch.no_grad():
    for p in params:
        p.copy_(torch.linspace(-0.5, 0.5, p.numel()).view_as(p))
x, y = sample_task(1.0)
loss = F.mse_loss(forward(x, params), y)
grads = torch.autograd.grad(loss, params, create_graph=True)
second = torch.autograd.grad(sum(g.pow(2).sum() for g in grads), params)
RESULT = {"losses": [sum(meta_losses[:5]) / 5, sum(meta_losses[-5:]) / 5],
          "values": {"second": [s.sum().item() for s in second], "loss": loss.item()}}
