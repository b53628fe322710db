"""Follows the convolutional autoencoder found in many PyTorch tutorials (e.g. the "Convolutional Autoencoder in
PyTorch" posts): an `encoder` of Conv2d + ReLU + MaxPool2d and a `decoder` of ConvTranspose2d + ReLU + Sigmoid in
`nn.Sequential`s, MSELoss between reconstruction and input, Adam with weight decay, and `model.encoder(x)` codes."""
import torch
import torch.nn as nn


class Autoencoder(nn.Module):
    def __init__(self):
        super(Autoencoder, self).__init__()
        self.encoder = nn.Sequential(nn.Conv2d(1, 8, 3, stride=1, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
                                     nn.Conv2d(8, 4, 3, stride=1, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2))
        self.decoder = nn.Sequential(nn.ConvTranspose2d(4, 8, 2, stride=2), nn.ReLU(),
                                     nn.ConvTranspose2d(8, 1, 2, stride=2), nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


torch.manual_seed(0)
images = torch.zeros(32, 1, 16, 16)
for i in range(32):
    images[i, 0, i % 12: i % 12 + 4, (3 * i) % 12: (3 * i) % 12 + 4] = 1.0  # squares at different places
model = Autoencoder()
criterion = nn.MSELoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-5)
losses = []
for epoch in range(25):
    recon = model(images)
    loss = criterion(recon, images)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
with torch.no_grad():
    codes = model.encoder(images)
RESULT = {"losses": losses, "shapes": {"codes": list(codes.shape), "recon": list(recon.shape)},
          "exact": {"range": bool(recon.min() >= 0 and recon.max() <= 1)}}
