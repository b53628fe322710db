"""Collective fingerprints: catch ranks that call different collectives before they corrupt data or hang.

Every collective of a group gets the group's next sequence number when it starts, and a *spec*: the values every
rank must agree on (op name, dtype, shape, root, reduce op). Before the collective moves any data the ranks
all-reduce (MAX) the two int64 ``(w, -w)``, 16 bytes, where ``w`` mixes the sequence number into a cached 62-bit
hash of the name and the spec (:meth:`Checker.word`): the maxima equal this rank's words on every rank exactly when
all ranks agree (up to a 2**-62 chance of a collision), and every rank reaches the same verdict. When they differ,
every rank all-gathers the readable descriptions and raises :class:`CollectiveMismatchError` naming the
collective, its sequence number and which ranks passed what. Since every collective starts with this check, a
check always meets the other ranks' check of the same sequence number, even when a rank skipped a call: the
sequence numbers stay aligned and the group stays usable after the error.

``DTORCH_DISTRIBUTED_DEBUG`` (or :func:`set_debug_level`; every rank must use the same level):

- ``OFF``: no check (a mismatch then corrupts data or hangs until the timeout).
- ``INFO`` (the default): every call is checked.
- ``DETAIL``: every call is checked, and a mismatch report also lists each rank's last calls of the group.

>>> describe("all_reduce", 3, ("float32", (4,), "SUM"))
'all_reduce #3 (dtype=float32, shape=(4,), op=SUM)'
"""

import collections
import enum
import os
import zlib

import numpy as np

from dtorch.collectives.base import ReduceOp

# the most bytes a rank's mismatch description may take (peers' sizes are checked against it before allocating)
REPORT_LIMIT = 1 << 16
HISTORY = 8  # calls each rank lists under DETAIL
_MASK = (1 << 62) - 1
_MIX = 0x9E3779B97F4A7C15  # an odd 64-bit constant: spreads consecutive sequence numbers over the word


class DebugLevel(enum.Enum):
    """PyTorch's ``torch.distributed.DebugLevel``: OFF (no checks), INFO (every call checked), DETAIL (every call,
    and each rank's recent calls in a mismatch report)."""

    OFF = 0
    INFO = 1
    DETAIL = 2


class CollectiveMismatchError(RuntimeError):
    """Ranks of a group called different collectives (or the same one with different shapes, dtypes, ops, roots)."""


def _level_from_env():
    value = os.environ.get("DTORCH_DISTRIBUTED_DEBUG", os.environ.get("TORCH_DISTRIBUTED_DEBUG", "INFO"))
    try:
        return DebugLevel[value.strip().upper()]
    except KeyError:
        raise ValueError(f"DTORCH_DISTRIBUTED_DEBUG={value!r}: expected OFF, INFO or DETAIL") from None


_level = _level_from_env()


def get_debug_level():
    """The current :class:`DebugLevel`."""
    return _level


def set_debug_level(level):
    """Set the :class:`DebugLevel` (every rank must set the same one, at the same point of the program).

    >>> set_debug_level(DebugLevel.DETAIL); get_debug_level()
    <DebugLevel.DETAIL: 2>
    >>> set_debug_level(DebugLevel.INFO)
    """
    global _level
    _level = level if isinstance(level, DebugLevel) else DebugLevel[str(level).upper()]


def set_debug_level_from_env():
    """Re-read ``DTORCH_DISTRIBUTED_DEBUG``."""
    set_debug_level(_level_from_env())


# the names of each collective's spec fields, in order
SPEC_FIELDS = {
    "all_reduce": ("dtype", "shape", "op"),
    "broadcast": ("dtype", "shape", "src"),
    "reduce": ("dtype", "shape", "op", "dst"),
    "all_gather": ("dtype", "shape"),
    "all_gather_into_tensor": ("dtype", "shape"),
    "gather": ("dtype", "shape", "dst"),
    "scatter": ("dtype", "shape", "src"),
    "reduce_scatter": ("dtype", "shape", "op"),
    "reduce_scatter_tensor": ("dtype", "shape", "op"),
    "all_to_all": ("dtype", "count"),
    "all_to_all_single": ("dtype",),
    "barrier": (),
    "all_gather_object": (),
    "broadcast_object_list": ("count", "src"),
    "gather_object": ("dst",),
    "scatter_object_list": ("src",),
    "new_group": ("ranks",),
    "destroy_process_group": (),
}


def describe(name, seq, spec):
    """A readable form of one call: ``all_reduce #3 (dtype=float32, shape=(4,), op=SUM)``."""
    fields = SPEC_FIELDS.get(name, ())
    parts = ", ".join(f"{field}={value}" for field, value in zip(fields, spec))
    return f"{name} #{seq} ({parts})"


_FINGERPRINTS = {}


def fingerprint(name, spec):
    """A 62-bit hash of a call's name and spec, the same in every process (no ``hash()`` of strings, which is
    salted per process); cached, so a repeated call costs one dictionary lookup.

    >>> fingerprint("barrier", ()) == fingerprint("barrier", ()) != fingerprint("all_gather_object", ())
    True
    """
    key = (name, spec)
    found = _FINGERPRINTS.get(key)
    if found is None:
        found = (zlib.crc32(repr(key).encode()) | (zlib.adler32(name.encode()) << 32)) & _MASK
        if len(_FINGERPRINTS) < 100_000:  # specs with ever new shapes must not grow it without bound
            _FINGERPRINTS[key] = found
    return found


class Checker:
    """The mismatch check of one group: ``verify(name, seq, spec)`` is collective over ``comm`` (see the module
    header); raises :class:`CollectiveMismatchError` on every rank when the ranks disagree."""

    def __init__(self, comm, group_name, global_ranks):
        self.comm = comm
        self.group_name = group_name
        self.global_ranks = list(global_ranks)
        self.words = np.empty(2, np.int64)
        self._slots = memoryview(self.words)  # a memoryview's item stores and loads cost less than NumPy's
        self.history = collections.deque(maxlen=HISTORY)

    @staticmethod
    def word(seq, fp):
        """The 62-bit word of call ``seq`` with fingerprint ``fp`` (both ranks' words are equal iff both are).

        >>> Checker.word(0, 5), Checker.word(1, 5) != Checker.word(0, 5)
        (5, True)
        """
        return fp ^ ((seq * _MIX) & _MASK)

    def verify(self, name, seq, spec):
        level = _level
        if level is DebugLevel.OFF:
            return
        key = (name, spec)
        fp = _FINGERPRINTS.get(key)
        if fp is None:
            fp = fingerprint(name, spec)
        if level is DebugLevel.DETAIL:
            self.history.append(describe(name, seq, spec))
        word = fp ^ ((seq * _MIX) & _MASK)
        slots = self._slots
        slots[0] = word
        slots[1] = -word
        self.comm.allreduce(None, self.words, ReduceOp.MAX)
        if slots[0] == word and slots[1] == -word:
            return
        self.report(name, seq, spec, level is DebugLevel.DETAIL)

    def report(self, name, seq, spec, detail):
        """Gather what every rank called and raise the mismatch error (every rank of the group is here)."""
        text = describe(name, seq, spec)
        if detail:
            text += "\n" + "\n".join(list(self.history)[:-1])
        texts = [blob.decode(errors="replace") for blob in
                 self.comm.allgather_bytes(text.encode()[:REPORT_LIMIT // 2], limit=REPORT_LIMIT * self.comm.size)]
        calls = [t.split("\n", 1)[0] for t in texts]
        message = mismatch_message(calls, self.group_name, self.global_ranks, self.comm.rank)
        if detail:
            for group_rank, t in enumerate(texts):
                earlier = t.split("\n")[1:]
                if earlier:
                    message += f"\nrank {self.global_ranks[group_rank]}'s calls before it: " + "; ".join(earlier)
        raise CollectiveMismatchError(message)


def mismatch_message(descriptions, group_name, global_ranks, my_group_rank):
    """The error text for ranks that passed ``descriptions`` (one per group rank, in group order).

    >>> print(mismatch_message(["all_reduce #0 (op=SUM)", "all_reduce #0 (op=MAX)"], "WORLD", [0, 1], 0))
    ... # doctest: +NORMALIZE_WHITESPACE
    dtorch.distributed: collective mismatch in group WORLD at all_reduce #0 (op=SUM) on rank 0:
    ranks [1] disagree with rank 0.
      ranks [0] called all_reduce #0 (op=SUM)
      ranks [1] called all_reduce #0 (op=MAX)
    Every rank must call the same collectives in the same order with matching dtypes, shapes, ops and roots.
    """
    calls = {}
    for group_rank, text in enumerate(descriptions):
        calls.setdefault(text, []).append(global_ranks[group_rank])
    reference = descriptions[0]
    disagree = [global_ranks[r] for r, text in enumerate(descriptions) if text != reference]
    lines = [f"dtorch.distributed: collective mismatch in group {group_name} at {descriptions[my_group_rank]} on "
             f"rank {global_ranks[my_group_rank]}: ranks {disagree} disagree with rank {global_ranks[0]}."]
    for text, ranks in calls.items():
        lines.append(f"  ranks {ranks} called {text}")
    lines.append("Every rank must call the same collectives in the same order with matching dtypes, shapes, "
                 "ops and roots.")
    return "\n".join(lines)
