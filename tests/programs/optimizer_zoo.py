"""Follows the optimizer comparisons that circulate as notebooks and blog posts (e.g. "pytorch-optimizer"
visualisations on the Rosenbrock function): every `torch.optim` optimizer, built with its usual arguments,
minimising the same function from the same start; each trajectory is compared with PyTorch's."""
import torch
import torch.optim as optim


def rosenbrock(xy):
    x, y = xy
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


configs = {
    "SGD": (optim.SGD, dict(lr=1e-3, momentum=0.9)),
    "Adam": (optim.Adam, dict(lr=1e-2)),
    "AdamW": (optim.AdamW, dict(lr=1e-2, weight_decay=1e-2)),
    "Adamax": (optim.Adamax, dict(lr=1e-2)),
    "NAdam": (optim.NAdam, dict(lr=1e-2)),
    "RAdam": (optim.RAdam, dict(lr=1e-2)),
    "RMSprop": (optim.RMSprop, dict(lr=1e-3)),
    "Adagrad": (optim.Adagrad, dict(lr=1e-1)),
    "Adadelta": (optim.Adadelta, dict(lr=1.0)),
    "ASGD": (optim.ASGD, dict(lr=1e-3)),
    "Rprop": (optim.Rprop, dict(lr=1e-3)),
}
finals, first_last = {}, []
for name, (cls, kwargs) in configs.items():
    xy = torch.tensor([-1.5, 2.0], dtype=torch.float64, requires_grad=True)
    optimizer = cls([xy], **kwargs)
    start = rosenbrock(xy).item()
    for step in range(100):
        optimizer.zero_grad()
        loss = rosenbrock(xy)
        loss.backward()
        optimizer.step()
    finals[name] = xy.detach().tolist()
    first_last.append((start, rosenbrock(xy).item()))
RESULT = {"losses": [sum(a for a, _ in first_last), sum(b for _, b in first_last)], "values": finals}
