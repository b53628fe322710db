"""nn training-step benchmarks (issue 4): dtorch against PyTorch on the same models, one thread each.

Workloads (float32, random data fixed before timing, dtorch and PyTorch timed alternately by the shared harness):

- MLP 784-512-256-10 (ReLU), batch 128, cross-entropy, SGD lr 0.01 momentum 0.9: one train step
  (zero_grad, forward, loss, backward, step).
- LeNet-5 shapes on 1x28x28, batch 64: conv 6@5x5 pad 2, max-pool 2, conv 16@5x5, max-pool 2, 400-120-84-10,
  ReLU, cross-entropy, Adam lr 1e-3: one train step.
- LSTM: 2 layers, input 256, hidden 256, sequence 35, batch 32, a Linear(256, 10) head on every position,
  cross-entropy, SGD lr 0.1: one train step.
- TransformerEncoderLayer: d_model 256, 4 heads, feed-forward 2048 (PyTorch's default), dropout 0.1 (train
  mode), batch_first, sequence 64, batch 16: forward, ``sum()``, backward (gradients set to None before each).
- Peak memory of the MLP run: each library in its own subprocess builds the MLP and runs 20 train steps; the
  numbers are the run's peak resident set above the resident set just before the first step (``VmHWM`` of
  ``/proc/self/status``, reset before the run), and the process's absolute peak (imported library included).

Run: python bench/bench_nn.py [--markdown] [--only mlp,cnn,lstm,transformer,memory]
"""

import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _harness  # noqa: E402  (sets the thread variables before numpy loads)

import numpy as np  # noqa: E402


def _libraries():
    import torch

    import dtorch
    import dtorch.nn
    import dtorch.nn.functional
    import dtorch.optim

    torch.set_num_threads(1)
    return dtorch, torch


def _state_from_torch(torch_module, dtorch_module, dtorch):
    dtorch_module.load_state_dict({k: dtorch.tensor(v.detach().numpy()) for k, v in torch_module.state_dict().items()})


# ---- models: one builder, called with either library -----------------------------------------------------------------


def build_mlp(lib):
    nn = lib.nn
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))


def build_lenet(lib):
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


def build_lstm(lib):
    class Tagger(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = lib.nn.LSTM(256, 256, num_layers=2)
            self.head = lib.nn.Linear(256, 10)

        def forward(self, x):
            return self.head(self.lstm(x)[0])

    return Tagger()


def train_step(lib, model, optimizer, x, y):
    """One step: zero_grad, forward, cross-entropy over every row, backward, optimizer step."""
    F = lib.nn.functional

    def step():
        optimizer.zero_grad()
        out = model(x)
        loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y)
        loss.backward()
        optimizer.step()

    return step


def pair_train_steps(builder, x_array, y_array, optimizer_name, optimizer_kwargs):
    dtorch, torch = _libraries()
    torch.manual_seed(0)
    torch_model = builder(torch)
    dtorch_model = builder(dtorch)
    _state_from_torch(torch_model, dtorch_model, dtorch)
    torch_opt = getattr(torch.optim, optimizer_name)(torch_model.parameters(), **optimizer_kwargs)
    dtorch_opt = getattr(dtorch.optim, optimizer_name)(dtorch_model.parameters(), **optimizer_kwargs)
    return (
        train_step(dtorch, dtorch_model, dtorch_opt, dtorch.tensor(x_array), dtorch.tensor(y_array)),
        train_step(torch, torch_model, torch_opt, torch.tensor(x_array), torch.tensor(y_array)),
    )


def transformer_steps(x_array):
    dtorch, torch = _libraries()
    torch.manual_seed(0)

    def build(lib):
        return lib.nn.TransformerEncoderLayer(d_model=256, nhead=4, batch_first=True)

    torch_layer = build(torch)
    dtorch_layer = build(dtorch)
    _state_from_torch(torch_layer, dtorch_layer, dtorch)

    def step_for(lib, layer, x):
        params = list(layer.parameters())

        def step():
            for p in params:
                p.grad = None
            layer(x).sum().backward()

        return step

    return (step_for(dtorch, dtorch_layer, dtorch.tensor(x_array)),
            step_for(torch, torch_layer, torch.tensor(x_array)))


# ---- peak memory, one subprocess per library ----------------------------------------------------------------------

_MEMORY_SCRIPT = r"""
import os, resource, sys
for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[name] = "1"
sys.path.insert(0, {root!r})
import numpy as np
library = sys.argv[1]
if library == "torch":
    import torch as lib
    lib.set_num_threads(1)
else:
    import dtorch as lib
    import dtorch.nn, dtorch.nn.functional, dtorch.optim
sys.path.insert(0, {bench!r})
from bench_nn import build_mlp, train_step

def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])

rng = np.random.default_rng(0)
x = lib.tensor(rng.standard_normal((128, 784)).astype(np.float32))
y = lib.tensor(rng.integers(0, 10, 128))
model = build_mlp(lib)
step = train_step(lib, model, lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), x, y)
setup_peak = status("VmHWM")
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak-RSS mark (Linux >= 4.0) so VmHWM below is the run's own peak
for _ in range(20):
    step()
run_peak = status("VmHWM")
print(before, run_peak, max(setup_peak, run_peak), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_memory():
    """(growth KiB, peak KiB) of the MLP run for dtorch and for torch, each in a fresh interpreter.

    The growth is the run's peak resident set (``VmHWM`` after resetting the mark through
    ``/proc/self/clear_refs``) minus the resident set just before the first step; the peak is the whole
    process's high-water mark, imported library included. ``ru_maxrss`` is not used for the growth: Linux carries
    the parent's resident set over ``fork``+``exec`` into it, so a child of a process that imported torch would
    start at torch's size.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    script = _MEMORY_SCRIPT.format(root=os.path.dirname(here), bench=here)
    results = {}
    for library in ("dtorch", "torch"):
        text = subprocess.run([sys.executable, "-c", script, library], check=True, capture_output=True,
                              text=True).stdout.split()
        before, run_peak, peak = int(text[-4]), int(text[-3]), int(text[-2])
        results[library] = (run_peak - before, peak)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table for bench/README.md")
    parser.add_argument("--only", default="mlp,cnn,lstm,transformer,memory")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    chosen = set(args.only.split(","))
    dtorch, torch = _libraries()
    print(f"nn training steps, 1 thread; numpy {np.__version__}, torch {torch.__version__}")
    rng = np.random.default_rng(0)
    rows = []
    if "mlp" in chosen:
        x = rng.standard_normal((128, 784)).astype(np.float32)
        y = rng.integers(0, 10, 128)
        ours, theirs = pair_train_steps(build_mlp, x, y, "SGD", dict(lr=0.01, momentum=0.9))
        rows.append(_harness.compare("MLP 784-512-256-10 train step, SGD momentum", ours, theirs, number=5,
                                     repeats=args.repeats, unit="ms"))
    if "cnn" in chosen:
        x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
        y = rng.integers(0, 10, 64)
        ours, theirs = pair_train_steps(build_lenet, x, y, "Adam", dict(lr=1e-3))
        rows.append(_harness.compare("LeNet-5 train step, batch 64, Adam", ours, theirs, number=3,
                                     repeats=args.repeats, unit="ms"))
    if "lstm" in chosen:
        x = rng.standard_normal((35, 32, 256)).astype(np.float32)
        y = rng.integers(0, 10, 35 * 32)
        ours, theirs = pair_train_steps(build_lstm, x, y, "SGD", dict(lr=0.1))
        rows.append(_harness.compare("LSTM 2x256, seq 35, batch 32 train step", ours, theirs, number=2,
                                     repeats=args.repeats, unit="ms"))
    if "transformer" in chosen:
        x = rng.standard_normal((16, 64, 256)).astype(np.float32)
        ours, theirs = transformer_steps(x)
        rows.append(_harness.compare("TransformerEncoderLayer 256/4h, seq 64, batch 16 fwd+bwd", ours, theirs,
                                     number=2, repeats=args.repeats, unit="ms"))
    memory_line = None
    if "memory" in chosen:
        results = peak_memory()
        (d_growth, d_peak), (t_growth, t_peak) = results["dtorch"], results["torch"]
        ratio = d_growth / t_growth if t_growth else float("inf")
        memory_line = (
            f"| MLP run peak-RSS growth (20 steps) | {d_growth / 1024:.1f} MiB | {t_growth / 1024:.1f} MiB | "
            f"{ratio:.2f}x |\n| MLP run absolute peak RSS (incl. library) | {d_peak / 1024:.1f} MiB | "
            f"{t_peak / 1024:.1f} MiB | {d_peak / t_peak:.2f}x |"
        )
        print(f"MLP peak memory: growth dtorch {d_growth / 1024:.1f} MiB torch {t_growth / 1024:.1f} MiB "
              f"ratio {ratio:.2f}x; absolute dtorch {d_peak / 1024:.1f} MiB torch {t_peak / 1024:.1f} MiB", flush=True)
    if args.markdown:
        print()
        print(_harness.markdown_table(rows, "workload"))
        if memory_line:
            print(memory_line)


if __name__ == "__main__":
    main()
