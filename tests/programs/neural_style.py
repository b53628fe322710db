"""Follows the PyTorch tutorial "Neural Transfer Using PyTorch": a `gram_matrix` (`input.view(a * b, c * d)`,
`torch.mm(features, features.t())`, `.div(a * b * c * d)`), ContentLoss/StyleLoss modules that store
`self.target = target.detach()` and compute `F.mse_loss` in forward, `model.requires_grad_(False)`,
`input_img.requires_grad_(True)`, LBFGS over `[input_img]` with a closure that clamps in place under
`torch.no_grad()`; a small random conv net stands in for VGG."""
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim


def gram_matrix(input):
    a, b, c, d = input.size()
    features = input.view(a * b, c * d)
    G = torch.mm(features, features.t())
    return G.div(a * b * c * d)


class ContentLoss(nn.Module):
    def __init__(self, target):
        super(ContentLoss, self).__init__()
        self.target = target.detach()

    def forward(self, input):
        self.loss = F.mse_loss(input, self.target)
        return input


class StyleLoss(nn.Module):
    def __init__(self, target_feature):
        super(StyleLoss, self).__init__()
        self.target = gram_matrix(target_feature).detach()

    def forward(self, input):
        self.loss = F.mse_loss(gram_matrix(input), self.target)
        return input


torch.manual_seed(0)
cnn = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
content_img, style_img = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
model = nn.Sequential()
content_losses, style_losses = [], []
for i, layer in enumerate(cnn.children()):
    name = f"conv_{i}" if isinstance(layer, nn.Conv2d) else f"relu_{i}"
    model.add_module(name, nn.ReLU(inplace=False) if isinstance(layer, nn.ReLU) else layer)
    if isinstance(layer, nn.Conv2d):
        target = model(content_img).detach()
        content_loss = ContentLoss(target)
        model.add_module(f"content_loss_{i}", content_loss)
        content_losses.append(content_loss)
        style_loss = StyleLoss(model(style_img).detach())
        model.add_module(f"style_loss_{i}", style_loss)
        style_losses.append(style_loss)
model.eval()
model.requires_grad_(False)
input_img = content_img.clone()
input_img.requires_grad_(True)
optimizer = optim.LBFGS([input_img], lr=0.2)
history = []
for step in range(4):
    def closure():
        with torch.no_grad():
            input_img.clamp_(0, 1)
        optimizer.zero_grad()
        model(input_img)
        style_score = sum(sl.loss for sl in style_losses) * 1e2
        content_score = sum(cl.loss for cl in content_losses)
        loss = style_score + content_score
        loss.backward()
        return style_score + content_score
    history.append(optimizer.step(closure).item())
with torch.no_grad():
    input_img.clamp_(0, 1)
fixed = torch.arange(24.0).view(1, 2, 3, 4)
RESULT = {"losses": history, "values": {"gram": gram_matrix(fixed).tolist()},
          "exact": {"names": [n for n, _ in model.named_children()]}}
