"""``Module``: the base class of every layer, PyTorch's ``torch.nn.Module``.

Contracts:
- Registration happens in ``__setattr__``: a ``Parameter`` goes to ``_parameters``, a ``Module`` to ``_modules``,
  a Tensor assigned to a registered buffer name to ``_buffers``; everything else is a plain attribute. These three
  dicts are the single source of truth (``__getattr__`` reads them), as in PyTorch, so code that writes
  ``module._parameters[name]`` directly stays consistent.
- Iteration order is registration order; ``named_*`` methods yield each object once (``remove_duplicate``).
- ``to``/``cpu``/``cuda``/``float``/... convert parameters *in place* (the Parameter object stays, its ``data``
  changes), so optimizers built before the conversion still hold the model's parameters. Buffers are replaced.
- ``state_dict`` holds detached tensors that share memory with the parameters and persistent buffers;
  ``load_state_dict`` copies into them (or assigns with ``assign=True``) and reports mismatches with PyTorch's
  messages.
- Backward hooks (``register_full_backward_hook``/``register_full_backward_pre_hook``) follow PyTorch: per call the
  Tensor outputs and the Tensor inputs each pass through a gate (``_Gate``) that hands over all their gradients at
  once, so a hook sees every input's gradient together and a returned ``grad_input`` replaces each of them.
- Not thread-safe: a module is meant to be used from one thread at a time.
"""

import collections
import functools
import itertools
from collections import OrderedDict, namedtuple

import numpy as np

from dtorch import _backend
from dtorch._errors import not_a_tensor
from dtorch import factories
from dtorch._tensor_methods import parse_to_args
from dtorch.autograd import Function, grad_mode
from dtorch.nn.parameter import Buffer, Parameter
from dtorch.tensor import Tensor
from dtorch.utils.hooks import RemovableHandle
from dtorch._warnings import warn as _warn

__all__ = [
    "Module",
    "RemovableHandle",
    "register_module_forward_pre_hook",
    "register_module_forward_hook",
    "register_module_full_backward_hook",
    "register_module_full_backward_pre_hook",
]


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict`` returns: the keys the model expected but did not get, and the keys it did not know."""

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


# hooks that every module runs (``register_module_forward_*_hook``)
_global_forward_pre_hooks = OrderedDict()
_global_forward_hooks = OrderedDict()
_global_forward_hooks_with_kwargs = OrderedDict()
_global_forward_hooks_always_called = OrderedDict()
_global_backward_hooks = OrderedDict()
_global_backward_pre_hooks = OrderedDict()


def register_module_forward_pre_hook(hook):
    """Register ``hook(module, args)`` to run before every module's ``forward``; returns a handle.

    >>> import dtorch
    >>> seen = []
    >>> with register_module_forward_pre_hook(lambda m, args: seen.append(type(m).__name__)):
    ...     _ = dtorch.nn.ReLU()(dtorch.ones(1))
    >>> seen
    ['ReLU']
    """
    handle = RemovableHandle(_global_forward_pre_hooks)
    _global_forward_pre_hooks[handle.id] = hook
    return handle


def register_module_forward_hook(hook, *, with_kwargs=False, always_call=False):
    """Register ``hook(module, args, output)`` to run after every module's ``forward``; returns a handle.

    ``with_kwargs`` and ``always_call`` mean what they mean for ``Module.register_forward_hook``.

    >>> import dtorch
    >>> with register_module_forward_hook(lambda m, args, out: out * 0):
    ...     dtorch.nn.ReLU()(dtorch.ones(1)).tolist()
    [0.0]
    """
    handle = RemovableHandle(
        _global_forward_hooks, extra_dicts=(_global_forward_hooks_with_kwargs, _global_forward_hooks_always_called)
    )
    _global_forward_hooks[handle.id] = hook
    if with_kwargs:
        _global_forward_hooks_with_kwargs[handle.id] = True
    if always_call:
        _global_forward_hooks_always_called[handle.id] = True
    return handle


def register_module_full_backward_hook(hook):
    """Register ``hook(module, grad_input, grad_output)`` as a full backward hook of every module; returns a handle.

    Global hooks run before the module's own (see ``Module.register_full_backward_hook``).

    >>> import dtorch
    >>> seen = []
    >>> with register_module_full_backward_hook(lambda m, gi, go: seen.append(type(m).__name__)):
    ...     dtorch.nn.Tanh()(dtorch.ones(1, requires_grad=True)).sum().backward()
    >>> seen
    ['Tanh']
    """
    handle = RemovableHandle(_global_backward_hooks)
    _global_backward_hooks[handle.id] = hook
    return handle


def register_module_full_backward_pre_hook(hook):
    """Register ``hook(module, grad_output)`` as a backward pre-hook of every module; returns a handle.

    Global hooks run before the module's own (see ``Module.register_full_backward_pre_hook``).

    >>> import dtorch
    >>> x = dtorch.ones(1, requires_grad=True)
    >>> with register_module_full_backward_pre_hook(lambda m, go: (go[0] * 3,)):
    ...     dtorch.nn.Identity()(x).sum().backward()
    >>> x.grad
    tensor([3.])
    """
    handle = RemovableHandle(_global_backward_pre_hooks)
    _global_backward_pre_hooks[handle.id] = hook
    return handle


_EXTRA_STATE_KEY_SUFFIX = "_extra_state"


def _addindent(text, spaces):
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    first = lines.pop(0)
    return first + "\n" + "\n".join(" " * spaces + line for line in lines)


def _type_name(value):
    """How PyTorch names a non-Parameter value in its registration errors ("torch.FloatTensor", "int", ...)."""
    if isinstance(value, Tensor):
        return value.type()
    module = getattr(value, "__module__", "") or ""
    name = type(value).__qualname__
    return name if module in ("", "builtins") else f"{module}.{name}"


def _forward_unimplemented(self, *input):
    raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')


def _array_argument(module, error, args):
    """PyTorch's TypeError when one of dtorch's own modules was called on a NumPy array and its forward tripped
    over it (``input.dim()`` before any functional could check); any other AttributeError is re-raised as is,
    and so is every error of a user's own module, which may well take arrays."""
    if type(module).__module__.startswith("dtorch.") and any(isinstance(a, np.ndarray) for a in args):
        names = ["input"] + [f"arg{position}" for position in range(2, len(args) + 1)]
        not_a_tensor(error, f"{type(module).__name__}.forward", names, *args)
    raise error


class Module:
    """Base class for all neural network modules; subclass it and define ``forward``.

    Parameters, buffers and submodules assigned as attributes are registered and then found by ``parameters()``,
    ``state_dict()``, ``to()`` and the rest.

    >>> import dtorch
    >>> class Net(dtorch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = dtorch.nn.Linear(2, 1)
    ...     def forward(self, x):
    ...         return self.fc(x)
    >>> net = Net()
    >>> [name for name, _ in net.named_parameters()]
    ['fc.weight', 'fc.bias']
    >>> net
    Net(
      (fc): Linear(in_features=2, out_features=1, bias=True)
    )
    """

    dump_patches = False
    _version = 1
    call_super_init = False
    forward = _forward_unimplemented

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            if not self.call_super_init:
                unexpected = ", ".join(list(map(repr, args)) + [f"{k}={v!r}" for k, v in kwargs.items()])
                raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments: {unexpected}")
        setter = object.__setattr__
        setter(self, "training", True)
        setter(self, "_parameters", {})
        setter(self, "_buffers", {})
        setter(self, "_non_persistent_buffers_set", set())
        setter(self, "_backward_hooks", OrderedDict())
        setter(self, "_backward_pre_hooks", OrderedDict())
        setter(self, "_forward_hooks", OrderedDict())
        setter(self, "_forward_hooks_with_kwargs", OrderedDict())
        setter(self, "_forward_hooks_always_called", OrderedDict())
        setter(self, "_forward_pre_hooks", OrderedDict())
        setter(self, "_forward_pre_hooks_with_kwargs", OrderedDict())
        setter(self, "_state_dict_hooks", OrderedDict())
        setter(self, "_state_dict_pre_hooks", OrderedDict())
        setter(self, "_load_state_dict_pre_hooks", OrderedDict())
        setter(self, "_load_state_dict_post_hooks", OrderedDict())
        setter(self, "_modules", {})

    # ---- registration ---------------------------------------------------------------------------------------------

    def _check_member_name(self, name, kind):
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string. Got {type(name).__name__}")
        if "." in name:
            raise KeyError(f'{kind} name can\'t contain "."')
        if name == "":
            raise KeyError(f'{kind} name can\'t be empty string ""')

    def register_buffer(self, name, tensor, persistent=True):
        """Register a tensor that is state but not a parameter (e.g. BatchNorm's ``running_mean``).

        A persistent buffer is part of ``state_dict``; ``persistent=False`` keeps it out. ``tensor`` may be None.

        >>> import dtorch
        >>> m = dtorch.nn.Module()
        >>> m.register_buffer("steps", dtorch.zeros(1))
        >>> list(m.state_dict())
        ['steps']
        """
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        if not isinstance(name, str):
            raise TypeError(f"buffer name should be a string. Got {type(name).__name__}")
        self._check_member_name(name, "buffer")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"cannot assign '{_type_name(tensor)}' object to buffer '{name}' (dtorch Tensor or None required)"
            )
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def register_parameter(self, name, param):
        """Register a ``Parameter`` (or None) under ``name``; same as assigning it as an attribute.

        >>> import dtorch
        >>> m = dtorch.nn.Module()
        >>> m.register_parameter("w", dtorch.nn.Parameter(dtorch.ones(2)))
        >>> [n for n, _ in m.named_parameters()]
        ['w']
        """
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        self._check_member_name(name, "parameter")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")
        if param is None:
            self._parameters[name] = None
            return
        if not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{_type_name(param)}' object to parameter '{name}' "
                "(dtorch.nn.Parameter or None required)"
            )
        if param.grad_fn is not None:
            raise ValueError(
                f"Cannot assign non-leaf Tensor to parameter '{name}'. Model parameters must be created "
                f"explicitly. To express '{name}' as a function of another Tensor, compute the value in "
                "the forward() method."
            )
        self._parameters[name] = param

    def add_module(self, name, module):
        """Register a child module (or None) under ``name``; same as assigning it as an attribute."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{_type_name(module)} is not a Module subclass")
        if not isinstance(name, str):
            raise TypeError(f"module name should be a string. Got {type(name).__name__}")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        if "." in name:
            raise KeyError(f'module name can\'t contain ".", got: {name}')
        if name == "":
            raise KeyError('module name can\'t be empty string ""')
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target):
        """The submodule at a dotted path such as ``"encoder.layers.0"`` (``""`` is the module itself)."""
        if target == "":
            return self
        module = self
        for item in target.split("."):
            if not hasattr(module, item):
                raise AttributeError(module._get_name() + " has no attribute `" + item + "`")
            module = getattr(module, item)
            if not isinstance(module, Module):
                raise AttributeError("`" + item + "` is not an nn.Module")
        return module

    def _owner_and_name(self, target):
        """The submodule holding the attribute at dotted path ``target``, and the attribute's name."""
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if not hasattr(module, name):
            raise AttributeError(module._get_name() + " has no attribute `" + name + "`")
        return module, name

    def get_parameter(self, target):
        """The parameter at a dotted path such as ``"fc.weight"``."""
        module, name = self._owner_and_name(target)
        param = getattr(module, name)
        if not isinstance(param, Parameter):
            raise AttributeError("`" + name + "` is not an nn.Parameter")
        return param

    def get_buffer(self, target):
        """The buffer at a dotted path such as ``"bn.running_mean"``."""
        module, name = self._owner_and_name(target)
        if name not in module._buffers:
            raise AttributeError("`" + name + "` is not a buffer")
        return getattr(module, name)

    def __getattr__(self, name):
        # only reached when normal lookup fails: parameters, buffers and submodules live in their dicts
        state = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            members = state.get(registry)
            if members is not None and name in members:
                return members[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __setattr__(self, name, value):
        state = self.__dict__
        params = state.get("_parameters")

        def remove_from(*dicts_or_sets):
            for members in dicts_or_sets:
                if name in members:
                    if isinstance(members, set):
                        members.discard(name)
                    else:
                        del members[name]

        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            remove_from(state, self._buffers, self._modules, self._non_persistent_buffers_set)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{_type_name(value)}' as parameter '{name}' (dtorch.nn.Parameter or None expected)"
                )
            self.register_parameter(name, value)
        else:
            modules = state.get("_modules")
            if isinstance(value, Module):
                if modules is None:
                    raise AttributeError("cannot assign module before Module.__init__() call")
                remove_from(state, self._parameters, self._buffers, self._non_persistent_buffers_set)
                modules[name] = value
            elif modules is not None and name in modules:
                if value is not None:
                    raise TypeError(
                        f"cannot assign '{_type_name(value)}' as child module '{name}' "
                        "(dtorch.nn.Module or None expected)"
                    )
                modules[name] = value
            else:
                buffers = state.get("_buffers")
                if isinstance(value, Buffer):  # nn.Buffer: register it, with the persistence it carries
                    if buffers is None:
                        raise AttributeError("cannot assign buffer before Module.__init__() call")
                    self.register_buffer(name, value, value.persistent)
                elif buffers is not None and name in buffers:
                    if value is not None and not isinstance(value, Tensor):
                        raise TypeError(
                            f"cannot assign '{_type_name(value)}' as buffer '{name}' (dtorch.Tensor or None expected)"
                        )
                    buffers[name] = value
                else:
                    object.__setattr__(self, name, value)

    def __delattr__(self, name):
        if name in self._parameters:
            del self._parameters[name]
        elif name in self._buffers:
            del self._buffers[name]
            self._non_persistent_buffers_set.discard(name)
        elif name in self._modules:
            del self._modules[name]
        else:
            object.__delattr__(self, name)

    def __dir__(self):
        keys = set(dir(type(self))) | set(self.__dict__)
        keys |= set(self._parameters) | set(self._buffers) | set(self._modules)
        return sorted(key for key in keys if not key[0].isdigit())

    def __setstate__(self, state):
        self.__dict__.update(state)
        defaults = {
            "_backward_pre_hooks": OrderedDict(),
            "_forward_hooks_with_kwargs": OrderedDict(),
            "_forward_hooks_always_called": OrderedDict(),
            "_forward_pre_hooks_with_kwargs": OrderedDict(),
            "_state_dict_hooks": OrderedDict(),
            "_state_dict_pre_hooks": OrderedDict(),
            "_load_state_dict_pre_hooks": OrderedDict(),
            "_load_state_dict_post_hooks": OrderedDict(),
            "_non_persistent_buffers_set": set(),
        }
        for key, value in defaults.items():
            self.__dict__.setdefault(key, value)

    # ---- iteration ------------------------------------------------------------------------------------------------

    def _named_members(self, get_members, prefix="", recurse=True, remove_duplicate=True):
        seen = set()
        if recurse:
            modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
        else:
            modules = [(prefix, self)]
        for module_prefix, module in modules:
            for key, value in get_members(module):
                if value is None or id(value) in seen:
                    continue
                if remove_duplicate:
                    seen.add(id(value))
                yield (module_prefix + "." + key if module_prefix else key), value

    def parameters(self, recurse=True):
        """The module's parameters (and, with ``recurse``, its submodules'), each once, in registration order.

        >>> import dtorch
        >>> [tuple(p.shape) for p in dtorch.nn.Linear(3, 2).parameters()]
        [(2, 3), (2,)]
        """
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """``(dotted_name, parameter)`` pairs; ``prefix`` is prepended to every name."""
        return self._named_members(
            lambda module: module._parameters.items(), prefix=prefix, recurse=recurse,
            remove_duplicate=remove_duplicate,
        )

    def buffers(self, recurse=True):
        """The module's buffers (persistent or not), each once."""
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        """``(dotted_name, buffer)`` pairs."""
        return self._named_members(
            lambda module: module._buffers.items(), prefix=prefix, recurse=recurse,
            remove_duplicate=remove_duplicate,
        )

    def children(self):
        """The immediate submodules, each once."""
        for _, module in self.named_children():
            yield module

    def named_children(self):
        """``(name, module)`` pairs of the immediate submodules, each module once."""
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def modules(self, remove_duplicate=True):
        """This module and all submodules, depth first, each once (or as often as reached, without
        ``remove_duplicate``)."""
        for _, module in self.named_modules(remove_duplicate=remove_duplicate):
            yield module

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """``(dotted_name, module)`` for this module (name ``prefix``) and all submodules, depth first.

        >>> import dtorch
        >>> [name for name, _ in dtorch.nn.Sequential(dtorch.nn.ReLU(), dtorch.nn.Tanh()).named_modules()]
        ['', '0', '1']
        """
        if memo is None:
            memo = set()
        if id(self) in memo:
            return
        if remove_duplicate:
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            child_prefix = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, child_prefix, remove_duplicate)

    # ---- modes and gradients --------------------------------------------------------------------------------------

    def train(self, mode=True):
        """Set training mode (``mode=False`` is evaluation mode) here and in every submodule; returns self."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self):
        """Evaluation mode: ``train(False)``. Dropout stops dropping, BatchNorm uses its running statistics."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` of every parameter (e.g. ``requires_grad_(False)`` freezes); returns self."""
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Reset the gradients of all parameters: to None (the default) or to zeros."""
        for param in self.parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                grad = param.grad
                if grad.grad_fn is not None:
                    grad.detach_()
                else:
                    grad.requires_grad = False
                grad._array[...] = 0
                grad._bump_version()

    def apply(self, fn):
        """Call ``fn`` on every submodule (children first) and then on self; returns self.

        >>> import dtorch
        >>> net = dtorch.nn.Sequential(dtorch.nn.Linear(2, 2))
        >>> _ = net.apply(lambda m: dtorch.nn.init.zeros_(m.weight) if isinstance(m, dtorch.nn.Linear) else None)
        >>> float(net[0].weight.abs().sum())
        0.0
        """
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def _apply(self, fn, recurse=True):
        """Convert every parameter and buffer with ``fn`` (a Tensor -> Tensor function).

        Parameters keep their identity: the converted array replaces ``param._array`` (and ``param.grad._array``),
        so optimizers still hold them. Buffers are replaced by the converted tensors.
        """
        if recurse:
            for module in self.children():
                module._apply(fn)
        for key, param in self._parameters.items():
            if param is None:
                continue
            with grad_mode.no_grad():
                converted = fn(param)
            if converted is not param:
                param._array = converted._array
                param._bump_version()
            if param.grad is not None:
                with grad_mode.no_grad():
                    grad = fn(param.grad)
                if grad is not param.grad:
                    param.grad._array = grad._array
        for key, buffer in self._buffers.items():
            if buffer is not None:
                with grad_mode.no_grad():
                    self._buffers[key] = fn(buffer)
        return self

    def to(self, *args, **kwargs):
        """Move and/or cast parameters and buffers in place; returns self.

        ``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(tensor)`` and the keyword forms. Only floating
        parameters and buffers change dtype (``num_batches_tracked`` stays int64), as in PyTorch.

        >>> import dtorch
        >>> m = dtorch.nn.Linear(2, 2)
        >>> w = m.weight
        >>> m.to(dtorch.float64).weight is w, w.dtype
        (True, dtorch.float64)
        """
        dtype, device, _ = parse_to_args(args, dict(kwargs))
        if dtype is not None and not _backend.is_floating_numpy(_backend.to_numpy_dtype(dtype)):
            raise TypeError(
                f"nn.Module.to only accepts floating point or complex dtypes, but got desired dtype={dtype}"
            )

        def convert(tensor):
            target_dtype = dtype if dtype is not None and _backend.is_floating_numpy(tensor._array.dtype) else None
            return tensor.to(device=device, dtype=target_dtype)

        return self._apply(convert)

    def to_empty(self, *, device, recurse=True):
        """Give every parameter and buffer uninitialised storage on ``device`` (values are not copied); returns self.

        >>> import dtorch
        >>> dtorch.nn.Linear(2, 2).to_empty(device="cpu").weight.shape
        dtorch.Size([2, 2])
        """
        return self._apply(lambda t: factories.empty_like(t, device=device), recurse=recurse)

    def cpu(self):
        """Move every parameter and buffer to the CPU; returns self."""
        return self._apply(lambda t: t.cpu())

    def cuda(self, device=None):
        """Move every parameter and buffer to a GPU (``cuda`` or ``cuda:N``); returns self."""
        return self._apply(lambda t: t.cuda(device))

    def _cast_floating(self, dtype):
        return self._apply(lambda t: t.to(dtype) if _backend.is_floating_numpy(t._array.dtype) else t)

    def float(self):
        """Cast floating parameters and buffers to float32; returns self."""
        return self._cast_floating(_backend.float32)

    def double(self):
        """Cast floating parameters and buffers to float64; returns self."""
        return self._cast_floating(_backend.float64)

    def half(self):
        """Cast floating parameters and buffers to float16; returns self."""
        return self._cast_floating(_backend.float16)

    def bfloat16(self):
        """Cast floating parameters and buffers to bfloat16 (CPU only: CuPy has no bfloat16); returns self."""
        return self._cast_floating(_backend.bfloat16)

    def type(self, dst_type):
        """Cast every parameter and buffer to ``dst_type``; returns self."""
        return self._apply(lambda t: t.to(dst_type))

    # ---- state dict -----------------------------------------------------------------------------------------------

    def get_extra_state(self):
        """Extra (non-tensor) state to save under ``"<prefix>_extra_state"``; override with ``set_extra_state``.

        Only modules whose class overrides this method get the entry, as in PyTorch.
        """
        raise RuntimeError(
            "Reached a code path in Module.get_extra_state() that should never be called. Please file an issue at "
            "the dtorch repository to report this bug."
        )

    def set_extra_state(self, state):
        """Restore what ``get_extra_state`` returned (called by ``load_state_dict``)."""
        raise RuntimeError(
            "Reached a code path in Module.set_extra_state() that should never be called. Please file an issue at "
            "the dtorch repository to report this bug."
        )

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = param if keep_vars else param.detach()
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = buffer if keep_vars else buffer.detach()
        if type(self).get_extra_state is not Module.get_extra_state:
            destination[prefix + _EXTRA_STATE_KEY_SUFFIX] = self.get_extra_state()

    def state_dict(self, *args, destination=None, prefix="", keep_vars=False):
        """An ordered dict of every parameter and persistent buffer under its dotted name.

        The values are detached tensors sharing memory with the module's (``keep_vars=True`` gives the
        parameters themselves).

        >>> import dtorch
        >>> list(dtorch.nn.BatchNorm1d(3).state_dict())
        ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
        """
        if args:
            # PyTorch's deprecated positional form: state_dict(destination, prefix, keep_vars)
            destination = args[0]
            if len(args) > 1:
                prefix = args[1]
            if len(args) > 2:
                keep_vars = args[2]
        if destination is None:
            destination = OrderedDict()
            destination._metadata = OrderedDict()
        metadata = getattr(destination, "_metadata", None)
        if metadata is not None:
            metadata[prefix[:-1]] = {"version": self._version}
        for hook in self._state_dict_pre_hooks.values():
            hook(self, prefix, keep_vars)
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars)
        for hook in self._state_dict_hooks.values():
            result = hook(self, destination, prefix, {"version": self._version})
            if result is not None:
                destination = result
        return destination

    def _register_state_dict_hook(self, hook):
        """``hook(module, state_dict, prefix, local_metadata)`` after this module's entries; may return a new dict."""
        handle = RemovableHandle(self._state_dict_hooks)
        self._state_dict_hooks[handle.id] = hook
        return handle

    def register_state_dict_pre_hook(self, hook):
        """Register ``hook(module, prefix, keep_vars)`` to run before ``state_dict`` saves this module."""
        handle = RemovableHandle(self._state_dict_pre_hooks)
        self._state_dict_pre_hooks[handle.id] = hook
        return handle

    def register_state_dict_post_hook(self, hook):
        """Register ``hook(module, state_dict, prefix, local_metadata)`` to run after ``state_dict`` saved this
        module and its children; it edits ``state_dict`` in place and must return None."""

        def checked(module, state_dict, prefix, local_metadata):
            if hook(module, state_dict, prefix, local_metadata) is not None:
                raise RuntimeError("state_dict post-hook must return None")

        return self._register_state_dict_hook(checked)

    def register_load_state_dict_pre_hook(self, hook):
        """Register ``hook(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
        error_msgs)`` to run before this module's entries are loaded (it may edit ``state_dict``)."""
        handle = RemovableHandle(self._load_state_dict_pre_hooks)
        self._load_state_dict_pre_hooks[handle.id] = hook
        return handle

    def register_load_state_dict_post_hook(self, hook):
        """Register ``hook(module, incompatible_keys)`` to run after ``load_state_dict``; returns a handle."""
        handle = RemovableHandle(self._load_state_dict_post_hooks)
        self._load_state_dict_post_hooks[handle.id] = hook
        return handle

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        """Copy this module's own entries (not its children's) from ``state_dict``; collect problems."""
        for hook in self._load_state_dict_pre_hooks.values():
            hook(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
        local_state = {name: p for name, p in self._parameters.items() if p is not None}
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent_buffers_set:
                local_state[name] = buffer
        assign = local_metadata.get("assign_to_params_buffers", False)
        for name, current in local_state.items():
            key = prefix + name
            if key not in state_dict:
                if strict:
                    missing_keys.append(key)
                continue
            value = state_dict[key]
            if not isinstance(value, Tensor):
                error_msgs.append(
                    f'While copying the parameter named "{key}", expected dtorch.Tensor or Tensor-like object from '
                    f"checkpoint but received {type(value)}"
                )
                continue
            if current.ndim == 0 and value.ndim == 1 and value.shape[0] == 1:
                value = value[0]
            if value.shape != current.shape:
                error_msgs.append(
                    f"size mismatch for {key}: copying a param with shape {value.shape} from checkpoint, "
                    f"the shape in current model is {current.shape}."
                )
                continue
            try:
                with grad_mode.no_grad():
                    if assign:
                        if isinstance(current, Parameter):
                            if not isinstance(value, Parameter):
                                value = Parameter(value, requires_grad=current.requires_grad)
                            else:
                                value.requires_grad_(current.requires_grad)
                        setattr(self, name, value)
                    else:
                        current.copy_(value)
            except Exception as error:  # reported with the others, as PyTorch does
                error_msgs.append(
                    f'While copying the parameter named "{key}", whose dimensions in the model are '
                    f"{current.shape} and whose dimensions in the checkpoint are {value.shape}, "
                    f"an exception occurred : {error.args}."
                )
        extra_key = prefix + _EXTRA_STATE_KEY_SUFFIX
        if type(self).set_extra_state is not Module.set_extra_state:
            if extra_key in state_dict:
                self.set_extra_state(state_dict[extra_key])
            elif strict:
                missing_keys.append(extra_key)
        elif strict and extra_key in state_dict:
            unexpected_keys.append(extra_key)
        if strict:
            for key in state_dict.keys():
                if not key.startswith(prefix) or key == extra_key:
                    continue
                head = key[len(prefix):].split(".", 1)
                if len(head) > 1:
                    if head[0] not in self._modules:
                        unexpected_keys.append(key)
                elif head[0] not in local_state:
                    unexpected_keys.append(key)

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copy parameters and buffers from ``state_dict`` into this module and its submodules.

        With ``strict`` (the default) missing or unexpected keys raise a ``RuntimeError`` that lists them; shape
        mismatches always raise. Returns ``_IncompatibleKeys(missing_keys, unexpected_keys)``.

        >>> import dtorch
        >>> a, b = dtorch.nn.Linear(2, 2), dtorch.nn.Linear(2, 2)
        >>> b.load_state_dict(a.state_dict())
        <All keys matched successfully>
        >>> bool((a.weight == b.weight).all())
        True
        """
        if not isinstance(state_dict, collections.abc.Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        missing_keys, unexpected_keys, error_msgs = [], [], []
        metadata = getattr(state_dict, "_metadata", None)
        state_dict = OrderedDict(state_dict)
        if metadata is not None:
            state_dict._metadata = metadata

        def load(module, local_state_dict, prefix=""):
            local_metadata = {} if metadata is None else dict(metadata.get(prefix[:-1], {}))
            if assign:
                local_metadata["assign_to_params_buffers"] = assign
            module._load_from_state_dict(local_state_dict, prefix, local_metadata, True, missing_keys,
                                         unexpected_keys, error_msgs)
            for name, child in module._modules.items():
                if child is not None:
                    child_prefix = prefix + name + "."
                    child_state = {k: v for k, v in local_state_dict.items() if k.startswith(child_prefix)}
                    load(child, child_state, child_prefix)
            incompatible = _IncompatibleKeys(missing_keys, unexpected_keys)
            for hook in module._load_state_dict_post_hooks.values():
                hook(module, incompatible)

        load(self, state_dict)
        if strict:
            if unexpected_keys:
                error_msgs.insert(
                    0, "Unexpected key(s) in state_dict: {}. ".format(", ".join(f'"{k}"' for k in unexpected_keys))
                )
            if missing_keys:
                error_msgs.insert(
                    0, "Missing key(s) in state_dict: {}. ".format(", ".join(f'"{k}"' for k in missing_keys))
                )
        if error_msgs:
            raise RuntimeError(
                "Error(s) in loading state_dict for {}:\n\t{}".format(type(self).__name__, "\n\t".join(error_msgs))
            )
        return _IncompatibleKeys(missing_keys, unexpected_keys)

    # ---- calling and hooks ----------------------------------------------------------------------------------------

    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """Run ``hook(module, args)`` before ``forward``; a non-None result replaces the positional arguments.

        With ``with_kwargs=True`` the hook is ``hook(module, args, kwargs)`` and may return ``(args, kwargs)``.
        Returns a handle whose ``remove()`` takes the hook out.

        >>> import dtorch
        >>> m = dtorch.nn.ReLU()
        >>> _ = m.register_forward_pre_hook(lambda module, args: (args[0] - 1,))
        >>> m(dtorch.tensor([3.0])).tolist()
        [2.0]
        """
        handle = RemovableHandle(self._forward_pre_hooks, extra_dicts=(self._forward_pre_hooks_with_kwargs,))
        self._forward_pre_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_pre_hooks_with_kwargs[handle.id] = True
        if prepend:
            self._forward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False, always_call=False):
        """Run ``hook(module, args, output)`` after ``forward``; a non-None result replaces the output.

        With ``with_kwargs=True`` the hook is ``hook(module, args, kwargs, output)``; with ``always_call=True`` it
        also runs (with ``output`` None) when ``forward`` raises, before the exception propagates. Returns a handle.

        >>> import dtorch
        >>> seen = []
        >>> m = dtorch.nn.ReLU()
        >>> _ = m.register_forward_hook(lambda module, args, out: seen.append(tuple(out.shape)))
        >>> _ = m(dtorch.zeros(2, 3)); seen
        [(2, 3)]
        """
        handle = RemovableHandle(
            self._forward_hooks, extra_dicts=(self._forward_hooks_with_kwargs, self._forward_hooks_always_called)
        )
        self._forward_hooks[handle.id] = hook
        if with_kwargs:
            self._forward_hooks_with_kwargs[handle.id] = True
        if always_call:
            self._forward_hooks_always_called[handle.id] = True
        if prepend:
            self._forward_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_full_backward_hook(self, hook, prepend=False):
        """Run ``hook(module, grad_input, grad_output)`` once the gradients of the module's inputs are known.

        ``grad_input`` has one entry per positional argument: the gradient of a Tensor argument (zeros where none
        reached it, as PyTorch materialises them), None for a non-Tensor one; keyword arguments are not included.
        ``grad_output`` has one entry per output (per element of a returned tuple): its gradient, or None. A
        non-None result (a tuple as long as ``grad_input``) replaces the gradients of every input. When no input
        requires grad the hook runs once the output gradients are known, with ``grad_input`` all None, and warns.
        Returns a handle whose ``remove()`` takes the hook out.

        >>> import dtorch
        >>> class Mul(dtorch.nn.Module):
        ...     def forward(self, x, y):
        ...         return x * y
        >>> m = Mul()
        >>> _ = m.register_full_backward_hook(lambda mod, gin, gout: tuple(g * 10 for g in gin))
        >>> x = dtorch.tensor([2.0], requires_grad=True); y = dtorch.tensor([3.0], requires_grad=True)
        >>> m(x, y).sum().backward(); x.grad, y.grad
        (tensor([30.]), tensor([20.]))
        """
        handle = RemovableHandle(self._backward_hooks)
        self._backward_hooks[handle.id] = hook
        if prepend:
            self._backward_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_full_backward_pre_hook(self, hook, prepend=False):
        """Run ``hook(module, grad_output)`` once the gradients of the module's outputs are known.

        ``grad_output`` has one entry per output (None for one without a gradient); a non-None result (a tuple as
        long as ``grad_output``) replaces those gradients before they flow into the module, and is what the full
        backward hooks then see. Returns a handle whose ``remove()`` takes the hook out.

        >>> import dtorch
        >>> m = dtorch.nn.Identity()
        >>> _ = m.register_full_backward_pre_hook(lambda mod, gout: (gout[0] * 2,))
        >>> x = dtorch.tensor([1.0], requires_grad=True)
        >>> m(x).sum().backward(); x.grad
        tensor([2.])
        """
        handle = RemovableHandle(self._backward_pre_hooks)
        self._backward_pre_hooks[handle.id] = hook
        if prepend:
            self._backward_pre_hooks.move_to_end(handle.id, last=False)
        return handle

    def share_memory(self):
        """Move parameters and buffers to shared memory (``Tensor.share_memory_``); returns ``self``.

        >>> import dtorch
        >>> m = dtorch.nn.Linear(2, 2)
        >>> m.share_memory() is m
        True
        """
        return self._apply(lambda t: t.share_memory_())

    def _call_impl(self, *args, **kwargs):
        if not (self._forward_pre_hooks or self._forward_hooks or self._backward_hooks or self._backward_pre_hooks
                or _global_forward_pre_hooks or _global_forward_hooks or _global_backward_hooks
                or _global_backward_pre_hooks):
            try:  # (free until it fires)
                return self.forward(*args, **kwargs)
            except AttributeError as error:
                _array_argument(self, error, args)
        for hook_id, hook in itertools.chain(_global_forward_pre_hooks.items(), self._forward_pre_hooks.items()):
            if hook_id in self._forward_pre_hooks_with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(
                            "forward pre-hook must return None or a tuple of (new_args, new_kwargs), "
                            f"but got {result}."
                        )
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        backward_state = None
        hooks = list(_global_backward_hooks.values()) + list(self._backward_hooks.values())
        pre_hooks = list(_global_backward_pre_hooks.values()) + list(self._backward_pre_hooks.values())
        if hooks or pre_hooks:
            backward_state = _BackwardHook(self, hooks, pre_hooks)
            args = backward_state.setup_input_hook(args)
        output = None
        called = set()  # ids of the always-call hooks that already ran
        try:
            output = self.forward(*args, **kwargs)
            for hook_id, hook in itertools.chain(_global_forward_hooks.items(), self._forward_hooks.items()):
                if hook_id in _global_forward_hooks_always_called or hook_id in self._forward_hooks_always_called:
                    called.add(hook_id)
                if hook_id in _global_forward_hooks_with_kwargs or hook_id in self._forward_hooks_with_kwargs:
                    result = hook(self, args, kwargs, output)
                else:
                    result = hook(self, args, output)
                if result is not None:
                    output = result
        except Exception:
            # as PyTorch: the always-call hooks that have not run yet still run; their own errors become warnings
            for hook_id, hook in itertools.chain(_global_forward_hooks.items(), self._forward_hooks.items()):
                if hook_id in called or not (
                    hook_id in _global_forward_hooks_always_called or hook_id in self._forward_hooks_always_called
                ):
                    continue
                try:
                    if hook_id in _global_forward_hooks_with_kwargs or hook_id in self._forward_hooks_with_kwargs:
                        result = hook(self, args, kwargs, output)
                    else:
                        result = hook(self, args, output)
                    if result is not None:
                        output = result
                except Exception as error:
                    _warn(
                        "module forward hook with ``always_call=True`` raised an exception that was silenced as "
                        f"another error was raised in forward: {error}"
                    )
            raise
        if backward_state is not None:
            output = backward_state.setup_output_hook(output)
        return output

    __call__ = _call_impl

    # ---- printing -------------------------------------------------------------------------------------------------

    def extra_repr(self):
        """The text inside this module's parentheses in ``repr``; layers override it (e.g. ``in_features=...``)."""
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [
            "(" + name + "): " + _addindent(repr(module), 2) for name, module in self._modules.items()
        ]
        lines = extra_lines + child_lines
        text = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                text += extra_lines[0]
            else:
                text += "\n  " + "\n  ".join(lines) + "\n"
        return text + ")"


class _GateCollect(Function):
    """Gathers the gated tensors into one graph node: its backward runs once every ``_GateRelease`` has run."""

    @staticmethod
    def forward(ctx, gate, *tensors):
        ctx.gate = gate
        return tensors[0].new_zeros((0,))

    @staticmethod
    def backward(ctx, grad):
        return (None,) + tuple(ctx.gate.release())


class _GateRelease(Function):
    """Hands one gated tensor's value on; its backward only records the gradient for ``_GateCollect``."""

    @staticmethod
    def forward(ctx, token, value, gate, index):
        ctx.gate, ctx.index = gate, index
        return value

    @staticmethod
    def backward(ctx, grad):
        ctx.gate.grads[ctx.index] = grad
        return factories.zeros_like(ctx.gate.token), None, None, None


class _Gate:
    """Hold back the gradients of several tensors until all have arrived, then hand them over together.

    ``wrap()`` returns stand-ins for ``tensors``; their gradients are collected as they arrive and, once the graph
    has delivered every one (the engine runs ``_GateCollect`` only after all its consumers), ``on_backward(grads)``
    sees them all at once (None for one that got none) and returns the gradients that flow on to the tensors.
    The engine's nodes have one output each, so this pair of nodes stands in for PyTorch's multi-output
    ``BackwardHookFunction``.
    """

    def __init__(self, tensors, on_backward):
        self.tensors = tensors
        self.on_backward = on_backward
        self.grads = [None] * len(tensors)
        self.token = None

    def wrap(self):
        self.token = _GateCollect.apply(self, *self.tensors)
        wrapped = []
        for i, t in enumerate(self.tensors):
            out = _GateRelease.apply(self.token, t.detach(), self, i)
            # the stand-in shares t's memory: share its version counter too, so that changing it in place is
            # caught where t was saved for backward
            out._base = t._base if t._base is not None else t
            wrapped.append(out)
        return wrapped

    def release(self):
        grads, self.grads = tuple(self.grads), [None] * len(self.tensors)  # reset: a retained graph runs again
        return self.on_backward(grads)


class _BackwardHook:
    """The machinery behind ``register_full_backward_hook`` and ``register_full_backward_pre_hook``, one call.

    As in PyTorch: the Tensor inputs pass through one gate and the Tensor outputs through another. When the output
    gradients are all known the pre-hooks run (each may replace ``grad_output``); when the input gradients are all
    known the full hooks run with ``grad_input`` (one entry per positional argument: None for a non-Tensor,
    zeros for a Tensor that got no gradient) and may replace every input's gradient. When no input requires grad
    the full hooks run at the output stage with ``grad_input`` all None, and must return None.
    """

    def __init__(self, module, hooks, pre_hooks):
        self.module = module
        self.hooks = hooks
        self.pre_hooks = pre_hooks
        self.grad_outputs = None
        self.n_inputs = 0
        self.input_positions = None  # positions of the Tensor arguments; None when no input is gated
        self.inputs = ()
        self.n_outputs = 0
        self.output_positions = None

    @staticmethod
    def _gate(values, on_backward):
        positions = [i for i, v in enumerate(values) if isinstance(v, Tensor)]
        if not (grad_mode.is_grad_enabled() and any(values[i].requires_grad for i in positions)):
            return values, None, ()
        tensors = [values[i] for i in positions]
        gated = [i for i in positions if values[i].requires_grad]
        wrapped = _Gate([values[i] for i in gated], functools.partial(on_backward, gated)).wrap()
        values = list(values)
        for i, w in zip(gated, wrapped):
            values[i] = w
        return tuple(values), positions, tensors

    def setup_input_hook(self, args):
        self.n_inputs = len(args)
        args, self.input_positions, self.inputs = self._gate(args, self._on_input_grads)
        return args

    def setup_output_hook(self, output):
        is_tuple = isinstance(output, tuple)
        outputs = output if is_tuple else (output,)
        self.n_outputs = len(outputs)
        outputs, self.output_positions, _ = self._gate(outputs, self._on_output_grads)
        return outputs if is_tuple else outputs[0]

    def _on_output_grads(self, gated, grads):
        grad_outputs = [None] * self.n_outputs
        for i, g in zip(gated, grads):
            grad_outputs[i] = g
        grad_outputs = tuple(grad_outputs)
        for hook in self.pre_hooks:
            result = hook(self.module, grad_outputs)
            if result is None:
                continue
            if len(result) != len(grad_outputs):
                raise RuntimeError(
                    "Backward pre hook returned an invalid number of grad_output, "
                    f"got {len(result)}, but expected {len(grad_outputs)}"
                )
            grad_outputs = tuple(result)
        if self.input_positions is None:
            _warn(
                "Full backward hook is firing when gradients are computed with respect to module outputs since no "
                "inputs require gradients. See the documentation of Module.register_full_backward_hook for more "
                "details.",
            )
            grad_input = (None,) * self.n_inputs
            for hook in self.hooks:
                result = hook(self.module, grad_input, grad_outputs)
                if result is not None and not (isinstance(result, tuple) and all(r is None for r in result)):
                    raise RuntimeError(
                        "Backward hook for Modules where no input requires gradient should always return None or "
                        "None for all gradients."
                    )
        else:
            self.grad_outputs = grad_outputs
        return tuple(grad_outputs[i] for i in gated)

    def _on_input_grads(self, gated, grads):
        arrived = dict(zip(gated, grads))
        grad_input = [None] * self.n_inputs
        for i, tensor in zip(self.input_positions, self.inputs):
            g = arrived.get(i)
            grad_input[i] = factories.zeros_like(tensor.detach()) if g is None else g  # PyTorch's are materialised
        grad_input = tuple(grad_input)
        if self.grad_outputs is not None:  # None: the gradient reached the inputs without passing the outputs
            for hook in self.hooks:
                result = hook(self.module, grad_input, self.grad_outputs)
                if result is None:
                    continue
                if len(result) != len(grad_input):
                    raise RuntimeError(
                        "Backward hook returned an invalid number of grad_input, "
                        f"got {len(result)}, but expected {len(grad_input)}"
                    )
                grad_input = tuple(result)
            self.grad_outputs = None
        return tuple(grad_input[i] for i in gated)
