"""Follows the checkpoint idiom of pytorch/examples `imagenet/main.py` and countless training scripts: a dict with
`epoch`, `arch`, `state_dict`, `best_acc1`, `optimizer` and `scheduler` states and the `argparse.Namespace` of
the run, saved with `torch.save(state, filename)`, `shutil.copyfile` to `model_best.pth.tar`, loaded with
`torch.load(path, map_location='cpu', weights_only=False)` and resumed so that training continues exactly."""
import argparse
import os
import shutil
import tempfile

import numpy as np
import torch
import torch.nn as nn


def make():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
    return model, optimizer, scheduler


x = torch.tensor(np.random.default_rng(0).standard_normal((32, 6)), dtype=torch.float32)
y = x.sum(dim=1, keepdim=True).sin()


def train_epoch(model, optimizer, scheduler):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
    scheduler.step()
    return loss.item()


args = argparse.Namespace(arch="mlp", lr=0.05, epochs=8)
folder = tempfile.mkdtemp()
model, optimizer, scheduler = make()
losses = []
for epoch in range(4):
    losses.append(train_epoch(model, optimizer, scheduler))
state = {"epoch": 4, "arch": args.arch, "state_dict": model.state_dict(), "best_acc1": -losses[-1],
         "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "args": args,
         "rng": np.random.get_state()[1][:4]}
filename = os.path.join(folder, "checkpoint.pth.tar")
torch.save(state, filename)
shutil.copyfile(filename, os.path.join(folder, "model_best.pth.tar"))

resumed_model, resumed_optimizer, resumed_scheduler = make()
checkpoint = torch.load(os.path.join(folder, "model_best.pth.tar"), map_location="cpu", weights_only=False)
resumed_model.load_state_dict(checkpoint["state_dict"])
resumed_optimizer.load_state_dict(checkpoint["optimizer"])
resumed_scheduler.load_state_dict(checkpoint["scheduler"])
for epoch in range(checkpoint["epoch"], args.epochs):
    losses.append(train_epoch(model, optimizer, scheduler))
    train_epoch(resumed_model, resumed_optimizer, resumed_scheduler)
same = all(torch.equal(a, b) for a, b in zip(model.parameters(), resumed_model.parameters()))
RESULT = {"losses": losses, "exact": {"same": same, "epoch": checkpoint["epoch"], "arch": checkpoint["args"].arch,
                                      "lr": resumed_scheduler.get_last_lr()}}
