"""Padding layers: constant, zero, reflection, replication and circular padding of 1, 2 or 3 trailing dimensions.

Each stores ``padding`` as a tuple ``(left_last, right_last, left_2nd_last, ...)`` (an int pads every side) and calls
``F.pad`` with its mode; reprs are PyTorch's.
"""

from dtorch.nn import functional as F
from dtorch.nn.modules.module import Module

__all__ = [
    "ConstantPad1d", "ConstantPad2d", "ConstantPad3d", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ReflectionPad1d",
    "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d",
    "CircularPad1d", "CircularPad2d", "CircularPad3d",
]


def _padding(padding, n):
    """``padding`` as ``2 * n`` ints: an int pads every side, a tuple must have ``2 * n`` entries."""
    if isinstance(padding, int):
        return (padding,) * (2 * n)
    padding = tuple(padding)
    if len(padding) != 2 * n:
        raise ValueError(f"padding must be an int or a tuple of {2 * n} ints, got {padding}")
    return padding


class _PadNd(Module):
    _mode = None
    _n = 1

    def __init__(self, padding):
        super().__init__()
        self.padding = _padding(padding, self._n)

    def forward(self, input):
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self):
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    _mode = "constant"

    def __init__(self, padding, value):
        super().__init__(padding)
        self.value = value

    def forward(self, input):
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pad the last dimension with ``value``.

    >>> import dtorch
    >>> dtorch.nn.ConstantPad1d((1, 2), 3.5)(dtorch.zeros(1, 2)).tolist()
    [[3.5, 0.0, 0.0, 3.5, 3.5]]
    """

    _n = 1


class ConstantPad2d(_ConstantPadNd):
    """Pad the last two dimensions with ``value``.

    >>> import dtorch
    >>> dtorch.nn.ConstantPad2d(1, 0.0)(dtorch.ones(1, 2, 2)).shape
    dtorch.Size([1, 4, 4])
    """

    _n = 2


class ConstantPad3d(_ConstantPadNd):
    """Pad the last three dimensions with ``value``.

    >>> import dtorch
    >>> dtorch.nn.ConstantPad3d(1, 2.0)(dtorch.ones(1, 1, 1, 1)).shape
    dtorch.Size([1, 3, 3, 3])
    """

    _n = 3


class _ZeroPadNd(_ConstantPadNd):
    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad1d(_ZeroPadNd):
    """Pad the last dimension with zeros.

    >>> import dtorch
    >>> dtorch.nn.ZeroPad1d(1)(dtorch.ones(1, 2)).tolist()
    [[0.0, 1.0, 1.0, 0.0]]
    """

    _n = 1


class ZeroPad2d(_ZeroPadNd):
    """Pad the last two dimensions with zeros.

    >>> import dtorch
    >>> dtorch.nn.ZeroPad2d((1, 0, 0, 1))(dtorch.ones(1, 2, 2)).shape
    dtorch.Size([1, 3, 3])
    """

    _n = 2


class ZeroPad3d(_ZeroPadNd):
    """Pad the last three dimensions with zeros.

    >>> import dtorch
    >>> dtorch.nn.ZeroPad3d(1)
    ZeroPad3d((1, 1, 1, 1, 1, 1))
    """

    _n = 3


class ReflectionPad1d(_PadNd):
    """Pad the last dimension with its reflection at the edges (the edge itself not repeated).

    >>> import dtorch
    >>> dtorch.nn.ReflectionPad1d(2)(dtorch.tensor([[0., 1., 2.]])).tolist()
    [[2.0, 1.0, 0.0, 1.0, 2.0, 1.0, 0.0]]
    """

    _mode = "reflect"
    _n = 1


class ReflectionPad2d(ReflectionPad1d):
    """Pad the last two dimensions by reflection.

    >>> import dtorch
    >>> dtorch.nn.ReflectionPad2d(1)(dtorch.ones(1, 1, 3, 3)).shape
    dtorch.Size([1, 1, 5, 5])
    """

    _n = 2


class ReflectionPad3d(ReflectionPad1d):
    """Pad the last three dimensions by reflection.

    >>> import dtorch
    >>> dtorch.nn.ReflectionPad3d(1)(dtorch.ones(1, 1, 2, 2, 2)).shape
    dtorch.Size([1, 1, 4, 4, 4])
    """

    _n = 3


class ReplicationPad1d(_PadNd):
    """Pad the last dimension by repeating its edge values.

    >>> import dtorch
    >>> dtorch.nn.ReplicationPad1d((2, 1))(dtorch.tensor([[0., 1.]])).tolist()
    [[0.0, 0.0, 0.0, 1.0, 1.0]]
    """

    _mode = "replicate"
    _n = 1


class ReplicationPad2d(ReplicationPad1d):
    """Pad the last two dimensions by repeating the edges.

    >>> import dtorch
    >>> dtorch.nn.ReplicationPad2d(1)(dtorch.ones(1, 2, 2)).shape
    dtorch.Size([1, 4, 4])
    """

    _n = 2


class ReplicationPad3d(ReplicationPad1d):
    """Pad the last three dimensions by repeating the edges.

    >>> import dtorch
    >>> dtorch.nn.ReplicationPad3d(1)(dtorch.ones(1, 1, 2, 2, 2)).shape
    dtorch.Size([1, 1, 4, 4, 4])
    """

    _n = 3


class CircularPad1d(_PadNd):
    """Pad the last dimension periodically (wrap around).

    >>> import dtorch
    >>> dtorch.nn.CircularPad1d(1)(dtorch.tensor([[0., 1., 2.]])).tolist()
    [[2.0, 0.0, 1.0, 2.0, 0.0]]
    """

    _mode = "circular"
    _n = 1


class CircularPad2d(CircularPad1d):
    """Pad the last two dimensions periodically.

    >>> import dtorch
    >>> dtorch.nn.CircularPad2d(1)(dtorch.ones(1, 1, 2, 2)).shape
    dtorch.Size([1, 1, 4, 4])
    """

    _n = 2


class CircularPad3d(CircularPad1d):
    """Pad the last three dimensions periodically.

    >>> import dtorch
    >>> dtorch.nn.CircularPad3d(1)(dtorch.ones(1, 1, 2, 2, 2)).shape
    dtorch.Size([1, 1, 4, 4, 4])
    """

    _n = 3
