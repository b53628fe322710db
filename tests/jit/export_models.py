"""The tutorial models the export tests share (jit, export, onnx), written once for dtorch and for PyTorch.

Each ``build_*(torch_like)`` builds the model with the given library (``dtorch`` or ``torch``); ``pair(name)``
returns the dtorch model and a PyTorch twin holding the same weights and buffers, both in eval mode, plus a
function making inputs of a given batch size (and sequence length).
"""

import numpy as np

import dtorch


def build_mlp(t):
    class MLP(t.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = t.nn.Linear(12, 16)
            self.drop = t.nn.Dropout(0.2)
            self.fc2 = t.nn.Linear(16, 5)

        def forward(self, x):
            x = x.view(x.size(0), -1)  # traced at one batch size, replayed at another
            return self.fc2(self.drop(t.tanh(self.fc1(x))))

    return MLP()


def build_cnn(t):
    F = t.nn.functional

    class CNN(t.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = t.nn.Conv2d(1, 4, 3, padding=1)
            self.bn1 = t.nn.BatchNorm2d(4)
            self.pool = t.nn.MaxPool2d(2)
            self.conv2 = t.nn.Conv2d(4, 6, 3)
            self.bn2 = t.nn.BatchNorm2d(6)
            self.gap = t.nn.AdaptiveAvgPool2d((2, 2))
            self.flatten = t.nn.Flatten()
            self.fc = t.nn.Linear(24, 10)

        def forward(self, x):
            x = self.pool(F.relu(self.bn1(self.conv1(x))))
            x = self.gap(F.relu(self.bn2(self.conv2(x)), inplace=True))
            return F.log_softmax(self.fc(self.flatten(x)), dim=1)

    return CNN()


def build_lstm(t):
    class LSTMTagger(t.nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = t.nn.Embedding(30, 8)
            self.lstm = t.nn.LSTM(8, 12, num_layers=2, batch_first=True)
            self.head = t.nn.Linear(12, 4)

        def forward(self, tokens):
            out, (h, c) = self.lstm(self.embedding(tokens))
            return self.head(out[:, -1, :]), h

    return LSTMTagger()


def build_transformer(t):
    class Encoder(t.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = t.nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.1, batch_first=True)
            self.head = t.nn.Linear(16, 3)

        def forward(self, x, mask):
            return self.head(self.layer(x, src_mask=mask))

    return Encoder()


def causal_mask(length):
    """A float mask (0 on and below the diagonal, -inf above), as ``generate_square_subsequent_mask`` makes."""
    return np.triu(np.full((length, length), -np.inf, dtype=np.float32), 1)


def make_inputs(name, batch, length=6, seed=0):
    """NumPy inputs of ``name``'s model at ``batch`` (and sequence ``length``)."""
    rng = np.random.default_rng(seed)
    if name == "mlp":
        return (rng.standard_normal((batch, 3, 4)).astype(np.float32),)
    if name == "cnn":
        return (rng.standard_normal((batch, 1, 12, 12)).astype(np.float32),)
    if name == "lstm":
        return (rng.integers(0, 30, size=(batch, length)).astype(np.int64),)
    return (rng.standard_normal((batch, length, 16)).astype(np.float32), causal_mask(length))


BUILDERS = {"mlp": build_mlp, "cnn": build_cnn, "lstm": build_lstm, "transformer": build_transformer}
# the forward's argument names, used as ONNX input names
INPUT_NAMES = {"mlp": ["x"], "cnn": ["x"], "lstm": ["tokens"], "transformer": ["x", "mask"]}
DYNAMIC_AXES = {
    "mlp": {"x": {0: "batch"}},
    "cnn": {"x": {0: "batch"}},
    "lstm": {"tokens": {0: "batch", 1: "sequence"}},
    "transformer": {"x": {0: "batch", 1: "sequence"}, "mask": {0: "sequence", 1: "sequence"}},
}


def dtorch_model(name, seed=0):
    """The dtorch model in eval mode; the CNN's BatchNorm layers first see a few training batches so that their
    running statistics are not the initial ones."""
    dtorch.manual_seed(seed)
    model = BUILDERS[name](dtorch)
    if name == "cnn":
        for step in range(3):
            model(dtorch.tensor(make_inputs("cnn", 4, seed=10 + step)[0]))
    return model.eval()


def torch_twin(name, model):
    """The PyTorch model with ``model``'s weights and buffers, in eval mode."""
    import torch

    twin = BUILDERS[name](torch)
    state = {k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()}
    twin.load_state_dict(state)
    return twin.eval()


def as_dtorch(arrays):
    return tuple(dtorch.tensor(a) for a in arrays)


def outputs_numpy(output):
    """A model output (Tensor or tuple) as a list of NumPy arrays."""
    if isinstance(output, (tuple, list)):
        return [a for item in output for a in outputs_numpy(item)]
    if hasattr(output, "detach"):
        return [output.detach().numpy().copy()]
    return [np.array(output)]


class StatesFromFactories(dtorch.nn.Module):
    """A char-RNN-style forward: its initial state, positions and offsets come from factories sized by the input."""

    def __init__(self):
        super().__init__()
        self.rnn = dtorch.nn.GRU(4, 6, batch_first=True)
        self.position = dtorch.nn.Embedding(20, 4)

    def forward(self, x):
        h = dtorch.zeros(1, x.size(0), 6)
        x = x + self.position(dtorch.arange(x.size(1))) + dtorch.zeros_like(x)
        out, h = self.rnn(x, h)
        return out + dtorch.full((x.size(0), 1, 6), 0.5)


class Clip(dtorch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clamp(0, 1)

    @staticmethod
    def backward(ctx, grad):
        return grad


class UsesClip(dtorch.nn.Module):
    """Calls a custom ``autograd.Function`` (``Clip``), which no recorder can replay: export and onnx refuse it."""

    def forward(self, x):
        return Clip.apply(x)


def build_transformer_lm(t):
    """The "language modeling with nn.Transformer" tutorial's model: sinusoidal positions sliced to the input's
    length (``pe[:x.size(0)]``), a two-layer TransformerEncoder, a causal mask."""
    import math

    class PositionalEncoding(t.nn.Module):
        def __init__(self, d_model, max_len=50):
            super().__init__()
            self.dropout = t.nn.Dropout(0.1)
            position = t.arange(max_len).unsqueeze(1)
            div_term = t.exp(t.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
            pe = t.zeros(max_len, 1, d_model)
            pe[:, 0, 0::2] = t.sin(position * div_term)
            pe[:, 0, 1::2] = t.cos(position * div_term)
            self.register_buffer("pe", pe)

        def forward(self, x):
            return self.dropout(x + self.pe[:x.size(0)])

    class TransformerModel(t.nn.Module):
        def __init__(self, ntoken=30, d_model=16, nhead=2, nlayers=2):
            super().__init__()
            self.pos_encoder = PositionalEncoding(d_model)
            layer = t.nn.TransformerEncoderLayer(d_model, nhead, 32, 0.1)
            self.transformer_encoder = t.nn.TransformerEncoder(layer, nlayers, enable_nested_tensor=False)
            self.embedding = t.nn.Embedding(ntoken, d_model)
            self.d_model = d_model
            self.linear = t.nn.Linear(d_model, ntoken)

        def forward(self, src, src_mask):
            src = self.pos_encoder(self.embedding(src) * math.sqrt(self.d_model))
            return self.linear(self.transformer_encoder(src, src_mask))

    return TransformerModel()
