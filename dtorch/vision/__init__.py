"""``dtorch.vision``: the parts of torchvision that training scripts use, ``datasets`` and ``transforms``.

There is no PIL here: datasets hand out images as NumPy uint8 arrays in PIL's layout (HxW for grey, HxWxC for
colour), which ``transforms.ToTensor`` turns into CxHxW float Tensors in [0, 1], as torchvision does with PIL
images.

>>> from dtorch.vision import datasets, transforms
"""
from dtorch.vision import datasets, transforms

__all__ = ["datasets", "transforms"]
