"""GPU benchmarks (issue 15), dtorch on CuPy against PyTorch CUDA in one process: run on a lent GPU machine by
``scripts/gpu_check.sh``. Each row prints both medians and the ratio; a row that fails prints its error and the
others still run. Without a GPU it says so and exits 0.

Rows: matmul 4096^2 in float32 and float16 (TFLOP/s; target >= 0.9x PyTorch's); the MLP (784-512-256-10) and
LeNet-5 training steps at batch 256 (target <= 1.5x PyTorch's step time); the fused Adam step over 100 M float32
parameters against ``torch.optim.Adam(fused=True)`` (target <= 1.2x); DDP bucket pack + unpack bandwidth against
the device's own copy bandwidth.
"""

import statistics
import sys
import time

import dtorch
from dtorch import _backend, _kernels


def gpu_median(fn, sync, repeats=20, warmup=3):
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def row(name, ours, theirs, unit="ms", scale=1e3):
    print(f"| {name} | {ours * scale:.3f} {unit} | {theirs * scale:.3f} {unit} | {ours / theirs:.2f}x |", flush=True)


def bench_matmul(cp, torch):
    for dtype in ("float32", "float16"):
        n = 4096
        a = dtorch.randn(n, n, device="cuda").to(getattr(dtorch, dtype))
        b = dtorch.randn(n, n, device="cuda").to(getattr(dtorch, dtype))
        ta = torch.randn(n, n, device="cuda", dtype=getattr(torch, dtype))
        tb = torch.randn(n, n, device="cuda", dtype=getattr(torch, dtype))
        ours = gpu_median(lambda: a @ b, cp.cuda.Device().synchronize)
        theirs = gpu_median(lambda: ta @ tb, torch.cuda.synchronize)
        flops = 2 * n ** 3
        print(f"| matmul {n}^2 {dtype} | {flops / ours / 1e12:.1f} TFLOP/s | {flops / theirs / 1e12:.1f} TFLOP/s | "
              f"{theirs / ours:.2f}x of PyTorch's TFLOP/s |", flush=True)


def bench_training_steps(cp, torch):
    import numpy as np

    def mlp(lib):
        return lib.nn.Sequential(lib.nn.Flatten(), lib.nn.Linear(784, 512), lib.nn.ReLU(), lib.nn.Linear(512, 256),
                                 lib.nn.ReLU(), lib.nn.Linear(256, 10))

    def lenet(lib):
        return lib.nn.Sequential(lib.nn.Conv2d(1, 6, 5, padding=2), lib.nn.ReLU(), lib.nn.MaxPool2d(2),
                                 lib.nn.Conv2d(6, 16, 5), lib.nn.ReLU(), lib.nn.MaxPool2d(2), lib.nn.Flatten(),
                                 lib.nn.Linear(400, 120), lib.nn.ReLU(), lib.nn.Linear(120, 84), lib.nn.ReLU(),
                                 lib.nn.Linear(84, 10))

    rng = np.random.default_rng(0)
    images = rng.standard_normal((256, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, 256)
    for name, build in (("MLP", mlp), ("LeNet-5", lenet)):
        times = []
        for lib, sync in ((dtorch, cp.cuda.Device().synchronize), (torch, torch.cuda.synchronize)):
            model = build(lib).to("cuda")
            optimizer = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            x = lib.tensor(images, device="cuda")
            y = lib.tensor(labels, device="cuda")

            def step():
                optimizer.zero_grad()
                lib.nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()

            times.append(gpu_median(step, sync))
        row(f"{name} training step, batch 256", *times)


def bench_adam(cp, torch):
    n = 100_000_000
    p, g = cp.random.standard_normal(n, dtype=cp.float32), cp.random.standard_normal(n, dtype=cp.float32)
    m, v = cp.zeros(n, cp.float32), cp.zeros(n, cp.float32)
    state = {"step": 0}

    def ours_step():
        state["step"] += 1
        _kernels.adam_step(p, g, m, v, step=state["step"], lr=1e-3)

    tp = torch.nn.Parameter(torch.randn(n, device="cuda"))
    tp.grad = torch.randn(n, device="cuda")
    optimizer = torch.optim.Adam([tp], lr=1e-3, fused=True)
    row("fused Adam step, 100M params", gpu_median(ours_step, cp.cuda.Device().synchronize, repeats=10),
        gpu_median(optimizer.step, torch.cuda.synchronize, repeats=10))


def bench_buckets(cp, torch):
    arrays = [cp.random.standard_normal(size, dtype=cp.float32) for size in [4096 * 1024, 1024, 512 * 512, 10] * 8]
    bucket = cp.empty(sum(a.size for a in arrays), cp.float32)
    sync = cp.cuda.Device().synchronize
    pack = gpu_median(lambda: (_kernels.bucket_pack(arrays, bucket, 0.5), _kernels.bucket_unpack(bucket, arrays)), sync)
    other = cp.empty_like(bucket)
    copy = gpu_median(lambda: (other.__setitem__(Ellipsis, bucket), bucket.__setitem__(Ellipsis, other)), sync)
    moved = 2 * 2 * bucket.nbytes  # two passes, each reads and writes the bucket's bytes
    print(f"| bucket pack + unpack, {bucket.nbytes / 2**20:.0f} MiB | {moved / pack / 1e9:.0f} GB/s | "
          f"device copy {moved / copy / 1e9:.0f} GB/s | {copy / pack:.2f}x of copy bandwidth |", flush=True)


def main():
    if not dtorch.cuda.is_available():
        print("no CUDA device: nothing to measure")
        return 0
    import torch

    cp = _backend.cupy()
    print(f"GPU: {dtorch.cuda.get_device_name()}; torch {torch.__version__}; cupy {cp.__version__}")
    print("| workload | dtorch | PyTorch | ratio |\n|---|---:|---:|---:|")
    failed = 0
    for bench in (bench_matmul, bench_training_steps, bench_adam, bench_buckets):
        try:
            bench(cp, torch)
        except Exception as error:  # one broken row must not hide the others' figures
            failed += 1
            print(f"| {bench.__name__} | failed: {type(error).__name__}: {error} | | |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
