"""Transform classes with torchvision's names and arguments. Random ones draw from dtorch's default generator
(``dtorch.random.numpy_generator()``), so ``dtorch.manual_seed`` reproduces them, and inside DataLoader workers,
which seed that generator per worker, every worker draws its own stream.
"""
import numbers

from dtorch.utils.data import _rng
from dtorch.vision.transforms import functional as F
from dtorch._warnings import warn as _warn


class Compose:
    """Applies ``transforms`` in order.

    Example:
        >>> import numpy as np
        >>> t = Compose([ToTensor(), Normalize((0.5,), (0.5,))])
        >>> t(np.zeros((2, 2), np.uint8)).tolist()
        [[[-1.0, -1.0], [-1.0, -1.0]]]
    """

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self):
        body = "".join(f"\n    {t}" for t in self.transforms)
        return f"{type(self).__name__}({body}\n)"


class ToTensor:
    """HxW or HxWxC NumPy image (uint8 in [0, 255]) to a CxHxW float32 Tensor in [0, 1]."""

    def __call__(self, pic):
        return F.to_tensor(pic)

    def __repr__(self):
        return "ToTensor()"


class Normalize:
    """Per-channel ``(x - mean) / std`` of a ``[..., C, H, W]`` float Tensor.

    Example:
        >>> Normalize(mean=(0.1307,), std=(0.3081,))
        Normalize(mean=(0.1307,), std=(0.3081,))
    """

    def __init__(self, mean, std, inplace=False):
        self.mean = mean
        self.std = std
        self.inplace = inplace

    def __call__(self, tensor):
        return F.normalize(tensor, self.mean, self.std, self.inplace)

    def __repr__(self):
        return f"{type(self).__name__}(mean={self.mean}, std={self.std})"


def _check_size(size):
    if isinstance(size, numbers.Integral):
        if size <= 0:
            raise ValueError(f"size should be positive, got {size}")
        return (int(size), int(size))
    size = tuple(size)
    if len(size) == 1:
        size = (size[0], size[0])
    if len(size) != 2 or any(not isinstance(s, numbers.Integral) or s <= 0 for s in size):
        raise ValueError(f"Please provide only two dimensions (h, w) for size, got {size}")
    return size


class CenterCrop:
    """Crops the centre to ``size`` (an int for a square, or ``(h, w)``)."""

    def __init__(self, size):
        self.size = _check_size(size)

    def __call__(self, img):
        return F.center_crop(img, self.size)

    def __repr__(self):
        return f"{type(self).__name__}(size={self.size})"


class RandomCrop:
    """Crops a random ``size`` window, after optional padding.

    Args:
        size: an int for a square, or ``(h, w)``.
        padding: border added first (int, 2 or 4 ints), e.g. 4 for CIFAR's usual 32 -> 40 -> 32.
        pad_if_needed: pad an image smaller than ``size`` instead of failing.
        fill: the constant for ``padding_mode="constant"``.
        padding_mode: ``"constant"``, ``"edge"``, ``"reflect"`` or ``"symmetric"``.

    Example:
        >>> import numpy as np
        >>> RandomCrop(28, padding=2)(np.zeros((28, 28), np.uint8)).shape
        (28, 28)
    """

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant"):
        if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
            raise ValueError(f"padding_mode should be constant, edge, reflect or symmetric, got {padding_mode!r}")
        self.size = _check_size(size)
        self.padding = padding
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = padding_mode

    @staticmethod
    def get_params(img, output_size):
        """``(top, left, h, w)`` of a uniformly random window of ``output_size``, drawn from dtorch's RNG."""
        w, h = F.get_image_size(img)
        th, tw = output_size
        if h < th or w < tw:
            raise ValueError(f"Required crop size {(th, tw)} is larger than input image size {(h, w)}")
        if (h, w) == (th, tw):
            return 0, 0, h, w
        rng = _rng.numpy_generator()
        return int(rng.integers(0, h - th + 1)), int(rng.integers(0, w - tw + 1)), th, tw

    def __call__(self, img):
        if self.padding is not None:
            img = F.pad(img, self.padding, self.fill, self.padding_mode)
        w, h = F.get_image_size(img)
        th, tw = self.size
        if self.pad_if_needed and w < tw:
            img = F.pad(img, [tw - w, 0], self.fill, self.padding_mode)
        if self.pad_if_needed and h < th:
            img = F.pad(img, [0, th - h], self.fill, self.padding_mode)
        top, left, height, width = self.get_params(img, self.size)
        return F.crop(img, top, left, height, width)

    def __repr__(self):
        return f"{type(self).__name__}(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirrors the image left to right with probability ``p`` (one draw from dtorch's RNG per call)."""

    def __init__(self, p=0.5):
        if not 0 <= p <= 1:
            raise ValueError(f"p should be a probability in [0, 1], got {p}")
        self.p = p

    def __call__(self, img):
        if _rng.numpy_generator().random() < self.p:
            return F.hflip(img)
        return img

    def __repr__(self):
        return f"{type(self).__name__}(p={self.p})"


class Resize:
    """Bilinear resize to ``size``: an int matches the shorter edge, ``(h, w)`` is exact (see ``F.resize``).

    No antialiasing filter runs (``interpolate(mode="bilinear", align_corners=False, antialias=False)``);
    ``antialias=True`` is accepted with a warning, since torchvision's antialiased shrinking gives other values.
    """

    def __init__(self, size, interpolation="bilinear", max_size=None, antialias=None):
        if isinstance(size, numbers.Integral):
            if size <= 0:
                raise ValueError(f"size should be positive, got {size}")
        elif len(size) not in (1, 2):
            raise ValueError(f"size should be an int or a sequence of 1 or 2 ints, got {size}")
        if max_size is not None:
            raise NotImplementedError("Resize(max_size=...) is not implemented in dtorch")
        if antialias:
            _warn("dtorch's Resize does not antialias: antialias=True is ignored, so shrinking differs from "
                  "torchvision's antialiased result (enlarging is the same)", UserWarning)
        self.size = size
        self.interpolation = interpolation
        self.antialias = antialias

    def __call__(self, img):
        return F.resize(img, self.size, self.interpolation)

    def __repr__(self):
        return f"{type(self).__name__}(size={self.size}, interpolation={self.interpolation})"


class Lambda:
    """Wraps a function as a transform.

    Example:
        >>> Lambda(lambda x: x + 1)(1)
        2
    """

    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"Argument lambd should be callable, got {type(lambd).__name__!r}")
        self.lambd = lambd

    def __call__(self, img):
        return self.lambd(img)

    def __repr__(self):
        return f"{type(self).__name__}()"
