"""Follows the gradient-accumulation + mixed-precision recipe of the PyTorch AMP docs ("Automatic Mixed Precision
examples": gradient accumulation) as people write it for CPU and GPU alike: `torch.autocast(device_type=...,
enabled=use_amp)`, `torch.amp.GradScaler(enabled=...)`, `scaler.scale(loss / accum_iter).backward()`,
`scaler.unscale_(optimizer)` before `clip_grad_norm_`, `scaler.step(optimizer)`, `scaler.update()` every
`accum_iter` batches, and `optimizer.zero_grad(set_to_none=True)`."""
import torch
import torch.nn as nn

device = "cuda" if torch.cuda.is_available() else "cpu"
use_amp = device == "cuda"
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1)).to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
scaler = torch.amp.GradScaler(device, enabled=use_amp)
x = torch.randn(64, 10, device=device)
y = (x[:, :3].sum(dim=1, keepdim=True) > 0).float()
loss_fn = nn.BCEWithLogitsLoss()
accum_iter, losses = 4, []
for epoch in range(10):
    total = 0.0
    for i in range(8):
        xb, yb = x[i * 8:(i + 1) * 8], y[i * 8:(i + 1) * 8]
        with torch.autocast(device_type=device, dtype=torch.float16, enabled=use_amp):
            loss = loss_fn(model(xb), yb)
        scaler.scale(loss / accum_iter).backward()
        total += loss.item()
        if (i + 1) % accum_iter == 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
    losses.append(total / 8)
RESULT = {"losses": losses, "exact": {"grads_cleared": all(p.grad is None for p in model.parameters()),
                                      "scale": scaler.get_scale() if use_amp else 1.0}}
