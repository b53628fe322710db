"""Follows the pre-0.4 PyTorch tutorials and forum answers that still circulate: `from torch.autograd import
Variable`, `Variable(x, requires_grad=True)`, `loss.data`, `w.grad.data.zero_()`, `w.data -= lr * w.grad.data`,
`torch.max(outputs.data, 1)`, `optimizer.zero_grad()` with `nn.CrossEntropyLoss`, and `.data.numpy()`."""
import torch
import torch.nn as nn
from torch.autograd import Variable

torch.manual_seed(0)
x = Variable(torch.linspace(-1, 1, 50).unsqueeze(1))
y = Variable(3 * x.data + 0.5)
w = Variable(torch.zeros(1, 1), requires_grad=True)
b = Variable(torch.zeros(1), requires_grad=True)
losses = []
for epoch in range(100):
    y_pred = x.mm(w) + b
    loss = (y_pred - y).pow(2).mean()
    loss.backward()
    w.data -= 0.1 * w.grad.data
    b.data -= 0.1 * b.grad.data
    w.grad.data.zero_()
    b.grad.data.zero_()
    losses.append(loss.data.item())


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.fc = nn.Linear(2, 3)

    def forward(self, x):
        return self.fc(x)


net = Net()
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
inputs = Variable(torch.randn(60, 2))
labels = Variable((inputs.data[:, 0] > 0).long() + (inputs.data[:, 1] > 0.5).long())
for epoch in range(50):
    optimizer.zero_grad()
    outputs = net(inputs)
    loss = criterion(outputs, labels)
    loss.backward()
    optimizer.step()
_, predicted = torch.max(outputs.data, 1)
accuracy = (predicted == labels).sum().item() / labels.size(0)
RESULT = {"losses": losses, "values": {"w": w.data.numpy().tolist(), "b": b.data.numpy().tolist()},
          "exact": {"is_tensor": isinstance(x, torch.Tensor), "pred_dtype": str(predicted.dtype).split(".")[-1]}}
