"""Follows the PyTorch "Quickstart" tutorial: a `NeuralNetwork(nn.Module)` with `nn.Flatten` and an
`nn.Sequential` `linear_relu_stack`, `train(dataloader, model, loss_fn, optimizer)` / `test(...)` loops with
`loss.item(), (batch + 1) * len(X)`, `(pred.argmax(1) == y).type(torch.float).sum().item()`, the device picked by
`torch.cuda.is_available()` (or `torch.accelerator`), `torch.save(model.state_dict(), "model.pth")`, reloading
with `weights_only=True`, and a prediction under `model.eval()` + `torch.no_grad()`."""
import os
import tempfile

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

device = "cuda" if torch.cuda.is_available() else "cpu"
torch.manual_seed(0)
y_all = torch.arange(192) % 4
templates = torch.rand(4, 1, 12, 12)  # each class is a noisy copy of its template, as FashionMNIST items resemble
X_all = 0.5 * templates[y_all] + 0.5 * torch.rand(192, 1, 12, 12)
train_dataloader = DataLoader(TensorDataset(X_all[:128], y_all[:128]), batch_size=32)
test_dataloader = DataLoader(TensorDataset(X_all[128:], y_all[128:]), batch_size=32)


class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(nn.Linear(144, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                                               nn.Linear(64, 4))

    def forward(self, x):
        return self.linear_relu_stack(self.flatten(x))


model = NeuralNetwork().to(device)
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)


def train(dataloader, model, loss_fn, optimizer):
    size = len(dataloader.dataset)
    model.train()
    for batch, (X, y) in enumerate(dataloader):
        X, y = X.to(device), y.to(device)
        loss = loss_fn(model(X), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if batch % 100 == 0:
            loss, current = loss.item(), (batch + 1) * len(X)
            assert current <= size


def test(dataloader, model, loss_fn):
    size, num_batches = len(dataloader.dataset), len(dataloader)
    model.eval()
    test_loss, correct = 0, 0
    with torch.no_grad():
        for X, y in dataloader:
            X, y = X.to(device), y.to(device)
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    return test_loss / num_batches, correct / size


losses = []
for t in range(12):
    train(train_dataloader, model, loss_fn, optimizer)
    losses.append(test(test_dataloader, model, loss_fn)[0])
path = os.path.join(tempfile.mkdtemp(), "model.pth")
torch.save(model.state_dict(), path)
model = NeuralNetwork().to(device)
model.load_state_dict(torch.load(path, weights_only=True))
model.eval()
x, y = X_all[128][None], y_all[128]
with torch.no_grad():
    pred = model(x.to(device))
    predicted = pred[0].argmax(0)
RESULT = {"losses": losses, "shapes": {"pred": list(pred.shape)}, "dtypes": {"argmax": str(predicted.dtype).split(".")[-1]},
          "exact": {"repr": repr(model).replace("dtorch", "torch").splitlines()[:3]}}
