"""Follows the PyTorch tutorial "Language Modeling with nn.Transformer": a `PositionalEncoding` module with a
registered `pe` buffer built from `torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))`,
`nn.TransformerEncoder(nn.TransformerEncoderLayer(d_model, nhead, d_hid, dropout), nlayers)`, a square causal
mask from `nn.Transformer.generate_square_subsequent_mask`, `init_weights` with `uniform_`, CrossEntropyLoss,
SGD + StepLR(1.0, gamma=0.95), `clip_grad_norm_(model.parameters(), 0.5)` and evaluation under `torch.no_grad()`."""
import math

import torch
from torch import nn


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, dropout=0.1, max_len=64):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, 1, d_model)
        pe[:, 0, 0::2] = torch.sin(position * div_term)
        pe[:, 0, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe)

    def forward(self, x):
        x = x + self.pe[:x.size(0)]
        return self.dropout(x)


class TransformerModel(nn.Module):
    def __init__(self, ntoken, d_model, nhead, d_hid, nlayers, dropout=0.1):
        super().__init__()
        self.model_type = "Transformer"
        self.pos_encoder = PositionalEncoding(d_model, dropout)
        encoder_layers = nn.TransformerEncoderLayer(d_model, nhead, d_hid, dropout)
        self.transformer_encoder = nn.TransformerEncoder(encoder_layers, nlayers, enable_nested_tensor=False)
        self.embedding = nn.Embedding(ntoken, d_model)
        self.d_model = d_model
        self.linear = nn.Linear(d_model, ntoken)
        self.init_weights()

    def init_weights(self):
        initrange = 0.1
        self.embedding.weight.data.uniform_(-initrange, initrange)
        self.linear.bias.data.zero_()
        self.linear.weight.data.uniform_(-initrange, initrange)

    def forward(self, src, src_mask=None):
        src = self.embedding(src) * math.sqrt(self.d_model)
        src = self.pos_encoder(src)
        if src_mask is None:
            src_mask = nn.Transformer.generate_square_subsequent_mask(len(src))
        output = self.transformer_encoder(src, src_mask)
        return self.linear(output)


torch.manual_seed(0)
ntokens, bptt = 16, 10
stream = torch.tensor([(3 * i + i // 5) % ntokens for i in range(330)])
train_data = stream[:320].view(32, -1).t().contiguous()  # (seq, batch)
model = TransformerModel(ntokens, 32, 4, 64, 2, dropout=0.1)
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1.0, gamma=0.95)
losses = []
for epoch in range(3):
    model.train()
    total = 0.0
    for batch, i in enumerate(range(0, train_data.size(0) - 1, bptt)):
        seq_len = min(bptt, train_data.size(0) - 1 - i)
        data, targets = train_data[i:i + seq_len], train_data[i + 1:i + 1 + seq_len].reshape(-1)
        output = model(data)
        loss = criterion(output.view(-1, ntokens), targets)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimizer.step()
        total += loss.item()
    losses.append(total / (batch + 1))
    scheduler.step()
model.eval()
with torch.no_grad():
    output = model(train_data[:bptt])
mask = nn.Transformer.generate_square_subsequent_mask(4)
RESULT = {"losses": losses, "shapes": {"output": list(output.shape)},
          "exact": {"mask": mask.tolist(), "lr": scheduler.get_last_lr()}}
