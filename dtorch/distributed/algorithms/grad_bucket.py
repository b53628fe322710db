"""``GradBucket``: what a DDP communication hook receives, PyTorch's ``torch.distributed.GradBucket``.

A bucket is one flat buffer holding several parameters' gradients back to back (in the order the reducer filled
it). The hook reduces ``buffer()`` across the ranks and returns a Future whose value is the reduced flat tensor
(or a one-element list holding it); the reducer then copies it into the parameters' gradients.
"""

__all__ = ["GradBucket"]


class GradBucket:
    """One bucket of gradients handed to a communication hook.

    >>> import dtorch
    >>> flat = dtorch.arange(5.0)
    >>> bucket = GradBucket(0, flat, [flat[:2].view(2), flat[2:].view(3)], [], True)
    >>> bucket.index(), bucket.buffer().tolist(), [g.shape for g in bucket.gradients()]
    (0, [0.0, 1.0, 2.0, 3.0, 4.0], [dtorch.Size([2]), dtorch.Size([3])])
    """

    __slots__ = ("_index", "_buffer", "_gradients", "_parameters", "_is_last")

    def __init__(self, index, buffer, gradients, parameters, is_last):
        self._index = index
        self._buffer = buffer
        self._gradients = gradients
        self._parameters = parameters
        self._is_last = is_last

    def index(self):
        """The bucket's position in launch order (0 is reduced first)."""
        return self._index

    def buffer(self):
        """The flat 1-D tensor of the bucket's gradients."""
        return self._buffer

    def gradients(self):
        """Views of ``buffer()``, one per parameter, shaped like the parameters."""
        return list(self._gradients)

    def parameters(self):
        """The parameters whose gradients the bucket holds, in the same order as ``gradients()``."""
        return list(self._parameters)

    def is_last(self):
        """Whether this is the last bucket of the iteration (the one reduced last)."""
        return self._is_last

    def set_buffer(self, buffer):
        """Make ``buffer`` (a 1-D tensor of as many elements) the bucket's buffer, as PyTorch's does: later
        ``buffer()`` calls return it (a hook wrapper swaps in a compressed copy this way)."""
        if buffer.numel() != self._buffer.numel():
            raise ValueError(f"GradBucket.set_buffer: the bucket holds {self._buffer.numel()} elements, got a tensor "
                             f"of {buffer.numel()}")
        self._buffer = buffer

    def __repr__(self):
        return (f"GradBucket(index={self._index}, numel={self._buffer.numel()}, "
                f"parameters={len(self._parameters)}, is_last={self._is_last})")
