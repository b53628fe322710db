"""Follows the PyTorch tutorial "What is torch.nn really?": logistic regression from scratch (weights
`torch.randn(784, 10) / math.sqrt(784)` with `requires_grad_()`, a hand-written `log_softmax` and `nll` with
`input[range(target.shape[0]), target]`, the `with torch.no_grad(): weights -= weights.grad * lr;
weights.grad.zero_()` update), then refactored step by step: `F.cross_entropy`, an `nn.Module` with
`nn.Parameter`s, `nn.Linear`, `optim.SGD`, `TensorDataset` + `DataLoader`, and a `fit`/`loss_batch` pair with
validation under `model.eval()`."""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

rng = np.random.default_rng(0)
x_train = torch.tensor(rng.random((256, 64)), dtype=torch.float32)
y_train = torch.tensor((x_train.numpy()[:, :8].sum(axis=1) * 2).astype(np.int64) % 10)
x_valid, y_valid = x_train[:64], y_train[:64]
n, c = x_train.shape
bs, lr = 32, 0.5

weights = torch.randn(64, 10) / math.sqrt(64)
weights.requires_grad_()
bias = torch.zeros(10, requires_grad=True)


def log_softmax(x):
    return x - x.exp().sum(-1).log().unsqueeze(-1)


def model(xb):
    return log_softmax(xb @ weights + bias)


def nll(input, target):
    return -input[range(target.shape[0]), target].mean()


loss_func = nll
losses = [loss_func(model(x_train), y_train).item()]
for epoch in range(2):
    for i in range((n - 1) // bs + 1):
        xb, yb = x_train[i * bs: i * bs + bs], y_train[i * bs: i * bs + bs]
        loss = loss_func(model(xb), yb)
        loss.backward()
        with torch.no_grad():
            weights -= weights.grad * lr
            bias -= bias.grad * lr
            weights.grad.zero_()
            bias.grad.zero_()
losses.append(loss_func(model(x_train), y_train).item())
assert abs(F.cross_entropy(xb @ weights + bias, yb).item() - nll(model(xb), yb).item()) < 1e-5


class Mnist_Logistic(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(64, 10)

    def forward(self, xb):
        return self.lin(xb)


def loss_batch(model, loss_func, xb, yb, opt=None):
    loss = loss_func(model(xb), yb)
    if opt is not None:
        loss.backward()
        opt.step()
        opt.zero_grad()
    return loss.item(), len(xb)


def fit(epochs, model, loss_func, opt, train_dl, valid_dl):
    history = []
    for epoch in range(epochs):
        model.train()
        for xb, yb in train_dl:
            loss_batch(model, loss_func, xb, yb, opt)
        model.eval()
        with torch.no_grad():
            batch_losses, nums = zip(*[loss_batch(model, loss_func, xb, yb) for xb, yb in valid_dl])
        history.append(np.sum(np.multiply(batch_losses, nums)) / np.sum(nums))
    return history


train_dl = DataLoader(TensorDataset(x_train, y_train), batch_size=bs, shuffle=True)
valid_dl = DataLoader(TensorDataset(x_valid, y_valid), batch_size=bs * 2)
net = Mnist_Logistic()
history = fit(3, net, F.cross_entropy, optim.SGD(net.parameters(), lr=0.1, momentum=0.9), train_dl, valid_dl)
assert history[-1] < history[0], history
RESULT = {"losses": losses,
          "shapes": {"weights": list(weights.shape), "pred": list(model(x_valid).shape)}}
