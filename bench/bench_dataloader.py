"""DataLoader throughput, dtorch vs PyTorch, from one run (issues 5 and 12).

0. TensorDataset (issue 12): 4096 x 784 float32 inputs and int64 labels held as tensors, batch 128, shuffle,
   num_workers 0 and 2; each library's own TensorDataset over the same arrays. Epochs per second are
   samples per second / 4096.
1. In memory: 60,000 x 1 x 28 x 28 uint8 images, ToTensor + Normalize written once in NumPy and used by both
   libraries' loaders through the same dataset class; batch 128, shuffle, num_workers 0 and 2. Samples per second
   over full epochs.
2. Sharded: about 1 GB of .npy shards written to /tmp (3 x 64 x 64 uint8 samples), read sequentially with batch 128,
   num_workers 0 and 2: dtorch's ShardedDataset (per-sample, and ``batched=True``) against PyTorch's DataLoader over
   a map-style dataset of the same shards memory-mapped with ``np.load(mmap_mode="r")``. The page cache is warm
   (the shards were just written), so this measures the loaders, not the disk.

Runs alternate between the libraries; each cell is the median of ``--repeats`` epochs. Prints a Markdown table.

    python bench/bench_dataloader.py [--repeats 5] [--skip-sharded] [--only tensor,in-memory,sharded]
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness  # noqa: E402,F401  (one BLAS/OpenMP thread per library, set before NumPy and torch load)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.utils.data as tud  # noqa: E402

import dtorch  # noqa: E402
import dtorch.utils.data as dud  # noqa: E402

MEAN, STD = np.float32(0.1307), np.float32(0.3081)


class InMemory:
    """The shared map-style dataset: the transform is NumPy, identical for both loaders."""

    def __init__(self, n=60_000, seed=0):
        rng = np.random.default_rng(seed)
        self.images = rng.integers(0, 256, size=(n, 1, 28, 28), dtype=np.uint8)
        self.labels = rng.integers(0, 10, size=n).astype(np.int64)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        x = self.images[i].astype(np.float32) * np.float32(1 / 255)  # ToTensor
        return (x - MEAN) / STD, int(self.labels[i])  # Normalize


class MemmapShards:
    """PyTorch's peer for the sharded reader: a map-style view of the same .npy shards, memory-mapped."""

    def __init__(self, root):
        names = sorted(n for n in os.listdir(root) if n.endswith(".x.npy"))
        self.x = [np.load(os.path.join(root, n), mmap_mode="r") for n in names]
        self.y = [np.load(os.path.join(root, n.replace(".x.npy", ".y.npy")), mmap_mode="r") for n in names]
        self.starts = np.cumsum([0] + [len(a) for a in self.x])

    def __len__(self):
        return int(self.starts[-1])

    def __getitem__(self, i):
        k = int(np.searchsorted(self.starts, i, side="right")) - 1
        j = i - self.starts[k]
        return np.array(self.x[k][j]), int(self.y[k][j])


def epoch_time(make_loader):
    loader = make_loader()
    start = time.perf_counter()
    count = 0
    for x, _ in loader:
        count += x.shape[0]
    elapsed = time.perf_counter() - start
    del loader
    return elapsed, count


def measure(cases, repeats):
    """``cases``: {label: (make_dtorch_loader, make_torch_loader or None)} -> {label: (dtorch sps, torch sps)}."""
    times = {label: ([], []) for label in cases}
    counts = {}
    for _ in range(repeats):
        for label, makers in cases.items():
            for side, make in enumerate(makers):
                if make is None:
                    continue
                elapsed, count = epoch_time(make)
                times[label][side].append(elapsed)
                counts[label] = count
    out = {}
    for label, (mine, ref) in times.items():
        out[label] = (counts[label] / statistics.median(mine),
                      counts[label] / statistics.median(ref) if ref else None)
    return out


def shuffled_loader_cases(label, mine_data, ref_data):
    """Loader makers for both libraries (batch 128, shuffled with a seeded generator), with 0 and 2 workers."""
    cases = {}
    for workers in (0, 2):
        def mine(workers=workers):
            return dud.DataLoader(mine_data, batch_size=128, shuffle=True, num_workers=workers,
                                  generator=dtorch.Generator().manual_seed(0))

        def ref(workers=workers):
            return tud.DataLoader(ref_data, batch_size=128, shuffle=True, num_workers=workers,
                                  generator=torch.Generator().manual_seed(0))

        cases[f"{label}, workers={workers}"] = (mine, ref)
    return cases


def tensor_dataset_cases(n=4096, features=784):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, features)).astype(np.float32)
    y = rng.integers(0, 10, size=n).astype(np.int64)
    mine_ds = dud.TensorDataset(dtorch.from_numpy(x), dtorch.from_numpy(y))
    ref_ds = tud.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    return shuffled_loader_cases("TensorDataset 4096 x 784 float32", mine_ds, ref_ds)


def in_memory_cases():
    data = InMemory()
    return shuffled_loader_cases("in-memory 60k x 1x28x28", data, data)


def write_sharded(root, target_bytes):
    sample = 3 * 64 * 64
    n = target_bytes // sample // 4096 * 4096
    with dud.ShardWriter(root, samples_per_shard=4096) as writer:
        rng = np.random.default_rng(0)
        for start in range(0, n, 4096):
            writer.write(x=rng.integers(0, 256, size=(4096, 3, 64, 64), dtype=np.uint8),
                         y=np.arange(start, start + 4096, dtype=np.int64))
    return n, n * sample


def sharded_cases(root):
    peer = MemmapShards(root)
    cases = {}
    for workers in (0, 2):
        def mine(workers=workers):
            return dud.DataLoader(dud.ShardedDataset(root, batch_size=128), batch_size=128, num_workers=workers)

        def ref(workers=workers):
            return tud.DataLoader(peer, batch_size=128, num_workers=workers)

        def batched(workers=workers):
            ds = dud.ShardedDataset(root, batch_size=128, batched=True)
            return dud.DataLoader(ds, batch_size=None, num_workers=workers)

        cases[f"sharded ~1 GB, workers={workers}"] = (mine, ref)
        cases[f"sharded ~1 GB, batched=True, workers={workers} (PyTorch: the same per-sample peer)"] = (batched, ref)
    return cases


def table(results, bytes_per_sample=None):
    rows = ["| case | dtorch samples/s | PyTorch samples/s | dtorch/PyTorch (throughput, >1: dtorch faster) |",
            "|---|---:|---:|---:|"]
    for label, (mine, ref) in results.items():
        extra = f" ({mine * bytes_per_sample / 1e6:,.0f} MB/s)" if bytes_per_sample and "sharded" in label else ""
        rows.append(f"| {label} | {mine:,.0f}{extra} | {ref:,.0f} | {mine / ref:.2f}x |")
    return "\n".join(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--shard-bytes", type=int, default=1 << 30)
    parser.add_argument("--skip-sharded", action="store_true")
    parser.add_argument("--only", default="tensor,in-memory,sharded",
                        help="comma-separated workloads among tensor, in-memory, sharded")
    args = parser.parse_args()
    only = set(args.only.split(","))
    torch.set_num_threads(1)
    print(f"dtorch vs torch {torch.__version__}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"medians of {args.repeats} epochs\n")
    results = {}
    if "tensor" in only:
        results.update(measure(tensor_dataset_cases(), max(args.repeats, 11)))
    if "in-memory" in only:
        results.update(measure(in_memory_cases(), args.repeats))
    if "sharded" in only and not args.skip_sharded:
        root = tempfile.mkdtemp(prefix="dtorch-bench-shards-", dir="/tmp")
        try:
            n, total = write_sharded(root, args.shard_bytes)
            print(f"wrote {n:,} samples, {total / 2**30:.2f} GiB of shards to {root}\n")
            results.update(measure(sharded_cases(root), max(3, args.repeats // 2)))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    print(table(results, bytes_per_sample=3 * 64 * 64))


if __name__ == "__main__":
    main()
