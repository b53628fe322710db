"""Follows SN-GAN discriminators as written with PyTorch (e.g. christiancosgrove/pytorch-spectral-normalization-gan
after it moved to the built-in): `nn.utils.spectral_norm(nn.Conv2d(...))` layers, the newer
`nn.utils.parametrizations.spectral_norm` and `weight_norm`, hinge loss `relu(1 - d_real).mean() + relu(1 +
d_fake).mean()`, Adam(betas=(0.0, 0.9)); the spectral norm of a fixed matrix read back after power iterations."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import spectral_norm

torch.manual_seed(0)
discriminator = nn.Sequential(
    spectral_norm(nn.Conv2d(1, 8, 3, stride=2, padding=1)), nn.LeakyReLU(0.1),
    nn.utils.parametrizations.spectral_norm(nn.Conv2d(8, 16, 3, stride=2, padding=1)), nn.LeakyReLU(0.1),
    nn.Flatten(), nn.utils.parametrizations.weight_norm(nn.Linear(16 * 4 * 4, 1)))
generator = nn.Sequential(nn.Linear(8, 16 * 16), nn.Tanh())
opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.0, 0.9))
opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.0, 0.9))
real = torch.tanh(torch.randn(32, 1, 16, 16) + 0.5)
d_losses = []
for step in range(20):
    fake = generator(torch.randn(32, 8)).view(32, 1, 16, 16)
    d_loss = F.relu(1 - discriminator(real)).mean() + F.relu(1 + discriminator(fake.detach())).mean()
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    g_loss = -discriminator(fake).mean()
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    d_losses.append(d_loss.item())
layer = nn.Linear(3, 3, bias=False)
with torch.no_grad():
    layer.weight.copy_(torch.tensor([[3.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.5]]))
layer = nn.utils.parametrizations.spectral_norm(layer, n_power_iterations=30)
layer.train()
for _ in range(3):
    layer(torch.ones(1, 3))
names = sorted(n for n, _ in discriminator.named_parameters())
RESULT = {"losses": [sum(d_losses[:3]) / 3, sum(d_losses[-3:]) / 3],
          "values": {"normalized": layer.weight.detach().diagonal().tolist()},
          "exact": {"names": names}}
