"""Follows the mixture-density-network and Gaussian-likelihood examples written with `torch.distributions` (e.g.
the MDN tutorials and VAE/regression posts): a network emitting mixture weights, means and log-scales,
`Categorical(logits=...)`, `Normal(loc, scale)`, `MixtureSameFamily` replaced by an explicit
`torch.logsumexp(log_pi + normal.log_prob(y), dim=1)`, `rsample()` for the reparameterised draw, `kl_divergence`
between Normals, and `nn.GaussianNLLLoss`."""
import math

import torch
import torch.nn as nn
from torch.distributions import Categorical, Normal, kl_divergence


class MDN(nn.Module):
    def __init__(self, components=3):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(1, 32), nn.Tanh())
        self.pi = nn.Linear(32, components)
        self.mu = nn.Linear(32, components)
        self.log_sigma = nn.Linear(32, components)

    def forward(self, x):
        h = self.body(x)
        return self.pi(h), self.mu(h), self.log_sigma(h).clamp(-5, 3)


torch.manual_seed(0)
x = torch.linspace(-1, 1, 200).unsqueeze(1)
y = torch.where(torch.arange(200).unsqueeze(1) % 2 == 0, torch.sin(3 * x), -torch.sin(3 * x)) + 0.05 * torch.randn(200, 1)
model = MDN()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
losses = []
for step in range(120):
    logits, mu, log_sigma = model(x)
    log_pi = torch.log_softmax(logits, dim=1)
    normal = Normal(mu, log_sigma.exp())
    nll = -torch.logsumexp(log_pi + normal.log_prob(y), dim=1).mean()
    optimizer.zero_grad()
    nll.backward()
    optimizer.step()
    losses.append(nll.item())
component = Categorical(logits=logits).sample()
draw = Normal(mu, log_sigma.exp()).rsample()
p, q = Normal(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0])), Normal(torch.tensor([1.0, 1.0]), torch.tensor([1.0, 0.5]))
gaussian_nll = nn.GaussianNLLLoss()(torch.tensor([0.5, 1.0]), torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.5]))
RESULT = {"losses": [sum(losses[:5]) / 5, sum(losses[-5:]) / 5],
          "shapes": {"component": list(component.shape), "draw": list(draw.shape)},
          "values": {"kl": kl_divergence(p, q).tolist(), "log_prob": p.log_prob(torch.tensor([0.5, 0.5])).tolist(),
                     "cdf": p.cdf(torch.tensor([0.0, 2.0])).tolist(), "gnll": gaussian_nll.item(),
                     "entropy": p.entropy().tolist(), "half_log_2pi": 0.5 * math.log(2 * math.pi)}}
