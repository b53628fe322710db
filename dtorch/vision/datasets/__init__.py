"""Vision datasets: MNIST, FashionMNIST (IDX files), CIFAR10 (Python batches) and Digits (shipped with dtorch).

>>> from dtorch.vision.datasets import Digits
>>> len(Digits(train=True)), len(Digits(train=False))
(1437, 360)
"""
from dtorch.vision.datasets.cifar import CIFAR10
from dtorch.vision.datasets.digits import Digits
from dtorch.vision.datasets.mnist import MNIST, FashionMNIST, read_idx, write_idx
from dtorch.vision.datasets.vision import VisionDataset

__all__ = ["CIFAR10", "Digits", "FashionMNIST", "MNIST", "VisionDataset", "read_idx", "write_idx"]
