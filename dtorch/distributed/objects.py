"""Collectives of picklable Python objects (PyTorch's ``*_object`` functions), over the group's MPI communicator.

Objects are pickled to bytes; sizes go first (checked before anything is allocated for them), then the bytes.
Each function returns None (the results are written into the lists passed), as in PyTorch. Like PyTorch, this
unpickles what other ranks send: use it only within a job you trust. The calls are ordinary collectives of the
group (sequence numbers, checks, timeouts), always synchronous.

>>> out = [None] * dist.get_world_size()                 # doctest: +SKIP
>>> dist.all_gather_object(out, {"rank": dist.get_rank()})   # doctest: +SKIP
"""

import pickle

import numpy as np

from dtorch.collectives.base import check_sizes
from dtorch.distributed.distributed_c10d import _not_member, _root
from dtorch.distributed.process_group import Collective, resolve


def _bcast_bytes(comm, data, root):
    size = np.array([len(data) if comm.rank == root else 0], np.int64)
    comm.bcast(size, root)
    check_sizes([size[0]])
    buf = np.frombuffer(data, np.uint8).copy() if comm.rank == root else np.empty(int(size[0]), np.uint8)
    if buf.size:
        comm.bcast(buf, root)
    return buf.tobytes()


def all_gather_object(object_list, obj, group=None):
    """Fill ``object_list`` (one slot per rank) with every rank's ``obj``."""
    pg = resolve(group)
    if pg is None:
        return _not_member("all_gather_object")
    if len(object_list) != pg.size():
        raise ValueError(f"all_gather_object: object_list has {len(object_list)} slots but the group has "
                         f"{pg.size()} ranks")
    data = pickle.dumps(obj)
    found = []
    pg.issue(Collective("all_gather_object", lambda: found.extend(pg.comm.allgather_bytes(data)), (), ()))
    for i, blob in enumerate(found):
        object_list[i] = pickle.loads(blob)
    return None


def broadcast_object_list(object_list, src=None, group=None, device=None, group_src=None):
    """Replace ``object_list``'s items on every rank by those of rank ``src`` (lists of the same length)."""
    pg = resolve(group)
    if pg is None:
        return _not_member("broadcast_object_list")
    root = _root(pg, src, group_src, "broadcast_object_list", "src")
    data = pickle.dumps(list(object_list)) if pg.rank() == root else b""
    found = []
    pg.issue(Collective("broadcast_object_list", lambda: found.append(_bcast_bytes(pg.comm, data, root)), (),
                        (len(object_list), pg.ranks[root])))
    if pg.rank() != root:
        object_list[:] = pickle.loads(found[0])
    return None


def gather_object(obj, object_gather_list=None, dst=None, group=None, group_dst=None):
    """Collect every rank's ``obj`` into ``object_gather_list`` on rank ``dst``."""
    pg = resolve(group)
    if pg is None:
        return _not_member("gather_object")
    root = _root(pg, dst, group_dst, "gather_object", "dst")
    if pg.rank() == root and (object_gather_list is None or len(object_gather_list) != pg.size()):
        raise ValueError(f"gather_object: the destination needs an object_gather_list of {pg.size()} slots, got "
                         f"{None if object_gather_list is None else len(object_gather_list)}")
    data = pickle.dumps(obj)
    found = []
    # objects are small: an all-gather of bytes keeps this to one verb; the non-destinations drop what they get
    pg.issue(Collective("gather_object", lambda: found.extend(pg.comm.allgather_bytes(data)), (), (pg.ranks[root],)))
    if pg.rank() == root:
        for i, blob in enumerate(found):
            object_gather_list[i] = pickle.loads(blob)
    return None


def scatter_object_list(scatter_object_output_list, scatter_object_input_list=None, src=None, group=None,
                        group_src=None):
    """Rank ``i`` gets ``scatter_object_input_list[i]`` of rank ``src`` in ``scatter_object_output_list[0]``."""
    pg = resolve(group)
    if pg is None:
        return _not_member("scatter_object_list")
    if not isinstance(scatter_object_output_list, list) or len(scatter_object_output_list) < 1:
        raise ValueError("scatter_object_list: scatter_object_output_list must be a list with at least one slot")
    root = _root(pg, src, group_src, "scatter_object_list", "src")
    if pg.rank() == root and (scatter_object_input_list is None or len(scatter_object_input_list) != pg.size()):
        raise ValueError(f"scatter_object_list: the source needs {pg.size()} objects, got "
                         f"{None if scatter_object_input_list is None else len(scatter_object_input_list)}")
    comm = pg.comm
    found = []

    def move():
        n = comm.size
        if comm.rank == root:
            blobs = [pickle.dumps(o) for o in scatter_object_input_list]
            sizes = np.array([len(b) for b in blobs], np.int64)
        else:
            sizes = np.empty(n, np.int64)
        comm.bcast(sizes, root)
        check_sizes(sizes)
        width = max(int(sizes.max()), 1)
        send = None
        if comm.rank == root:
            send = np.zeros((n, width), np.uint8)
            for i, b in enumerate(blobs):
                send[i, :len(b)] = np.frombuffer(b, np.uint8)
        mine = np.empty(width, np.uint8)
        comm.scatter(send, mine, root)
        found.append(mine[: int(sizes[comm.rank])].tobytes())

    pg.issue(Collective("scatter_object_list", move, (), (pg.ranks[root],)))
    scatter_object_output_list[0] = pickle.loads(found[0])
    return None
