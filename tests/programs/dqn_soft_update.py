"""Follows the PyTorch "Reinforcement Learning (DQN)" tutorial's training step and the common DDPG/DQN soft target
update idiom: a policy and a target net (`target_net.load_state_dict(policy_net.state_dict())`), Q-values
through `policy_net(state_batch).gather(1, action_batch)`, `target_net(next_states).max(1)[0]` (also `.values`)
under `torch.no_grad()`, a non-final mask built with `torch.tensor(tuple(map(...)), dtype=torch.bool)`,
SmoothL1Loss, `torch.nn.utils.clip_grad_value_`, AdamW(amsgrad=True), and the soft update written with `.data`:
`target_param.data.copy_(tau * param.data + (1.0 - tau) * target_param.data)`."""
import random

import torch
import torch.nn as nn
import torch.optim as optim


class DQN(nn.Module):
    def __init__(self, n_observations, n_actions):
        super(DQN, self).__init__()
        self.layer1 = nn.Linear(n_observations, 32)
        self.layer2 = nn.Linear(32, 32)
        self.layer3 = nn.Linear(32, n_actions)

    def forward(self, x):
        x = torch.relu(self.layer1(x))
        x = torch.relu(self.layer2(x))
        return self.layer3(x)


random.seed(0)
torch.manual_seed(0)
policy_net, target_net = DQN(4, 2), DQN(4, 2)
target_net.load_state_dict(policy_net.state_dict())
optimizer = optim.AdamW(policy_net.parameters(), lr=1e-3, amsgrad=True)
GAMMA, TAU = 0.9, 0.05
states = torch.randn(64, 4)
actions = torch.randint(0, 2, (64, 1))
rewards = states[:, 0] * (actions[:, 0] * 2 - 1).float()  # reward: act in the direction of the first feature
next_states = [None if i % 8 == 7 else states[(i + 1) % 64] for i in range(64)]
losses = []
for step in range(150):
    non_final_mask = torch.tensor(tuple(map(lambda s: s is not None, next_states)), dtype=torch.bool)
    non_final_next_states = torch.cat([s.unsqueeze(0) for s in next_states if s is not None])
    state_action_values = policy_net(states).gather(1, actions)
    next_state_values = torch.zeros(64)
    with torch.no_grad():
        next_state_values[non_final_mask] = target_net(non_final_next_states).max(1)[0]
        assert torch.equal(target_net(non_final_next_states).max(1).values, next_state_values[non_final_mask])
    expected = (next_state_values * GAMMA) + rewards
    loss = nn.SmoothL1Loss()(state_action_values, expected.unsqueeze(1))
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_value_(policy_net.parameters(), 100)
    optimizer.step()
    for target_param, param in zip(target_net.parameters(), policy_net.parameters()):
        target_param.data.copy_(TAU * param.data + (1.0 - TAU) * target_param.data)
    losses.append(loss.item())
state_dict = target_net.state_dict()
RESULT = {"losses": [sum(losses[:10]) / 10, sum(losses[-10:]) / 10],
          "exact": {"keys": list(state_dict), "requires_grad": [p.requires_grad for p in target_net.parameters()]},
          "shapes": {"q": list(state_action_values.shape), "mask": list(non_final_mask.shape)}}
