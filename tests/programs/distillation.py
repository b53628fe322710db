"""Follows the PyTorch tutorial "Knowledge Distillation": a teacher and a smaller student, soft targets from
`nn.functional.softmax(teacher_logits / T, dim=-1)`, `soft_prob = nn.functional.log_softmax(student_logits / T,
dim=-1)`, the soft loss `torch.sum(soft_targets * (soft_targets.log() - soft_prob)) / soft_prob.size()[0] * (T**2)`,
also `nn.KLDivLoss(reduction="batchmean")`, mixed with CrossEntropyLoss, the teacher frozen under `eval()` and
`torch.no_grad()`."""
import torch
import torch.nn as nn

torch.manual_seed(0)
x = torch.randn(128, 8)
labels = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()
teacher = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 3))
opt_t = torch.optim.Adam(teacher.parameters(), lr=1e-2)
for _ in range(60):
    opt_t.zero_grad()
    nn.functional.cross_entropy(teacher(x), labels).backward()
    opt_t.step()
student = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3))
optimizer = torch.optim.Adam(student.parameters(), lr=1e-2)
ce_loss, kl = nn.CrossEntropyLoss(), nn.KLDivLoss(reduction="batchmean")
T, soft_target_loss_weight, ce_loss_weight = 2.0, 0.25, 0.75
teacher.eval()
losses = []
for epoch in range(60):
    with torch.no_grad():
        teacher_logits = teacher(x)
    student_logits = student(x)
    soft_targets = nn.functional.softmax(teacher_logits / T, dim=-1)
    soft_prob = nn.functional.log_softmax(student_logits / T, dim=-1)
    soft_targets_loss = torch.sum(soft_targets * (soft_targets.log() - soft_prob)) / soft_prob.size()[0] * (T ** 2)
    assert abs(soft_targets_loss.item() - kl(soft_prob, soft_targets).item() * T ** 2) < 1e-4
    loss = soft_target_loss_weight * soft_targets_loss + ce_loss_weight * ce_loss(student_logits, labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
p = torch.tensor([[0.2, 0.3, 0.5]])
q = torch.tensor([[0.1, 0.6, 0.3]])
RESULT = {"losses": [losses[0], losses[-1]], "values": {"kl": kl(q.log(), p).item(),
                                                        "kl_log_target": nn.KLDivLoss(reduction="sum", log_target=True)(q.log(), p.log()).item()}}
