"""``DistributedDataParallel``: N ranks train exactly as one process would on their concatenated batches.

Wrap the model once every rank has called ``init_process_group``; each rank then feeds its own share of the batch.
At construction every rank checks that the models agree (count, names, shapes and dtypes of the parameters and
buffers; the error names the first one that differs and which ranks disagree, on every rank), then rank 0's
parameters and buffers are broadcast. In training, the gradient average runs in buckets during backward
(:mod:`dtorch.nn.parallel._reducer`); rank 0's buffers are broadcast before each forward (``broadcast_buffers``).

Collective order, per iteration and identical on every rank: [with ``Join``: the active-rank count, the
iteration's flags] → [once, at the second iteration: the bucket-order broadcast] → [buffers] → forward → [the
used-parameter map] → the buckets in order → [with a comm hook: the missing-gradient count].

>>> import dtorch, dtorch.distributed as dist
>>> dist.init_process_group()                                          # doctest: +SKIP
>>> model = DistributedDataParallel(dtorch.nn.Linear(4, 2))            # doctest: +SKIP
>>> model(dtorch.randn(8, 4)).sum().backward()                         # doctest: +SKIP
"""

import contextlib

import numpy as np

import dtorch.distributed as dist
from dtorch import _backend
from dtorch.autograd.grad_mode import is_grad_enabled
from dtorch.distributed.algorithms.join import Join, Joinable, JoinHook
from dtorch.distributed.utils import _broadcast_coalesced, _group_or_world
from dtorch.nn.modules.module import Module
from dtorch.nn.parallel._reducer import Reducer
from dtorch.tensor import Tensor

__all__ = ["DistributedDataParallel"]

_MB = 1024 * 1024


class DistributedDataParallel(Module, Joinable):
    """Data parallelism over the ranks of ``process_group`` (PyTorch's ``DistributedDataParallel``).

    Args:
        module: the model, already on this rank's device.
        device_ids: None for CPU modules; for a CUDA module, None or the one device it lives on (inputs are moved
            there).
        output_device: accepted for PyTorch's signature; outputs stay where the module puts them.
        dim: the batch dimension (for PyTorch's signature; each rank already holds its own batch).
        broadcast_buffers: broadcast rank 0's buffers before every forward (None: True).
        init_sync: check and broadcast the model at construction.
        process_group: the group to average over (the default group when None).
        bucket_cap_mb: the size cap of every bucket but the first, which is 1 MiB (None: 25).
        find_unused_parameters: find, after each forward, the parameters it did not reach, so that a graph that
            changes between iterations or ranks still reduces (costs a graph walk and one small all_reduce).
        gradient_as_bucket_view: make each ``param.grad`` a view of its bucket (saves a copy and memory).
        static_graph: the graph is the same in every iteration: unused parameters are found once, in the first.
        forward_sync_buffers: PyTorch 2.13's name for ``broadcast_buffers`` (wins when given).

    Raises:
        RuntimeError: the models differ between ranks, or the module has no parameter that requires grad.

    >>> ddp = DistributedDataParallel(model)                # doctest: +SKIP
    >>> list(ddp.state_dict())[:1]                          # doctest: +SKIP
    ['module.weight']
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=None, init_sync=True,
                 process_group=None, bucket_cap_mb=None, find_unused_parameters=False, check_reduction=False,
                 gradient_as_bucket_view=False, static_graph=False, delay_all_reduce_named_params=None,
                 param_to_hook_all_reduce=None, mixed_precision=None, device_mesh=None,
                 skip_all_reduce_unused_params=False, bucket_cap_mb_list=None, batched_grad_copy=False,
                 forward_sync_buffers=None):
        super().__init__()
        Joinable.__init__(self)
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel expects an nn.Module, got {type(module).__name__}")
        for name, value in (("delay_all_reduce_named_params", delay_all_reduce_named_params),
                            ("param_to_hook_all_reduce", param_to_hook_all_reduce),
                            ("mixed_precision", mixed_precision), ("device_mesh", device_mesh)):
            if value is not None:
                raise NotImplementedError(f"DistributedDataParallel: {name} is not supported by dtorch")
        self.module = module
        self.process_group = _group_or_world(process_group)
        ignored = set(getattr(module, "_ddp_params_and_buffers_to_ignore", ()))
        named = [(n, p) for n, p in module.named_parameters() if n not in ignored]
        self._named_params = [(n, p) for n, p in named if p.requires_grad]
        if not self._named_params:
            raise RuntimeError("DistributedDataParallel is not needed when a module doesn't have any parameter that "
                               "requires a gradient.")
        self.device_ids, self.device = _check_devices(named, device_ids)
        self.output_device = output_device
        self.dim = dim
        self.forward_sync_buffers = (forward_sync_buffers if forward_sync_buffers is not None else
                                     True if broadcast_buffers is None else bool(broadcast_buffers))
        # as PyTorch: broadcast_buffers=False also skips the buffers at construction, forward_sync_buffers does not
        init_sync_buffers = forward_sync_buffers is not None or self.forward_sync_buffers
        cap = 25 if bucket_cap_mb is None else bucket_cap_mb
        if bucket_cap_mb_list:
            cap = max(bucket_cap_mb_list)
        if cap <= 0:
            raise ValueError(f"bucket_cap_mb must be positive, got {cap}")
        self.bucket_bytes_cap = int(cap * _MB)
        self.find_unused_parameters = bool(find_unused_parameters)
        self.gradient_as_bucket_view = bool(gradient_as_bucket_view)
        self.static_graph = bool(static_graph)
        self.skip_all_reduce_unused_params = skip_all_reduce_unused_params
        self.require_backward_grad_sync = True
        self.require_forward_param_sync = True
        self._ignored = ignored
        self._comm_hook_registered = False
        self._divide_by_initial_world_size = True
        self._rank = dist.get_rank(self.process_group)
        self._world_size = dist.get_world_size(self.process_group)
        self._rank0 = dist.get_global_rank(self.process_group, 0)  # the source of every broadcast outside Join
        states = named + [(n, b) for n, b in module.named_buffers() if n not in ignored]
        if init_sync:
            _verify_same_model(states, self.process_group)
            _broadcast_coalesced([t for _, t in named] + (self._buffers_to_sync() if init_sync_buffers else []),
                                 self._rank0, self.process_group)
        self.reducer = Reducer([p for _, p in self._named_params], [n for n, _ in self._named_params],
                               self.process_group, self.bucket_bytes_cap, self.find_unused_parameters,
                               self.gradient_as_bucket_view, self.static_graph)

    # PyTorch 2.13 renamed the switch; the old name stays a property over the new one
    @property
    def broadcast_buffers(self):
        return self.forward_sync_buffers

    @broadcast_buffers.setter
    def broadcast_buffers(self, value):
        self.forward_sync_buffers = bool(value)

    def _buffers_to_sync(self):
        return [b for n, b in self.module.named_buffers() if n not in self._ignored]

    def _sync_buffers(self, src):
        """Before a forward (or a joined rank's shadow of one): every rank takes global rank ``src``'s buffers."""
        if self.forward_sync_buffers and self._world_size > 1:
            _broadcast_coalesced(self._buffers_to_sync(), src, self.process_group)

    # ---- forward -----------------------------------------------------------------------------------------------------

    def forward(self, *inputs, **kwargs):
        grad_enabled = is_grad_enabled()
        sync = grad_enabled and self.require_backward_grad_sync
        reducer = self.reducer
        if sync:
            reducer.check_finished()
        buffer_src = self._rank0
        if grad_enabled and self._join_config.enable:
            Join.notify_join_context(self)
            active, buffer_src = self._exchange_iteration_flags(sync, self.process_group)
            reducer.divisor = self._world_size if self._divide_by_initial_world_size else max(active, 1)
        if grad_enabled:
            reducer.maybe_rebuild()
            self._sync_buffers(buffer_src)
        if self.device is not None:
            inputs, kwargs = _move_to(inputs, self.device), _move_to(kwargs, self.device)
        output = self.module(*inputs, **kwargs)
        if sync:
            reducer.prepare_for_backward(output)
        self.require_forward_param_sync = sync
        return output

    def _exchange_iteration_flags(self, sync, group, joined=False):
        """With Join: count the ranks that reduce gradients in this iteration (the joined ranks shadow them when
        it is not 0) and agree on an active rank to broadcast buffers from. Returns ``(count, that global rank)``."""
        flags = np.zeros(1 + self._world_size, np.int64)
        if not joined:
            flags[0] = int(sync)
            flags[1 + self._rank] = 1
        dist.all_reduce(Tensor._from_array(flags, None), group=group)
        active = np.flatnonzero(flags[1:])
        src = dist.get_global_rank(group, int(active[-1]) if active.size else 0)
        return int(flags[0]), src

    # ---- training controls -------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def no_sync(self):
        """Inside this context, forwards are followed by backwards that only accumulate local gradients; the first
        forward after it reduces the accumulated sum.

        >>> with ddp.no_sync():                          # doctest: +SKIP
        ...     ddp(x1).sum().backward()                 # local accumulation only; the next one reduces both
        >>> ddp(x2).sum().backward()                     # doctest: +SKIP
        """
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def register_comm_hook(self, state, hook):
        """Reduce each bucket with ``hook(state, bucket) -> Future`` instead of the built-in average.

        The future's value is the reduced flat tensor (or a one-element list of it). Call once, before training.
        Built-in hooks: :mod:`dtorch.distributed.algorithms.ddp_comm_hooks`.

        >>> from dtorch.distributed.algorithms.ddp_comm_hooks import default_hooks
        >>> ddp.register_comm_hook(None, default_hooks.fp16_compress_hook)      # doctest: +SKIP
        """
        if not callable(hook):
            raise TypeError(f"register_comm_hook: hook must be callable, got {type(hook).__name__}")
        if self._comm_hook_registered:
            raise RuntimeError("register_comm_hook or register_builtin_comm_hook can only be called once.")
        if self.reducer.sync_iterations or self.reducer.armed:
            raise RuntimeError("register_comm_hook must be called before the first training iteration")
        self._comm_hook_registered = True
        self.reducer.comm_hook = hook
        self.reducer.comm_state = state

    def _set_static_graph(self):
        """PyTorch's private switch to static-graph mode after construction (before the first iteration).

        >>> ddp._set_static_graph()                  # doctest: +SKIP
        """
        if self.reducer.sync_iterations:
            raise RuntimeError("_set_static_graph must be called before the first training iteration")
        self.static_graph = True
        self.reducer.static_graph = True
        self.reducer.rebuild_allowed = True

    # ---- uneven inputs -----------------------------------------------------------------------------------------------

    def join(self, divide_by_initial_world_size=True, enable=True, throw_on_early_termination=False):
        """A :class:`~dtorch.distributed.algorithms.Join` context over this model alone, for uneven inputs.

        ``divide_by_initial_world_size=False`` averages over the ranks still active in each iteration instead of
        over the whole group.

        >>> with ddp.join():                             # doctest: +SKIP
        ...     for x in my_uneven_shard:
        ...         ddp(x).sum().backward()
        """
        return Join([self], enable, throw_on_early_termination,
                    divide_by_initial_world_size=divide_by_initial_world_size)

    def join_hook(self, **kwargs):
        """The :class:`~dtorch.distributed.algorithms.JoinHook` that shadows this model's collectives on a joined
        rank (``Join`` calls it; ``divide_by_initial_world_size`` is read from ``kwargs``).

        >>> hook = ddp.join_hook(divide_by_initial_world_size=True)       # doctest: +SKIP
        """
        self._divide_by_initial_world_size = kwargs.get("divide_by_initial_world_size", True)
        return _DDPJoinHook(self)

    @property
    def join_device(self):
        """The device of the module (where ``Join``'s collectives for it run)."""
        return self.device if self.device is not None else _backend.CPU

    @property
    def join_process_group(self):
        """The group gradients are averaged over."""
        return self.process_group

    def extra_repr(self):
        return ""


class _DDPJoinHook(JoinHook):
    """A joined rank's side of DDP: shadow the forward's flags and buffer broadcast and the backward's buckets
    (zeros in, the active ranks' average written into ``.grad``, so a ZeroRedundancyOptimizer joined after DDP can
    step its shard); at the end take the parameters of a rank that was active until the last iteration."""

    def __init__(self, ddp):
        self.ddp = ddp

    def main_hook(self):
        ddp = self.ddp
        active, buffer_src = ddp._exchange_iteration_flags(False, ddp.process_group, joined=True)
        ddp.reducer.maybe_rebuild()
        ddp._sync_buffers(buffer_src)
        if active:
            ddp.reducer.divisor = ddp._world_size if ddp._divide_by_initial_world_size else active
            ddp.reducer.shadow_backward()

    def post_hook(self, is_last_joiner):
        ddp = self.ddp
        mine = dist.get_global_rank(ddp.process_group, ddp._rank) if is_last_joiner else -1
        src = Tensor._from_array(np.array([mine], np.int64), None)
        dist.all_reduce(src, op=dist.ReduceOp.MAX, group=ddp.process_group)
        states = [p for _, p in ddp.module.named_parameters()] + ddp._buffers_to_sync()
        _broadcast_coalesced(states, int(src._array[0]), ddp.process_group)


# ---- helpers -------------------------------------------------------------------------------------------------------


def _check_devices(named, device_ids):
    devices = {str(p.device) for _, p in named}
    if len(devices) > 1:
        if device_ids is not None:
            raise ValueError(f"DistributedDataParallel device_ids and output_device arguments only work with "
                             f"single-device modules, but got device_ids {device_ids} and module parameters on "
                             f"{sorted(devices)}")
        return None, None
    device = next(iter(devices)) if devices else "cpu"
    if device == "cpu":
        if device_ids:
            raise ValueError(f"DistributedDataParallel device_ids and output_device arguments only work with "
                             f"single-device/multiple-device GPU modules or CPU modules, but got device_ids "
                             f"{device_ids} and module parameters {{device(type='cpu')}}.")
        return None, None
    if device_ids is None:
        return None, None
    ids = [d.index if hasattr(d, "index") else int(d) for d in device_ids]
    if len(ids) != 1 or f"cuda:{ids[0]}" != device:
        raise ValueError(f"DistributedDataParallel: device_ids must list the one device the module lives on "
                         f"({device}), got {device_ids}")
    return ids, _backend.as_device(device)


def _move_to(value, device):
    if isinstance(value, Tensor):
        return value.to(device)
    if isinstance(value, tuple):
        return tuple(_move_to(v, device) for v in value)
    if isinstance(value, list):
        return [_move_to(v, device) for v in value]
    if isinstance(value, dict):
        return {k: _move_to(v, device) for k, v in value.items()}
    return value


def _describe(entry):
    if entry is None:
        return "no such parameter"
    name, shape, dtype = entry
    return f"'{name}' of shape {list(shape)} and dtype {dtype}"


def _verify_same_model(named, group):
    """Every rank gathers every rank's (name, shape, dtype) list and raises the same error where they differ."""
    world = dist.get_world_size(group)
    mine = [(name, tuple(t.shape), str(t.dtype)) for name, t in named]
    everyone = [None] * world
    dist.all_gather_object(everyone, mine, group=group)
    ranks = [dist.get_global_rank(group, r) for r in range(world)]
    counts = [len(entries) for entries in everyone]
    for index in range(max(counts)):
        entries = [entries[index] if index < len(entries) else None for entries in everyone]
        if all(entry == entries[0] for entry in entries):
            continue
        sides = {}
        for rank, entry in zip(ranks, entries):
            sides.setdefault(entry, []).append(rank)
        detail = "; ".join(f"ranks {who} have {_describe(entry)}" for entry, who in sides.items())
        count_note = ""
        if len(set(counts)) > 1:
            count_note = (" The ranks also hold different numbers of parameters and buffers: " +
                          ", ".join(f"rank {r}: {c}" for r, c in zip(ranks, counts)) + ".")
        raise RuntimeError(
            f"DistributedDataParallel: DDP expects the same model on every rank, but parameter or buffer number "
            f"{index} differs: {detail}.{count_note} Build the same model on every rank before wrapping it."
        )
