"""Per-op overhead benchmark (issue 12): everyday calls on small tensors, dtorch against PyTorch, one thread.

Every call works on 64-element float32 tensors (or 8x8 / 4x4x4 shapes of them), so what is timed is the library's
own overhead around a tiny NumPy/ATen kernel. Each call is timed with its inputs not requiring grad and, where it
makes sense, again with ``x`` requiring grad (the forward records the graph; nothing is backpropagated). The last
rows run forward plus backward of a chain of ops. dtorch and PyTorch run in one process, one thread each,
alternately (A B A B ...), in many short timings of 200 calls; each row gives the medians and the minima of the
timings, and the summary the geometric mean of dtorch/PyTorch and the worst call, for the no-grad set, the
requires-grad set and the backward chains.

Run: python bench/bench_ops.py [--markdown] [--only SUBSTRING] [--repeats N]
"""

import math
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _harness  # noqa: E402  (sets the thread variables before numpy loads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import dtorch  # noqa: E402
import dtorch.nn.functional  # noqa: E402

torch.set_num_threads(1)


class Inputs:
    """The same small inputs for either library; ``grad`` makes ``x`` (and ``w``) require grad."""

    def __init__(self, lib, grad):
        rng = np.random.default_rng(0)
        self.lib = lib
        self.F = lib.nn.functional
        self.x = lib.tensor(rng.standard_normal(64).astype(np.float32), requires_grad=grad)
        self.a = lib.tensor(rng.standard_normal(64).astype(np.float32))
        self.x8 = lib.tensor(rng.standard_normal((8, 8)).astype(np.float32), requires_grad=grad)
        self.a8 = lib.tensor(rng.standard_normal((8, 8)).astype(np.float32))
        self.row = lib.tensor(rng.standard_normal(8).astype(np.float32))
        self.x3 = lib.tensor(rng.standard_normal((4, 4, 4)).astype(np.float32), requires_grad=grad)
        self.a3 = lib.tensor(rng.standard_normal((4, 4, 4)).astype(np.float32))
        self.col = lib.tensor(rng.standard_normal((8, 1)).astype(np.float32), requires_grad=grad)
        self.idx = lib.tensor(np.array([0, 3, 5, 7]))
        self.mask = lib.tensor(rng.standard_normal(64) > 0)
        self.target = lib.tensor(np.array([1, 0, 3, 7, 2, 5, 6, 4]))
        self.buffer = lib.tensor(rng.standard_normal(64).astype(np.float32))  # written in place
        self.w = lib.tensor(rng.standard_normal((8, 8)).astype(np.float32), requires_grad=grad)
        self.b = lib.tensor(rng.standard_normal(8).astype(np.float32), requires_grad=grad)


# name, (inputs -> call), with_grad: also timed with requires_grad inputs
CALLS = [
    ("x + a", lambda s: lambda: s.x + s.a, True),
    ("x * a", lambda s: lambda: s.x * s.a, True),
    ("x - 1.5 (scalar)", lambda s: lambda: s.x - 1.5, True),
    ("x / a", lambda s: lambda: s.x / s.a, True),
    ("x8 + row (broadcast)", lambda s: lambda: s.x8 + s.row, True),
    ("x8 * col (broadcast)", lambda s: lambda: s.a8 * s.col, True),
    ("x ** 2", lambda s: lambda: s.x ** 2, True),
    ("neg(x)", lambda s: lambda: -s.x, True),
    ("exp(x)", lambda s: lambda: s.lib.exp(s.x), True),
    ("log(abs(x))", lambda s: lambda: s.lib.log(s.a.abs()), False),
    ("x.sqrt() on abs(x)", lambda s: lambda: s.a.abs().sqrt(), False),
    ("tanh(x)", lambda s: lambda: s.x.tanh(), True),
    ("sigmoid(x)", lambda s: lambda: s.x.sigmoid(), True),
    ("F.relu(x)", lambda s: lambda: s.F.relu(s.x), True),
    ("F.gelu(x)", lambda s: lambda: s.F.gelu(s.x), True),
    ("buffer.add_(a)", lambda s: lambda: s.buffer.add_(s.a), False),
    ("buffer.mul_(1.0)", lambda s: lambda: s.buffer.mul_(1.0), False),
    ("buffer += a", lambda s: lambda: s.buffer.__iadd__(s.a), False),
    ("x > a", lambda s: lambda: s.x > s.a, True),
    ("x == 0.0", lambda s: lambda: s.x == 0.0, True),
    ("x.sum()", lambda s: lambda: s.x.sum(), True),
    ("x8.sum(1)", lambda s: lambda: s.x8.sum(1), True),
    ("x.mean()", lambda s: lambda: s.x.mean(), True),
    ("x8.mean(dim=0)", lambda s: lambda: s.x8.mean(dim=0), True),
    ("x.max()", lambda s: lambda: s.x.max(), True),
    ("x8.max(dim=1)", lambda s: lambda: s.x8.max(dim=1), True),
    ("x.argmax()", lambda s: lambda: s.x.argmax(), True),
    ("x8.argmax(dim=1)", lambda s: lambda: s.x8.argmax(dim=1), True),
    ("x.view(8, 8)", lambda s: lambda: s.x.view(8, 8), True),
    ("x.view(8, 8).t()", lambda s: lambda: s.x.view(8, 8).t(), True),
    ("x.reshape(4, 16)", lambda s: lambda: s.x.reshape(4, 16), True),
    ("x3.permute(2, 0, 1)", lambda s: lambda: s.x3.permute(2, 0, 1), True),
    ("x8.transpose(0, 1)", lambda s: lambda: s.x8.transpose(0, 1), True),
    ("x.unsqueeze(0)", lambda s: lambda: s.x.unsqueeze(0), True),
    ("col.squeeze(1)", lambda s: lambda: s.col.squeeze(1), True),
    ("x3.flatten()", lambda s: lambda: s.x3.flatten(), True),
    ("col.expand(8, 8)", lambda s: lambda: s.col.expand(8, 8), True),
    ("x8.t().contiguous()", lambda s: lambda: s.a8.t().contiguous(), False),
    ("x[0:3]", lambda s: lambda: s.x[0:3], True),
    ("x8[2]", lambda s: lambda: s.x8[2], True),
    ("x8[:, 1]", lambda s: lambda: s.x8[:, 1], True),
    ("x[idx] (advanced)", lambda s: lambda: s.x[s.idx], True),
    ("x[mask] (boolean)", lambda s: lambda: s.x[s.mask], True),
    ("buffer[0:4] = 0.0", lambda s: lambda: s.buffer.__setitem__(slice(0, 4), 0.0), False),
    ("buffer[idx] = a[:4]", lambda s: (lambda v: lambda: s.buffer.__setitem__(s.idx, v))(s.a[:4]), False),
    ("cat([x, a])", lambda s: lambda: s.lib.cat([s.x, s.a]), True),
    ("stack([x, a])", lambda s: lambda: s.lib.stack([s.x, s.a]), True),
    ("x.split(16)", lambda s: lambda: s.x.split(16), True),
    ("x.chunk(4)", lambda s: lambda: s.x.chunk(4), True),
    ("x @ a (dot)", lambda s: lambda: s.x @ s.a, True),
    ("x8 @ a8 (matmul)", lambda s: lambda: s.x8 @ s.a8, True),
    ("mm(x8, a8)", lambda s: lambda: s.lib.mm(s.x8, s.a8), True),
    ("bmm(x3, a3)", lambda s: lambda: s.lib.bmm(s.x3, s.a3), True),
    ("F.linear(x8, w, b)", lambda s: lambda: s.F.linear(s.x8, s.w, s.b), True),
    ("F.softmax(x8, -1)", lambda s: lambda: s.F.softmax(s.x8, -1), True),
    ("F.log_softmax(x8, -1)", lambda s: lambda: s.F.log_softmax(s.x8, -1), True),
    ("F.cross_entropy(x8, t)", lambda s: lambda: s.F.cross_entropy(s.x8, s.target), True),
    ("where(mask, x, a)", lambda s: lambda: s.lib.where(s.mask, s.x, s.a), True),
    ("x.masked_fill(mask, 0)", lambda s: lambda: s.x.masked_fill(s.mask, 0.0), True),
    ("x.clamp(-0.5, 0.5)", lambda s: lambda: s.x.clamp(-0.5, 0.5), True),
    ("x.to(float64)", lambda s: lambda: s.x.to(s.lib.float64), True),
    ("x.detach()", lambda s: lambda: s.x.detach(), True),
    ("x.clone()", lambda s: lambda: s.x.clone(), True),
    ("x.sum().item()", lambda s: (lambda total: lambda: total.item())(s.a.sum()), False),
    ("x.tolist()", lambda s: lambda: s.a.tolist(), False),
    ("zeros(64)", lambda s: lambda: s.lib.zeros(64), False),
    ("ones(8, 8)", lambda s: lambda: s.lib.ones(8, 8), False),
    ("randn(64)", lambda s: lambda: s.lib.randn(64), False),
    ("arange(64)", lambda s: lambda: s.lib.arange(64), False),
    ("tensor([1.0, 2.0, 3.0])", lambda s: lambda: s.lib.tensor([1.0, 2.0, 3.0]), False),
]


def _chain_elementwise(s):
    """mul/add/relu/add: forward plus backward of 4 elementwise ops and a sum."""
    x, a = s.x, s.a

    def step():
        y = s.F.relu(x * a + 0.5) + a
        y.sum().backward()
        x.grad = None

    return step


def _chain_views(s):
    """view, transpose, slice, sum over a dim, mean: forward plus backward."""
    x = s.x

    def step():
        y = x.view(8, 8).t()[1:7].sum(1).mean()
        y.backward()
        x.grad = None

    return step


def _chain_mlp(s):
    """A one-layer classifier on 8x8: linear, relu, cross-entropy, backward."""
    x8, w, b, target = s.x8, s.w, s.b, s.target

    def step():
        loss = s.F.cross_entropy(s.F.relu(s.F.linear(x8, w, b)), target)
        loss.backward()
        x8.grad = w.grad = b.grad = None

    return step


CHAINS = [
    ("chain mul/add/relu/add + backward", _chain_elementwise),
    ("chain view/t/slice/sum/mean + backward", _chain_views),
    ("chain linear/relu/cross_entropy + backward", _chain_mlp),
]


def compare(name, dtorch_fn, torch_fn, number, repeats):
    """``_harness.compare`` plus the fastest timing of each library: ``ratio`` is of the medians, ``best_ratio`` of
    the minima. On a machine shared with other jobs a timing that was preempted only grows, so the minimum is the
    least disturbed estimate of a call's own cost; both are printed."""
    for _ in range(2):
        _harness.time_call(dtorch_fn, number)
        _harness.time_call(torch_fn, number)
    ours, theirs = [], []
    for _ in range(repeats):
        ours.append(_harness.time_call(dtorch_fn, number) * 1e6)
        theirs.append(_harness.time_call(torch_fn, number) * 1e6)
    row = {"name": name, "dtorch": statistics.median(ours), "torch": statistics.median(theirs), "unit": "us",
           "dtorch_min": min(ours), "torch_min": min(theirs)}
    row["ratio"] = row["dtorch"] / row["torch"]
    row["best_ratio"] = row["dtorch_min"] / row["torch_min"]
    print(f"{name:44} dtorch {row['dtorch']:8.2f} us (min {row['dtorch_min']:7.2f})   torch {row['torch']:8.2f} us "
          f"(min {row['torch_min']:7.2f})   ratio {row['ratio']:5.2f}x (of minima {row['best_ratio']:5.2f}x)",
          flush=True)
    return row


def _geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _summary(label, rows):
    worst = max(rows, key=lambda row: row["ratio"])
    worst_best = max(rows, key=lambda row: row["best_ratio"])
    line = (f"{label}: {len(rows)} calls, geometric mean {_geomean([r['ratio'] for r in rows]):.2f}x of medians "
            f"(worst {worst['name']} {worst['ratio']:.2f}x), {_geomean([r['best_ratio'] for r in rows]):.2f}x of "
            f"minima (worst {worst_best['name']} {worst_best['best_ratio']:.2f}x)")
    print(line, flush=True)
    return line


def _markdown(rows, title):
    lines = [f"| {title} | dtorch median (min) | PyTorch median (min) | ratio of medians | ratio of minima |",
             "|---|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['name']} | {row['dtorch']:.2f} us ({row['dtorch_min']:.2f}) | {row['torch']:.2f} us "
                     f"({row['torch_min']:.2f}) | {row['ratio']:.2f}x | {row['best_ratio']:.2f}x |")
    return "\n".join(lines)


def main():
    only = None
    # many short timings (200 calls, a few hundred microseconds each): on a shared machine most of them run
    # without being preempted, so their median stays the library's own cost
    repeats = 31
    args = sys.argv[1:]
    if "--only" in args:
        only = args[args.index("--only") + 1]
    if "--repeats" in args:
        repeats = int(args[args.index("--repeats") + 1])
    number = 200
    groups = {"no grad": [], "requires_grad (forward only)": [], "forward + backward": []}
    for grad in (False, True):
        ours, theirs = Inputs(dtorch, grad), Inputs(torch, grad)
        label = "requires_grad (forward only)" if grad else "no grad"
        for name, make, with_grad in CALLS:
            if grad and not with_grad or only and only not in name:
                continue
            row_name = name + (", requires_grad" if grad else "")
            groups[label].append(compare(row_name, make(ours), make(theirs), number, repeats))
    ours, theirs = Inputs(dtorch, True), Inputs(torch, True)
    for name, make in CHAINS:
        if only and only not in name:
            continue
        groups["forward + backward"].append(compare(name, make(ours), make(theirs), 20, repeats))
    print()
    lines = [_summary(label, rows) for label, rows in groups.items() if rows]
    if "--markdown" in sys.argv:
        for label, rows in groups.items():
            if rows:
                print()
                print(_markdown(rows, f"call ({label})"))
        print()
        print("\n".join("- " + line for line in lines))


if __name__ == "__main__":
    main()
