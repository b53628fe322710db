"""Helpers shared by the layers above the collectives (``nn.parallel``'s DDP, ``distributed.optim``'s ZeRO), as in
PyTorch's ``torch/distributed/utils.py``. Private: not part of the ``torch.distributed`` surface."""

import dtorch.distributed as dist
from dtorch import _backend
from dtorch.tensor import Tensor


def _group_or_world(process_group):
    """``process_group``, or the default group when it is None; PyTorch's RuntimeError when there is none."""
    group = dist.group.WORLD if process_group is None else process_group
    if group is None:
        raise RuntimeError("Default process group has not been initialized, please make sure to call "
                           "init_process_group.")
    return group


def _broadcast_coalesced(tensors, src, group):
    """Broadcast ``tensors`` in place from global rank ``src`` of ``group``: one flat buffer per dtype and device,
    so a model's many small parameters cost one collective per dtype instead of one each.

    Args:
        tensors: the Tensors to overwrite with ``src``'s values (every rank passes the same shapes, in one order).
        src: the global rank whose values everyone receives.
        group: the process group (None: the default group).

    >>> import dtorch
    >>> from dtorch.distributed.utils import _broadcast_coalesced
    >>> params = [dtorch.ones(2), dtorch.zeros(3)]
    >>> _broadcast_coalesced(params, src=0, group=None)  # doctest: +SKIP
    """
    if not tensors or dist.get_world_size(group) == 1:
        return
    by_key = {}
    for tensor in tensors:
        array = tensor._array
        by_key.setdefault((array.dtype.str, str(_backend.device_of(array))), []).append(tensor)
    is_src = dist.get_global_rank(group, dist.get_rank(group)) == src
    for members in by_key.values():
        xp = _backend.xp_of(members[0]._array)
        flat = xp.concatenate([t._array.reshape(-1) for t in members])
        dist.broadcast(Tensor._from_array(flat, None), src=src, group=group)
        if is_src:
            continue
        offset = 0
        for tensor in members:
            size = tensor._array.size
            tensor._array[...] = flat[offset:offset + size].reshape(tensor._array.shape)
            offset += size
