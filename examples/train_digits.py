"""Train a small convolutional network on the handwritten digits that ship with dtorch.

An ordinary PyTorch training script: only the import line says dtorch. It trains for a few epochs, prints the
loss and test accuracy of each epoch, saves a checkpoint, reloads it, and checks the reloaded model agrees.

Run: python examples/train_digits.py [--epochs 8] [--checkpoint digits.pt]
"""

import argparse
import os
import tempfile
import time

import dtorch as torch
from dtorch import nn
from dtorch.nn import functional as F
from dtorch.utils.data import DataLoader
from dtorch.vision import datasets, transforms


class DigitsNet(nn.Module):
    """Two 3x3 convolutions on the 8x8 images, then a two-layer classifier."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 4 * 4, 64)
        self.fc2 = nn.Linear(64, 10)
        self.dropout = nn.Dropout(0.1)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = self.dropout(F.relu(self.fc1(x)))
        return self.fc2(x)


def evaluate(model, loader):
    model.eval()
    correct = total = 0
    loss_sum = 0.0
    with torch.no_grad():
        for images, labels in loader:
            logits = model(images)
            loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(dim=1) == labels).sum().item()
            total += labels.shape[0]
    return loss_sum / total, correct / total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--checkpoint", default=os.path.join(tempfile.gettempdir(), "dtorch_digits.pt"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    train_set = datasets.Digits(train=True, transform=transform)
    test_set = datasets.Digits(train=False, transform=transform)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=256)

    model = DigitsNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    print(f"{len(train_set)} training and {len(test_set)} test images; "
          f"{sum(p.numel() for p in model.parameters())} parameters")

    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        running, batches = 0.0, 0
        for images, labels in train_loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            running += loss.item()
            batches += 1
        scheduler.step()
        test_loss, accuracy = evaluate(model, test_loader)
        print(f"epoch {epoch:2d}  train loss {running / batches:.4f}  test loss {test_loss:.4f}  "
              f"test accuracy {accuracy:.3f}  lr {scheduler.get_last_lr()[0]:.5f}")
    elapsed = time.perf_counter() - start

    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": args.epochs},
               args.checkpoint)
    restored = DigitsNet()
    restored.load_state_dict(torch.load(args.checkpoint)["model"])
    _, restored_accuracy = evaluate(restored, test_loader)
    print(f"trained in {elapsed:.1f} s; checkpoint {args.checkpoint} reloads with test accuracy "
          f"{restored_accuracy:.3f}")
    if restored_accuracy != accuracy:
        raise SystemExit("the reloaded checkpoint does not reproduce the trained model")
    if accuracy < 0.9:
        raise SystemExit(f"test accuracy {accuracy:.3f} is below 0.9: training did not work")


if __name__ == "__main__":
    main()
