"""Follows the PyTorch tutorial "Text classification with the torchtext library": an `nn.EmbeddingBag(vocab_size,
embed_dim, sparse=False)` fed flat token lists with `offsets`, a `collate_batch` building `label_list`,
`text_list` and `offsets` with `torch.tensor(offsets[:-1]).cumsum(dim=0)` and `torch.cat(text_list)`,
`init_weights` with `uniform_` and `zero_()`, CrossEntropyLoss, SGD(lr=5) + StepLR(1.0, gamma=0.1),
`clip_grad_norm_(model.parameters(), 0.1)`, and accuracy with `(predicted_label.argmax(1) == label).sum().item()`."""
import random

import torch
from torch import nn
from torch.utils.data import DataLoader


class TextClassificationModel(nn.Module):
    def __init__(self, vocab_size, embed_dim, num_class):
        super(TextClassificationModel, self).__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, embed_dim, sparse=False)
        self.fc = nn.Linear(embed_dim, num_class)
        self.init_weights()

    def init_weights(self):
        initrange = 0.5
        self.embedding.weight.data.uniform_(-initrange, initrange)
        self.fc.weight.data.uniform_(-initrange, initrange)
        self.fc.bias.data.zero_()

    def forward(self, text, offsets):
        return self.fc(self.embedding(text, offsets))


random.seed(0)
torch.manual_seed(0)
vocab_size, num_class = 30, 3
# class k uses mostly tokens from its own third of the vocabulary
samples = [(k, [random.randrange(k * 10, k * 10 + 10) if random.random() < 0.8 else random.randrange(30)
                for _ in range(random.randint(3, 9))]) for k in [random.randrange(3) for _ in range(240)]]


def collate_batch(batch):
    label_list, text_list, offsets = [], [], [0]
    for _label, _text in batch:
        label_list.append(_label)
        processed_text = torch.tensor(_text, dtype=torch.int64)
        text_list.append(processed_text)
        offsets.append(processed_text.size(0))
    label_list = torch.tensor(label_list, dtype=torch.int64)
    offsets = torch.tensor(offsets[:-1]).cumsum(dim=0)
    text_list = torch.cat(text_list)
    return label_list, text_list, offsets


dataloader = DataLoader(samples, batch_size=16, shuffle=True, collate_fn=collate_batch)
model = TextClassificationModel(vocab_size, 16, num_class)
criterion = torch.nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=5)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1.0, gamma=0.5)
epoch_losses = []
for epoch in range(4):
    model.train()
    total, count = 0.0, 0
    for idx, (label, text, offsets) in enumerate(dataloader):
        optimizer.zero_grad()
        predicted_label = model(text, offsets)
        loss = criterion(predicted_label, label)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
        total += loss.item()
        count += 1
    epoch_losses.append(total / count)
    scheduler.step()
label, text, offsets = collate_batch([(0, [1, 2, 3]), (1, [4, 5])])
bag = nn.EmbeddingBag(6, 2, mode="sum")
with torch.no_grad():
    bag.weight.copy_(torch.arange(12.0).view(6, 2))
RESULT = {"losses": epoch_losses, "exact": {"offsets": offsets.tolist(), "text": text.tolist(),
                                            "bag": bag(text, offsets).tolist()}}
