"""Follows the scheduler recipes in the PyTorch docs and common training scripts: OneCycleLR stepped every batch,
CosineAnnealingWarmRestarts stepped with a fractional epoch `scheduler.step(epoch + i / iters)`, ReduceLROnPlateau
on a validation loss, LambdaLR with a warmup lambda, SequentialLR chaining LinearLR and ExponentialLR, and
`get_last_lr()` / `optimizer.param_groups[0]["lr"]` read back."""
import torch
from torch.optim import lr_scheduler


def make_optimizer():
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)


traces = {}
opt = make_optimizer()
sched = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=20)
traces["onecycle"] = []
for _ in range(20):
    opt.step()
    sched.step()
    traces["onecycle"].append(sched.get_last_lr()[0])
traces["onecycle_momentum"] = opt.param_groups[0]["momentum"]
opt = make_optimizer()
sched = lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2, eta_min=0.001)
traces["warm_restarts"] = []
for epoch in range(5):
    for i in range(4):
        opt.step()
        sched.step(epoch + i / 4)
        traces["warm_restarts"].append(opt.param_groups[0]["lr"])
opt = make_optimizer()
sched = lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=1)
traces["plateau"] = []
for val_loss in [1.0, 0.9, 0.95, 0.96, 0.97, 0.5, 0.6, 0.7, 0.8]:
    opt.step()
    sched.step(val_loss)
    traces["plateau"].append(opt.param_groups[0]["lr"])
opt = make_optimizer()
sched = lr_scheduler.LambdaLR(opt, lr_lambda=lambda step: min(1.0, (step + 1) / 5))
traces["lambda"] = []
for _ in range(7):
    opt.step()
    sched.step()
    traces["lambda"].append(sched.get_last_lr()[0])
opt = make_optimizer()
sched = lr_scheduler.SequentialLR(opt, schedulers=[lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=3),
                                                   lr_scheduler.ExponentialLR(opt, gamma=0.9)], milestones=[3])
traces["sequential"] = []
for _ in range(7):
    opt.step()
    sched.step()
    traces["sequential"].append(sched.get_last_lr()[0])
RESULT = {"values": traces}
