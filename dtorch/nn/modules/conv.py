"""Convolutions: ``Conv1d/2d/3d`` and ``ConvTranspose1d/2d/3d``.

Weights have PyTorch's layouts (``(out, in/groups, *kernel)``; transposed: ``(in, out/groups, *kernel)``) and
initialisation (``kaiming_uniform_(a=sqrt(5))``, bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in))), so state_dicts
move between the two libraries. ``padding`` may be an int, a tuple, ``'valid'`` or ``'same'``; ``padding_mode``
other than ``'zeros'`` pads with ``F.pad`` first.
"""

import math

from dtorch import factories
from dtorch.nn import functional as F
from dtorch.nn import init
from dtorch.nn.modules.module import Module
from dtorch.nn.parameter import Parameter

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]


def _ntuple(value, n):
    if isinstance(value, (tuple, list)):
        return tuple(value)
    return (value,) * n


class _ConvNd(Module):
    _dims = 0

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, transposed,
                 output_padding, groups, bias, padding_mode, device=None, dtype=None):
        super().__init__()
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(
                    f"Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}"
                )
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(
                "padding_mode must be one of ['zeros', 'reflect', 'replicate', 'circular'], "
                f"but got padding_mode='{padding_mode}'"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.transposed = transposed
        self.output_padding = output_padding
        self.groups = groups
        self.padding_mode = padding_mode
        # F.pad wants (last dim left, last dim right, previous dim left, ...)
        if isinstance(padding, str):
            pads = [0, 0] * len(kernel_size)
            if padding == "same":
                for d, k, i in zip(dilation, kernel_size, range(len(kernel_size) - 1, -1, -1)):
                    total = d * (k - 1)
                    pads[2 * i] = total // 2
                    pads[2 * i + 1] = total - total // 2
            self._reversed_padding_repeated_twice = pads
        else:
            self._reversed_padding_repeated_twice = [p for p in reversed(padding) for _ in range(2)]
        if transposed:
            shape = (in_channels, out_channels // groups, *kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *kernel_size)
        self.weight = Parameter(factories.empty(shape, device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(factories.empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * len(self.kernel_size):
            text += f", padding={self.padding}"
        if self.dilation != (1,) * len(self.dilation):
            text += f", dilation={self.dilation}"
        if self.output_padding != (0,) * len(self.output_padding):
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text

    def __setstate__(self, state):
        super().__setstate__(state)
        if not hasattr(self, "padding_mode"):
            self.padding_mode = "zeros"


class _ConvForward(_ConvNd):
    _functional = None  # name of the F function

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        n = self._dims
        super().__init__(
            in_channels, out_channels, _ntuple(kernel_size, n), _ntuple(stride, n),
            padding if isinstance(padding, str) else _ntuple(padding, n), _ntuple(dilation, n), False,
            _ntuple(0, n), groups, bias, padding_mode, device=device, dtype=dtype,
        )

    def _conv_forward(self, input, weight, bias):
        conv = getattr(F, self._functional)
        if self.padding_mode != "zeros":
            padded = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv(padded, weight, bias, self.stride, _ntuple(0, self._dims), self.dilation, self.groups)
        return conv(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, input):
        return self._conv_forward(input, self.weight, self.bias)


class Conv1d(_ConvForward):
    """1-D convolution over ``(N, C_in, L)`` (or ``(C_in, L)``) input.

    >>> import dtorch
    >>> dtorch.nn.Conv1d(16, 33, 3, stride=2)(dtorch.randn(20, 16, 50)).shape
    dtorch.Size([20, 33, 24])
    """

    _dims = 1
    _functional = "conv1d"


class Conv2d(_ConvForward):
    """2-D convolution over ``(N, C_in, H, W)`` (or ``(C_in, H, W)``) input.

    >>> import dtorch
    >>> m = dtorch.nn.Conv2d(16, 33, (3, 5), stride=(2, 1), padding=(4, 2))
    >>> m
    Conv2d(16, 33, kernel_size=(3, 5), stride=(2, 1), padding=(4, 2))
    >>> m(dtorch.randn(2, 16, 10, 12)).shape
    dtorch.Size([2, 33, 8, 12])
    """

    _dims = 2
    _functional = "conv2d"


class Conv3d(_ConvForward):
    """3-D convolution over ``(N, C_in, D, H, W)`` (or ``(C_in, D, H, W)``) input.

    >>> import dtorch
    >>> m = dtorch.nn.Conv3d(4, 6, 3, padding=1)
    >>> m
    Conv3d(4, 6, kernel_size=(3, 3, 3), stride=(1, 1, 1), padding=(1, 1, 1))
    >>> m(dtorch.randn(2, 4, 3, 5, 5)).shape
    dtorch.Size([2, 6, 3, 5, 5])
    """

    _dims = 3
    _functional = "conv3d"


class _ConvTransposeNd(_ConvNd):
    _functional = None

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        n = self._dims
        super().__init__(
            in_channels, out_channels, _ntuple(kernel_size, n), _ntuple(stride, n), _ntuple(padding, n),
            _ntuple(dilation, n), True, _ntuple(output_padding, n), groups, bias, padding_mode,
            device=device, dtype=dtype,
        )

    def _output_padding(self, input, output_size):
        """The output padding that gives ``output_size`` (PyTorch's rule), or the configured one."""
        if output_size is None:
            return self.output_padding
        n = self._dims
        leading = 2 if input.dim() == n + 2 else 1
        output_size = list(output_size)
        if len(output_size) == leading + n:
            output_size = output_size[leading:]
        if len(output_size) != n:
            raise ValueError(
                f"ConvTranspose{n}D: for {input.dim()}D input, output_size must have {n} or {leading + n} "
                f"elements (got {len(output_size)})"
            )
        min_sizes, max_sizes = [], []
        for d in range(n):
            size = ((input.shape[d + leading] - 1) * self.stride[d] - 2 * self.padding[d]
                    + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            min_sizes.append(size)
            max_sizes.append(size + self.stride[d] - 1)
        for d in range(n):
            if not min_sizes[d] <= output_size[d] <= max_sizes[d]:
                raise ValueError(
                    f"requested an output size of {output_size}, but valid sizes range from {min_sizes} to "
                    f"{max_sizes} (for an input of {input.shape[leading:]})"
                )
        return tuple(output_size[d] - min_sizes[d] for d in range(n))

    def forward(self, input, output_size=None):
        output_padding = self._output_padding(input, output_size)
        conv = getattr(F, self._functional)
        return conv(input, self.weight, self.bias, self.stride, self.padding, output_padding, self.groups,
                    self.dilation)


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution (the gradient of ``Conv1d`` with respect to its input).

    >>> import dtorch
    >>> dtorch.nn.ConvTranspose1d(4, 2, 3, stride=2)(dtorch.randn(1, 4, 5)).shape
    dtorch.Size([1, 2, 11])
    """

    _dims = 1
    _functional = "conv_transpose1d"


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution (the gradient of ``Conv2d`` with respect to its input).

    >>> import dtorch
    >>> up = dtorch.nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1)
    >>> up(dtorch.randn(1, 16, 6, 6), output_size=[1, 8, 12, 12]).shape
    dtorch.Size([1, 8, 12, 12])
    """

    _dims = 2
    _functional = "conv_transpose2d"


class ConvTranspose3d(_ConvTransposeNd):
    """3-D transposed convolution (the gradient of ``Conv3d`` with respect to its input).

    >>> import dtorch
    >>> dtorch.nn.ConvTranspose3d(4, 2, 3, stride=2)(dtorch.randn(1, 4, 2, 3, 3)).shape
    dtorch.Size([1, 2, 5, 7, 7])
    """

    _dims = 3
    _functional = "conv_transpose3d"
