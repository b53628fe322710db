"""``Optimizer``: parameter groups, per-parameter state, ``zero_grad``, ``state_dict`` and the two update paths.

PyTorch's surface outside (``param_groups``, ``state[p]``, ``step(closure)``, ``state_dict()`` with integer
parameter ids); inside, every optimizer supplies one update function on raw arrays (``sgd_update``,
``adam_update``, ...) and this base class runs it in one of two ways:

- the **per-parameter loop** (``foreach=False``, and whenever the fast path does not apply): the update function
  once per parameter, on ``p._array``, ``p.grad._array`` and that parameter's state arrays. This is the reference.
- the **flat-buffer path** (the default, ``foreach=None`` or ``True``): the parameters of a group that share a dtype
  and device are moved, once, into one contiguous array (each ``p._array`` is rebound to a view of its slice, same
  shape, dtype and values) and so is each state array; a step gathers the gradients into one flat array and calls
  the *same* update function once on the flat arrays. Elementwise math gives the same bits either way, and a test
  holds the two paths equal. The cost per step no longer grows with the number of tensors.

What the flat path assumes, and checks before each step (falling back to the loop, or rebuilding, when not so):
every parameter of the group has a gradient, the parameters are floating point, each ``p._array`` and each state
tensor's ``._array`` is still the view it set up, and the group's state is uniform (all parameters fresh, or all
with the same state entries and equal step counts). Because it rebinds ``p._array`` once, NumPy views of a
parameter's array taken before the first step no longer alias it; pass ``foreach=False`` where that matters.

Updates happen in place (``p._array`` keeps its identity after the first flat step) and bump each parameter's
version counter. Nothing here is thread-safe: one thread steps an optimizer.
"""

import collections
import copy
import itertools

import numpy as np

from dtorch import _backend
from dtorch._errors import type_name as _type_name
from dtorch.autograd.grad_mode import enable_grad
from dtorch.tensor import Tensor
from dtorch._warnings import warn as _warn

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Marks a hyperparameter every param group must give (PyTorch's ``optim.optimizer.required``)."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


# elements per update call on the CPU flat path: a float32 piece and the update's temporaries fit in L2
CPU_CHUNK = 1 << 16


def _wrap(array):
    return Tensor._from_array(array, None)


class Optimizer:
    """Base class of the optimizers: holds ``param_groups``, ``state`` and ``defaults``.

    A subclass passes its hyperparameters as ``defaults`` and describes its update through four members:
    ``_has_step`` (keeps a per-parameter ``step`` count, a 0-dim float32 tensor as in PyTorch), ``_array_keys(group)``
    (names of the per-parameter state arrays, in the update function's order), ``_initial_value(key, group)`` (fill
    value of a fresh state array, or None for one the update creates on first use, like SGD's momentum buffer) and
    ``_update(param, grad, arrays, step, group)`` (runs the update function in place, returns the state arrays).

    Args:
        params: an iterable of Tensors, of ``(name, Tensor)`` pairs, or of dicts defining parameter groups.
        defaults: default hyperparameters for groups that do not set them.

    >>> import dtorch
    >>> w = dtorch.nn.Parameter(dtorch.ones(2))
    >>> opt = dtorch.optim.SGD([{"params": [w], "lr": 0.5}], lr=0.1)
    >>> opt.param_groups[0]["lr"], opt.defaults["lr"]
    (0.5, 0.1)
    """

    _has_step = True
    # names among ``_array_keys`` that are per-parameter 0-dim float32 scalars (NAdam's ``mu_product``, ASGD's
    # ``eta`` and ``mu``), created like ``step``; the update changes them once per step, so such an optimizer
    # always runs the per-parameter loop (the flat path calls the update once per cache-sized piece)
    _scalar_keys = ()

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.state = collections.defaultdict(dict)
        self.param_groups = []
        self._flat = {}  # id(group) -> list of _FlatBucket, the flat-path cache
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, but got "
                f"{type(params).__module__}.{type(params).__name__}"
            )
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(dict(group))

    # ---- what a subclass describes ----------------------------------------------------------------------------------

    def _array_keys(self, group):
        raise NotImplementedError

    def _initial_value(self, key, group):
        return 0.0

    def _update(self, param, grad, arrays, step, group):
        raise NotImplementedError

    # ---- groups -----------------------------------------------------------------------------------------------------

    def add_param_group(self, param_group):
        """Add a group of parameters with its own hyperparameters (missing ones come from ``defaults``).

        Args:
            param_group (dict): ``{"params": [...], "lr": ..., ...}``.

        Raises:
            ValueError: a required hyperparameter is missing, or a parameter is already in another group.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the ordering of tensors "
                "in sets will change between runs. Please use a list instead."
            )
        else:
            param_group["params"] = list(params)

        extracted, names = [], []
        for item in param_group["params"]:
            if isinstance(item, tuple):
                names.append(item[0])
                extracted.append(item[1])
            else:
                extracted.append(item)
        if names and len(names) != len(extracted):
            raise ValueError("all optimizer params should be with/without names. Some param names are missing")
        param_group["params"] = extracted
        if names:
            param_group["param_names"] = names

        for param in param_group["params"]:
            if not isinstance(param, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {_type_name(param)}")
            if param.grad_fn is not None:
                raise ValueError("can't optimize a non-leaf Tensor")

        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            param_group.setdefault(name, default)

        ids = [id(p) for p in param_group["params"]]
        if len(ids) != len(set(ids)):
            _warn(
                "optimizer contains a parameter group with duplicate parameters; in future, this will cause an "
                "error; see github.com/pytorch/pytorch/issues/40967 for more information",
            )
        existing = set()
        for group in self.param_groups:
            existing.update(id(p) for p in group["params"])
        if not existing.isdisjoint(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)
        self._flat.clear()

    # ---- gradients ----------------------------------------------------------------------------------------------------

    def zero_grad(self, set_to_none=True):
        """Reset the gradients of all optimized parameters.

        Args:
            set_to_none (bool): drop the gradients (``p.grad = None``, the default, which frees their memory)
                instead of filling them with zeros.
        """
        for group in self.param_groups:
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    grad.grad_fn = None
                    grad.requires_grad = False
                    grad._array.fill(0)

    # ---- the update -----------------------------------------------------------------------------------------------

    def step(self, closure=None):
        """Update every parameter that has a gradient, once.

        Args:
            closure (callable, optional): re-evaluates the model and returns the loss; run with grad enabled.

        Returns:
            the closure's loss, or None.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._step_group(group)
        return loss

    def _step_group(self, group):
        if group.get("differentiable"):
            raise RuntimeError("dtorch optimizers update raw arrays in place: differentiable=True is not supported")
        params = group["params"]
        use_flat = (group.get("foreach") is not False or bool(group.get("fused"))) and not self._scalar_keys
        if use_flat and params and all(p.grad is not None for p in params):
            buckets = self._flat_buckets(group)
            if buckets is not None:
                for bucket in buckets:
                    self._step_bucket(bucket, group)
                return
        self._flat.pop(id(group), None)  # the loop may leave steps uneven: rebuild (and recheck) next time
        self._step_loop(group)

    def _step_loop(self, group):
        """The reference path: the update function once per parameter."""
        keys = self._array_keys(group)
        stateful = bool(keys) or self._has_step
        for p in group["params"]:
            if p.grad is None:
                continue
            step = None
            arrays = []
            if stateful:
                state = self.state[p]
                if not state:
                    self._init_state(p, group, state)
                if self._has_step:
                    step = _increment(state)
                arrays = [_array_or_none(state.get(key)) for key in keys]
            new = self._update(p._array, p.grad._array, arrays, step, group)
            for key, old, array in zip(keys, arrays, new):
                if old is None and array is not None:
                    state[key] = _wrap(array)
            p._bump_version()

    def _init_state(self, p, group, state):
        """Fresh state for one parameter: step 0 (a float32 0-dim tensor, as PyTorch keeps it) and filled arrays."""
        if self._has_step:
            state["step"] = _wrap(np.zeros((), dtype=np.float32))
        xp = _backend.xp_of(p._array)
        for key in self._array_keys(group):
            value = self._initial_value(key, group)
            if key in self._scalar_keys:
                state[key] = _wrap(np.array(value, dtype=np.float32))
            elif value is not None:
                state[key] = _wrap(xp.full(p._array.shape, value, dtype=p._array.dtype))

    # ---- the flat-buffer path -----------------------------------------------------------------------------------------

    def _flat_buckets(self, group):
        buckets = self._flat.get(id(group))
        if buckets is not None and _buckets_valid(buckets, group, self.state):
            return buckets
        buckets = self._build_flat(group)
        if buckets is None:
            self._flat.pop(id(group), None)
        else:
            self._flat[id(group)] = buckets
        return buckets

    def _build_flat(self, group):
        """Move a group's parameters and state into flat buffers per (dtype, device); None where that can't be done."""
        params = group["params"]
        keys = self._array_keys(group)
        if len({id(p) for p in params}) != len(params):
            return None
        for p in params:
            if p._array.dtype.kind != "f" or p.grad is None or p.grad._array.shape != p._array.shape:
                return None
        states = [self.state.get(p) for p in params]
        fresh = [not s for s in states]
        if any(fresh) and not all(fresh):
            return None
        present = {}
        if not fresh[0]:
            for key in keys:
                have = [_array_or_none(s.get(key)) is not None for s in states]
                if any(have) and not all(have):
                    return None
                present[key] = have[0]
            if self._has_step:
                if not all(isinstance(s.get("step"), Tensor) for s in states):
                    return None
                first = float(states[0]["step"]._array)
                if any(float(s["step"]._array) != first for s in states):
                    return None
        by_kind = collections.OrderedDict()
        for p in params:
            by_kind.setdefault((p._array.dtype, _backend.device_of(p._array)), []).append(p)
        buckets = []
        for members in by_kind.values():
            buckets.append(_FlatBucket(self, group, members, keys, fresh[0], present))
        return buckets

    def _step_bucket(self, bucket, group):
        step = None
        if self._has_step:
            bucket.steps += 1
            step = float(bucket.steps[0])
        if any(array is None for array in bucket.arrays):
            # a state array the update creates on first use (SGD's momentum buffer): one call over everything
            new = self._update(bucket.param, bucket.gather_grads(), bucket.arrays, step, group)
            for index, (old, array) in enumerate(zip(bucket.arrays, new)):
                if old is None and array is not None:
                    bucket.adopt(index, array)
        else:
            param, arrays, chunk = bucket.param, bucket.arrays, bucket.chunk
            for start, stop, grad in bucket.segment_grads():
                for low in range(start, stop, chunk):
                    high = min(low + chunk, stop)
                    self._update(param[low:high], grad[low - start : high - start],
                                 [array[low:high] for array in arrays], step, group)
        for p in bucket.params:
            p._bump_version()

    # ---- state_dict -------------------------------------------------------------------------------------------------

    def _state_dict_ids(self):
        """``id(param)`` -> the integer id ``state_dict`` gives it: parameters numbered in group order, once each."""
        mapping = {}
        for group in self.param_groups:
            for p in group["params"]:
                mapping.setdefault(id(p), len(mapping))
        return mapping

    def state_dict(self):
        """The optimizer's state in PyTorch's layout: parameters become integer ids in group order.

        Returns:
            ``{"state": {id: {name: value}}, "param_groups": [{hyperparameters..., "params": [ids]}]}``; state
            tensors are returned by reference, as PyTorch does (save them, or copy before stepping on).
        """
        mapping = self._state_dict_ids()
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [mapping[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {}
        for key, value in self.state.items():
            if isinstance(key, Tensor):
                if not value:
                    continue
                state[mapping[id(key)]] = value
            else:
                state[key] = value
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Load a ``state_dict()`` (from dtorch or torch), matching parameters by position within the groups.

        State tensors are copied, cast to their parameter's dtype (``step`` stays float32) and moved to its device,
        so the loaded optimizer shares no memory with ``state_dict``; hyperparameters come from ``state_dict``.

        Raises:
            ValueError: the group count or a group's size differs from this optimizer's.
        """
        groups = self.param_groups
        saved_groups = copy.deepcopy(list(state_dict["param_groups"]))
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError(
                "loaded state dict contains a parameter group that doesn't match the size of optimizer's group"
            )
        id_map = dict(
            zip(
                itertools.chain.from_iterable(s["params"] for s in saved_groups),
                itertools.chain.from_iterable(g["params"] for g in groups),
            )
        )
        state = collections.defaultdict(dict)
        # a built-in optimizer keeps ``step`` as a float32 tensor (an old file's Python int becomes one, as in
        # PyTorch's __setstate__); a user's subclass with its own step() gets its non-tensor values back unchanged
        step_as_tensor = type(self)._update is not Optimizer._update
        for key, value in state_dict["state"].items():
            param = id_map.get(key)
            if param is None:
                state[key] = copy.deepcopy(value)
                continue
            state[param] = {name: _cast_state(name, item, param, step_as_tensor) for name, item in value.items()}
        new_groups = []
        for group, saved in zip(groups, saved_groups):
            saved["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                saved["param_names"] = group["param_names"]
            for name, default in self.defaults.items():
                saved.setdefault(name, default)
            new_groups.append(saved)
        self.state = state
        self.param_groups = new_groups
        self._flat.clear()

    # ---- printing and pickling --------------------------------------------------------------------------------------

    def __repr__(self):
        text = self.__class__.__name__ + " ("
        for index, group in enumerate(self.param_groups):
            text += "\n"
            text += f"Parameter Group {index}\n"
            for key in sorted(group.keys()):
                if key != "params":
                    text += f"    {key}: {group[key]}\n"
        text += ")"
        return text

    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._flat = {}


def _increment(state):
    step_t = state.get("step")
    if not isinstance(step_t, Tensor):
        step_t = state["step"] = _wrap(np.array(float(step_t or 0), dtype=np.float32))
    step_t._array += 1
    return float(step_t._array)


def _array_or_none(value):
    return value._array if isinstance(value, Tensor) else None


def _cast_state(name, value, param, step_as_tensor=True):
    if isinstance(value, (list, tuple)) and any(isinstance(v, Tensor) for v in value):
        # LBFGS keeps lists of history tensors: each follows its parameter, as PyTorch's _cast does
        return type(value)(_cast_state(None, v, param) if isinstance(v, Tensor) else copy.deepcopy(v) for v in value)
    if not isinstance(value, Tensor):
        if name == "step" and step_as_tensor:
            return _wrap(np.array(float(value), dtype=np.float32))
        return copy.deepcopy(value)
    array = value._array
    if name == "step":
        host = array.get() if _backend.is_cupy_array(array) else array
        return _wrap(np.array(host, dtype=np.float32))
    target = param._array.dtype if param._array.dtype.kind == "f" else array.dtype
    array = _backend.to_device(array, _backend.device_of(param._array))
    xp = _backend.xp_of(array)
    return _wrap(xp.array(array, dtype=target, copy=True))


class _FlatBucket:
    """The parameters of one group with one dtype and device, and their state, as views of flat arrays.

    ``param`` and each entry of ``arrays`` (None for a state array not created yet) are 1-D arrays over all member
    parameters back to back; each ``p._array`` and ``state[p][key]._array`` is a view of its slice. ``steps`` holds the
    members' step counts (their ``state[p]["step"]`` tensors are 0-dim views of it).
    """

    def __init__(self, optimizer, group, params, keys, fresh, present):
        self.optimizer = optimizer
        self.params = params
        self.keys = keys
        first = params[0]._array
        xp = self.xp = _backend.xp_of(first)
        dtype = first.dtype
        self.shapes = [p._array.shape for p in params]
        sizes = [int(p._array.size) for p in params]
        self.bounds = list(zip(itertools.accumulate([0] + sizes[:-1]), itertools.accumulate(sizes)))
        total = sum(sizes)
        self.param = xp.empty(total, dtype=dtype)
        # On the CPU the update runs over cache-sized pieces of the flat arrays (its ~10 elementwise passes then
        # stay in L2; one pass over megabytes per operation is memory-bound and slower than the per-parameter
        # loop). On a GPU one call over everything is best.
        self.chunk = CPU_CHUNK if xp is np else max(total, 1)
        self.segments = _segments(self.bounds, self.chunk)
        scratch = max((stop - start for start, stop, members in self.segments if len(members) > 1), default=0)
        self.grad = xp.empty(scratch, dtype=dtype)
        for p, (start, stop) in zip(params, self.bounds):
            self.param[start:stop] = p._array.reshape(-1)
            p._array = self.param[start:stop].reshape(p._array.shape)
        self.param_views = [p._array for p in params]
        states = [optimizer.state[p] for p in params]
        self.states = states
        self.state_views = []  # (state dict, key, tensor, view) for the identity check
        if optimizer._has_step:
            self.steps = np.zeros(len(params), dtype=np.float32)
            for i, s in enumerate(states):
                view = self.steps[i : i + 1].reshape(())
                if fresh:
                    s["step"] = _wrap(view)  # step first, as PyTorch orders state entries
                else:
                    self.steps[i] = float(s["step"]._array)
                    s["step"]._array = view
                self.state_views.append((s, "step", s["step"], view))
        self.arrays = []
        for key in keys:
            if fresh:
                value = optimizer._initial_value(key, group)
                flat = None if value is None else xp.full(total, value, dtype=dtype)
            elif present[key]:
                flat = xp.empty(total, dtype=dtype)
                for s, (start, stop) in zip(states, self.bounds):
                    flat[start:stop] = s[key]._array.reshape(-1)
            else:
                flat = None
            self.arrays.append(flat)
            if flat is not None:
                self._bind(len(self.arrays) - 1, flat, create=fresh)

    def _bind(self, index, flat, create):
        key = self.keys[index]
        for s, (start, stop), shape in zip(self.states, self.bounds, self.shapes):
            view = flat[start:stop].reshape(shape)
            if create or s.get(key) is None:
                s[key] = _wrap(view)
            else:
                s[key]._array = view
            self.state_views.append((s, key, s[key], view))

    def adopt(self, index, flat):
        """Take a state array the update created on first use (SGD's momentum buffer) and give each parameter a view."""
        self.arrays[index] = flat
        self._bind(index, flat, create=True)

    def gather_grads(self):
        """All gradients in one flat array (a fresh one on the CPU, where steps normally go by segments)."""
        grads = [p.grad._array.reshape(-1) for p in self.params]
        out = self.grad if self.grad.size == self.param.size else self.xp.empty_like(self.param)
        self.xp.concatenate(grads, out=out, casting="same_kind")
        return out

    def segment_grads(self):
        """Yield (start, stop, flat gradient of param[start:stop]) for each segment.

        A segment of one parameter uses its gradient array itself (no copy when contiguous); several small
        parameters share one segment, their gradients gathered into a reused scratch array.
        """
        dtype = self.param.dtype
        for start, stop, members in self.segments:
            if len(members) == 1:
                grad = self.params[members[0]].grad._array.reshape(-1)
                if grad.dtype != dtype:
                    grad = grad.astype(dtype)
            else:
                grad = self.grad[: stop - start]
                self.xp.concatenate([self.params[i].grad._array.reshape(-1) for i in members], out=grad,
                                    casting="same_kind")
            yield start, stop, grad


def _segments(bounds, chunk):
    """Group consecutive parameters into segments of at most ``chunk`` elements (a bigger one stands alone)."""
    segments, members, begin, size = [], [], 0, 0
    for index, (start, stop) in enumerate(bounds):
        extent = stop - start
        if members and size + extent > chunk:
            segments.append((begin, begin + size, members))
            members, size = [], 0
        if not members:
            begin = start
        members.append(index)
        size += extent
        if size >= chunk:
            segments.append((begin, begin + size, members))
            members, size = [], 0
    if members:
        segments.append((begin, begin + size, members))
    return segments


def _buckets_valid(buckets, group, state):
    params = group["params"]
    if sum(len(b.params) for b in buckets) != len(params):
        return False
    members = itertools.chain.from_iterable(b.params for b in buckets)
    if any(a is not b for a, b in zip(members, params)):
        # cheap order-insensitive fallback: same set of parameters
        if {id(p) for p in params} != {id(p) for b in buckets for p in b.params}:
            return False
    for bucket in buckets:
        if any(p._array is not v for p, v in zip(bucket.params, bucket.param_views)):
            return False
        if any(s.get(key) is not t or t._array is not v for s, key, t, v in bucket.state_views):
            return False
        if any(state.get(p) is not s for p, s in zip(bucket.params, bucket.states)):
            return False
    return True


def direction_and_decay(xp, param, grad, weight_decay, maximize):
    """The gradient every update rule starts from: negated with ``maximize``, plus ``weight_decay * param``
    (L2 weight decay). A new array whenever it differs from ``grad``, which is never written to.

    >>> import numpy as np
    >>> direction_and_decay(np, np.ones(1), np.full(1, 2.0), 0.5, True)
    array([-1.5])
    """
    if maximize:
        grad = xp.negative(grad)
    if weight_decay != 0:
        decayed = xp.multiply(param, weight_decay, out=xp.empty_like(param))
        decayed += grad
        grad = decayed
    return grad


def lerp_(xp, start, end, weight, scratch):
    """``start ← start + weight·(end − start)`` in place, with PyTorch's two formulas (the one for weight ≥ ½
    goes from ``end``), so float32 results round as ``torch.lerp_`` does. ``scratch`` is a temporary of start's shape.

    >>> import numpy as np
    >>> a = np.zeros(2); lerp_(np, a, np.ones(2), 0.25, np.empty(2)); a
    array([0.25, 0.25])
    """
    xp.subtract(end, start, out=scratch)
    if weight < 0.5:
        scratch *= weight
        start += scratch
    else:
        scratch *= weight - 1
        xp.add(end, scratch, out=start)


def check_lr(lr):
    """PyTorch's checks of a learning rate (a float, or a one-element Tensor)."""
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")
