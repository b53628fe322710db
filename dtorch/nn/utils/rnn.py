"""Variable-length sequences for recurrent layers: PyTorch's ``torch.nn.utils.rnn``.

A ``PackedSequence`` stores a batch of sequences of different lengths time-major without padding: ``data`` holds
the rows of step 0 of every sequence, then the rows of step 1 of every sequence still running, and so on, with
``batch_sizes[t]`` rows for step ``t``. Within a step the sequences appear longest first, so the sequences still
running at step ``t`` are always the first ``batch_sizes[t]`` ones. ``sorted_indices`` (or None when the batch
was already sorted) maps that order to the caller's batch order and ``unsorted_indices`` maps back.

Contracts:

- Every conversion is one gather (``index_select`` with an index built in NumPy on the host) plus at most one
  ``cat`` of a padding row, so gradients flow through packing and padding like through any indexing op.
- ``batch_sizes`` and the ``lengths`` returned by ``pad_packed_sequence`` are int64 CPU tensors;
  ``sorted_indices``/``unsorted_indices`` live on ``data``'s device.
- Departures from PyTorch: ``pack_padded_sequence`` raises when a length exceeds the padded length (PyTorch reads
  past the input), and ``unpad_sequence`` leaves its argument untouched (PyTorch transposes it in place when
  ``batch_first=False``).
"""

import collections
from collections.abc import Iterable

import numpy as np

from dtorch import _backend, factories, functional
from dtorch.tensor import Tensor

__all__ = [
    "PackedSequence", "invert_permutation", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence",
    "unpad_sequence", "pack_sequence", "unpack_sequence",
]

_UNSORTED_MESSAGE = (
    "`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. You can pass "
    "`enforce_sorted=False` to pack_padded_sequence and/or pack_sequence to sidestep this requirement if you do "
    "not need ONNX exportability."
)

_PackedSequenceBase = collections.namedtuple(
    "PackedSequence", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"]
)


class PackedSequence(_PackedSequenceBase):
    """A batch of variable-length sequences packed time-major (see the module docstring for the layout).

    Build one with ``pack_padded_sequence`` or ``pack_sequence`` rather than by hand. As in PyTorch, it is a
    named tuple ``(data, batch_sizes, sorted_indices, unsorted_indices)``; ``unsorted_indices`` is derived from
    ``sorted_indices`` when not given, and ``PackedSequence((data, batch_sizes))`` is accepted too.

    >>> import dtorch
    >>> packed = pack_sequence([dtorch.tensor([1, 2, 3]), dtorch.tensor([4, 5])])
    >>> packed.data, packed.batch_sizes
    (tensor([1, 4, 2, 5, 3]), tensor([2, 2, 1]))
    """

    __slots__ = ()

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is None:
            if not (isinstance(data, (list, tuple)) and len(data) == 2):
                raise AssertionError("Expected data to be a list or tuple of length 2")
            data, batch_sizes = data
        elif batch_sizes.device.type != "cpu":
            raise ValueError(
                "batch_sizes should always be on CPU. Instances of PackedSequence should never be created manually. "
                "They should be instantiated by functions like pack_sequence and pack_padded_sequences in "
                "nn.utils.rnn. https://pytorch.org/docs/stable/nn.html#torch.nn.utils.rnn.pack_sequence"
            )
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs):
        """Convert ``data`` as ``Tensor.to`` does; the indices follow ``data``'s device, ``batch_sizes`` stays on
        the CPU. Returns ``self`` when ``data`` is unchanged.

        >>> import dtorch
        >>> pack_sequence([dtorch.tensor([1.0, 2.0])]).to(dtorch.float64).data.dtype
        dtorch.float64
        """
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        sorted_indices = None if self.sorted_indices is None else self.sorted_indices.to(data.device)
        unsorted_indices = None if self.unsorted_indices is None else self.unsorted_indices.to(data.device)
        return type(self)(data, self.batch_sizes, sorted_indices, unsorted_indices)

    def cuda(self, *args, **kwargs):
        """``self.to('cuda')`` (or to the given CUDA device)."""
        if not args and "device" not in kwargs:
            kwargs["device"] = "cuda"
        return self.to(*args, **kwargs)

    def cpu(self, *args, **kwargs):
        """``self.to('cpu')``."""
        return self.to("cpu", *args, **kwargs)

    def double(self):
        return self.to(dtype=_backend.float64)

    def float(self):
        return self.to(dtype=_backend.float32)

    def half(self):
        return self.to(dtype=_backend.float16)

    def long(self):
        return self.to(dtype=_backend.int64)

    def int(self):
        return self.to(dtype=_backend.int32)

    def short(self):
        return self.to(dtype=_backend.int16)

    def char(self):
        return self.to(dtype=_backend.int8)

    def byte(self):
        return self.to(dtype=_backend.uint8)

    def pin_memory(self):
        """Returns ``self``: dtorch host arrays need no pinning (see ``Tensor.pin_memory``)."""
        return self

    def is_pinned(self):
        return self.data.is_pinned()

    @property
    def is_cuda(self):
        """Whether ``data`` is on a GPU."""
        return self.data.is_cuda


def invert_permutation(permutation):
    """The inverse of a permutation (a 1-D int64 tensor), or None for None.

    >>> import dtorch
    >>> invert_permutation(dtorch.tensor([2, 0, 1]))
    tensor([1, 2, 0])
    """
    if permutation is None:
        return None
    return functional.argsort(permutation)


def _host_int64(values):
    return factories.as_tensor(np.ascontiguousarray(values, dtype=np.int64))


def _index(array, device):
    """A NumPy index array as an int64 tensor on ``device``."""
    return factories.as_tensor(np.ascontiguousarray(array, dtype=np.int64), device=device)


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """Pack a padded batch of sequences (``T x B x *``, or ``B x T x *`` with ``batch_first``).

    Args:
        input: the padded batch; positions past each sequence's length are ignored.
        lengths: each sequence's length, a list or a 1-D CPU tensor.
        batch_first: whether ``input`` is ``B x T x *``.
        enforce_sorted: if True, ``lengths`` must be in decreasing order; if False the batch is sorted here and
            the permutation kept in ``sorted_indices``.

    Returns:
        A ``PackedSequence``.

    >>> import dtorch
    >>> padded = dtorch.tensor([[1, 2, 0], [3, 0, 0], [4, 5, 6]])
    >>> packed = pack_padded_sequence(padded, [2, 1, 3], batch_first=True, enforce_sorted=False)
    >>> packed.data, packed.batch_sizes, packed.sorted_indices
    (tensor([4, 1, 3, 5, 2, 6]), tensor([3, 2, 1]), tensor([2, 0, 1]))
    """
    if isinstance(lengths, Tensor):
        if lengths.dim() != 1 or lengths.device.type != "cpu":
            raise RuntimeError(f"'lengths' argument should be a 1D CPU int64 tensor, but got {lengths.dim()}D "
                               f"{lengths.device} Long tensor")
        lengths = lengths.numpy().astype(np.int64)
    else:
        lengths = np.asarray(lengths).astype(np.int64).reshape(-1)
    batch_dim = 0 if batch_first else 1
    sorted_indices = None
    if not enforce_sorted:
        order = np.argsort(-lengths, kind="stable")
        lengths = lengths[order]
        sorted_indices = _index(order, input.device)
        input = input.index_select(batch_dim, sorted_indices)
    if input.numel() == 0:
        raise RuntimeError("Cannot pack empty tensors.")
    batch = input.shape[batch_dim]
    if len(lengths) != batch:
        raise RuntimeError(f"Expected `len(lengths)` to be equal to batch_size, but got {len(lengths)} "
                           f"(batch_size={batch})")
    if lengths[-1] <= 0:
        raise RuntimeError("Length of all samples has to be greater than 0, but found an element in 'lengths' that "
                           "is <= 0")
    if np.any(lengths[1:] > lengths[:-1]):
        raise RuntimeError(_UNSORTED_MESSAGE)
    steps = input.shape[1 - batch_dim]
    if lengths[0] > steps:
        raise RuntimeError(f"pack_padded_sequence: the longest length is {lengths[0]} but the input holds only "
                           f"{steps} time steps")
    # (t, b) of every packed row, in packed order: step by step, the running sequences of each step
    running = np.arange(lengths[0])[:, None] < lengths[None, :]
    t_index, b_index = np.nonzero(running)
    rows = b_index * steps + t_index if batch_first else t_index * batch + b_index
    flat = input.reshape((batch * steps,) + tuple(input.shape[2:]))
    data = flat.index_select(0, _index(rows, input.device))
    batch_sizes = _host_int64(running.sum(axis=1))
    return PackedSequence(data, batch_sizes, sorted_indices, None)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """Pad a ``PackedSequence`` back into a ``T x B x *`` tensor (``B x T x *`` with ``batch_first``).

    Args:
        sequence: the ``PackedSequence``.
        batch_first: return ``B x T x *``.
        padding_value: the value of the positions past each sequence's end.
        total_length: pad to this many steps instead of the longest length (must be at least that).

    Returns:
        ``(padded, lengths)``, in the batch order the sequences had before packing; ``lengths`` is an int64 CPU
        tensor.

    >>> import dtorch
    >>> packed = pack_sequence([dtorch.tensor([1, 2]), dtorch.tensor([3, 4, 5])], enforce_sorted=False)
    >>> padded, lengths = pad_packed_sequence(packed, batch_first=True)
    >>> padded, lengths
    (tensor([[1, 2, 0],
            [3, 4, 5]]), tensor([2, 3]))
    """
    data, batch_sizes = sequence.data, sequence.batch_sizes
    sizes = batch_sizes.numpy().astype(np.int64)
    steps = len(sizes)
    if total_length is not None:
        if total_length < steps:
            raise ValueError("Expected total_length to be at least the length of the longest sequence in input, "
                             f"but got total_length={total_length} and max sequence length being {steps}")
        steps = total_length
    batch = int(sizes[0])
    lengths = (sizes[None, :] > np.arange(batch)[:, None]).sum(axis=1)
    # every padded position reads a packed row, or the padding row appended after the last one
    running = np.arange(steps)[:, None] < lengths[None, :]
    rows = np.full((steps, batch), data.shape[0], dtype=np.int64)
    rows[running] = np.arange(data.shape[0])
    if batch_first:
        rows = rows.T
    pad_row = factories.full((1,) + tuple(data.shape[1:]), padding_value, dtype=data.dtype, device=data.device)
    source = functional.cat([data, pad_row], 0)
    padded = source.index_select(0, _index(rows.ravel(), data.device))
    padded = padded.reshape(rows.shape + tuple(data.shape[1:]))
    lengths = _host_int64(lengths)
    if sequence.unsorted_indices is not None:
        batch_dim = 0 if batch_first else 1
        padded = padded.index_select(batch_dim, sequence.unsorted_indices)
        lengths = lengths[sequence.unsorted_indices.cpu()]
    return padded, lengths


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stack sequences of sizes ``L_i x *`` into one ``T x B x *`` tensor (``B x T x *`` with ``batch_first``),
    ``T`` the longest length, filling the rest with ``padding_value``.

    Args:
        sequences: a list (or any iterable, a tensor included) of tensors with equal trailing dimensions.
        batch_first: return ``B x T x *``.
        padding_value: the fill value.
        padding_side: ``'right'`` (pad after each sequence) or ``'left'`` (pad before).

    >>> import dtorch
    >>> pad_sequence([dtorch.tensor([1, 2]), dtorch.tensor([3, 4, 5])], batch_first=True, padding_side="left")
    tensor([[0, 1, 2],
            [3, 4, 5]])
    """
    if not isinstance(sequences, (Iterable, Tensor)):
        raise RuntimeError(f"pad_sequence: Expected iterable for input sequences, but got arg of type: "
                           f"{type(sequences)}")
    sequences = [sequences[i] for i in range(sequences.shape[0])] if isinstance(sequences, Tensor) \
        else list(sequences)
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    if padding_side not in ("left", "right"):
        raise RuntimeError(f"Expected padding_side to be one of left or right, but got {padding_side}.")
    first = sequences[0]
    lengths = np.array([seq.shape[0] for seq in sequences], dtype=np.int64)
    steps = int(lengths.max())
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    position = np.arange(steps)[None, :]  # (1, T) against (B, 1) below
    lead = (steps - lengths)[:, None] if padding_side == "left" else np.zeros((len(sequences), 1), np.int64)
    offset = position - lead
    total = int(lengths.sum())
    rows = np.where((offset >= 0) & (offset < lengths[:, None]), starts[:, None] + offset, total)
    if not batch_first:
        rows = rows.T
    pad_row = factories.full((1,) + tuple(first.shape[1:]), padding_value, dtype=first.dtype, device=first.device)
    source = functional.cat(sequences + [pad_row], 0)
    padded = source.index_select(0, _index(rows.ravel(), first.device))
    return padded.reshape(rows.shape + tuple(first.shape[1:]))


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    """Split a padded batch back into a list of sequences, the ``i``-th of length ``lengths[i]``.

    >>> import dtorch
    >>> padded = pad_sequence([dtorch.tensor([1, 2]), dtorch.tensor([3, 4, 5])])
    >>> unpad_sequence(padded, dtorch.tensor([2, 3]))
    [tensor([1, 2]), tensor([3, 4, 5])]
    """
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    lengths = lengths.tolist() if isinstance(lengths, Tensor) else list(lengths)
    return [padded_sequences[i, : int(length)]
            for i, length in zip(range(padded_sequences.shape[0]), lengths, strict=True)]


def pack_sequence(sequences, enforce_sorted=True):
    """Pack a list of sequences (``L_i x *``): ``pad_sequence`` then ``pack_padded_sequence``.

    >>> import dtorch
    >>> pack_sequence([dtorch.tensor([1, 2, 3]), dtorch.tensor([4, 5]), dtorch.tensor([6])]).data
    tensor([1, 4, 6, 2, 5, 3])
    """
    lengths = [seq.shape[0] for seq in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences):
    """Unpack a ``PackedSequence`` into the list of its sequences, in their original order.

    >>> import dtorch
    >>> packed = pack_sequence([dtorch.tensor([1]), dtorch.tensor([2, 3])], enforce_sorted=False)
    >>> unpack_sequence(packed)
    [tensor([1]), tensor([2, 3])]
    """
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
