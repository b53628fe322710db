"""Follows the attention code of the PyTorch 2 tutorials ("(Beta) Implementing High-Performance Transformers with
Scaled Dot Product Attention") and nanoGPT: `F.scaled_dot_product_attention(q, k, v, is_causal=True,
dropout_p=...)` against the explicit einsum / softmax formula, `nn.MultiheadAttention(batch_first=True)` with a
`key_padding_mask` and `need_weights`, and a tiny attention classifier trained on both paths."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
B, H, T, D = 2, 2, 5, 4
q = torch.linspace(-1, 1, B * H * T * D).view(B, H, T, D)
k = torch.cos(torch.arange(B * H * T * D, dtype=torch.float32)).view(B, H, T, D)
v = torch.sin(torch.arange(B * H * T * D, dtype=torch.float32)).view(B, H, T, D)
fast = F.scaled_dot_product_attention(q, k, v, is_causal=True)
scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(D)
mask = torch.ones(T, T, dtype=torch.bool).tril()
scores = scores.masked_fill(~mask, float("-inf"))
slow = torch.einsum("bhqk,bhkd->bhqd", F.softmax(scores, dim=-1), v)
assert torch.allclose(fast, slow, atol=1e-5)


class AttentionClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(3, 16)
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
        self.head = nn.Linear(16, 2)

    def forward(self, x, padding_mask):
        h = self.embed(x)
        h, weights = self.attn(h, h, h, key_padding_mask=padding_mask, need_weights=True)
        h = h.masked_fill(padding_mask.unsqueeze(-1), 0).sum(1) / (~padding_mask).sum(1, keepdim=True)
        return self.head(h), weights


x = torch.randn(64, 6, 3)
lengths = torch.randint(2, 7, (64,))
padding_mask = torch.arange(6).unsqueeze(0) >= lengths.unsqueeze(1)
labels = ((x[:, :, 0] * (~padding_mask)).sum(1) > 0).long()
model = AttentionClassifier()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
losses = []
for step in range(40):
    logits, weights = model(x, padding_mask)
    loss = F.cross_entropy(logits, labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
RESULT = {"losses": [sum(losses[:3]) / 3, sum(losses[-3:]) / 3], "values": {"sdpa": fast[0, 0].tolist()},
          "shapes": {"weights": list(weights.shape)}}
