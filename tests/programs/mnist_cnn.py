"""Follows pytorch/examples `mnist/main.py`: a two-conv CNN with dropout, log_softmax + nll_loss, Adadelta with
StepLR, train/test loops with `output.argmax(dim=1, keepdim=True)` and `pred.eq(target.view_as(pred))`, and the
state dict saved at the end. Random 28x28 images with a learnable label rule stand in for MNIST."""
import argparse
import os
import tempfile

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, 1)
        self.conv2 = nn.Conv2d(8, 16, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(16 * 12 * 12, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)


def train(model, loader, optimizer, losses):
    model.train()
    for data, target in loader:
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())


def test(model, loader):
    model.eval()
    test_loss, correct = 0, 0
    with torch.no_grad():
        for data, target in loader:
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
    return test_loss / len(loader.dataset), correct


parser = argparse.ArgumentParser(description="PyTorch MNIST Example")
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--lr", type=float, default=1.0)
parser.add_argument("--gamma", type=float, default=0.7)
args = parser.parse_args([])
torch.manual_seed(1)
images = torch.rand(128, 1, 28, 28)
labels = (images.mean(dim=(1, 2, 3)) * 10 % 10).long()  # a rule the net can pick up
train_loader = DataLoader(TensorDataset(images, labels), batch_size=args.batch_size, shuffle=True)
test_loader = DataLoader(TensorDataset(images[:64], labels[:64]), batch_size=64)
model = Net()
optimizer = optim.Adadelta(model.parameters(), lr=args.lr)
scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
losses = []
for epoch in range(1, args.epochs + 1):
    train(model, train_loader, optimizer, losses)
    test_loss, correct = test(model, test_loader)
    scheduler.step()
path = os.path.join(tempfile.mkdtemp(), "mnist_cnn.pt")
torch.save(model.state_dict(), path)
model.load_state_dict(torch.load(path))
RESULT = {"losses": [sum(losses[:4]) / 4, sum(losses[-4:]) / 4],
          "exact": {"lr": scheduler.get_last_lr(), "keys": sorted(model.state_dict())},
          "shapes": {"out": list(model(images[:3]).shape)}}
