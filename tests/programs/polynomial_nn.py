"""Follows the PyTorch tutorial "Learning PyTorch with Examples", parts "nn module" and "optim": the powers of x
stacked with `x.unsqueeze(-1).pow(p)`, `nn.Sequential(nn.Linear(3, 1), nn.Flatten(0, 1))`, `MSELoss(reduction='sum')`,
first a hand-written update over `model.parameters()` with `param -= learning_rate * param.grad`, then RMSprop;
the fitted polynomial read back through `model[0]`."""
import math

import torch

x = torch.linspace(-math.pi, math.pi, 200)
y = torch.sin(x)
p = torch.tensor([1, 2, 3])
xx = x.unsqueeze(-1).pow(p)
model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0, 1))
with torch.no_grad():
    model[0].weight.copy_(torch.tensor([[0.5, -0.1, 0.02]]))
    model[0].bias.fill_(0.1)
loss_fn = torch.nn.MSELoss(reduction="sum")
learning_rate = 1e-6
losses = []
for t in range(200):
    y_pred = model(xx)
    loss = loss_fn(y_pred, y)
    if t in (0, 199):
        losses.append(loss.item())
    model.zero_grad()
    loss.backward()
    with torch.no_grad():
        for param in model.parameters():
            param -= learning_rate * param.grad
optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)
for t in range(200):
    loss = loss_fn(model(xx), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
losses.append(loss.item())
linear_layer = model[0]
RESULT = {"losses": losses, "values": {"bias": linear_layer.bias.item(), "weight": linear_layer.weight[:, 0].item()},
          "shapes": {"xx": list(xx.shape), "out": list(model(xx).shape)}}
