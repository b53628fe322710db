"""Train a small convolutional network on the handwritten digits that ship with dtorch, on one rank or many.

An ordinary PyTorch DDP script: only the import line says dtorch. Run it on 2 ranks with

    dtorchrun --nproc-per-node 2 examples/train_digits.py

(or ``mpiexec -n 2 python examples/train_digits.py``, or ``python examples/train_digits.py`` on one process).
Each rank trains on its share of the data (``DistributedSampler``) and DistributedDataParallel averages the
gradients. Rank 0 shows a progress bar (tqdm, when installed), prints the training loss and test accuracy of each
epoch (both reduced over every rank), writes a checkpoint after each epoch and, at the end, a metrics JSON and a
PNG plot of loss and accuracy (matplotlib, when installed), and prints their paths.

``--resume`` continues from the checkpoint in ``--out-dir`` when there is one: model, optimizer, scheduler, every
rank's random state and the sampler's epoch are restored, so an interrupted and resumed run ends with the same
parameters, bit for bit, as one that ran through. With ``dtorchrun --max-restarts 1 ... --resume`` a job whose
rank died starts again from its last checkpoint by itself.
"""

import argparse
import json
import os
import time

import dtorch as torch
import dtorch.distributed as dist
from dtorch import nn
from dtorch.nn import functional as F
from dtorch.nn.parallel import DistributedDataParallel as DDP
from dtorch.utils.data import DataLoader, Subset
from dtorch.utils.data.distributed import DistributedSampler
from dtorch.vision import datasets, transforms

# dtorchrun and torchrun set WORLD_SIZE; MPICH (mpiexec, srun) PMI_SIZE; Open MPI and MVAPICH their own
LAUNCHER_SIZE_VARIABLES = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")

try:
    from tqdm import tqdm
except ImportError:  # the bar is a nicety: without tqdm, the epoch lines alone
    tqdm = None


class DigitsNet(nn.Module):
    """Two 3x3 convolutions on the 8x8 images, then a two-layer classifier."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 4 * 4, 64)
        self.fc2 = nn.Linear(64, 10)
        self.dropout = nn.Dropout(0.3)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = self.dropout(F.relu(self.fc1(x)))
        return self.fc2(x)


def setup(backend):
    """(rank, world size, device): a process group when a launcher started several ranks, else a world of one."""
    launched = any(int(os.environ.get(name, "1")) > 1 for name in LAUNCHER_SIZE_VARIABLES)
    if launched:
        dist.init_process_group(backend)
    rank, world = (dist.get_rank(), dist.get_world_size()) if launched else (0, 1)
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def all_sum(values, world, device):
    """Sum a list of numbers over every rank."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if world > 1:
        dist.all_reduce(t)
    return t.tolist()


def evaluate(model, loader, world, device):
    """Test loss and accuracy over the whole test set (each rank scores its share, the sums are reduced)."""
    model.eval()
    loss_sum = correct = total = 0.0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            logits = model(images)
            loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(dim=1) == labels).sum().item()
            total += labels.shape[0]
    loss_sum, correct, total = all_sum([loss_sum, correct, total], world, device)
    return loss_sum / total, correct / total


def rng_states(world):
    """Every rank's random state (dropout draws differ by rank), gathered so that rank 0 can save them."""
    mine = torch.get_rng_state()
    if world == 1:
        return [mine]
    states = [None] * world
    dist.all_gather_object(states, mine)
    return states


def save_plot(history, path):
    """Loss and accuracy per epoch as a PNG; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(epochs, [h["train_loss"] for h in history], marker="o", label="train")
    left.plot(epochs, [h["test_loss"] for h in history], marker="o", label="test")
    left.set_xlabel("epoch"), left.set_ylabel("cross-entropy loss"), left.legend()
    right.plot(epochs, [100 * h["test_accuracy"] for h in history], marker="o", color="tab:green")
    right.set_xlabel("epoch"), right.set_ylabel("test accuracy (%)")
    fig.suptitle("dtorch: digits, DistributedDataParallel")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32, help="per rank")
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default=None, help="'gloo'/'mpi' (CPU) or 'nccl' (GPU); default: by device")
    parser.add_argument("--out-dir", default="runs/digits", help="checkpoint, metrics.json and plot.png go here")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out-dir, if any")
    parser.add_argument("--stop-after", type=int, default=None, help="stop after this epoch (to try --resume)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args()

    rank, world, device = setup(args.backend)
    torch.manual_seed(args.seed)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    train_set = datasets.Digits(train=True, transform=transform)
    test_set = datasets.Digits(train=False, transform=transform)
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=args.seed)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, sampler=sampler)
    test_shard = Subset(test_set, range(rank, len(test_set), world))  # every image scored once
    test_loader = DataLoader(test_shard, batch_size=256)

    module = DigitsNet().to(device)
    model = DDP(module) if world > 1 else module
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    os.makedirs(args.out_dir, exist_ok=True)
    checkpoint_path = os.path.join(args.out_dir, "checkpoint.pt")

    start_epoch, history = 1, []
    if args.resume and os.path.exists(checkpoint_path):
        state = torch.load(checkpoint_path, map_location=device)
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if len(state["rng"]) != world:
            raise SystemExit(f"the checkpoint was written by {len(state['rng'])} ranks; resume it on as many")
        torch.set_rng_state(state["rng"][rank])
        start_epoch, history = state["epoch"] + 1, state["history"]
        if rank == 0:
            print(f"resuming from {checkpoint_path} after epoch {state['epoch']}")
    if rank == 0:
        print(f"{world} rank(s) on {device}; {len(train_set)} training and {len(test_set)} test images; "
              f"{sum(p.numel() for p in module.parameters())} parameters")

    show_bar = rank == 0 and tqdm is not None and not args.no_progress
    begin = time.perf_counter()
    for epoch in range(start_epoch, args.epochs + 1):
        sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every rank
        model.train()
        bar = tqdm(total=len(train_loader), desc=f"epoch {epoch}/{args.epochs}", leave=False) if show_bar else None
        loss_sum = seen = 0.0
        for images, labels in train_loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * labels.shape[0]
            seen += labels.shape[0]
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
        if bar is not None:
            bar.close()
        scheduler.step()
        loss_sum, seen = all_sum([loss_sum, seen], world, device)
        test_loss, accuracy = evaluate(model, test_loader, world, device)
        history.append({"epoch": epoch, "train_loss": loss_sum / seen, "test_loss": test_loss,
                        "test_accuracy": accuracy, "lr": scheduler.get_last_lr()[0]})
        states = rng_states(world)
        if rank == 0:  # the checkpoint first: once the epoch's line is out, a restart resumes after it
            torch.save({"epoch": epoch, "model": module.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "rng": states, "history": history,
                        "world_size": world}, checkpoint_path)
            print(f"epoch {epoch:2d}  train loss {loss_sum / seen:.4f}  test loss {test_loss:.4f}  "
                  f"test accuracy {accuracy:.4f}  ({time.perf_counter() - begin:.1f} s)", flush=True)
        if world > 1:
            dist.barrier()  # nobody runs ahead of a checkpoint that a restart would resume from
        if args.stop_after is not None and epoch >= args.stop_after:
            if rank == 0:
                print(f"stopped after epoch {epoch}; continue with --resume")
            break

    if rank == 0 and history and history[-1]["epoch"] == args.epochs:
        metrics_path = os.path.join(args.out_dir, "metrics.json")
        with open(metrics_path, "w") as f:
            json.dump({"world_size": world, "epochs": history, "final_test_accuracy": history[-1]["test_accuracy"],
                       "seconds": time.perf_counter() - begin}, f, indent=2)
        print(f"final test accuracy {history[-1]['test_accuracy']:.4f}")
        print(f"checkpoint: {checkpoint_path}")
        print(f"metrics: {metrics_path}")
        plot_path = os.path.join(args.out_dir, "plot.png")
        if save_plot(history, plot_path):
            print(f"plot: {plot_path}")
        else:
            print("plot: skipped (pip install matplotlib, or dtorch[examples])")
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
