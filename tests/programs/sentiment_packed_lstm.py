"""Follows the well-known sentiment-analysis tutorials (bentrevett/pytorch-sentiment-analysis, "Upgraded Sentiment
Analysis"): `pad_sequence` of variable-length token tensors with `padding_idx`, `pack_padded_sequence(embedded,
lengths, batch_first=True, enforce_sorted=False)`, a bidirectional 2-layer LSTM, the final states joined with
`torch.cat((hidden[-2, :, :], hidden[-1, :, :]), dim=1)`, `pad_packed_sequence`, BCEWithLogitsLoss, and
`torch.round(torch.sigmoid(preds))` accuracy."""
import random

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

PAD = 0


class RNN(nn.Module):
    def __init__(self, vocab_size, embedding_dim, hidden_dim):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD)
        self.rnn = nn.LSTM(embedding_dim, hidden_dim, num_layers=2, bidirectional=True, dropout=0.2, batch_first=True)
        self.fc = nn.Linear(hidden_dim * 2, 1)
        self.dropout = nn.Dropout(0.2)

    def forward(self, text, text_lengths):
        embedded = self.dropout(self.embedding(text))
        packed = pack_padded_sequence(embedded, text_lengths, batch_first=True, enforce_sorted=False)
        packed_output, (hidden, cell) = self.rnn(packed)
        output, output_lengths = pad_packed_sequence(packed_output, batch_first=True)
        hidden = self.dropout(torch.cat((hidden[-2, :, :], hidden[-1, :, :]), dim=1))
        return self.fc(hidden), output, output_lengths


random.seed(0)
torch.manual_seed(0)
sentences, labels = [], []
for _ in range(64):
    positive = random.random() < 0.5
    words = [random.randrange(1, 10) if positive else random.randrange(10, 20) for _ in range(random.randint(2, 7))]
    sentences.append(torch.tensor(words))
    labels.append(float(positive))
text = pad_sequence(sentences, batch_first=True, padding_value=PAD)
lengths = torch.tensor([len(s) for s in sentences])
labels = torch.tensor(labels)
model = RNN(20, 12, 16)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
criterion = nn.BCEWithLogitsLoss()
losses = []
for epoch in range(15):
    model.train()
    optimizer.zero_grad()
    predictions, _, _ = model(text, lengths)
    loss = criterion(predictions.squeeze(1), labels)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
model.eval()
with torch.no_grad():
    predictions, output, output_lengths = model(text[:3], lengths[:3])
    rounded = torch.round(torch.sigmoid(predictions.squeeze(1)))
RESULT = {"losses": losses, "shapes": {"padded": list(text.shape), "output": list(output.shape)},
          "exact": {"output_lengths": output_lengths.tolist(), "rounded_dtype": str(rounded.dtype).split(".")[-1]}}
