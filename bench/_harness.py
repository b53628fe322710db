"""Shared timing harness for the benchmarks: one thread per library, interleaved runs, medians and a ratio.

Every benchmark times dtorch and PyTorch on the same workload in the same process, alternating between them
(A B A B ...) so drift of the machine's speed hits both equally, and prints the medians and dtorch/PyTorch.
"""

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import shutil  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402


def time_call(function, number):
    """Seconds per call of ``function`` over ``number`` calls."""
    start = time.perf_counter()
    for _ in range(number):
        function()
    return (time.perf_counter() - start) / number


def compare(name, dtorch_fn, torch_fn, number, repeats=15, warmup=2, unit="us"):
    """Time both functions alternately; return and print a row with both medians and their ratio."""
    for _ in range(warmup):
        time_call(dtorch_fn, number)
        time_call(torch_fn, number)
    ours, theirs = [], []
    for _ in range(repeats):
        ours.append(time_call(dtorch_fn, number))
        theirs.append(time_call(torch_fn, number))
    scale = {"us": 1e6, "ms": 1e3, "s": 1.0}[unit]
    row = {
        "name": name,
        "dtorch": statistics.median(ours) * scale,
        "torch": statistics.median(theirs) * scale,
        "unit": unit,
    }
    row["ratio"] = row["dtorch"] / row["torch"]
    print(f"{name:<44} dtorch {row['dtorch']:10.2f} {unit}   torch {row['torch']:10.2f} {unit}   "
          f"ratio {row['ratio']:5.2f}x", flush=True)
    return row


def markdown_table(rows, title):
    lines = [f"| {title} | dtorch median | PyTorch median | dtorch/PyTorch |", "|---|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['name']} | {row['dtorch']:.2f} {row['unit']} | {row['torch']:.2f} {row['unit']} | "
                     f"{row['ratio']:.2f}x |")
    return "\n".join(lines)


# ---- benchmarks on several ranks (bench_allreduce, bench_ddp) -------------------------------------------------------


def mpiexec_job(script, ranks=2, limit=900):
    """``(command, env)`` that run ``script`` (an absolute path) on ``ranks`` ranks under mpiexec with a timeout,
    the repository on PYTHONPATH; append the script's arguments to ``command``."""
    mpiexec = shutil.which("mpiexec") or os.path.join(os.path.dirname(sys.executable), "mpiexec")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return ["timeout", str(limit), mpiexec, "-n", str(ranks), sys.executable, script], env


def free_port():
    """A TCP port free on localhost now (for gloo's rendezvous)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def time_on_ranks(comm, function, number):
    """Seconds per call of ``function`` over ``number`` calls started together after a barrier; the slowest rank's
    time (``comm`` is an mpi4py communicator)."""
    from mpi4py import MPI

    comm.Barrier()
    elapsed = time_call(function, number)
    return comm.allreduce(elapsed, op=MPI.MAX)


def compare_on_ranks(comm, functions, number, repeats, warmup):
    """Median seconds per call of each of ``functions`` (a dict), timed alternately (A B C A B C ...) in
    ``repeats`` runs of ``number`` calls after ``warmup`` calls of each; the slowest rank counts."""
    for function in functions.values():
        time_on_ranks(comm, function, warmup)
    samples = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            samples[name].append(time_on_ranks(comm, function, number))
    return {name: statistics.median(values) for name, values in samples.items()}
