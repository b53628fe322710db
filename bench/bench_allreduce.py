"""all_reduce on 2 ranks: dtorch beside raw mpi4py ``Allreduce`` and PyTorch's gloo backend, from one run (issue 6).

Run ``python bench/bench_allreduce.py`` (it launches itself under ``mpiexec -n 2``) or
``mpiexec -n 2 python bench/bench_allreduce.py``; ``--markdown`` prints the tables for bench/README.md.

1. float32 all_reduce (SUM) of 4 KB, 64 KB, 1 MB, 16 MB, 64 MB: the median time per call and the bandwidth
   (bytes of the tensor / time) of dtorch (``dist.all_reduce`` on a dtorch Tensor, in place), raw mpi4py
   ``comm.Allreduce(send, recv)`` on NumPy arrays (the ceiling of the MPI path; also shown in place, which is what
   dtorch calls) and ``torch.distributed`` with gloo. dtorch and mpi4py are timed alternately (A B A B ...), each
   time as ``number`` calls between barriers, the slowest rank counting; gloo is timed last, on its own: once
   used, its threads keep polling and slow every MPI call made after it (2-4x on this 2-core box). Medians over
   the repeats. dtorch's all_reduce is in place, so the IN_PLACE call is the like-for-like ceiling; the
   out-of-place one is the issue's reference.
2. 100 all_reduces of 64 KB: issued with ``async_op=True`` and then awaited, against the same 100 done one by one.
3. The cost of the mismatch check of every call, on by default (``DebugLevel.INFO``: a 16-byte MAX all-reduce of a
   word mixing the sequence number and the call's fingerprint, and its negation, before the data moves), on 4 KB,
   64 KB and 1 MB all_reduces against checks off (``OFF``), and on a DDP training step (MLP 784-512-256-10, batch
   128 a rank); checks and no checks timed alternately.
"""

import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import compare_on_ranks, free_port, mpiexec_job  # noqa: E402  (also: one BLAS thread per rank)

SIZES = [("4 KB", 4 << 10), ("64 KB", 64 << 10), ("1 MB", 1 << 20), ("16 MB", 16 << 20), ("64 MB", 64 << 20)]


def relaunch():
    """Start this script on 2 ranks when it was run without a launcher."""
    command, env = mpiexec_job(os.path.abspath(__file__))
    sys.exit(subprocess.call(command + sys.argv[1:], env=env))


def calls_for(nbytes):
    """Calls per timed repeat: about 2 ms of work at small sizes, fewer for large messages."""
    return max(2, min(200, (16 << 20) // max(nbytes, 1) // 8))


def compare(comm, fns, number, repeats):
    """Median seconds per call of each function, timed alternately; the slowest rank counts."""
    return compare_on_ranks(comm, fns, number, repeats, warmup=max(1, number // 4))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print the tables for bench/README.md")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    if "PMI_SIZE" not in os.environ and "OMPI_COMM_WORLD_SIZE" not in os.environ:
        relaunch()

    import numpy as np
    import torch
    import torch.distributed as tdist
    from mpi4py import MPI

    import dtorch
    import dtorch.distributed as dist

    torch.set_num_threads(1)
    world = MPI.COMM_WORLD
    raw = world.Dup()
    rank, size = world.rank, world.size
    dist.init_process_group("mpi")

    say = print if rank == 0 else (lambda *a, **k: None)
    say(f"all_reduce, {size} ranks, float32 SUM; medians of {args.repeats} repeats; bandwidth = tensor bytes / time")
    rows = []
    for label, nbytes in SIZES:
        n = nbytes // 4
        ours = dtorch.from_numpy(np.ones(n, np.float32))
        send, recv = np.ones(n, np.float32), np.empty(n, np.float32)
        inplace = np.ones(n, np.float32)
        number = calls_for(nbytes)
        repeats = args.repeats if nbytes < (16 << 20) else max(5, args.repeats // 2)
        t = compare(world, {
            "dtorch": lambda: dist.all_reduce(ours),
            "mpi4py": lambda: raw.Allreduce(send, recv),
            "mpi4py_inplace": lambda: raw.Allreduce(MPI.IN_PLACE, inplace),
        }, number, repeats)
        rows.append({"size": label, "bytes": nbytes, "number": number, "repeats": repeats, **t})

    # async: 100 x 64 KB in flight, then wait, against 100 sync calls
    n = (64 << 10) // 4
    tensors = [dtorch.from_numpy(np.ones(n, np.float32)) for _ in range(100)]

    def many_async():
        works = [dist.all_reduce(t, async_op=True) for t in tensors]
        for w in works:
            w.wait()

    def many_sync():
        for t in tensors:
            dist.all_reduce(t)

    t_async = compare(world, {"async": many_async, "sync": many_sync}, 2, args.repeats)
    say(f"100 x 64 KB: async {t_async['async'] * 1e3:.2f} ms, sync {t_async['sync'] * 1e3:.2f} ms, "
        f"async/sync {t_async['async'] / t_async['sync']:.2f}x")

    # the mismatch check of every call (default) against none
    check_rows = []
    for label, nbytes in SIZES[:3]:
        x = dtorch.from_numpy(np.ones(nbytes // 4, np.float32))
        number = calls_for(nbytes)
        levels = {}
        for level in (dist.DebugLevel.OFF, dist.DebugLevel.INFO):
            def run(level=level, number=number):
                dist.set_debug_level(level)
                for _ in range(number):
                    dist.all_reduce(x)
            levels[level.name] = run
        t_check = compare(world, levels, 1, args.repeats)
        per = {k: v / number for k, v in t_check.items()}
        check_rows.append((label, per))
        say(f"{label:>6} all_reduce: checks OFF {per['OFF'] * 1e6:.1f} us, every call checked (default) "
            f"{per['INFO'] * 1e6:.1f} us ({(per['INFO'] / per['OFF'] - 1) * 100:+.1f}%)", flush=True)

    # ... and on a DDP training step (MLP 784-512-256-10, batch 128 a rank, SGD with momentum)
    from dtorch import nn
    from dtorch.nn.parallel import DistributedDataParallel

    dtorch.manual_seed(0)
    model = DistributedDataParallel(nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                                                  nn.Linear(256, 10)))
    opt = dtorch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(rank)
    inputs = dtorch.from_numpy(rng.standard_normal((128, 784)).astype(np.float32))
    targets = dtorch.from_numpy(rng.integers(0, 10, 128))
    step_levels = {}
    for level in (dist.DebugLevel.OFF, dist.DebugLevel.INFO):
        def step(level=level):
            dist.set_debug_level(level)
            for _ in range(5):
                opt.zero_grad()
                nn.functional.cross_entropy(model(inputs), targets).backward()
                opt.step()
        step_levels[level.name] = step
    t_step = {k: v / 5 for k, v in compare(world, step_levels, 1, args.repeats).items()}
    check_rows.append(("DDP step (MLP, batch 128)", t_step))
    say(f"DDP step: checks OFF {t_step['OFF'] * 1e3:.2f} ms, every call checked (default) "
        f"{t_step['INFO'] * 1e3:.2f} ms ({(t_step['INFO'] / t_step['OFF'] - 1) * 100:+.1f}%)", flush=True)
    dist.set_debug_level(dist.DebugLevel.INFO)

    # gloo last, on its own: once used, its threads keep polling and slow every MPI call made after it
    port = world.bcast(free_port() if rank == 0 else None, root=0)
    tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=size)
    for row in rows:
        theirs = torch.ones(row["bytes"] // 4, dtype=torch.float32)
        row.update(compare(world, {"gloo": lambda: tdist.all_reduce(theirs)}, row["number"], row["repeats"]))
    for row in rows:
        t, nbytes = row, row["bytes"]
        say(f"{row['size']:>6}: dtorch {t['dtorch'] * 1e6:9.1f} us {nbytes / t['dtorch'] / 1e9:6.2f} GB/s | "
            f"mpi4py {t['mpi4py'] * 1e6:9.1f} us {nbytes / t['mpi4py'] / 1e9:6.2f} GB/s | "
            f"in place {t['mpi4py_inplace'] * 1e6:9.1f} us | "
            f"gloo {t['gloo'] * 1e6:9.1f} us {nbytes / t['gloo'] / 1e9:6.2f} GB/s | "
            f"bw dtorch/mpi4py {t['mpi4py'] / t['dtorch']:4.2f}x  dtorch/gloo {t['gloo'] / t['dtorch']:4.2f}x",
            flush=True)

    if args.markdown and rank == 0:
        print()
        print("| size (float32) | dtorch | raw mpi4py Allreduce | raw mpi4py, IN_PLACE | torch gloo | "
              "dtorch/mpi4py bandwidth | dtorch/IN_PLACE bandwidth | dtorch/gloo bandwidth |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            b = r["bytes"]
            print(f"| {r['size']} | {r['dtorch'] * 1e6:.1f} us, {b / r['dtorch'] / 1e9:.2f} GB/s | "
                  f"{r['mpi4py'] * 1e6:.1f} us, {b / r['mpi4py'] / 1e9:.2f} GB/s | "
                  f"{r['mpi4py_inplace'] * 1e6:.1f} us, {b / r['mpi4py_inplace'] / 1e9:.2f} GB/s | "
                  f"{r['gloo'] * 1e6:.1f} us, {b / r['gloo'] / 1e9:.2f} GB/s | "
                  f"{r['mpi4py'] / r['dtorch']:.2f}x | {r['mpi4py_inplace'] / r['dtorch']:.2f}x | "
                  f"{r['gloo'] / r['dtorch']:.2f}x |")
        print()
        print("| case | time | ratio |")
        print("|---|---:|---:|")
        print(f"| 100 x 64 KB all_reduce, sync | {t_async['sync'] * 1e3:.2f} ms | 1.00x |")
        print(f"| 100 x 64 KB all_reduce, async_op=True then wait | {t_async['async'] * 1e3:.2f} ms | "
              f"{t_async['async'] / t_async['sync']:.2f}x |")
        print()
        print("| all_reduce | checks OFF | every call checked (default) | cost |")
        print("|---|---:|---:|---:|")
        for label, per in check_rows:
            print(f"| {label} | {per['OFF'] * 1e6:.1f} us | {per['INFO'] * 1e6:.1f} us | "
                  f"{(per['INFO'] / per['OFF'] - 1) * 100:+.1f}% |")
    tdist.destroy_process_group()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
