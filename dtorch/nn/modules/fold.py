"""``Unfold`` (im2col) and ``Fold`` (col2im, summing overlaps) over ``F.unfold``/``F.fold``."""

from dtorch.nn import functional as F
from dtorch.nn.modules.module import Module

__all__ = ["Fold", "Unfold"]


class Fold(Module):
    """Sum sliding local blocks ``(N, C * prod(kernel_size), L)`` back into ``(N, C, *output_size)``.

    >>> import dtorch
    >>> dtorch.nn.Fold((4, 5), 2)(dtorch.ones(1, 12, 12)).shape
    dtorch.Size([1, 3, 4, 5])
    """

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.output_size = output_size
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def forward(self, input):
        return F.fold(input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self):
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")


class Unfold(Module):
    """Extract sliding local blocks of ``(N, C, H, W)`` input as columns ``(N, C * prod(kernel_size), L)``.

    >>> import dtorch
    >>> dtorch.nn.Unfold(2)(dtorch.ones(1, 3, 4, 5)).shape
    dtorch.Size([1, 12, 12])
    """

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def forward(self, input):
        return F.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, padding={self.padding}, "
                f"stride={self.stride}")
