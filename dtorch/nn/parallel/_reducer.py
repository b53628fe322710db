"""The gradient reducer behind ``DistributedDataParallel``: buckets, per-parameter hooks, the end-of-backward wait.

How one iteration runs:

1. ``prepare_for_backward`` (at the end of DDP's forward) arms the reducer; with ``find_unused_parameters`` it walks
   the autograd graph from the outputs to find the parameters the forward did not reach.
2. During backward, each parameter's post-accumulate-grad hook copies its gradient into its slot of a bucket's
   flat buffer (with ``gradient_as_bucket_view`` the gradient already *is* that slot). The first hook of the
   iteration queues the end-of-backward callback and marks the unused parameters ready.
3. When a bucket's last gradient has arrived and every bucket before it has been launched, its
   ``all_reduce(async_op=True)`` (a sum) starts, or the registered comm hook runs. Buckets are therefore launched in
   the same order on every rank, while backward still computes the earlier layers.
4. The callback (``_finalize``) launches what is left, waits for every bucket in order and writes the sums divided
   by the world size back into ``param.grad`` (dividing while copying: one pass over the bucket).

Tail buckets: a bucket whose gradients arrived less than ``TAIL_SECONDS`` before the end of the previous backward
has nothing left to overlap with; from then on it is reduced on the calling thread in the callback (after the
buckets in flight, so the order of the collectives is unchanged), which saves two thread hand-overs per bucket.

Buckets: parameters are taken in reverse registration order (roughly the order backward produces their gradients),
grouped by dtype and device, and cut when a bucket reaches its cap: 1 MiB for the first one (so communication starts
early), ``bucket_cap_mb`` for the rest. After the first iteration the buckets are rebuilt once from the order in
which gradients actually became ready on rank 0, broadcast so that every rank follows it.

Unused parameters without ``find_unused_parameters``: the last bucket carries one extra element, each rank's count
of parameters that got no gradient, so *every* rank learns at the end of backward that some rank is missing one and
raises the same error naming it (with a comm hook, which may transform the buffer, that count travels in a separate
one-element all-reduce instead).

The reducer works on the arrays' own device through ``xp``; the collectives layer stages CuPy arrays through host
memory for the MPI transport. Not thread-safe: one training loop drives it.
"""

import time

import numpy as np

import dtorch.distributed as dist
from dtorch import _backend, _kernels
from dtorch.autograd.engine import queue_callback
from dtorch.distributed.algorithms.grad_bucket import GradBucket
from dtorch.tensor import Tensor

FIRST_BUCKET_BYTES = 1024 * 1024  # PyTorch's dist._DEFAULT_FIRST_BUCKET_BYTES
# a bucket that became ready less than this before backward ended has nothing left to overlap with: in the next
# iteration it is reduced on the calling thread in the end-of-backward callback, which saves the hand-over to the
# communication thread and back (measured in bench/bench_ddp.py: it is what separates an MLP step from the plain
# step plus one all_reduce)
TAIL_SECONDS = 0.25e-3


def compute_bucket_assignment(arrays, order, limits):
    """Cut the parameters, taken in ``order``, into buckets: one open bucket per (dtype, device), closed once its
    bytes reach the current limit (``limits[0]`` for a key's first bucket, ``limits[-1]`` after). A key's last
    bucket, when smaller than ``limits[0] / 16``, joins the one before it: its gradients come last, right after
    that bucket's (a layer's bias after its weight), and a collective of its own would only add a round trip.
    Returns lists of indices, sorted by their first position in ``order`` (so buckets launch in that order).

    >>> import numpy as np
    >>> arrays = [np.zeros(4, np.float32), np.zeros(4, np.float32), np.zeros(4, np.float64)]
    >>> compute_bucket_assignment(arrays, [2, 1, 0], (20, 40))
    [[2], [1, 0]]
    >>> compute_bucket_assignment([np.zeros(64), np.zeros(1)], [0, 1], (512, 512))   # 8 bytes < 512 / 16
    [[0, 1]]
    """
    per_key = {}  # key -> (closed buckets, open bucket, its bytes)
    for index in order:
        array = arrays[index]
        key = (array.dtype.str, str(_backend.device_of(array)))
        closed, indices, size = per_key.get(key, ([], [], 0))
        indices.append(index)
        size += array.nbytes
        if size >= limits[min(len(closed), len(limits) - 1)]:
            closed.append(indices)
            indices, size = [], 0
        per_key[key] = (closed, indices, size)
    buckets = []
    for closed, indices, _ in per_key.values():
        if indices:
            closed.append(indices)
        if len(closed) > 1 and sum(arrays[i].nbytes for i in closed[-1]) < limits[0] / 16:
            closed[-2].extend(closed.pop())
        buckets.extend(closed)
    position = {index: place for place, index in enumerate(order)}
    buckets.sort(key=lambda indices: position[indices[0]])
    return buckets


class _Bucket:
    """One flat buffer and the parameters whose gradients it holds."""

    __slots__ = ("index", "members", "flat", "tensor", "views", "numel", "pending", "work", "is_last", "ready_at")

    def __init__(self, index, members, arrays, is_last):
        xp = _backend.xp_of(arrays[members[0]])
        first = arrays[members[0]]
        self.index = index
        self.members = members
        self.numel = sum(arrays[i].size for i in members)
        self.is_last = is_last
        # the last bucket has one more element: the count of ranks that are missing a gradient (see module doc)
        with _on_device(first):
            self.flat = xp.zeros(self.numel + (1 if is_last else 0), dtype=first.dtype)
        self.tensor = Tensor._from_array(self.flat, None)
        self.views = []
        offset = 0
        for i in members:
            size = arrays[i].size
            self.views.append(self.flat[offset:offset + size].reshape(arrays[i].shape))
            offset += size
        self.pending = len(members)
        self.work = None
        self.ready_at = 0.0  # when its last gradient arrived (perf_counter), for the tail rule


def _on_device(array):
    """A context that makes ``array``'s GPU current, so new buffers land beside the parameters."""
    if type(array) is np.ndarray or not _backend.is_cupy_array(array):
        return _NullContext()
    return array.device


class _NullContext:
    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False


def unused_parameters(outputs, params):
    """Indices of ``params`` that the autograd graph of ``outputs`` does not reach (walked without recursion)."""
    reached = set()
    seen = set()
    stack = []
    for tensor in _tensors_in(outputs):
        if tensor.grad_fn is not None:
            stack.append(tensor.grad_fn)
        elif tensor.requires_grad:
            reached.add(id(tensor))
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for edge in node.edges:
            if edge is None:
                continue
            if isinstance(edge, Tensor):
                reached.add(id(edge))
            elif id(edge) not in seen:
                stack.append(edge)
    return [i for i, p in enumerate(params) if id(p) not in reached]


def _tensors_in(value):
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Tensor):
            yield item
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif hasattr(item, "__dataclass_fields__"):
            stack.extend(getattr(item, name) for name in item.__dataclass_fields__)


class Reducer:
    """Averages the gradients of ``params`` over ``process_group`` in buckets overlapped with backward.

    Args:
        params: the parameters to reduce (each requires grad), in registration order.
        names: their qualified names, for error messages.
        process_group: the group to average over.
        bucket_bytes_cap: the cap of every bucket but the first.
        find_unused_parameters, gradient_as_bucket_view, static_graph: DDP's options of those names.
    """

    def __init__(self, params, names, process_group, bucket_bytes_cap, find_unused_parameters=False,
                 gradient_as_bucket_view=False, static_graph=False, first_bucket_bytes=FIRST_BUCKET_BYTES):
        self.params = params
        self.names = names
        self.group = process_group
        self.world = dist.get_world_size(process_group)
        self.rank = dist.get_rank(process_group)
        self.global_rank = dist.get_global_rank(process_group, self.rank)
        self.limits = (first_bucket_bytes, bucket_bytes_cap)
        self.find_unused_parameters = find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.static_graph = static_graph
        self.comm_hook = None
        self.comm_state = None
        self.divisor = self.world  # DDP's join(divide_by_initial_world_size=False) changes it per iteration
        # the layout is rebuilt once from the observed order, except where the graph may change between iterations
        self.rebuild_allowed = static_graph or not find_unused_parameters
        self.rebuilt = False
        self.layout_changes = 0
        self.sync_iterations = 0  # iterations whose gradients were reduced
        self.ready_order = []
        self.record_order = False
        self.expect_hooks = False
        self.armed = False
        self.ready = [False] * len(params)
        self.unused_local = []
        self.static_unused_global = None  # static_graph: the parameters no rank used in the first iteration
        self.used_map = None
        self.used_work = None
        self.missing_flag = 0
        self.next_bucket = 0
        self._build(list(reversed(range(len(params)))))
        self._handles = [p.register_post_accumulate_grad_hook(self._hook_for(i)) for i, p in enumerate(params)]

    # ---- layout ------------------------------------------------------------------------------------------------------

    def _build(self, order):
        arrays = [p._array for p in self.params]
        assignment = compute_bucket_assignment(arrays, order, self.limits)
        self.buckets = [_Bucket(b, members, arrays, b == len(assignment) - 1) for b, members in enumerate(assignment)]
        self.defer_from = len(self.buckets)  # buckets from this one on are reduced in the callback (TAIL_SECONDS)
        self.slot = [None] * len(self.params)  # parameter index -> (bucket, view)
        for bucket in self.buckets:
            for i, view in zip(bucket.members, bucket.views):
                self.slot[i] = (bucket, view)
                grad = self.params[i].grad
                if self.gradient_as_bucket_view and grad is not None:
                    view[...] = grad._array
                    self.params[i].grad = Tensor._from_array(view, None)

    def layout(self):
        """The bucket assignment: one list of parameter indices per bucket, in launch order."""
        return [list(bucket.members) for bucket in self.buckets]

    def maybe_rebuild(self):
        """Before a forward: rebuild the buckets once, after the first reduced iteration, from the order in which
        rank 0 saw the gradients become ready (a broadcast every rank takes part in). Returns whether it ran."""
        if self.rebuilt or not self.rebuild_allowed or self.sync_iterations == 0:
            return False
        self.rebuilt = True
        seen = set(self.ready_order)
        order = self.ready_order + [i for i in reversed(range(len(self.params))) if i not in seen]
        order_tensor = Tensor._from_array(np.asarray(order, dtype=np.int64), None)
        dist.broadcast(order_tensor, src=dist.get_global_rank(self.group, 0), group=self.group)
        order = [int(i) for i in order_tensor._array]
        arrays = [p._array for p in self.params]
        if compute_bucket_assignment(arrays, order, self.limits) != self.layout():
            self._build(order)
            self.layout_changes += 1
        self.ready_order = []
        return True

    # ---- one iteration -----------------------------------------------------------------------------------------------

    def check_finished(self):
        """Before a forward: the previous iteration's reduction must have finished (a backward that raised midway
        leaves buckets in flight, and the ranks are then out of step)."""
        if self.armed:
            pending = [self.names[i] for i, ready in enumerate(self.ready) if not ready]
            for bucket in self.buckets[:self.next_bucket]:
                if bucket.work is None and self.comm_hook is None:
                    # a ready tail bucket: another rank may have sent it already, so send it too (ranks in step)
                    dist.all_reduce(bucket.tensor, group=self.group)
            for work in [b.work for b in self.buckets] + [self.used_work]:
                if work is not None:  # a bucket still in flight would be overwritten by the next backward
                    work.wait()
            self._reset()
            raise RuntimeError(
                "Expected to have finished reduction in the prior iteration before starting a new one. The last "
                f"backward on rank {self.global_rank} stopped before every gradient was reduced (parameters still "
                f"pending: {', '.join(pending) or 'none'}); the ranks are now out of step. Make sure backward runs "
                "to the end on every rank in every iteration."
            )

    def prepare_for_backward(self, outputs):
        """After a forward that will be followed by a reduced backward: arm the hooks, find unused parameters."""
        self.expect_hooks = True
        self.record_order = self.rebuild_allowed and not self.rebuilt and self.sync_iterations == 0
        if self.find_unused_parameters or (self.static_graph and self.sync_iterations == 0):
            self.unused_local = unused_parameters(outputs, self.params)
            used = np.ones(len(self.params), np.int32)
            used[self.unused_local] = 0
            self.used_map = used
        elif not self.static_graph:
            self.unused_local = []
            self.used_map = None
        else:
            self.used_map = None  # static graph: the first iteration's unused set stays

    def _hook_for(self, index):
        def hook(param):
            if self.expect_hooks:
                self._mark_ready(index)

        return hook

    def _arm(self):
        """The first gradient of the iteration: queue the end-of-backward wait, start the used-map all_reduce,
        and mark the parameters that the forward did not use."""
        self.armed = True
        queue_callback(self._finalize)
        if self.used_map is not None:
            self.used_work = dist.all_reduce(Tensor._from_array(self.used_map, None), group=self.group,
                                             async_op=True)
        for i in self.unused_local:
            if not self.ready[i]:
                self._mark_ready(i)

    def _mark_ready(self, index):
        if not self.armed:
            self._arm()
        if self.ready[index]:
            raise RuntimeError(
                f"Expected to mark a variable ready only once. Parameter {self.names[index]} on rank "
                f"{self.global_rank} got its gradient twice in one backward (a module reused in one forward with "
                "activation checkpointing, or two backward passes through one forward). Pass static_graph=True "
                "to DistributedDataParallel if the graph is the same in every iteration."
            )
        self.ready[index] = True
        if self.record_order:
            self.ready_order.append(index)
        bucket, view = self.slot[index]
        param = self.params[index]
        grad = param.grad
        if grad is None:
            view[...] = 0
        elif grad._array is not view:
            view[...] = grad._array
            if self.gradient_as_bucket_view:
                param.grad = Tensor._from_array(view, None)
        bucket.pending -= 1
        if bucket.pending == 0:
            self._launch_ready()

    def _launch_ready(self):
        buckets = self.buckets
        while self.next_bucket < len(buckets) and buckets[self.next_bucket].pending == 0:
            bucket = buckets[self.next_bucket]
            bucket.ready_at = time.perf_counter()
            if self.next_bucket < self.defer_from or self.comm_hook is not None:
                self._launch(bucket)
            self.next_bucket += 1

    def _launch(self, bucket):
        if self.comm_hook is None:
            if bucket.is_last:
                bucket.flat[-1] = self.missing_flag
            # the sum is divided by the world size while it is copied back into .grad (one pass, not two)
            bucket.work = dist.all_reduce(bucket.tensor, group=self.group, async_op=True)
        else:
            bucket.work = self.comm_hook(self.comm_state, self.grad_bucket(bucket))

    def grad_bucket(self, bucket):
        """The :class:`GradBucket` a comm hook sees: the flat buffer without the reducer's count element."""
        flat = bucket.flat[:bucket.numel]
        return GradBucket(bucket.index, Tensor._from_array(flat, None),
                          [Tensor._from_array(v, None) for v in bucket.views],
                          [self.params[i] for i in bucket.members], bucket.is_last)

    def _finalize(self):
        """End of backward: launch what is left, wait for every bucket, write the averages into ``.grad``."""
        try:
            missing = [i for i, ready in enumerate(self.ready) if not ready]
            if missing:
                lenient = self.find_unused_parameters or self.static_graph
                if not lenient:
                    self.missing_flag = 1
                for i in missing:
                    # zeros (or the gradient accumulated so far) keep this rank's collectives in step with the others
                    self._mark_ready(i)
            if self.next_bucket != len(self.buckets):
                raise RuntimeError("DistributedDataParallel: internal error, buckets left unlaunched")
            end = time.perf_counter()
            for bucket in self.buckets:
                if bucket.work is None:  # a tail bucket: reduced here, in order after the ones in flight
                    if bucket.is_last:
                        bucket.flat[-1] = self.missing_flag
                    dist.all_reduce(bucket.tensor, group=self.group)
                    continue
                result = bucket.work.wait()
                if self.comm_hook is not None:
                    self._take_hook_result(bucket, result)
            globally_unused = self._globally_unused()
            missing_ranks = self._missing_count()
            if missing_ranks:
                self._raise_unused(missing if self.missing_flag else [])
            self._write_back(globally_unused)
            self.sync_iterations += 1
            # the tail rule for the next iteration (each rank decides for itself: the collectives' order is the same)
            self.defer_from = next((b.index for b in self.buckets if end - b.ready_at < TAIL_SECONDS),
                                   len(self.buckets))
        finally:
            self._reset()

    def _take_hook_result(self, bucket, result):
        if isinstance(result, (list, tuple)):
            if len(result) != 1:
                raise RuntimeError(f"the DDP communication hook's future must hold one tensor, got {len(result)}")
            result = result[0]
        if not isinstance(result, Tensor):
            raise RuntimeError(f"the DDP communication hook's future must hold a Tensor, got "
                               f"{type(result).__name__}")
        array = result._array
        if array.size != bucket.numel:
            raise RuntimeError(f"the DDP communication hook returned a tensor of {array.size} elements for bucket "
                               f"{bucket.index} of {bucket.numel}")
        target = bucket.flat[:bucket.numel]
        if array is not target:
            target[...] = array.reshape(-1).astype(target.dtype, copy=False)

    def _globally_unused(self):
        if self.used_work is not None:
            self.used_work.wait()
            unused = set(np.flatnonzero(self.used_map == 0).tolist())
            if self.static_graph and self.static_unused_global is None:
                self.static_unused_global = unused
            return unused
        if self.static_graph and self.static_unused_global is not None:
            return self.static_unused_global
        return set()

    def _missing_count(self):
        """How many ranks lacked a gradient this iteration (every rank learns the same count)."""
        if self.comm_hook is None:
            last = self.buckets[-1].flat
            count = float(last[-1])
            last[-1] = 0
            return int(round(count))
        flag = Tensor._from_array(np.array([self.missing_flag], np.int64), None)
        dist.all_reduce(flag, group=self.group)
        return int(flag._array[0])

    def _raise_unused(self, missing):
        names = [self.names[i] for i in missing]
        everyone = [None] * self.world
        dist.all_gather_object(everyone, (self.global_rank, names, missing), group=self.group)
        lines = []
        for rank, rank_names, rank_indices in everyone:
            if rank_names:
                lines.append(f"Parameters which did not receive grad for rank {rank}: {', '.join(rank_names)}")
                lines.append(f"Parameter indices which did not receive grad for rank {rank}: "
                             f"{' '.join(str(i) for i in rank_indices)}")
        raise RuntimeError(
            "Expected to have finished reduction in the prior iteration before starting a new one. This error "
            "indicates that your module has parameters that were not used in producing loss. You can enable unused "
            "parameter detection by passing the keyword argument `find_unused_parameters=True` to "
            "`dtorch.nn.parallel.DistributedDataParallel`, and by making sure all `forward` function outputs "
            "participate in calculating loss. If you already have done the above, then the distributed data "
            "parallel module wasn't able to locate the output tensors in the return value of your module's "
            "`forward` function.\n" + "\n".join(lines)
        )

    def _write_back(self, globally_unused):
        params = self.params
        as_view = self.gradient_as_bucket_view
        divisor = self.divisor if self.comm_hook is None else None  # a hook returns the average itself
        for bucket in self.buckets:
            if as_view and divisor is not None:
                bucket.flat[:bucket.numel] /= divisor
            if not as_view and divisor is not None and self._unpack_fused(bucket, globally_unused, divisor):
                continue
            xp = _backend.xp_of(bucket.flat)
            for i, view in zip(bucket.members, bucket.views):
                if i in globally_unused:
                    continue  # no rank produced a gradient: leave .grad as it was, as PyTorch does
                param = params[i]
                grad = param.grad
                if as_view:
                    if grad is None or grad._array is not view:
                        param.grad = Tensor._from_array(view, None)
                elif grad is None or grad.grad_fn is not None or not grad._array.flags.writeable:
                    param.grad = Tensor._from_array(view / divisor if divisor is not None else view.copy(), None)
                elif divisor is not None:
                    xp.divide(view, divisor, out=grad._array)
                else:
                    grad._array[...] = view

    def _unpack_fused(self, bucket, globally_unused, divisor):
        """On CuPy float32, write a bucket's averages into its members' gradients in one kernel launch
        (kernels/bucket.cu); True when it did. The loop in ``_write_back`` is the reference it replaces, and it
        runs whenever a member needs more than a copy (no gradient yet, a read-only or non-leaf one, an unused
        parameter)."""
        if _kernels.select_kernel(bucket.flat) != "kernel":
            return False
        targets = []
        for i, view in zip(bucket.members, bucket.views):
            grad = self.params[i].grad
            if (i in globally_unused or grad is None or grad.grad_fn is not None or grad._array is view
                    or not grad._array.flags.writeable or not grad._array.flags.c_contiguous):
                return False
            targets.append(grad._array)
        return _kernels.bucket_unpack(bucket.flat[:bucket.numel], targets, 1.0 / divisor) == "kernel"

    def _reset(self):
        self.expect_hooks = False
        self.armed = False
        self.record_order = False
        self.ready = [False] * len(self.params)
        for bucket in self.buckets:
            bucket.pending = len(bucket.members)
            bucket.work = None
        self.next_bucket = 0
        self.missing_flag = 0
        self.used_work = None

    # ---- joined ranks ------------------------------------------------------------------------------------------------

    def shadow_backward(self):
        """On a rank that has joined: issue the collectives of one reduced backward with zero gradients."""
        if self.find_unused_parameters or (self.static_graph and self.sync_iterations == 0):
            self.used_map = np.zeros(len(self.params), np.int32)
            self.used_work = dist.all_reduce(Tensor._from_array(self.used_map, None), group=self.group,
                                             async_op=True)
        for bucket in self.buckets:
            bucket.flat[...] = 0
            if self.comm_hook is None:
                dist.all_reduce(bucket.tensor, group=self.group)
            else:
                self._take_hook_result(bucket, self.comm_hook(self.comm_state, self.grad_bucket(bucket)).wait())
        if self.comm_hook is not None:
            dist.all_reduce(Tensor._from_array(np.zeros(1, np.int64), None), group=self.group)
        else:
            self.buckets[-1].flat[-1] = 0
        self._write_back(self._globally_unused())
        self.used_work = None
        self.sync_iterations += 1

    def remove_hooks(self):
        for handle in self._handles:
            handle.remove()
        self._handles = []
