"""Follows the original WGAN code (martinarjovsky/WassersteinGAN `main.py`): `for p in netD.parameters():
p.data.clamp_(clamp_lower, clamp_upper)`, `one = torch.FloatTensor([1])`, `mone = one * -1`,
`errD_real.backward(one)` / `errD_fake.backward(mone)`, `requires_grad = False` toggled on the critic while the
generator trains, `.mean(0).view(1)`, and RMSprop; an MLP generator/critic on 2-D points."""
import torch
import torch.nn as nn
import torch.optim as optim


class MLP_D(nn.Module):
    def __init__(self):
        super(MLP_D, self).__init__()
        self.main = nn.Sequential(nn.Linear(2, 32), nn.ReLU(True), nn.Linear(32, 32), nn.ReLU(True), nn.Linear(32, 1))

    def forward(self, input):
        return self.main(input).mean(0).view(1)


torch.manual_seed(0)
netG = nn.Sequential(nn.Linear(4, 32), nn.ReLU(True), nn.Linear(32, 2))
netD = MLP_D()
optimizerD = optim.RMSprop(netD.parameters(), lr=5e-4)
optimizerG = optim.RMSprop(netG.parameters(), lr=5e-4)
one = torch.FloatTensor([1])
mone = one * -1
real = torch.randn(256, 2) * 0.2 + torch.tensor([2.0, -1.0])
distances = []
for gen_iteration in range(60):
    for p in netD.parameters():
        p.requires_grad = True
    for _ in range(3):
        for p in netD.parameters():
            p.data.clamp_(-0.05, 0.05)
        netD.zero_grad()
        errD_real = netD(real[torch.randint(0, 256, (64,))])
        errD_real.backward(one)
        fake = netG(torch.randn(64, 4)).detach()
        errD_fake = netD(fake)
        errD_fake.backward(mone)
        optimizerD.step()
    for p in netD.parameters():
        p.requires_grad = False
    netG.zero_grad()
    errG = netD(netG(torch.randn(64, 4)))
    errG.backward(one)
    optimizerG.step()
    with torch.no_grad():
        distances.append((netG(torch.randn(256, 4)).mean(0) - real.mean(0)).norm().item())
clamped = max(p.abs().max().item() for p in netD.parameters())
RESULT = {"losses": [sum(distances[:5]) / 5, sum(distances[-5:]) / 5],
          "exact": {"clamped": clamped <= 0.06, "grad_flags": [p.requires_grad for p in netD.parameters()]},
          "shapes": {"errD": list(errD_real.shape)}}
