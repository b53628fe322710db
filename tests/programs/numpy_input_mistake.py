"""Follows the Stack Overflow question "TypeError: linear(): argument 'input' (position 1) must be Tensor, not
numpy.ndarray" and its accepted answer: a regression script prepares its data with NumPy, passes the array straight
to the model (and to `torch.exp`, a loss, an optimizer) by mistake, catches the TypeError, then converts with
`torch.from_numpy(...).float()` / `torch.tensor` and trains as intended."""
import re

import numpy as np
import torch
import torch.nn as nn

rng = np.random.default_rng(0)
features = rng.standard_normal((32, 3)).astype(np.float32)
targets = (features @ np.array([[1.5], [-2.0], [0.5]], dtype=np.float32) + 0.1).astype(np.float32)

model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
loss_fn = nn.MSELoss()
mistakes = {}


def key_part(error):
    """The function and argument the TypeError names (the wording around them is the library's own)."""
    found = re.search(r"(\w+)\(\): argument '(\w+)'.*must be Tensor, not numpy\.ndarray", str(error))
    return list(found.groups()) if found else str(error).splitlines()[0]


for name, mistake in [
    ("model", lambda: model(features)),
    ("exp", lambda: torch.exp(features)),
    ("sum", lambda: torch.sum(features)),
    ("cat", lambda: torch.cat([torch.from_numpy(features), features])),
    ("loss", lambda: loss_fn(features[:, :1], torch.from_numpy(targets))),
    ("optimizer", lambda: torch.optim.SGD([features], lr=0.1)),
]:
    try:
        mistake()
        mistakes[name] = "accepted"
    except TypeError as error:
        # (PyTorch's message for a loss module is an unrelated "'int' object is not callable": the type only)
        mistakes[name] = "TypeError" if name == "loss" else key_part(error)

# the fix from the answer: convert once, keep float32
x = torch.from_numpy(features).float()
y = torch.tensor(targets)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
torch.manual_seed(0)
losses = []
for step in range(60):
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())

# an operator still takes the array: it is the function form that refuses it
shifted = torch.zeros(2, 3) + features[:2]
RESULT = {"exact": {"mistakes": mistakes}, "losses": losses[::10] + [losses[-1]],
          "shapes": {"prediction": list(model(x).shape), "shifted": list(shifted.shape)},
          "values": {"shifted": shifted.tolist()}}
