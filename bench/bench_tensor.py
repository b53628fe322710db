"""Tensor-core benchmark (issue 3): per-op overhead, a chain of small ops with backward, and matmul.

Run: python bench/bench_tensor.py [--markdown]. Both libraries use one thread.
"""

import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))

import _harness  # noqa: E402  (sets the thread variables before numpy loads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import dtorch  # noqa: E402

torch.set_num_threads(1)


def small_op(lib, requires_grad):
    a = lib.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=requires_grad)
    b = lib.tensor([0.5, 0.5, 0.5, 0.5])
    return lambda: a + b


def chain(lib):
    """20 small elementwise ops on a 64-element tensor, then backward."""
    x = lib.tensor(np.linspace(-1, 1, 64, dtype=np.float32), requires_grad=True)
    w = lib.tensor(np.linspace(0.5, 1.5, 64, dtype=np.float32))

    def step():
        y = x
        for _ in range(4):
            y = y * w
            y = y + 0.1
            y = y.tanh()
            y = y.sigmoid()
            y = y - w
        y.sum().backward()
        x.grad = None

    return step


def matmul(lib, n):
    rng = np.random.default_rng(0)
    a = lib.tensor(rng.standard_normal((n, n), dtype=np.float32))
    b = lib.tensor(rng.standard_normal((n, n), dtype=np.float32))
    return lambda: a @ b


def main():
    rows = [
        _harness.compare("a + b, 4 elements, no grad", small_op(dtorch, False), small_op(torch, False), 20000),
        _harness.compare("a + b, 4 elements, requires_grad", small_op(dtorch, True), small_op(torch, True), 20000),
        _harness.compare("chain of 20 elementwise ops + backward", chain(dtorch), chain(torch), 300),
        _harness.compare("matmul 256x256 float32", matmul(dtorch, 256), matmul(torch, 256), 50),
        _harness.compare("matmul 1024x1024 float32", matmul(dtorch, 1024), matmul(torch, 1024), 3, repeats=7,
                         unit="ms"),
    ]
    if "--markdown" in sys.argv:
        print()
        print(_harness.markdown_table(rows, "workload (one thread)"))


if __name__ == "__main__":
    main()
