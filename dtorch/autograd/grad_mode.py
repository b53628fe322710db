"""Grad modes: whether new ops record graph nodes.

The switch is one module-level flag, read by ``Op.apply`` on every op, so switching costs nothing per op.
Each mode is a context manager and a decorator, like PyTorch's. The flag is process-wide, not per thread:
DDP's communication thread touches raw arrays only and never records ops.
"""

import functools

from dtorch import _backend

_state = {"enabled": True}
_inference = {"enabled": False}  # kept apart from _state: the per-op path reads only _state["enabled"]


def is_grad_enabled():
    """True when new ops record the graph for backward.

    >>> import dtorch
    >>> with dtorch.no_grad():
    ...     dtorch.is_grad_enabled()
    False
    """
    return _state["enabled"]


class _GradModeBase:
    """A context manager that sets the grad flag and restores it on exit; also usable as a decorator."""

    target = True

    def __enter__(self):
        self.previous = _state["enabled"]
        _state["enabled"] = self.target
        return self

    def __exit__(self, *exc_info):
        _state["enabled"] = self.previous
        return False

    def __call__(self, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return function(*args, **kwargs)

        return wrapper


class no_grad(_GradModeBase):
    """Ops inside record no graph: for evaluation and in-place parameter updates.

    >>> import dtorch
    >>> x = dtorch.ones(2, requires_grad=True)
    >>> with dtorch.no_grad():
    ...     (x * 2).requires_grad
    False
    """

    target = False


class enable_grad(_GradModeBase):
    """Turn recording back on inside a ``no_grad`` block."""

    target = True


class set_grad_enabled(_GradModeBase):
    """Set recording on or off: as a call (takes effect at once), a context manager or a decorator.

    >>> import dtorch
    >>> with dtorch.set_grad_enabled(False):
    ...     dtorch.is_grad_enabled()
    False
    """

    def __init__(self, mode):
        self.target = bool(mode)
        self.previous = _state["enabled"]
        _state["enabled"] = self.target

    def __enter__(self):
        return self

    def __call__(self, function):
        # applied as a decorator: undo the switch the constructor made and switch per call instead
        _state["enabled"] = self.previous
        mode = self.target

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return function(*args, **kwargs)

        return wrapper


class inference_mode(_GradModeBase):
    """Like ``no_grad`` (dtorch has no separate inference tensors), and ``is_inference_mode_enabled()`` is True
    inside; ``inference_mode(False)`` leaves inference mode and turns recording on, as PyTorch's does.

    >>> import dtorch
    >>> with dtorch.inference_mode():
    ...     dtorch.is_grad_enabled(), dtorch.is_inference_mode_enabled()
    (False, True)
    """

    def __init__(self, mode=True):
        self.mode = bool(mode)
        self.target = not self.mode

    def __enter__(self):
        self.previous_inference = _inference["enabled"]
        _inference["enabled"] = self.mode
        return super().__enter__()

    def __exit__(self, *exc_info):
        _inference["enabled"] = self.previous_inference
        return super().__exit__(*exc_info)

    def __call__(self, function):
        mode = self.mode

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with inference_mode(mode):
                return function(*args, **kwargs)

        return wrapper


def is_inference_mode_enabled():
    """True inside ``inference_mode()`` (and not inside a nested ``inference_mode(False)``)."""
    return _inference["enabled"]


class _AutocastState:
    """The autocast regions in force (``dtorch.autocast`` sets them; ``dtorch.amp`` documents the policy).

    The few front-end functions that autocast (the matmul family, linear, convolutions, and the ops PyTorch runs in
    float32) read ``active`` and nothing else unless it is True. Like the grad mode it is process-wide, not per
    thread. ``enabled`` and ``dtype`` are per device type (``'cpu'``, ``'cuda'``); ``dtype`` holds dtorch dtypes and
    starts at PyTorch's defaults (bfloat16 for the CPU, float16 for CUDA).
    """

    __slots__ = ("active", "enabled", "dtype", "inner")

    def __init__(self):
        self.active = False  # True while autocast is enabled for some device type
        self.inner = False  # True while a front end runs on inputs that autocast (or bfloat16) already cast
        self.enabled = {"cpu": False, "cuda": False}
        self.dtype = {"cpu": _backend.bfloat16, "cuda": _backend.float16}

    def set_enabled(self, device_type, enabled):
        self.enabled[device_type] = bool(enabled)
        self.active = self.enabled["cpu"] or self.enabled["cuda"]


autocast_state = _AutocastState()
