"""Follows the PyTorch tutorial "Training a Classifier" (CIFAR-10): a ToTensor + Normalize((0.5, 0.5, 0.5),
(0.5, 0.5, 0.5)) transform (written out here, since torchvision does not install beside the oracle's torch), a
LeNet-style `Net` with `self.pool = nn.MaxPool2d(2,
2)` and `torch.flatten(x, 1)`, SGD(lr=0.001, momentum=0.9), `running_loss` printing every N mini-batches,
`PATH = './cifar_net.pth'`, and accuracy with `_, predicted = torch.max(outputs.data, 1)` and per-class counts
through `zip(labels, predictions)` with `classes[label]`. A small in-memory dataset of uint8 HWC images stands in
for CIFAR-10."""
import os
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader, Dataset


def transform(image):
    tensor = torch.from_numpy(image).permute(2, 0, 1).contiguous().float().div(255)
    mean = torch.tensor((0.5, 0.5, 0.5)).view(-1, 1, 1)
    std = torch.tensor((0.5, 0.5, 0.5)).view(-1, 1, 1)
    return (tensor - mean) / std


classes = ("plane", "car", "bird", "cat")


class FakeCifar(Dataset):
    def __init__(self, n, transform):
        rng = np.random.default_rng(0)
        self.targets = rng.integers(0, 4, n)
        self.data = rng.integers(0, 120, (n, 16, 16, 3)).astype(np.uint8)
        for i, t in enumerate(self.targets):  # the class shows as a brighter channel
            self.data[i, :, :, t % 3] += np.uint8(100 + 30 * (t // 3))
        self.transform = transform

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        return self.transform(self.data[index]), int(self.targets[index])


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 3)
        self.fc1 = nn.Linear(16 * 2 * 2, 32)
        self.fc2 = nn.Linear(32, 4)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


torch.manual_seed(0)
trainloader = DataLoader(FakeCifar(160, transform), batch_size=8, shuffle=True, num_workers=0)
net = Net()
criterion = nn.CrossEntropyLoss()
optimizer = optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
epoch_losses = []
for epoch in range(4):
    running_loss = 0.0
    for i, data in enumerate(trainloader, 0):
        inputs, labels = data
        optimizer.zero_grad()
        loss = criterion(net(inputs), labels)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
    epoch_losses.append(running_loss / (i + 1))
PATH = os.path.join(tempfile.mkdtemp(), "cifar_net.pth")
torch.save(net.state_dict(), PATH)
net = Net()
net.load_state_dict(torch.load(PATH, weights_only=True))
correct_pred = {classname: 0 for classname in classes}
total_pred = {classname: 0 for classname in classes}
with torch.no_grad():
    for images, labels in trainloader:
        outputs = net(images)
        _, predictions = torch.max(outputs.data, 1)
        for label, prediction in zip(labels, predictions):
            if label == prediction:
                correct_pred[classes[label]] += 1
            total_pred[classes[label]] += 1
image, _ = FakeCifar(1, transform)[0]
RESULT = {"losses": epoch_losses, "exact": {"total": sum(total_pred.values())},
          "shapes": {"image": list(image.shape)}, "dtypes": {"image": str(image.dtype).split(".")[-1]},
          "values": {"pixel": image[:, 0, 0].tolist()}}
