"""Follows pytorch/examples `siamese_network` and the contrastive-loss snippets that go with Siamese networks: a
shared embedding net applied to two inputs, `F.pairwise_distance(output1, output2, keepdim=True)`, the loss
`torch.mean((1 - label) * torch.pow(d, 2) + label * torch.pow(torch.clamp(margin - d, min=0.0), 2))`, and also
`nn.CosineEmbeddingLoss` and `nn.TripletMarginLoss` on the same embeddings."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class SiameseNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(6, 32), nn.ReLU(inplace=True), nn.Linear(32, 4))

    def forward_once(self, x):
        return self.fc(x)

    def forward(self, input1, input2):
        return self.forward_once(input1), self.forward_once(input2)


class ContrastiveLoss(nn.Module):
    def __init__(self, margin=2.0):
        super().__init__()
        self.margin = margin

    def forward(self, output1, output2, label):
        d = F.pairwise_distance(output1, output2, keepdim=True)
        return torch.mean((1 - label) * torch.pow(d, 2) + label * torch.pow(torch.clamp(self.margin - d, min=0.0), 2))


torch.manual_seed(0)
centers = torch.randn(4, 6) * 2
cls_a, cls_b = torch.randint(0, 4, (128,)), torch.randint(0, 4, (128,))
a = centers[cls_a] + 0.3 * torch.randn(128, 6)
b = centers[cls_b] + 0.3 * torch.randn(128, 6)
label = (cls_a != cls_b).float().unsqueeze(1)
net, criterion = SiameseNetwork(), ContrastiveLoss()
optimizer = torch.optim.Adam(net.parameters(), lr=5e-3)
losses = []
for epoch in range(40):
    out1, out2 = net(a, b)
    loss = criterion(out1, out2, label)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
x1 = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]])
x2 = torch.tensor([[1.0, 0.0, 3.0], [0.0, -1.0, 0.0]])
target = torch.tensor([1.0, -1.0])
RESULT = {"losses": [sum(losses[:3]) / 3, sum(losses[-3:]) / 3],
          "values": {"pairwise": F.pairwise_distance(x1, x2).tolist(),
                     "cosine": nn.CosineEmbeddingLoss(margin=0.1)(x1, x2, target).item(),
                     "cosine_similarity": F.cosine_similarity(x1, x2).tolist(),
                     "triplet": nn.TripletMarginLoss(margin=1.0)(x1, x2, x2.flip(0)).item()}}
