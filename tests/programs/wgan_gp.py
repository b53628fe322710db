"""Follows the WGAN-GP gradient penalty as written in popular implementations (e.g. the improved-WGAN PyTorch
ports): a conv critic, interpolates `alpha * real + (1 - alpha) * fake` with `requires_grad_(True)`, the gradient
of the critic's output w.r.t. the interpolates from `torch.autograd.grad(outputs=..., inputs=...,
grad_outputs=torch.ones(...), create_graph=True, retain_graph=True, only_inputs=True)[0]`, the penalty
`((gradients.norm(2, dim=1) - 1) ** 2).mean() * LAMBDA` backpropagated into the critic's weights, Adam(0, 0.9)."""
import torch
import torch.autograd as autograd
import torch.nn as nn


class Critic(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(nn.Conv2d(1, 8, 3, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(8, 16, 3, 2, 1),
                                  nn.LeakyReLU(0.2))
        self.output = nn.Linear(16 * 4 * 4, 1)

    def forward(self, x):
        return self.output(self.main(x).view(x.size(0), -1))


def gradient_penalty(critic, real, fake, LAMBDA=10.0):
    alpha = torch.rand(real.size(0), 1, 1, 1).expand_as(real)
    interpolates = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    disc_interpolates = critic(interpolates)
    gradients = autograd.grad(outputs=disc_interpolates, inputs=interpolates,
                              grad_outputs=torch.ones(disc_interpolates.size()),
                              create_graph=True, retain_graph=True, only_inputs=True)[0]
    gradients = gradients.view(gradients.size(0), -1)
    return ((gradients.norm(2, dim=1) - 1) ** 2).mean() * LAMBDA


torch.manual_seed(0)
critic = Critic()
optimizer = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.0, 0.9))
real = torch.randn(16, 1, 16, 16) + 1.0
penalties = []
for step in range(30):
    fake = torch.randn(16, 1, 16, 16)
    optimizer.zero_grad()
    gp = gradient_penalty(critic, real, fake)
    loss = critic(fake).mean() - critic(real).mean() + gp
    loss.backward()
    optimizer.step()
    penalties.append(gp.item())
fixed = torch.ones(2, 1, 16, 16, requires_grad=True)
with torch.no_grad():
    for p in critic.parameters():
        p.copy_(torch.full_like(p, 0.01))
out = critic(fixed * fixed)
(g,) = autograd.grad(out.sum(), fixed, create_graph=True)
(gg,) = autograd.grad(g.pow(2).sum(), fixed)
RESULT = {"losses": [sum(penalties[:5]) / 5, sum(penalties[-5:]) / 5], "shapes": {"g": list(g.shape)},
          "values": {"gg_sum": gg.sum().item(), "g_sum": g.sum().item()}}
