"""A convolutional network on MNIST, FashionMNIST or CIFAR-10 from their standard files, with DDP.

    dtorchrun --nproc-per-node 2 examples/train_vision_cnn.py --dataset mnist --data-dir data
    dtorchrun --nproc-per-node 2 examples/train_vision_cnn.py --dataset cifar10 --data-dir data --epochs 10

The files go where torchvision puts them: ``data/MNIST/raw/`` (or ``data/FashionMNIST/raw/``) holding the four IDX
files (``.gz`` or not), ``data/cifar-10-batches-py/`` holding the Python batches. ``--download`` fetches them
where the network allows. When they are missing the script says which files to put where and exits without
training (exit code 0), so it can sit in a test suite on machines without the data.

Each rank trains on its share (``DistributedSampler``); test accuracy is reduced over the ranks; rank 0 saves the
model at the end.
"""

import argparse
import os
import sys
import tempfile
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

DATASETS = {  # name: (class, channels, side, normalisation mean and std)
    "mnist": (datasets.MNIST, 1, 28, (0.1307,), (0.3081,)),
    "fashion-mnist": (datasets.FashionMNIST, 1, 28, (0.2860,), (0.3530,)),
    "cifar10": (datasets.CIFAR10, 3, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}


class ConvNet(nn.Module):
    """Two conv-BN-ReLU-pool stages and a two-layer classifier; works for 28x28 and 32x32 inputs."""

    def __init__(self, channels, side, classes=10, width=32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * (side // 4) ** 2, 128), nn.ReLU(),
                                        nn.Dropout(0.25), nn.Linear(128, classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def setup():
    if any(int(os.environ.get(name, "1")) > 1 for name in LAUNCHER_SIZE_VARIABLES):
        dist.init_process_group("gloo")
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def load(name, root, download, augment):
    cls, channels, side, mean, std = DATASETS[name]
    normalise = [transforms.ToTensor(), transforms.Normalize(mean, std)]
    train_tf = normalise
    if augment and name == "cifar10":
        train_tf = [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()] + normalise
    train = cls(root, train=True, transform=transforms.Compose(train_tf), download=download)
    test = cls(root, train=False, transform=transforms.Compose(normalise), download=download)
    return train, test, channels, side


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--download", action="store_true", help="fetch the files if they are missing")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64, help="per rank")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", default=os.path.join(tempfile.gettempdir(), "dtorch_vision_cnn.pt"))
    args = parser.parse_args()

    try:
        train_set, test_set, channels, side = load(args.dataset, args.data_dir, args.download,
                                                   not args.no_augment)
    except RuntimeError as error:  # the dataset's message lists the files and where to get them
        if int(os.environ.get("RANK", os.environ.get("PMI_RANK", "0"))) == 0:
            print(f"skipping: {args.dataset} files not found\n{error}", file=sys.stderr)
        return
    rank, world = setup()
    torch.manual_seed(args.seed)
    if args.limit is not None:
        train_set = Subset(train_set, range(min(args.limit, len(train_set))))
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, seed=args.seed)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, sampler=sampler)
    test_loader = DataLoader(Subset(test_set, range(rank, len(test_set), world)), batch_size=256)

    module = ConvNet(channels, side)
    if world > 1:
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)  # batch statistics over every rank's batch
    model = DDP(module) if world > 1 else module
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    if rank == 0:
        print(f"{args.dataset}: {len(train_set)} training and {len(test_set)} test images on {world} rank(s)")
    for epoch in range(1, args.epochs + 1):
        sampler.set_epoch(epoch)
        model.train()
        start = time.perf_counter()
        for images, labels in train_loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
        model.eval()
        correct = total = 0.0
        with torch.no_grad():
            for images, labels in test_loader:
                correct += (model(images).argmax(1) == labels).sum().item()
                total += labels.shape[0]
        counts = torch.tensor([correct, total], dtype=torch.float64)
        if world > 1:
            dist.all_reduce(counts)
        if rank == 0:
            print(f"epoch {epoch}  last batch loss {loss.item():.4f}  test accuracy "
                  f"{(counts[0] / counts[1]).item():.4f}  ({time.perf_counter() - start:.1f} s)", flush=True)
    if rank == 0:
        torch.save(module.state_dict(), args.save)
        print(f"model saved to {args.save}")
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
