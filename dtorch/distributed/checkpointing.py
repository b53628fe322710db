"""Checkpoints of data-parallel training: one rank writes, every rank waits for it, every rank loads onto its device.

The usual PyTorch recipe, made safe against its two failure modes: a checkpoint half written when the job dies (the
file is written by :func:`dtorch.save`, which writes a temporary file, fsyncs it and renames it into place, so the
path holds either the old or the new checkpoint), and ranks that hang in a barrier because the writer failed (the
writer's success or error is broadcast, and every rank raises the same error).

Collectives: :func:`save_checkpoint` is one broadcast over ``group``; :func:`load_checkpoint` has none (call it
after ``save_checkpoint`` returned, or on a file written before the job).

>>> import dtorch.distributed as dist
>>> save_checkpoint({"model": ddp.state_dict(), "step": 10}, "ckpt.pt")      # doctest: +SKIP
>>> state = load_checkpoint("ckpt.pt")                                        # doctest: +SKIP
"""

import os

import dtorch.distributed as dist
from dtorch import _backend
from dtorch import serialization

__all__ = ["load_checkpoint", "save_checkpoint"]


def save_checkpoint(obj, f, group=None, src=0):
    """Write ``obj`` to the path ``f`` on global rank ``src`` only (atomically); return on every rank once written.

    Args:
        obj: what to save (``state_dict()``\\ s, containers of tensors, ...). Only ``src``'s is written; pass a
            callable to build it on ``src`` alone (``lambda: {"model": ddp.state_dict()}``).
        f: the file's path (seen by every rank, so the ranks can load it back).
        group: the ranks that wait for the write (the default group when None).
        src: the global rank that writes.

    Raises:
        RuntimeError: on every rank, when the write failed on ``src`` (the message gives ``src``'s error).

    >>> save_checkpoint(lambda: ddp.state_dict(), "/shared/ckpt.pt")            # doctest: +SKIP
    """
    group = dist.group.WORLD if group is None else group
    rank = dist.get_global_rank(group, dist.get_rank(group))
    outcome = [None]
    if rank == src:
        try:
            serialization.save(obj() if callable(obj) else obj, os.fspath(f))
        except Exception as error:  # noqa: BLE001 - reported to every rank below, then raised here too
            outcome[0] = f"{type(error).__name__}: {error}"
    dist.broadcast_object_list(outcome, src=src, group=group)
    if outcome[0] is not None:
        raise RuntimeError(f"save_checkpoint: rank {src} could not write {os.fspath(f)!r}: {outcome[0]}")


def default_map_location():
    """This rank's device: ``cuda:<LOCAL_RANK>`` when CUDA is available and the default group uses NCCL, else
    ``'cpu'``.

    >>> default_map_location() in ("cpu",) or default_map_location().startswith("cuda:")
    True
    """
    if _backend.cuda_is_available() and dist.is_initialized() and dist.get_backend() == "nccl":
        return f"cuda:{dist.get_node_local_rank(fallback_rank=0)}"
    return "cpu"


def load_checkpoint(f, map_location=None, weights_only=True):
    """Load a checkpoint with every tensor on this rank's device (``default_map_location()``) unless
    ``map_location`` says otherwise; ``weights_only`` as :func:`dtorch.load`.

    >>> state = load_checkpoint("/shared/ckpt.pt")                              # doctest: +SKIP
    """
    location = default_map_location() if map_location is None else map_location
    return serialization.load(f, map_location=location, weights_only=weights_only)
