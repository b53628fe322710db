"""Optimizer-step microbenchmark (issue 4): dtorch's flat-buffer path and per-parameter loop against PyTorch.

The workload is one ``optimizer.step()`` over ~1M float32 parameters held in 100 tensors of 100x100, gradients
fixed (an Adam step, and an SGD-with-momentum step; then one row for each of Adadelta, Adamax, NAdam, RAdam, ASGD
and Rprop, both libraries on their default path). PyTorch runs its CPU default (``foreach=None``: the
per-tensor loop) and, for reference, ``foreach=True``. One thread each (``torch.set_num_threads(1)``, and
OMP/OPENBLAS/MKL threads = 1 set by the harness before NumPy loads); dtorch and PyTorch alternate run by run.

Run: python bench/bench_optim.py [--markdown]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _harness  # noqa: E402  (sets the thread variables before numpy loads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import dtorch  # noqa: E402
import dtorch.nn  # noqa: E402
from dtorch import optim  # noqa: E402
from dtorch.tensor import Tensor  # noqa: E402

torch.set_num_threads(1)


def dtorch_step(name, kwargs, foreach, values, grads):
    params = [dtorch.nn.Parameter(Tensor._from_array(v.copy(), None)) for v in values]
    for p, g in zip(params, grads):
        p.grad = Tensor._from_array(g, None)
    return getattr(optim, name)(params, foreach=foreach, **kwargs).step


def torch_step(name, kwargs, foreach, values, grads):
    params = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in values]
    for p, g in zip(params, grads):
        p.grad = torch.from_numpy(g)
    return getattr(torch.optim, name)(params, foreach=foreach, **kwargs).step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tensors", type=int, default=100)
    parser.add_argument("--shape", type=int, nargs="+", default=[100, 100])
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table for bench/README.md")
    parser.add_argument("--no-new", dest="new", action="store_false",
                        help="only Adam and SGD (skip Adadelta, Adamax, NAdam, RAdam, ASGD, Rprop)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    values = [rng.standard_normal(args.shape).astype(np.float32) for _ in range(args.tensors)]
    grads = [rng.standard_normal(args.shape).astype(np.float32) for _ in range(args.tensors)]
    total = sum(v.size for v in values)
    print(f"optimizer step over {total:,} float32 parameters in {args.tensors} tensors of {tuple(args.shape)}, "
          f"1 thread; numpy {np.__version__}, torch {torch.__version__}")

    rows = []
    for name, kwargs, label in [("Adam", dict(lr=1e-3), "Adam"), ("SGD", dict(lr=1e-2, momentum=0.9), "SGD momentum")]:
        for ours, theirs, what in [
            (None, None, "dtorch flat vs torch default"),
            (False, None, "dtorch per-param vs torch default"),
            (None, True, "dtorch flat vs torch foreach=True"),
        ]:
            rows.append(_harness.compare(
                f"{label} step, {what}",
                dtorch_step(name, kwargs, ours, values, grads),
                torch_step(name, kwargs, theirs, values, grads),
                number=10, repeats=15, unit="ms",
            ))
    # the rest of torch.optim, each library's default path (NAdam and ASGD keep per-parameter 0-dim state that
    # changes every step, so dtorch runs them per parameter; the others take the flat path)
    for name, kwargs in [("Adadelta", dict(lr=1.0)), ("Adamax", dict(lr=2e-3)), ("NAdam", dict(lr=2e-3)),
                         ("RAdam", dict(lr=1e-3)), ("ASGD", dict(lr=1e-2)), ("Rprop", dict(lr=1e-2))]:
        if args.new is False:
            break
        rows.append(_harness.compare(
            f"{name} step, dtorch default vs torch default",
            dtorch_step(name, kwargs, None, values, grads),
            torch_step(name, kwargs, None, values, grads),
            number=10, repeats=15, unit="ms",
        ))
    if args.markdown:
        print()
        print(_harness.markdown_table(rows, "optimizer step, 1M params in 100 tensors"))


if __name__ == "__main__":
    main()
