"""Follows the PyTorch tutorial "NLP From Scratch: Classifying Names with a Character-Level RNN": names turned
into one-hot `lineToTensor` tensors of shape (len, 1, n_letters) with `tensor[li][0][letterToIndex(letter)] = 1`,
an RNN module written by hand (`self.i2h = nn.Linear(input_size + hidden_size, hidden_size)`, `torch.cat((input,
hidden), 1)`, `nn.LogSoftmax(dim=1)`), `initHidden` with `torch.zeros(1, hidden_size)`, NLLLoss, and the manual
update `p.data.add_(p.grad.data, alpha=-learning_rate)`; `categoryFromOutput` with `output.topk(1)`."""
import random
import string

import torch
import torch.nn as nn

all_letters = string.ascii_letters + " .,;'"
n_letters = len(all_letters)
categories = {"short": ["ab", "cd", "ef", "gh"], "long": ["abcdefg", "hijklmn", "opqrstu", "vwxyzab"]}
all_categories = list(categories)


def letterToIndex(letter):
    return all_letters.find(letter)


def lineToTensor(line):
    tensor = torch.zeros(len(line), 1, n_letters)
    for li, letter in enumerate(line):
        tensor[li][0][letterToIndex(letter)] = 1
    return tensor


class RNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super(RNN, self).__init__()
        self.hidden_size = hidden_size
        self.i2h = nn.Linear(input_size + hidden_size, hidden_size)
        self.i2o = nn.Linear(input_size + hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, input, hidden):
        combined = torch.cat((input, hidden), 1)
        hidden = torch.tanh(self.i2h(combined))
        output = self.softmax(self.i2o(combined))
        return output, hidden

    def initHidden(self):
        return torch.zeros(1, self.hidden_size)


def categoryFromOutput(output):
    top_n, top_i = output.topk(1)
    category_i = top_i[0].item()
    return all_categories[category_i], category_i


random.seed(0)
torch.manual_seed(0)
rnn = RNN(n_letters, 32, len(all_categories))
criterion = nn.NLLLoss()
learning_rate = 0.01
losses = []
for iteration in range(300):
    category = random.choice(all_categories)
    line = random.choice(categories[category])
    category_tensor = torch.tensor([all_categories.index(category)], dtype=torch.long)
    line_tensor = lineToTensor(line)
    hidden = rnn.initHidden()
    rnn.zero_grad()
    for i in range(line_tensor.size()[0]):
        output, hidden = rnn(line_tensor[i], hidden)
    loss = criterion(output, category_tensor)
    loss.backward()
    for p in rnn.parameters():
        p.data.add_(p.grad.data, alpha=-learning_rate)
    losses.append(loss.item())
guess, guess_i = categoryFromOutput(output)
RESULT = {"losses": [sum(losses[:50]) / 50, sum(losses[-50:]) / 50], "shapes": {"line": list(lineToTensor("abc").shape)},
          "exact": {"guess_type": type(guess_i).__name__, "one_hot_sum": lineToTensor("Jones").sum().item()}}
