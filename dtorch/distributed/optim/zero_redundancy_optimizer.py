"""``ZeroRedundancyOptimizer``: optimizer state sharded over the ranks (ZeRO stage 1), PyTorch's class of that name.

Each parameter is owned by one rank (greedy by size: the largest parameters first, each to the rank that owns the
fewest elements so far, group by group, as PyTorch partitions them). A rank keeps an ordinary optimizer
(``optimizer_class``) over the parameters it owns, so it holds only its share of the momentum/Adam state. After the
local step every rank broadcasts the parameters it owns (one flat buffer per rank and dtype), so every rank ends the
step with the whole updated model, exactly as if each had run ``optimizer_class`` over all parameters.

Uneven inputs: ``Join([ddp_model, zero_optimizer])`` (DDP first) lets ranks run different numbers of steps; a
joined rank keeps stepping its shard with the average of the active ranks' gradients, so the trajectory is that of
one optimizer stepping every iteration.

Collectives: ``step`` issues one broadcast per (owner rank, dtype) in rank order on every rank;
``consolidate_state_dict(to)`` gathers every rank's state on ``to``. Hyperparameters changed in ``param_groups``
(by an LR scheduler) are copied into the local optimizer before each step.

This module sits above ``dtorch.optim`` by its imports (as PyTorch's ``torch.distributed.optim`` does).

>>> import dtorch, dtorch.distributed as dist
>>> dist.init_process_group()                                                    # doctest: +SKIP
>>> opt = ZeroRedundancyOptimizer(model.parameters(), dtorch.optim.Adam, lr=1e-3)  # doctest: +SKIP
"""

import numpy as np

import dtorch.distributed as dist
from dtorch import _backend
from dtorch.distributed.algorithms.join import Join, Joinable, JoinHook
from dtorch.distributed.utils import _broadcast_coalesced, _group_or_world
from dtorch.optim.optimizer import Optimizer
from dtorch.tensor import Tensor

__all__ = ["ZeroRedundancyOptimizer"]


class ZeroRedundancyOptimizer(Optimizer, Joinable):
    """Wraps ``optimizer_class`` so that each rank keeps the state of its share of the parameters only.

    Args:
        params: the parameters (or parameter groups) of the whole model, the same on every rank.
        optimizer_class: the optimizer to run on each rank's share (``dtorch.optim.SGD``, ``Adam``, ...).
        process_group: the group to shard over (the default group when None).
        parameters_as_bucket_view: accepted for PyTorch's signature (parameters keep their own storage here).
        overlap_with_ddp: not supported (False).
        defaults: the optimizer's hyperparameters (``lr=...``).

    >>> opt = ZeroRedundancyOptimizer(ddp.parameters(), dtorch.optim.SGD, lr=0.1, momentum=0.9)  # doctest: +SKIP
    >>> opt.step(); opt.consolidate_state_dict(to=0)                                              # doctest: +SKIP
    """

    def __init__(self, params, optimizer_class, process_group=None, parameters_as_bucket_view=False,
                 overlap_with_ddp=False, **defaults):
        if overlap_with_ddp:
            raise NotImplementedError("ZeroRedundancyOptimizer: overlap_with_ddp=True is not supported by dtorch")
        if not (isinstance(optimizer_class, type) and issubclass(optimizer_class, Optimizer)):
            raise TypeError(f"ZeroRedundancyOptimizer: optimizer_class must be a dtorch.optim.Optimizer subclass, "
                            f"got {optimizer_class!r}")
        self._ready = False
        Optimizer.__init__(self, params, defaults)
        Joinable.__init__(self)
        self.process_group = _group_or_world(process_group)
        self.optimizer_class = optimizer_class
        self.parameters_as_bucket_view = parameters_as_bucket_view
        self.rank = dist.get_rank(self.process_group)
        self.world_size = dist.get_world_size(self.process_group)
        self._owned_elements = [0] * self.world_size
        self._partition = []  # per group: per rank: the params it owns
        for group in self.param_groups:
            self._partition.append(self._assign(group["params"]))
        local_groups = [self._local_group(g) for g in range(len(self.param_groups))]
        local_groups = [group for group in local_groups if group["params"]]
        self.optim = optimizer_class(local_groups, **defaults) if local_groups else None
        self._consolidated = None
        self._ready = True

    # ---- partition ---------------------------------------------------------------------------------------------------

    def _assign(self, params):
        """Give each of ``params`` an owner: largest first, to the rank owning the fewest elements."""
        per_rank = [[] for _ in range(self.world_size)]
        for param in sorted(params, key=lambda p: p.numel(), reverse=True):
            owner = int(np.argmin(self._owned_elements))
            per_rank[owner].append(param)
            self._owned_elements[owner] += param.numel()
        order = {id(p): i for i, p in enumerate(params)}
        for owned in per_rank:
            owned.sort(key=lambda p: order[id(p)])  # keep the group's order within a rank
        return per_rank

    def _local_group(self, index):
        group = self.param_groups[index]
        local = {key: value for key, value in group.items() if key not in ("params", "param_names")}
        local["params"] = list(self._partition[index][self.rank])
        return local

    def add_param_group(self, param_group):
        """Add a group; its parameters are given owners like the first groups' were.

        >>> zero.add_param_group({"params": head.parameters(), "lr": 0.01})  # doctest: +SKIP
        """
        super().add_param_group(param_group)
        if not getattr(self, "_ready", False):
            return  # during __init__: partitioned once every group is in
        self._partition.append(self._assign(self.param_groups[-1]["params"]))
        local = self._local_group(len(self.param_groups) - 1)
        if not local["params"]:
            return
        if self.optim is None:
            self.optim = self.optimizer_class([local], **self.defaults)
        else:
            self.optim.add_param_group(local)

    def _local_index(self):
        """Map each group of ``param_groups`` to the index of its part in the local optimizer (None: no part)."""
        mapping, index = [], 0
        for partition in self._partition:
            if partition[self.rank]:
                mapping.append(index)
                index += 1
            else:
                mapping.append(None)
        return mapping

    # ---- step --------------------------------------------------------------------------------------------------------

    def step(self, closure=None):
        """Step the local optimizer over this rank's parameters, then broadcast every rank's updated parameters.

        Returns the closure's loss when a closure is given.

        >>> loss.backward(); zero.step()                                   # doctest: +SKIP
        """
        Join.notify_join_context(self)
        loss = None
        if self.optim is not None:
            for group, local in zip(self.param_groups, self._local_index()):
                if local is None:
                    continue
                target = self.optim.param_groups[local]
                for key, value in group.items():
                    if key not in ("params", "param_names"):
                        target[key] = value
            loss = self.optim.step(closure)
        elif closure is not None:
            loss = closure()
        self._sync_parameters()
        return loss

    def _sync_parameters(self):
        for owner in range(self.world_size):
            owned = [p for partition in self._partition for p in partition[owner]]
            if owned:
                _broadcast_coalesced(owned, dist.get_global_rank(self.process_group, owner), self.process_group)

    # ---- state dicts -------------------------------------------------------------------------------------------------

    def consolidate_state_dict(self, to=0):
        """Gather every rank's optimizer state on rank ``to`` (a global rank), for ``state_dict()`` there.

        Every rank of the group must call it.

        >>> zero.consolidate_state_dict(to=0)                              # doctest: +SKIP
        >>> if dist.get_rank() == 0: dtorch.save(zero.state_dict(), "opt.pt")   # doctest: +SKIP
        """
        numbering = self._state_dict_ids()
        mine = {}
        if self.optim is not None:
            for param, value in self.optim.state.items():
                if value:
                    mine[numbering[id(param)]] = {k: _to_numpy(v) for k, v in value.items()}
        group_to = dist.get_group_rank(self.process_group, to)
        gathered = [None] * self.world_size if self.rank == group_to else None
        dist.gather_object(mine, gathered, dst=to, group=self.process_group)
        if self.rank == group_to:
            state = {}
            for part in gathered:
                state.update({index: {k: _from_numpy(v) for k, v in value.items()} for index, value in part.items()})
            self._consolidated = dict(sorted(state.items()))
        else:
            self._consolidated = None

    def state_dict(self):
        """The whole optimizer's state in ``optimizer_class``'s layout (loadable into it, or into this class).

        Raises:
            RuntimeError: ``consolidate_state_dict`` has not gathered the state on this rank.
        """
        if self._consolidated is None:
            raise RuntimeError(f"Optimizer state has not been consolidated on this rank (rank {self.rank}). Please "
                               "call `consolidate_state_dict(to=<this rank>)` on every rank beforehand.")
        numbering = self._state_dict_ids()
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [numbering[id(p)] for p in group["params"]]
            groups.append(packed)
        return {"state": dict(self._consolidated), "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Load a whole-optimizer state dict; each rank keeps the entries of the parameters it owns.

        >>> zero.load_state_dict(dtorch.load("opt.pt"))                    # doctest: +SKIP
        """
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(g["params"]) != len(s["params"]) for g, s in zip(self.param_groups, groups)):
            raise ValueError("loaded state dict does not match the optimizer's parameter groups (their number or "
                             "their sizes differ)")
        saved_index = {}
        for group, saved in zip(self.param_groups, groups):
            for p, index in zip(group["params"], saved["params"]):
                saved_index[id(p)] = index
            for key, value in saved.items():
                if key not in ("params", "param_names"):
                    group[key] = value
        if self.optim is None:
            return
        local_groups, local_state = [], {}
        for index, group in enumerate(self.param_groups):
            owned = self._partition[index][self.rank]
            if not owned:
                continue
            packed = {k: v for k, v in group.items() if k not in ("params", "param_names")}
            packed["params"] = []
            for p in owned:
                position = sum(len(g["params"]) for g in local_groups) + len(packed["params"])
                packed["params"].append(position)
                entry = state_dict["state"].get(saved_index[id(p)])
                if entry is not None:
                    local_state[position] = entry
            local_groups.append(packed)
        self.optim.load_state_dict({"state": local_state, "param_groups": local_groups})

    # ---- uneven inputs: a joined rank keeps stepping its shard with the gradients DDP's join hook averaged ----------

    def join_hook(self, **kwargs):
        return _ZeROJoinHook(self)

    @property
    def join_device(self):
        return self.param_groups[0]["params"][0].device

    @property
    def join_process_group(self):
        return self.process_group

    def __repr__(self):
        return f"ZeroRedundancyOptimizer(optimizer_class={self.optimizer_class.__name__}, rank={self.rank}, " \
               f"world_size={self.world_size})"


class _ZeROJoinHook(JoinHook):
    """While others still train, a joined rank steps its shard (DDP's join hook, listed first in ``Join``, has put
    the active ranks' average into ``.grad``) and broadcasts it, as the active ranks' ``step`` expects."""

    def __init__(self, zero):
        self.zero = zero

    def main_hook(self):
        self.zero.step()


def _to_numpy(value):
    if isinstance(value, Tensor):
        array = value._array
        return ("tensor", array.get() if _backend.is_cupy_array(array) else array)
    return ("value", value)


def _from_numpy(packed):
    kind, value = packed
    return Tensor._from_array(np.array(value), None) if kind == "tensor" else value
