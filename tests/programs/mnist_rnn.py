"""Follows pytorch/examples `mnist_rnn/main.py`: an LSTM reading image rows (batch_first=True), its last step
through BatchNorm1d and a Linear head with log_softmax, `input.reshape(-1, 28, 28)`, `output[:, -1, :]`,
Adadelta + StepLR, accuracy via `pred.eq(target.view_as(pred))`."""
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.rnn = nn.LSTM(input_size=14, hidden_size=32, batch_first=True)
        self.batchnorm = nn.BatchNorm1d(32)
        self.dropout1 = nn.Dropout2d(0.25)
        self.fc1 = nn.Linear(32, 10)

    def forward(self, input):
        input = input.reshape(-1, 14, 14)
        output, hidden = self.rnn(input)
        output = output[:, -1, :]
        output = self.batchnorm(output)
        output = self.fc1(output)
        return F.log_softmax(output, dim=1)


torch.manual_seed(0)
images = torch.rand(96, 1, 14, 14)
labels = (images[:, 0, :, :7].mean(dim=(1, 2)) > 0.5).long() * 3
model = Net()
optimizer = optim.Adadelta(model.parameters(), lr=1.0)
scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
losses = []
for epoch in range(4):
    model.train()
    for start in range(0, 96, 32):
        data, target = images[start:start + 32], labels[start:start + 32]
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()
    losses.append(loss.item())
    scheduler.step()
model.eval()
with torch.no_grad():
    output = model(images)
    pred = output.argmax(dim=1, keepdim=True)
    correct = pred.eq(labels.view_as(pred)).sum().item()
RESULT = {"losses": losses, "shapes": {"output": list(output.shape)}, "exact": {"lr": scheduler.get_last_lr()}}
