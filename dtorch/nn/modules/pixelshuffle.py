"""``PixelShuffle``, ``PixelUnshuffle`` and ``ChannelShuffle``: rearrangements of channels (no parameters)."""

from dtorch.nn import functional as F
from dtorch.nn.modules.module import Module

__all__ = ["PixelShuffle", "PixelUnshuffle", "ChannelShuffle"]


class PixelShuffle(Module):
    """``(*, C * r**2, H, W)`` to ``(*, C, H * r, W * r)`` (sub-pixel convolution upsampling).

    >>> import dtorch
    >>> dtorch.nn.PixelShuffle(3)(dtorch.randn(1, 9, 4, 4)).shape
    dtorch.Size([1, 1, 12, 12])
    """

    def __init__(self, upscale_factor):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input):
        return F.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """``(*, C, H * r, W * r)`` to ``(*, C * r**2, H, W)``: the inverse of ``PixelShuffle``.

    >>> import dtorch
    >>> dtorch.nn.PixelUnshuffle(3)(dtorch.randn(1, 1, 12, 12)).shape
    dtorch.Size([1, 9, 4, 4])
    """

    def __init__(self, downscale_factor):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input):
        return F.pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"


class ChannelShuffle(Module):
    """Interleave the channels of ``groups`` groups (ShuffleNet).

    >>> import dtorch
    >>> dtorch.nn.ChannelShuffle(2)(dtorch.arange(4.).reshape(1, 4, 1, 1)).flatten().tolist()
    [0.0, 2.0, 1.0, 3.0]
    """

    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, input):
        return F.channel_shuffle(input, self.groups)

    def extra_repr(self):
        return f"groups={self.groups}"
