"""DDP training steps on 2 ranks: dtorch against PyTorch's DDP on gloo, and dtorch's overlap against none (issue 10).

Run ``python bench/bench_ddp.py`` (it starts itself under ``mpiexec -n 2``) or ``mpiexec -n 2 python
bench/bench_ddp.py``; ``--markdown`` prints the tables for bench/README.md, ``--quick`` runs fewer repeats.

One thread per rank. Each workload is a full training step (zero_grad, forward, cross-entropy, backward with the
gradient all-reduce, SGD with momentum) on a fixed random batch of each rank:

- MLP 784-512-256-10, batch 128 per rank; LeNet-5 (28x28 inputs), batch 128 per rank: dtorch DDP against PyTorch
  DDP (gloo backend, ``torch.distributed`` initialised over TCP on localhost).
- A wide MLP 784-1024-1024-1024-1024-10, batch 32 per rank, ``bucket_cap_mb=4`` (4 buckets, one per big layer):
  dtorch DDP (each bucket's all-reduce starts during backward) against the same step without overlap (the plain
  model, then one all-reduce of all gradients in one flat buffer after backward).
- dtorch's DDP step is also timed with the per-call collective check off (``DTORCH_DISTRIBUTED_DEBUG=OFF``; by
  default every collective is preceded by a small check all-reduce, which gloo does not do).

Each step is also timed without any communication (the plain model on each rank, both ranks running at once):
"compute"; the DDP step minus that is the communication backward did not hide ("exposed"). Within a job, times are
the median over repeats of ``number`` steps between barriers, the slower rank counting, the variants of a workload
alternating. dtorch and PyTorch run in separate jobs (once started, gloo's polling threads slow every MPI call made
after them), alternating over ``--rounds`` rounds (A B A B ...) so that the box's drift hits both; each figure is
the median over the rounds.
"""

import argparse
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import compare_on_ranks, free_port, mpiexec_job  # noqa: E402  (also: one BLAS thread per rank)


def launch_part(part, out, args):
    """Run one part (``dtorch`` or ``torch``) on 2 ranks in fresh processes; its medians land in ``out``."""
    command, env = mpiexec_job(os.path.abspath(__file__))
    env["BENCH_DDP_PORT"] = str(free_port())  # gloo's rendezvous port, chosen once for both ranks
    command += ["--part", part, "--out", out] + (["--quick"] if args.quick else [])
    code = subprocess.call(command, env=env)
    if code:
        sys.exit(f"bench_ddp: the {part} part failed (exit {code})")


def run_rounds(args):
    """Alternate fresh dtorch and PyTorch jobs (A B A B ...) so the box's drift hits both; medians over rounds."""
    import json
    import tempfile

    rounds = {"dtorch": [], "torch": []}
    with tempfile.TemporaryDirectory() as folder:
        for index in range(args.rounds):
            for part in ("dtorch", "torch"):
                out = os.path.join(folder, f"{part}{index}.json")
                launch_part(part, out, args)
                with open(out) as f:
                    rounds[part].append(json.load(f))
    merged = {}
    for part, results in rounds.items():
        for result in results:  # the exposed communication of each round, before taking medians over rounds
            for row in result.values():
                row["exposed"] = row["ddp"] - row["compute"]
                if "no overlap" in row:
                    row["exposed, no overlap"] = row["no overlap"] - row["compute"]
        merged[part] = {name: {key: statistics.median(r[name][key] for r in results) for key in results[0][name]}
                        for name in results[0]}
    return merged["dtorch"], merged["torch"]


# ---- the workloads, written once for either library ----------------------------------------------------------------


def mlp(lib):
    nn = lib.nn
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))


def lenet(lib):
    nn = lib.nn
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


def wide(lib):
    nn = lib.nn
    return nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1024),
                         nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))


WORKLOADS = {  # name: (builder, input shape of one sample, batch per rank)
    "MLP 784-512-256-10": (mlp, (784,), 128),
    "LeNet-5": (lenet, (1, 28, 28), 128),
    "wide MLP (4 buckets)": (wide, (784,), 32),
}


def batch(lib, shape, size, rank):
    import numpy as np

    rng = np.random.default_rng(rank)
    x = rng.standard_normal((size,) + shape).astype(np.float32)
    y = rng.integers(0, 10, size)
    return lib.from_numpy(x), lib.from_numpy(y)


def step_fn(lib, model, x, y, after_backward=None):
    optimizer = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    cross_entropy = lib.nn.functional.cross_entropy

    def step():
        optimizer.zero_grad()
        cross_entropy(model(x), y).backward()
        if after_backward is not None:
            after_backward()
        optimizer.step()

    return step


def one_all_reduce_after_backward(lib, dist, model):
    """Overlap off: all gradients packed into one buffer, one all_reduce once backward has finished."""
    params = list(model.parameters())
    world = dist.get_world_size()

    def reduce():
        flat = lib.cat([p.grad.reshape(-1) for p in params])
        dist.all_reduce(flat)
        flat /= world
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
            offset += n

    return reduce


def checks_off(step, dist):
    """The step with the per-call collective check off (``DTORCH_DISTRIBUTED_DEBUG=OFF``; on by default)."""

    def run():
        level = dist.get_debug_level()
        dist.set_debug_level(dist.DebugLevel.OFF)
        try:
            step()
        finally:
            dist.set_debug_level(level)

    return run


# ---- timing --------------------------------------------------------------------------------------------------------


def measure(comm, fns, number, repeats):
    """Median seconds per step of each function, timed alternately (A B C A B C ...); the slower rank counts."""
    return compare_on_ranks(comm, fns, number, repeats, warmup=max(1, number // 2))


def run_dtorch(comm, rank, number, repeats):
    import dtorch
    import dtorch.distributed as dist
    from dtorch.nn.parallel import DistributedDataParallel

    dist.init_process_group("mpi")
    results = {}
    for name, (build, shape, size) in WORKLOADS.items():
        x, y = batch(dtorch, shape, size, rank)
        dtorch.manual_seed(0)
        cap = 4 if name.startswith("wide") else None
        ddp = DistributedDataParallel(build(dtorch), bucket_cap_mb=cap)
        dtorch.manual_seed(0)
        local = build(dtorch)
        dtorch.manual_seed(0)
        plain = build(dtorch)
        fns = {"ddp": step_fn(dtorch, ddp, x, y), "compute": step_fn(dtorch, local, x, y),
               "no overlap": step_fn(dtorch, plain, x, y, one_all_reduce_after_backward(dtorch, dist, plain)),
               "ddp, checks off": checks_off(step_fn(dtorch, ddp, x, y), dist)}
        steps = number[name]
        results[name] = measure(comm, fns, steps, repeats)
        results[name]["buckets"] = len(ddp.reducer.buckets)
        if rank == 0:
            r = results[name]
            print(f"dtorch {name:<22} ddp {r['ddp'] * 1e3:8.2f} ms  no overlap {r['no overlap'] * 1e3:8.2f} ms  "
                  f"compute {r['compute'] * 1e3:8.2f} ms  ddp, checks off {r['ddp, checks off'] * 1e3:8.2f} ms  "
                  f"buckets {r['buckets']}", flush=True)
    dist.destroy_process_group()
    return results


def run_torch(comm, rank, number, repeats):
    import torch
    import torch.distributed as tdist

    torch.set_num_threads(1)
    port = os.environ.get("BENCH_DDP_PORT") or str(comm.bcast(free_port() if rank == 0 else None))
    tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=comm.size)
    results = {}
    for name, (build, shape, size) in WORKLOADS.items():
        if name.startswith("wide"):
            continue
        x, y = batch(torch, shape, size, rank)
        torch.manual_seed(0)
        ddp = torch.nn.parallel.DistributedDataParallel(build(torch))
        torch.manual_seed(0)
        local = build(torch)
        fns = {"ddp": step_fn(torch, ddp, x, y), "compute": step_fn(torch, local, x, y)}
        results[name] = measure(comm, fns, number[name], repeats)
        if rank == 0:
            r = results[name]
            print(f"torch  {name:<22} ddp {r['ddp'] * 1e3:8.2f} ms  compute {r['compute'] * 1e3:8.2f} ms", flush=True)
    tdist.destroy_process_group()
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print the tables for bench/README.md")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and one round (a smoke run)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating dtorch/PyTorch jobs (default 3)")
    parser.add_argument("--part", choices=("dtorch", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.rounds = 1
    repeats = 3 if args.quick else 11
    number = {"MLP 784-512-256-10": 3 if args.quick else 10, "LeNet-5": 2 if args.quick else 4,
              "wide MLP (4 buckets)": 3 if args.quick else 8}
    under_mpi = any(name in os.environ for name in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK"))
    if not under_mpi:
        ours, theirs = run_rounds(args)
    else:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
        rank = comm.rank
        if args.part is not None:  # one part of a round, started by run_rounds
            result = (run_dtorch if args.part == "dtorch" else run_torch)(comm, rank, number, repeats)
            if rank == 0:
                import json

                with open(args.out, "w") as f:
                    json.dump(result, f)
            return
        ours = run_dtorch(comm, rank, number, repeats)  # started under mpiexec by hand: one round, in process
        theirs = run_torch(comm, rank, number, repeats)
        if rank != 0:
            return
    print_tables(ours, theirs)


def print_tables(ours, theirs):
    print()
    print("| workload (2 ranks) | dtorch DDP step | PyTorch DDP (gloo) step | dtorch/PyTorch | dtorch compute / "
          "exposed comm | PyTorch compute / exposed comm | dtorch DDP, checks off (ratio) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, theirs_row in theirs.items():
        r = ours[name]
        t = theirs_row
        print(f"| {name} | {r['ddp'] * 1e3:.2f} ms | {t['ddp'] * 1e3:.2f} ms | {r['ddp'] / t['ddp']:.2f}x | "
              f"{r['compute'] * 1e3:.2f} / {_exposed(r) * 1e3:.2f} ms | "
              f"{t['compute'] * 1e3:.2f} / {_exposed(t) * 1e3:.2f} ms | "
              f"{r['ddp, checks off'] * 1e3:.2f} ms ({r['ddp, checks off'] / t['ddp']:.2f}x) |")
    print()
    print("| dtorch workload (2 ranks) | buckets | DDP, overlapped | one all_reduce after backward | "
          "overlapped / not | compute | exposed comm, overlapped / not |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in ours.items():
        print(f"| {name} | {r['buckets']} | {r['ddp'] * 1e3:.2f} ms | {r['no overlap'] * 1e3:.2f} ms | "
              f"{r['ddp'] / r['no overlap']:.2f}x | {r['compute'] * 1e3:.2f} ms | "
              f"{_exposed(r) * 1e3:.2f} / {_exposed(r, 'no overlap') * 1e3:.2f} ms |")


def _exposed(row, variant="ddp"):
    """The step minus the compute: the median over rounds of each round's difference when there were rounds."""
    key = "exposed" if variant == "ddp" else f"exposed, {variant}"
    return row[key] if key in row else row[variant] - row["compute"]


if __name__ == "__main__":
    main()
