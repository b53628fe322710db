"""Pooling layers: ``MaxPool1d/2d``, ``AvgPool1d/2d``, ``AdaptiveAvgPool1d/2d``, ``AdaptiveMaxPool1d/2d``,
``LPPool1d/2d`` and ``MaxUnpool1d/2d``, and the 3-D pools (composed from 1-D ones along each axis).
Arguments are kept as given (``MaxPool2d(2)`` prints ``kernel_size=2, stride=2``), like
PyTorch's."""

from dtorch.nn import functional as F
from dtorch.nn.modules.module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
           "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "LPPool1d", "LPPool2d", "MaxUnpool1d", "MaxUnpool2d",
           "MaxPool3d", "AvgPool3d", "AdaptiveAvgPool3d", "AdaptiveMaxPool3d", "LPPool3d", "MaxUnpool3d"]


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


class _AdaptiveMaxPoolNd(_AdaptivePoolNd):
    def __init__(self, output_size, return_indices=False):
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, input):
        return getattr(F, self._functional)(input, self.output_size, self.return_indices)


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """Max pooling of ``(N, C, L)`` input to a fixed output length; ``return_indices`` also gives the argmax.

    >>> import dtorch
    >>> dtorch.nn.AdaptiveMaxPool1d(3)(dtorch.randn(1, 4, 8)).shape
    dtorch.Size([1, 4, 3])
    """

    _functional = "adaptive_max_pool1d"


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """Max pooling of ``(N, C, H, W)`` input to a fixed output size (None keeps that extent).

    >>> import dtorch
    >>> dtorch.nn.AdaptiveMaxPool2d((2, None))(dtorch.randn(1, 4, 8, 5)).shape
    dtorch.Size([1, 4, 2, 5])
    """

    _functional = "adaptive_max_pool2d"


class _LPPoolNd(Module):
    _functional = None

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        super().__init__()
        self.norm_type = norm_type
        self.kernel_size = kernel_size
        self.stride = stride
        self.ceil_mode = ceil_mode

    def forward(self, input):
        return getattr(F, self._functional)(input, float(self.norm_type), self.kernel_size, self.stride,
                                            self.ceil_mode)

    def extra_repr(self):
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"ceil_mode={self.ceil_mode}")


class LPPool1d(_LPPoolNd):
    """Power-average pooling ``(sum of x**p over the window) ** (1 / p)`` of ``(N, C, L)`` input.

    >>> import dtorch
    >>> dtorch.nn.LPPool1d(2, 3, stride=2)(dtorch.randn(2, 4, 9)).shape
    dtorch.Size([2, 4, 4])
    """

    _functional = "lp_pool1d"


class LPPool2d(_LPPoolNd):
    """Power-average pooling of ``(N, C, H, W)`` input.

    >>> import dtorch
    >>> dtorch.nn.LPPool2d(2, 2)(dtorch.randn(1, 3, 4, 4)).shape
    dtorch.Size([1, 3, 2, 2])
    """

    _functional = "lp_pool2d"


class _MaxUnpoolNd(Module):
    _functional = None
    _n = 1

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        n = self._n
        self.kernel_size = F._tuple(kernel_size, n, "kernel_size")
        self.stride = F._tuple(stride if stride is not None else kernel_size, n, "stride")
        self.padding = F._tuple(padding, n, "padding")

    def forward(self, input, indices, output_size=None):
        return getattr(F, self._functional)(input, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """The partial inverse of ``MaxPool1d``: each value goes back to its argmax position, zeros elsewhere.

    >>> import dtorch
    >>> pool, unpool = dtorch.nn.MaxPool1d(2, return_indices=True), dtorch.nn.MaxUnpool1d(2)
    >>> unpool(*pool(dtorch.tensor([[[1., 3., 2., 0.]]])))
    tensor([[[0., 3., 2., 0.]]])
    """

    _functional = "max_unpool1d"


class MaxUnpool2d(_MaxUnpoolNd):
    """The partial inverse of ``MaxPool2d``.

    >>> import dtorch
    >>> dtorch.nn.MaxUnpool2d(2)
    MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))
    """

    _functional = "max_unpool2d"
    _n = 2


class MaxPool3d(_MaxPoolNd):
    """Max over sliding windows of ``(N, C, D, H, W)`` input; ``return_indices`` for ``MaxUnpool3d``.

    >>> import dtorch
    >>> dtorch.nn.MaxPool3d(2)(dtorch.randn(1, 2, 4, 4, 4)).shape
    dtorch.Size([1, 2, 2, 2, 2])
    """

    _functional = "max_pool3d"


class AvgPool3d(AvgPool2d):
    """Mean over sliding windows of ``(N, C, D, H, W)`` input.

    >>> import dtorch
    >>> dtorch.nn.AvgPool3d(3, stride=2, padding=1)(dtorch.randn(1, 2, 5, 5, 5)).shape
    dtorch.Size([1, 2, 3, 3, 3])
    """

    def forward(self, input):
        return F.avg_pool3d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class AdaptiveAvgPool3d(_AdaptivePoolNd):
    """Mean pooling of ``(N, C, D, H, W)`` input to a fixed output size (None keeps that extent).

    >>> import dtorch
    >>> dtorch.nn.AdaptiveAvgPool3d((2, None, 3))(dtorch.randn(1, 2, 5, 6, 7)).shape
    dtorch.Size([1, 2, 2, 6, 3])
    """

    _functional = "adaptive_avg_pool3d"


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """Max pooling of ``(N, C, D, H, W)`` input to a fixed output size (dtorch: no ``return_indices``).

    >>> import dtorch
    >>> dtorch.nn.AdaptiveMaxPool3d(2)(dtorch.randn(1, 2, 5, 6, 7)).shape
    dtorch.Size([1, 2, 2, 2, 2])
    """

    _functional = "adaptive_max_pool3d"


class LPPool3d(_LPPoolNd):
    """Power-average pooling of ``(N, C, D, H, W)`` input.

    >>> import dtorch
    >>> dtorch.nn.LPPool3d(2, 2)(dtorch.randn(1, 2, 4, 4, 4)).shape
    dtorch.Size([1, 2, 2, 2, 2])
    """

    _functional = "lp_pool3d"


class MaxUnpool3d(_MaxUnpoolNd):
    """The partial inverse of ``MaxPool3d``.

    >>> import dtorch
    >>> dtorch.nn.MaxUnpool3d(2)
    MaxUnpool3d(kernel_size=(2, 2, 2), stride=(2, 2, 2), padding=(0, 0, 0))
    """

    _functional = "max_unpool3d"
    _n = 3
