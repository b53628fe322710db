"""Follows pytorch/examples `dcgan/main.py`: `import torch.nn.parallel`, a generator of ConvTranspose2d +
BatchNorm2d + ReLU/Tanh and a discriminator of Conv2d + LeakyReLU + Sigmoid, `weights_init` through
`m.weight.data.normal_(0.0, 0.02)` and `m.bias.data.fill_(0)`, BCELoss with real/fake labels filled in place,
Adam with betas=(0.5, 0.999), and the generator trained on `output = netD(fake)` after `fake.detach()` for D."""
import torch
import torch.nn as nn
import torch.nn.parallel  # noqa: F401 -- the example imports it
import torch.optim as optim
import torch.utils.data

nz, ngf, ndf, nc = 8, 8, 8, 1


def weights_init(m):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        m.weight.data.normal_(0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        m.weight.data.normal_(1.0, 0.02)
        m.bias.data.fill_(0)


class Generator(nn.Module):
    def __init__(self):
        super(Generator, self).__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 2, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, input):
        return self.main(input)


class Discriminator(nn.Module):
    def __init__(self):
        super(Discriminator, self).__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, 1, 4, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, input):
        return self.main(input).view(-1, 1).squeeze(1)


torch.manual_seed(0)
real_images = torch.tanh(torch.randn(64, nc, 16, 16))
dataloader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(real_images), batch_size=16, shuffle=True)
netG, netD = Generator(), Discriminator()
netG.apply(weights_init)
netD.apply(weights_init)
criterion = nn.BCELoss()
fixed_noise = torch.randn(4, nz, 1, 1)
real_label, fake_label = 1.0, 0.0
optimizerD = optim.Adam(netD.parameters(), lr=0.0002, betas=(0.5, 0.999))
optimizerG = optim.Adam(netG.parameters(), lr=0.0002, betas=(0.5, 0.999))
errors = []
for epoch in range(2):
    for i, (real_cpu,) in enumerate(dataloader):
        netD.zero_grad()
        batch_size = real_cpu.size(0)
        label = torch.full((batch_size,), real_label, dtype=real_cpu.dtype)
        errD_real = criterion(netD(real_cpu), label)
        errD_real.backward()
        noise = torch.randn(batch_size, nz, 1, 1)
        fake = netG(noise)
        label.fill_(fake_label)
        errD_fake = criterion(netD(fake.detach()), label)
        errD_fake.backward()
        optimizerD.step()
        netG.zero_grad()
        label.fill_(real_label)
        errG = criterion(netD(fake), label)
        errG.backward()
        optimizerG.step()
        errors.append((errD_real + errD_fake).item() + errG.item())
fake = netG(fixed_noise).detach()
RESULT = {"shapes": {"fake": list(fake.shape)}, "exact": {"finite": all(e == e for e in errors),
                                                          "in_range": bool(fake.abs().max() <= 1)}}
