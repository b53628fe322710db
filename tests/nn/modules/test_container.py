"""Containers: a LeNet-style Sequential of convolution, normalisation, pooling and linear layers against PyTorch
with the same weights."""

from helpers import check_module


def _lenet(lib):
    return lib.Sequential(
        lib.Conv2d(1, 6, 5, padding=2), lib.BatchNorm2d(6), lib.ReLU(), lib.MaxPool2d(2),
        lib.Conv2d(6, 16, 5), lib.GroupNorm(4, 16), lib.Tanh(), lib.AvgPool2d(2),
        lib.Flatten(), lib.Linear(16 * 5 * 5, 120), lib.LayerNorm(120), lib.GELU(),
        lib.Linear(120, 84), lib.SiLU(), lib.Linear(84, 10), lib.LogSoftmax(dim=1),
    )


def test_composite_lenet_matches_torch():
    check_module(_lenet, inputs=[(4, 1, 28, 28)], atol=1e-4)
