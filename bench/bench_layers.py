"""Layer benchmark (issue 12): forward plus backward of common layers at training sizes, dtorch against PyTorch.

Each workload builds the layer in both libraries with the same weights (copied through ``state_dict``), the same
input (float32, requires_grad) and the same upstream gradient, and times ``out = layer(x); out.backward(g)`` with
the gradients set to None before each call. dtorch and PyTorch run in one process, one thread each, alternately
(A B A B ...), medians of the repeats; the summary gives the geometric mean of dtorch/PyTorch and the worst layer.

Run: python bench/bench_layers.py [--markdown] [--only NAME,NAME] [--repeats N]
"""

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import _harness  # noqa: E402  (sets the thread variables before numpy loads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import dtorch  # noqa: E402
import dtorch.nn  # noqa: E402

torch.set_num_threads(1)


class CrossEntropyHead:
    """``cross_entropy(logits, target)`` as a 'layer' (no parameters): the loss over a 10k vocabulary."""

    def __init__(self, lib, target):
        self.lib, self.target = lib, target

    def __call__(self, logits):
        return self.lib.nn.functional.cross_entropy(logits, self.target)

    def parameters(self):
        return []


class FirstOutput:
    """Recurrent layers and attention return tuples: time the first output."""

    def __init__(self, module, query_key_value=False):
        self.module, self.query_key_value = module, query_key_value

    def __call__(self, x):
        if self.query_key_value:
            return self.module(x, x, x, need_weights=False)[0]
        return self.module(x)[0]

    def parameters(self):
        return self.module.parameters()

    def state_dict(self):
        return self.module.state_dict()

    def load_state_dict(self, state):
        return self.module.load_state_dict(state)


# name: (builder(lib) -> layer, input shape, number of calls per timing, integer input (vocab) or None)
WORKLOADS = {
    "gelu": ("GELU on 64x64x512", lambda lib: lib.nn.GELU(), (64, 64, 512), 3, None),
    "conv": ("Conv2d 32->32, 3x3, pad 1, batch 32 of 32x32", lambda lib: lib.nn.Conv2d(32, 32, 3, padding=1),
             (32, 32, 32, 32), 2, None),
    "layernorm": ("LayerNorm(512) on 64x64x512", lambda lib: lib.nn.LayerNorm(512), (64, 64, 512), 3, None),
    "embedding": ("Embedding 10k x 256, 64x35 ids", lambda lib: lib.nn.Embedding(10000, 256), (64, 35), 5, 10000),
    "softmax": ("Softmax(-1) on 64x64x512", lambda lib: lib.nn.Softmax(dim=-1), (64, 64, 512), 3, None),
    "batchnorm": ("BatchNorm2d(32), batch 32 of 16x16", lambda lib: lib.nn.BatchNorm2d(32), (32, 32, 16, 16), 10,
                  None),
    "lstm": ("LSTM 2 layers, 256, 35 steps, batch 20", lambda lib: FirstOutput(lib.nn.LSTM(256, 256, 2)),
             (35, 20, 256), 1, None),
    "gru": ("GRU 2 layers, 256, 35 steps, batch 20", lambda lib: FirstOutput(lib.nn.GRU(256, 256, 2)),
            (35, 20, 256), 1, None),
    "conv5": ("Conv2d 3->16, 5x5, batch 32 of 32x32", lambda lib: lib.nn.Conv2d(3, 16, 5), (32, 3, 32, 32), 5, None),
    "convt": ("ConvTranspose2d 32->16, 4x4, stride 2, batch 32 of 16x16",
              lambda lib: lib.nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), (32, 32, 16, 16), 3, None),
    "linear": ("Linear 512->512 on 64x64 rows", lambda lib: lib.nn.Linear(512, 512), (64, 64, 512), 1, None),
    "transformer": ("TransformerEncoderLayer(256, 8 heads), batch 16, seq 64",
                    lambda lib: lib.nn.TransformerEncoderLayer(256, 8, batch_first=True), (16, 64, 256), 1, None),
    "mha": ("MultiheadAttention(256, 8 heads), batch 16, seq 64",
            lambda lib: FirstOutput(lib.nn.MultiheadAttention(256, 8, batch_first=True), query_key_value=True),
            (16, 64, 256), 2, None),
    "maxpool": ("MaxPool2d(2), batch 32 of 32x32x32", lambda lib: lib.nn.MaxPool2d(2), (32, 32, 32, 32), 3, None),
    "dropout": ("Dropout(0.1) on 64x64x512 (train mode)", lambda lib: lib.nn.Dropout(0.1), (64, 64, 512), 3, None),
    "crossentropy": ("cross_entropy over a 10k vocabulary, 700 rows", None, (700, 10000), 3, None),
}


def _pair(key, rng):
    _, builder, shape, _, vocab = WORKLOADS[key]
    if vocab is not None:
        x_array = rng.integers(0, vocab, size=shape)
    else:
        x_array = rng.standard_normal(shape).astype(np.float32)
    if key == "crossentropy":
        target = rng.integers(0, shape[1], size=shape[0])
        layers = CrossEntropyHead(dtorch, dtorch.tensor(target)), CrossEntropyHead(torch, torch.tensor(target))
    else:
        torch.manual_seed(0)
        theirs = builder(torch)
        ours = builder(dtorch)
        state = theirs.state_dict()
        if state:
            ours.load_state_dict({k: dtorch.tensor(v.detach().numpy()) for k, v in state.items()})
    if key != "crossentropy":
        layers = ours, theirs
    steps = []
    upstream = None
    for lib, layer in zip((dtorch, torch), layers):
        x = lib.tensor(x_array, requires_grad=vocab is None)
        if upstream is None:
            out = layer(x)
            upstream = rng.standard_normal(tuple(out.shape)).astype(np.float32)
        g = lib.tensor(upstream)
        params = list(layer.parameters())

        def step(layer=layer, x=x, g=g, params=params):
            x.grad = None
            for p in params:
                p.grad = None
            layer(x).backward(g)

        steps.append(step)
    return steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--only", default=",".join(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    print(f"layers forward + backward, 1 thread; numpy {np.__version__}, torch {torch.__version__}")
    rng = np.random.default_rng(0)
    rows = []
    for key in args.only.split(","):
        name, _, _, number, _ = WORKLOADS[key]
        ours, theirs = _pair(key, rng)
        rows.append(_harness.compare(name, ours, theirs, number=number, repeats=args.repeats, unit="ms"))
    ratios = [row["ratio"] for row in rows]
    geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    worst = max(rows, key=lambda row: row["ratio"])
    summary = f"{len(rows)} layers: geometric mean {geomean:.2f}x, worst {worst['name']} {worst['ratio']:.2f}x"
    print(summary)
    if args.markdown:
        print()
        print(_harness.markdown_table(rows, "layer (forward + backward)"))
        print()
        print(summary)


if __name__ == "__main__":
    main()
