"""Follows pytorch/examples `super_resolution/model.py` and `main.py`: convolutions ending in `nn.PixelShuffle`,
weights initialised with `init.orthogonal_(self.conv1.weight, init.calculate_gain('relu'))`, MSELoss, Adam, and
PSNR `10 * log10(1 / mse.item())` on the test set."""
from math import log10

import torch
import torch.nn as nn
import torch.nn.init as init
import torch.optim as optim


class Net(nn.Module):
    def __init__(self, upscale_factor):
        super(Net, self).__init__()
        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(1, 16, (5, 5), (1, 1), (2, 2))
        self.conv2 = nn.Conv2d(16, 16, (3, 3), (1, 1), (1, 1))
        self.conv3 = nn.Conv2d(16, upscale_factor ** 2, (3, 3), (1, 1), (1, 1))
        self.pixel_shuffle = nn.PixelShuffle(upscale_factor)
        self._initialize_weights()

    def forward(self, x):
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        return self.pixel_shuffle(self.conv3(x))

    def _initialize_weights(self):
        init.orthogonal_(self.conv1.weight, init.calculate_gain("relu"))
        init.orthogonal_(self.conv2.weight, init.calculate_gain("relu"))
        init.orthogonal_(self.conv3.weight)


torch.manual_seed(0)
high = torch.rand(16, 1, 16, 16)
high = nn.functional.avg_pool2d(nn.functional.pad(high, (1, 1, 1, 1), mode="replicate"), 3, 1)  # smooth images
low = nn.functional.avg_pool2d(high, 2)
model = Net(upscale_factor=2)
criterion = nn.MSELoss()
optimizer = optim.Adam(model.parameters(), lr=1e-2)
psnrs = []
for epoch in range(30):
    optimizer.zero_grad()
    loss = criterion(model(low), high)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        psnrs.append(10 * log10(1 / criterion(model(low), high).item()))
shuffled = nn.PixelShuffle(2)(torch.arange(16.0).view(1, 4, 2, 2))
RESULT = {"losses": [-psnrs[0], -psnrs[-1]], "shapes": {"sr": list(model(low).shape)},
          "exact": {"shuffle": shuffled.view(-1).tolist(), "gain": init.calculate_gain("relu")}}
