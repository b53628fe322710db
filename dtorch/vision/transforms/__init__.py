"""torchvision-style transforms on NumPy images (HxW / HxWxC) and Tensors (``[..., H, W]``).

>>> from dtorch.vision import transforms
>>> t = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
"""
from dtorch.vision.transforms import functional
from dtorch.vision.transforms.transforms import (CenterCrop, Compose, Lambda, Normalize, RandomCrop,
                                                 RandomHorizontalFlip, Resize, ToTensor)

__all__ = ["CenterCrop", "Compose", "Lambda", "Normalize", "RandomCrop", "RandomHorizontalFlip", "Resize",
           "ToTensor", "functional"]
