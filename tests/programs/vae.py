"""Follows pytorch/examples `vae/main.py`: fc encoder to mu/logvar, `reparameterize` with `torch.randn_like` and
`torch.exp(0.5 * logvar)`, a sigmoid decoder, BCE (reduction='sum') + KLD loss, Adam, `model.train()` /
`model.eval()` with `torch.no_grad()` sampling."""
import torch
import torch.nn.functional as F
from torch import nn, optim


class VAE(nn.Module):
    def __init__(self):
        super(VAE, self).__init__()
        self.fc1 = nn.Linear(64, 32)
        self.fc21 = nn.Linear(32, 4)
        self.fc22 = nn.Linear(32, 4)
        self.fc3 = nn.Linear(4, 32)
        self.fc4 = nn.Linear(32, 64)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 64))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 64), reduction="sum")
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


torch.manual_seed(1)
data = (torch.rand(96, 1, 8, 8) > 0.5).float()
model = VAE()
optimizer = optim.Adam(model.parameters(), lr=1e-2)
losses = []
for epoch in range(1, 6):
    model.train()
    train_loss = 0
    for batch_idx in range(3):
        x = data[batch_idx * 32:(batch_idx + 1) * 32]
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(x)
        loss = loss_function(recon_batch, x, mu, logvar)
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
    losses.append(train_loss / len(data))
model.eval()
with torch.no_grad():
    sample = model.decode(torch.randn(8, 4)).cpu()
RESULT = {"losses": losses, "shapes": {"sample": list(sample.view(8, 1, 8, 8).shape)}}
