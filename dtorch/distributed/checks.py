"""Collective fingerprints: catch ranks that call different collectives before they corrupt data or hang.

Every collective of a group gets the group's next sequence number and a *spec*: the values every rank must agree
on (op name, dtype, shape, root, reduce op). On a checked call the ranks all-gather ``(sequence number, hash of the
spec)`` (16 bytes each) before the collective itself; when they differ, every rank all-gathers the readable
descriptions and raises :class:`CollectiveMismatchError` naming the collective, its sequence number, and which ranks
passed what. The check happens on all ranks or none (it depends only on the sequence number and the debug level,
which must be the same everywhere), so a detected mismatch leaves the group usable.

Which calls are checked, from ``DTORCH_DISTRIBUTED_DEBUG`` (or :func:`set_debug_level`):

- ``OFF``: none.
- ``INFO`` (the default): the first 16 calls of each group, then every 256th: enough to catch a script whose ranks
  take different paths, at a cost too small to measure on a 64 KB all_reduce.
- ``DETAIL``: every call.

>>> describe("all_reduce", 3, ("float32", (4,), "SUM"))
'all_reduce #3 (dtype=float32, shape=(4,), op=SUM)'
"""

import enum
import os
import zlib

import numpy as np

FIRST_CHECKED = 16
CHECK_EVERY = 256


class DebugLevel(enum.Enum):
    """PyTorch's ``torch.distributed.DebugLevel``; here it picks which collectives are fingerprint-checked."""

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


def due(seq):
    """Whether call number ``seq`` of a group is checked at the current level."""
    level = _level
    if level is DebugLevel.INFO:
        return seq < FIRST_CHECKED or seq % CHECK_EVERY == 0
    return level is DebugLevel.DETAIL


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
}


def describe(name, seq, spec):
    """A readable form of one call: ``all_reduce #3 (dtype=float32, shape=(4,), op=SUM)``."""
    fields = SPEC_FIELDS.get(name, ())
    parts = ", ".join(f"{field}={value}" for field, value in zip(fields, spec))
    return f"{name} #{seq} ({parts})"


def fingerprint(name, spec):
    """A 63-bit hash of a call's name and spec, the same in every process (no ``hash()`` of strings, which is
    salted per process)."""
    return zlib.crc32(repr((name, spec)).encode()) | ((zlib.adler32(name.encode()) & 0x7FFFFFFF) << 32)


def verify(comm, name, seq, spec, group_name, global_ranks):
    """Check that every rank of ``comm`` is at call ``seq`` with the same ``name`` and ``spec``; collective.

    Raises :class:`CollectiveMismatchError` on every rank of the group when they are not.
    """
    mine = np.array([seq, fingerprint(name, spec)], np.int64)
    everyone = np.empty((comm.size, 2), np.int64)
    comm.allgather(mine, everyone)  # one small collective: 16 bytes a rank
    if (everyone == mine).all():
        return
    descriptions = [d.decode() for d in comm.allgather_bytes(describe(name, seq, spec).encode())]
    raise CollectiveMismatchError(mismatch_message(descriptions, group_name, global_ranks, comm.rank))


def mismatch_message(descriptions, group_name, global_ranks, my_group_rank):
    """The error text for ranks that passed ``descriptions`` (one per group rank, in group order).

    >>> print(mismatch_message(["all_reduce #0 (op=SUM)", "all_reduce #0 (op=MAX)"], "WORLD", [0, 1], 0))
    dtorch.distributed: collective mismatch in group WORLD at all_reduce #0 on rank 0: ranks [1] disagree with rank 0.
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
