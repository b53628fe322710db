"""Follows the PyTorch tutorial "Transfer Learning for Computer Vision": a pretrained backbone frozen with
`param.requires_grad = False`, its head replaced (`model.fc = nn.Linear(num_ftrs, 2)`), an optimizer over
`model.fc.parameters()` only, `lr_scheduler.StepLR(step_size=7, gamma=0.1)`, phases `train`/`val` with
`torch.set_grad_enabled(phase == 'train')`, `running_corrects += torch.sum(preds == labels.data)`, `.double()`
accuracy, and the best weights kept with `copy.deepcopy(model.state_dict())` then reloaded."""
import copy

import torch
import torch.nn as nn
import torch.optim as optim
from torch.optim import lr_scheduler


class Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(self.features(x))


torch.manual_seed(0)
model = Backbone()
frozen_before = {k: v.clone() for k, v in model.features.state_dict().items()}
for param in model.parameters():
    param.requires_grad = False
num_ftrs = model.fc.in_features
model.fc = nn.Linear(num_ftrs, 2)
criterion = nn.CrossEntropyLoss()
optimizer_conv = optim.SGD(model.fc.parameters(), lr=0.1, momentum=0.9)
exp_lr_scheduler = lr_scheduler.StepLR(optimizer_conv, step_size=7, gamma=0.1)
images = torch.randn(48, 3, 8, 8)
labels = (images[:, 0].mean(dim=(1, 2)) > images[:, 1].mean(dim=(1, 2))).long()
dataloaders = {"train": [(images[i:i + 16], labels[i:i + 16]) for i in range(0, 32, 16)],
               "val": [(images[32:], labels[32:])]}
best_model_wts, best_acc, history = copy.deepcopy(model.state_dict()), 0.0, []
for epoch in range(10):
    for phase in ["train", "val"]:
        model.train() if phase == "train" else model.eval()
        running_loss, running_corrects, count = 0.0, 0, 0
        for inputs, labels_batch in dataloaders[phase]:
            optimizer_conv.zero_grad()
            with torch.set_grad_enabled(phase == "train"):
                outputs = model(inputs)
                _, preds = torch.max(outputs, 1)
                loss = criterion(outputs, labels_batch)
                if phase == "train":
                    loss.backward()
                    optimizer_conv.step()
            running_loss += loss.item() * inputs.size(0)
            running_corrects += torch.sum(preds == labels_batch.data)
            count += inputs.size(0)
        if phase == "train":
            exp_lr_scheduler.step()
            history.append(running_loss / count)
        epoch_acc = running_corrects.double() / count
        if phase == "val" and epoch_acc > best_acc:
            best_acc, best_model_wts = epoch_acc, copy.deepcopy(model.state_dict())
model.load_state_dict(best_model_wts)
unchanged = all(torch.equal(v, model.features.state_dict()[k]) for k, v in frozen_before.items()
                if not k.endswith("running_mean") and not k.endswith("running_var") and "num_batches" not in k)
RESULT = {"losses": history, "exact": {"frozen": unchanged, "acc_dtype": str(epoch_acc.dtype).split(".")[-1],
                                       "trainable": [n for n, p in model.named_parameters() if p.requires_grad],
                                       "lr": exp_lr_scheduler.get_last_lr()}}
