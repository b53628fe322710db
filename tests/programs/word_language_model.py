"""Follows pytorch/examples `word_language_model`: `import torch.onnx` at the top, an RNNModel (Embedding, LSTM,
Dropout, Linear decoder with tied weights), `init_hidden` via `weight.new_zeros`, hidden state repackaged with
`detach()` between batches (`repackage_hidden`), `clip_grad_norm_`, a hand-written SGD step
`p.data.add_(p.grad, alpha=-lr)`, batchify/get_batch on a token stream, and the whole model saved with
`torch.save(model, f)` and loaded back with `torch.load(f, weights_only=False)`."""
import math
import os
import tempfile

import torch
import torch.nn as nn
import torch.onnx  # noqa: F401 -- the example imports it at its top


class RNNModel(nn.Module):
    def __init__(self, ntoken, ninp, nhid, nlayers, dropout=0.2, tie_weights=True):
        super(RNNModel, self).__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout if nlayers > 1 else 0.0)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            self.decoder.weight = self.encoder.weight
        self.init_weights()
        self.nhid, self.nlayers = nhid, nlayers

    def init_weights(self):
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output).view(-1, self.decoder.out_features)
        return nn.functional.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        return (weight.new_zeros(self.nlayers, bsz, self.nhid), weight.new_zeros(self.nlayers, bsz, self.nhid))


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).t().contiguous()


def get_batch(source, i, bptt=8):
    seq_len = min(bptt, len(source) - 1 - i)
    return source[i:i + seq_len], source[i + 1:i + 1 + seq_len].reshape(-1)


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


torch.manual_seed(0)
ntokens = 20
corpus = torch.tensor([(i * 7) % ntokens for i in range(400)])  # a periodic token stream
train_data = batchify(corpus, 4)
model = RNNModel(ntokens, 16, 16, 1, dropout=0.0)
criterion = nn.NLLLoss()
lr, losses = 10.0, []
for epoch in range(5):
    model.train()
    hidden = model.init_hidden(4)
    total = 0.0
    for batch, i in enumerate(range(0, train_data.size(0) - 1, 8)):
        data, targets = get_batch(train_data, i)
        model.zero_grad()
        hidden = repackage_hidden(hidden)
        output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        total += loss.item()
    losses.append(total / (batch + 1))
path = os.path.join(tempfile.mkdtemp(), "model.pt")
with open(path, "wb") as f:
    torch.save(model, f)
with open(path, "rb") as f:
    model = torch.load(f, weights_only=False)
model.eval()
with torch.no_grad():
    output, _ = model(get_batch(train_data, 0)[0], model.init_hidden(4))
RESULT = {"losses": losses, "shapes": {"output": list(output.shape)},
          "exact": {"tied": model.decoder.weight is model.encoder.weight, "ppl_finite": math.isfinite(math.exp(losses[-1]))}}
