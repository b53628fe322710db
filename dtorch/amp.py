"""``dtorch.amp``: mixed-precision training helpers, PyTorch's ``torch.amp``.

- ``GradScaler`` is PyTorch's loss scaler: it multiplies the loss by a scale before backward, divides the gradients
  by it before the optimizer step, skips the step when a gradient is inf or NaN, and adapts the scale.
- ``autocast`` marks a region where PyTorch would run matmuls and convolutions in float16/bfloat16. dtorch runs every
  op in its inputs' dtype inside it (so results are at least as precise as PyTorch's); it exists so that scripts
  written for mixed precision run unchanged. Casting to float16 yourself (``model.half()``) does use float16.

>>> import dtorch
>>> scaler = dtorch.amp.GradScaler("cpu", init_scale=4.0)
>>> w = dtorch.nn.Parameter(dtorch.ones(1))
>>> opt = dtorch.optim.SGD([w], lr=0.1)
>>> scaler.scale((w * 3).sum()).backward(); w.grad      # the gradient of the scaled loss
tensor([12.])
>>> scaler.step(opt); scaler.update(); w                 # unscaled to 3 before the step
Parameter containing:
tensor([0.7000], requires_grad=True)
"""

import math

from dtorch import _backend
from dtorch.autograd import grad_mode
from dtorch.tensor import Tensor
from dtorch._warnings import warn as _warn


class autocast:
    """A region (context manager or decorator) where PyTorch would autocast; dtorch computes in the inputs' dtypes.

    >>> import dtorch
    >>> with dtorch.autocast("cpu", dtype=dtorch.float16):
    ...     (dtorch.ones(2, 2) @ dtorch.ones(2, 2)).dtype
    dtorch.float32
    """

    def __init__(self, device_type="cuda", dtype=None, enabled=True, cache_enabled=None):
        if device_type not in ("cuda", "cpu"):
            raise RuntimeError(f"User specified an unsupported autocast device_type '{device_type}'")
        self.device_type = device_type
        self.fast_dtype = dtype
        self.enabled = enabled

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __call__(self, function):
        def wrapped(*args, **kwargs):
            with self:
                return function(*args, **kwargs)

        wrapped.__name__ = getattr(function, "__name__", "wrapped")
        wrapped.__doc__ = getattr(function, "__doc__", None)
        return wrapped


class GradScaler:
    """Dynamic loss scaling, PyTorch's ``torch.amp.GradScaler``.

    Each iteration: ``scaler.scale(loss).backward()``, ``scaler.step(optimizer)``, ``scaler.update()``.
    ``step`` first unscales the gradients (``grad /= scale``, unless ``unscale_`` already did this iteration) and
    skips ``optimizer.step()`` if any gradient is inf or NaN. ``update`` then sets
    ``scale *= backoff_factor`` after a skipped step, and ``scale *= growth_factor`` after ``growth_interval``
    steps in a row without inf/NaN. With ``enabled=False`` every method passes through.

    A scaler for ``device='cuda'`` where no GPU is available disables itself with a warning, as PyTorch's does.
    """

    def __init__(self, device="cuda", init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True):
        if growth_factor <= 1.0:
            raise ValueError("The growth factor must be > 1.0.")
        if backoff_factor >= 1.0:
            raise ValueError("The backoff factor must be < 1.0.")
        if enabled and device == "cuda" and not _backend.cuda_is_available():
            _warn("torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  Disabling.")
            enabled = False
        self._device = device
        self._enabled = enabled
        self._scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0
        self._unscaled = {}  # id(optimizer) -> found an inf/NaN gradient (this iteration)
        self._stepped = set()  # id(optimizer) of those stepped (or skipped) this iteration

    def is_enabled(self):
        return self._enabled

    def get_scale(self):
        """The current scale (1.0 when disabled)."""
        return self._scale if self._enabled else 1.0

    def get_growth_factor(self):
        return self._growth_factor

    def get_backoff_factor(self):
        return self._backoff_factor

    def get_growth_interval(self):
        return self._growth_interval

    def scale(self, outputs):
        """``outputs`` (a tensor, or nested lists/tuples of them) times the current scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            return outputs * self._scale
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(output) for output in outputs)
        raise ValueError("outputs must be a Tensor or an iterable of Tensors")

    def unscale_(self, optimizer):
        """Divide ``optimizer``'s gradients by the scale, in place, and note whether any is inf or NaN."""
        if not self._enabled:
            return
        if id(optimizer) in self._unscaled:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        if id(optimizer) in self._stepped:
            raise RuntimeError("unscale_() is being called after step().")
        inverse = 1.0 / self._scale
        found_inf = False
        with grad_mode.no_grad():
            for group in optimizer.param_groups:
                for param in group["params"]:
                    if param.grad is None:
                        continue
                    grad = param.grad._array
                    grad *= inverse
                    param.grad._bump_version()
                    if not bool(_backend.xp_of(grad).isfinite(grad).all()):
                        found_inf = True
        self._unscaled[id(optimizer)] = found_inf

    def step(self, optimizer, *args, **kwargs):
        """Unscale if needed, then ``optimizer.step(*args, **kwargs)`` unless a gradient is inf/NaN.
        Returns what ``optimizer.step`` returned, or None when the step was skipped."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        if id(optimizer) in self._stepped:
            raise RuntimeError("step() has already been called since the last update().")
        if id(optimizer) not in self._unscaled:
            self.unscale_(optimizer)
        self._stepped.add(id(optimizer))
        if self._unscaled[id(optimizer)]:
            return None
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale=None):
        """Adapt the scale after this iteration's steps (or set it to ``new_scale``), and start a new iteration."""
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale.item() if isinstance(new_scale, Tensor) else new_scale)
        elif any(self._unscaled.values()):
            self._scale *= self._backoff_factor
            self._growth_tracker = 0
        else:
            self._growth_tracker += 1
            if self._growth_tracker == self._growth_interval:
                grown = self._scale * self._growth_factor
                if math.isfinite(grown):  # PyTorch keeps the scale when growing it would overflow
                    self._scale = grown
                self._growth_tracker = 0
        self._unscaled = {}
        self._stepped = set()

    def state_dict(self):
        """The scale and its schedule (empty when disabled), as PyTorch's."""
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict):
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved from a disabled "
                               "instance of GradScaler.")
        self._scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])
