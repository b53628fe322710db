"""A seed-style training script end to end: an MLP on synthetic data with an optimizer, a train/eval loop, a
checkpoint, and a resumed run that continues exactly where the first one would have gone."""

import io

import numpy as np
import pytest
import torch

import dtorch
from dtorch import nn, optim, serialization


def _data(seed=0, n=384, features=12, classes=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features)).astype(np.float32)
    w = rng.standard_normal((features, classes)).astype(np.float32)
    y = np.argmax(x @ w + 0.1 * rng.standard_normal((n, classes)), axis=1)
    return dtorch.from_numpy(x), dtorch.from_numpy(y)


def _model():
    return nn.Sequential(
        nn.Linear(12, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.1),
        nn.Linear(64, 32), nn.GELU(), nn.Linear(32, 3),
    )


def _optimizer(model):
    return optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)


def _train_epoch(model, optimizer, loss_fn, x, y, batch_size=32):
    model.train()
    order = dtorch.randperm(len(x))
    for start in range(0, len(x), batch_size):
        index = order[start:start + batch_size]
        optimizer.zero_grad()
        loss = loss_fn(model(x[index]), y[index])
        loss.backward()
        optimizer.step()


def _evaluate(model, loss_fn, x, y):
    model.eval()
    with dtorch.no_grad():
        logits = model(x)
        loss = loss_fn(logits, y).item()
        accuracy = (logits.argmax(dim=1) == y).float().mean().item()
    return loss, accuracy


def test_mlp_training_loss_decreases_and_resume_is_exact():
    dtorch.manual_seed(0)
    x, y = _data()
    model = _model()
    optimizer = _optimizer(model)
    loss_fn = nn.CrossEntropyLoss()
    history = [_evaluate(model, loss_fn, x, y)]
    for _ in range(6):
        _train_epoch(model, optimizer, loss_fn, x, y)
        history.append(_evaluate(model, loss_fn, x, y))
    losses = [loss for loss, _ in history]
    assert losses[-1] < 0.5 * losses[0], losses
    assert sum(b < a for a, b in zip(losses, losses[1:])) >= 4, losses
    assert history[-1][1] > 0.85, history

    # checkpoint: model, optimizer and RNG state, through dtorch's own format
    buffer = io.BytesIO()
    serialization.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "rng": dtorch.get_rng_state(), "epoch": 6}, buffer)
    buffer.seek(0)
    checkpoint = serialization.load(buffer)
    assert checkpoint["epoch"] == 6

    resumed = _model()
    resumed.load_state_dict(checkpoint["model"])
    resumed_optimizer = _optimizer(resumed)
    resumed_optimizer.load_state_dict(checkpoint["optimizer"])
    for a, b in zip(model.state_dict().values(), resumed.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())

    # one more epoch from both: identical weights afterwards
    dtorch.set_rng_state(checkpoint["rng"])
    _train_epoch(model, optimizer, loss_fn, x, y)
    dtorch.set_rng_state(checkpoint["rng"])
    _train_epoch(resumed, resumed_optimizer, loss_fn, x, y)
    for (name, a), b in zip(model.state_dict().items(), resumed.state_dict().values()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7, err_msg=name)
    assert _evaluate(resumed, loss_fn, x, y)[0] < losses[0]


def test_adam_with_scheduler_trains_a_cnn():
    dtorch.manual_seed(1)
    rng = np.random.default_rng(1)
    images = rng.standard_normal((64, 1, 8, 8)).astype(np.float32)
    labels = (images[:, 0, :4].mean(axis=(1, 2)) > images[:, 0, 4:].mean(axis=(1, 2))).astype(np.int64)
    x, y = dtorch.from_numpy(images), dtorch.from_numpy(labels)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(64, 2))
    optimizer = optim.Adam(model.parameters(), lr=0.02)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.5)
    loss_fn = nn.CrossEntropyLoss()
    first = None
    for _ in range(30):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        scheduler.step()
        first = loss.item() if first is None else first
    assert loss.item() < 0.5 * first
    assert scheduler.get_last_lr() == [pytest.approx(0.02 * 0.125)]


def _plain_script(torch, init_state, x_array, y_array, save_path, resume_path):
    """An ordinary PyTorch training script, written once and run with ``torch`` bound to either library: a model
    class, weight-decay groups from ``named_parameters``, AdamW, a cosine schedule, gradient clipping, a
    ``no_grad``-decorated evaluation, a checkpoint at epoch 5, and a resumed run from ``resume_path``."""
    nn, F = torch.nn, torch.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(10, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 32), nn.GELU())
            self.drop = nn.Dropout(0.0)
            self.head = nn.Linear(32, 2)

        def forward(self, x):
            return self.head(self.drop(self.body(x)))

    def build():
        model = Net().to("cpu")
        model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in init_state.items()})
        decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                 {"params": no_decay, "weight_decay": 0.0, "lr": 5e-3}], lr=1e-2)
        return model, opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)

    x, y = torch.from_numpy(x_array), torch.from_numpy(y_array)

    def run(model, opt, sched, epochs, save_at=None):
        @torch.no_grad()
        def evaluate():
            model.eval()
            out = model(x)
            return F.cross_entropy(out, y).item(), (out.argmax(1) == y).float().mean().item()

        seen = []
        for epoch in epochs:
            model.train()
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            seen.append((loss.detach().item(), norm.item(), sched.get_last_lr()[0]) + evaluate())
            if epoch == save_at:
                torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                            "epoch": epoch}, save_path)
        return seen

    first = run(*build(), range(10), save_at=4)
    model, opt, sched = build()
    checkpoint = torch.load(resume_path)
    model.load_state_dict(checkpoint["model"])
    opt.load_state_dict(checkpoint["opt"])
    sched.load_state_dict(checkpoint["sched"])
    resumed = run(model, opt, sched, range(checkpoint["epoch"] + 1, 10))
    return first, resumed


def test_plain_pytorch_script_runs_unchanged_and_matches_torch(tmp_path):
    """The same source runs on both libraries with the same numbers; each resumes from the other's checkpoint."""
    torch.manual_seed(0)
    body = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.BatchNorm1d(32), torch.nn.ReLU(),
                               torch.nn.Linear(32, 32), torch.nn.GELU())
    head = torch.nn.Linear(32, 2)
    init_state = {"body." + k: v.numpy().copy() for k, v in body.state_dict().items()}
    init_state.update({"head." + k: v.detach().numpy().copy() for k, v in head.state_dict().items()})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 10)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    ours_path, theirs_path = tmp_path / "dtorch.pt", tmp_path / "torch.pt"
    # each library first resumes from its own checkpoint, then from the other library's
    torch_first, torch_own = _plain_script(torch, init_state, x, y, theirs_path, theirs_path)
    ours_first, ours_own = _plain_script(dtorch, init_state, x, y, ours_path, ours_path)
    _, torch_from_ours = _plain_script(torch, init_state, x, y, tmp_path / "unused.pt", ours_path)
    _, ours_from_torch = _plain_script(dtorch, init_state, x, y, tmp_path / "unused2.pt", theirs_path)
    # per epoch: train loss, gradient norm, learning rate, eval loss, eval accuracy
    np.testing.assert_allclose(np.array(ours_first), np.array(torch_first), rtol=2e-4, atol=2e-5)
    assert ours_first[-1][3] < 0.6 * ours_first[0][3], "evaluation loss decreases"
    for resumed in (torch_own, ours_own, torch_from_ours, ours_from_torch):
        np.testing.assert_allclose(np.array(resumed), np.array(torch_first[5:]), rtol=2e-4, atol=2e-5)
