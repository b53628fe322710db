"""A seed-style training script end to end: an MLP on synthetic data with an optimizer, a train/eval loop, a
checkpoint, and a resumed run that continues exactly where the first one would have gone."""

import io

import numpy as np
import pytest

import dtorch
from dtorch import nn
from dtorch import serialization

try:
    from dtorch import optim
except ImportError:  # pragma: no cover - the optimizer package is written concurrently
    optim = None


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


class _ManualSGD:
    """Plain SGD for when dtorch.optim is not there."""

    def __init__(self, params, lr):
        self.params, self.lr = list(params), lr

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        for p in self.params:
            if p.grad is not None:
                p.data -= self.lr * p.grad.data

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def _optimizer(model):
    if optim is not None:
        return optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    return _ManualSGD(model.parameters(), lr=0.05)


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


@pytest.mark.skipif(optim is None, reason="dtorch.optim is not there yet")
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
