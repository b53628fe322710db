"""Follows pytorch/examples `reinforcement_learning/reinforce.py`: a `Policy` with dropout and `F.softmax(..., dim=1)`,
`select_action` through `Categorical(probs)`, `m.sample()`, `policy.saved_log_probs.append(m.log_prob(action))`,
discounted returns normalised with `eps = np.finfo(np.float32).eps.item()`, `torch.tensor(returns)`, and
`torch.cat(policy_loss).sum()` (here on a two-armed bandit instead of CartPole)."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.distributions import Categorical


class Policy(nn.Module):
    def __init__(self):
        super(Policy, self).__init__()
        self.affine1 = nn.Linear(4, 32)
        self.dropout = nn.Dropout(p=0.1)
        self.affine2 = nn.Linear(32, 2)
        self.saved_log_probs, self.rewards = [], []

    def forward(self, x):
        x = F.relu(self.dropout(self.affine1(x)))
        return F.softmax(self.affine2(x), dim=1)


torch.manual_seed(0)
rng = np.random.default_rng(0)
policy = Policy()
optimizer = optim.Adam(policy.parameters(), lr=1e-2)
eps = np.finfo(np.float32).eps.item()
gamma = 0.9


def select_action(state):
    state = torch.from_numpy(state).float().unsqueeze(0)
    probs = policy(state)
    m = Categorical(probs)
    action = m.sample()
    policy.saved_log_probs.append(m.log_prob(action))
    return action.item()


def finish_episode():
    R, policy_loss, returns = 0, [], []
    for r in policy.rewards[::-1]:
        R = r + gamma * R
        returns.insert(0, R)
    returns = torch.tensor(returns)
    returns = (returns - returns.mean()) / (returns.std() + eps)
    for log_prob, R in zip(policy.saved_log_probs, returns):
        policy_loss.append(-log_prob * R)
    optimizer.zero_grad()
    policy_loss = torch.cat(policy_loss).sum()
    policy_loss.backward()
    optimizer.step()
    del policy.rewards[:]
    del policy.saved_log_probs[:]


mean_rewards = []
for episode in range(60):
    total = 0.0
    for t in range(10):
        state = rng.standard_normal(4).astype(np.float64)
        action = select_action(state)
        reward = 1.0 if action == int(state[0] > 0) else 0.0
        policy.rewards.append(reward)
        total += reward
    finish_episode()
    mean_rewards.append(total / 10)
early, late = np.mean(mean_rewards[:10]), np.mean(mean_rewards[-10:])
probs = torch.tensor([[0.2, 0.8]])
RESULT = {"losses": [1 - early, 1 - late],
          "values": {"entropy": Categorical(probs).entropy().item(), "log_prob": Categorical(probs).log_prob(torch.tensor([1])).item()}}
