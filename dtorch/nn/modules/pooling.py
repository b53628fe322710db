"""Pooling layers: ``MaxPool1d``, ``MaxPool2d``, ``AvgPool1d``, ``AvgPool2d``, ``AdaptiveAvgPool1d/2d``.
Arguments are kept as given (``MaxPool2d(2)`` prints ``kernel_size=2, stride=2``), like
PyTorch's."""

from dtorch.nn import functional as F
from dtorch.nn.modules.module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d"]


class _MaxPoolNd(Module):
    _functional = None

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input):
        return getattr(F, self._functional)(
            input, self.kernel_size, self.stride, self.padding, self.dilation, ceil_mode=self.ceil_mode,
            return_indices=self.return_indices,
        )

    def extra_repr(self):
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class MaxPool1d(_MaxPoolNd):
    """Max over sliding windows of ``(N, C, L)`` input; ``return_indices`` also returns the argmax positions.

    >>> import dtorch
    >>> dtorch.nn.MaxPool1d(3, stride=2)(dtorch.randn(20, 16, 50)).shape
    dtorch.Size([20, 16, 24])
    """

    _functional = "max_pool1d"


class MaxPool2d(_MaxPoolNd):
    """Max over sliding windows of ``(N, C, H, W)`` input.

    >>> import dtorch
    >>> dtorch.nn.MaxPool2d(2)
    MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    >>> dtorch.nn.MaxPool2d(2)(dtorch.randn(1, 3, 8, 8)).shape
    dtorch.Size([1, 3, 4, 4])
    """

    _functional = "max_pool2d"


class AvgPool1d(Module):
    """Mean over sliding windows of ``(N, C, L)`` input.

    >>> import dtorch
    >>> dtorch.nn.AvgPool1d(3, stride=2)(dtorch.ones(1, 2, 7)).tolist()[0][0]
    [1.0, 1.0, 1.0]
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__()
        self.kernel_size = (kernel_size,) if isinstance(kernel_size, int) else tuple(kernel_size)
        stride = stride if stride is not None else kernel_size
        self.stride = (stride,) if isinstance(stride, int) else tuple(stride)
        self.padding = (padding,) if isinstance(padding, int) else tuple(padding)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, input):
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(Module):
    """Mean over sliding windows of ``(N, C, H, W)`` input.

    >>> import dtorch
    >>> dtorch.nn.AvgPool2d(3, stride=2)(dtorch.randn(20, 16, 50, 32)).shape
    dtorch.Size([20, 16, 24, 15])
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input):
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _AdaptivePoolNd(Module):
    _functional = None

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        return getattr(F, self._functional)(input, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptivePoolNd):
    """Mean pooling of ``(N, C, L)`` input to a fixed output length.

    >>> import dtorch
    >>> dtorch.nn.AdaptiveAvgPool1d(5)(dtorch.randn(1, 64, 8)).shape
    dtorch.Size([1, 64, 5])
    """

    _functional = "adaptive_avg_pool1d"


class AdaptiveAvgPool2d(_AdaptivePoolNd):
    """Mean pooling of ``(N, C, H, W)`` input to a fixed output size (None keeps that extent).

    >>> import dtorch
    >>> dtorch.nn.AdaptiveAvgPool2d((5, 7))(dtorch.randn(1, 64, 8, 9)).shape
    dtorch.Size([1, 64, 5, 7])
    """

    _functional = "adaptive_avg_pool2d"
