"""``dtorch.amp``: mixed precision, PyTorch's ``torch.amp`` (``autocast`` and ``GradScaler``).

- ``autocast(device_type, dtype=None, enabled=True)`` (a context manager or a decorator) is PyTorch's: inside an
  enabled region, the ops PyTorch lists as lower-precision (``matmul``, ``mm``, ``bmm``, ``addmm``, ``baddbmm``,
  ``linear``, ``conv1d/2d/3d``, ``conv_transpose1d/2d/3d``, and so the projections of ``MultiheadAttention`` and the
  products of ``scaled_dot_product_attention``) cast their floating inputs on that device type to the region's dtype
  (default ``float16`` for ``'cuda'``, ``bfloat16`` for ``'cpu'``; float64 is left alone) through differentiable
  casts, so the outputs are in that dtype and the parameters' gradients come back in the parameters' own dtype.
  The ops PyTorch runs in float32 under autocast cast float16/bfloat16 inputs up to float32: the losses
  (``cross_entropy``, ``nll_loss``, ``mse_loss``, ``l1_loss``, ``smooth_l1_loss``, ``huber_loss``, ``kl_div``,
  ``binary_cross_entropy`` and ``..._with_logits``) on both device types, and on CUDA also ``softmax``,
  ``log_softmax``, ``layer_norm`` and ``group_norm``. Other ops run in their inputs' dtype, as in PyTorch.
  Regions nest (an inner ``enabled=False`` region turns casting off); ``is_autocast_enabled`` and
  ``get_autocast_dtype`` report the state. Unlike PyTorch's, the state is process-wide rather than per thread (as
  dtorch's grad mode), and casts are not cached across ops (a weight used twice is cast twice).
- ``GradScaler`` is PyTorch's loss scaler: it multiplies the loss by a scale before backward, divides the gradients
  by it before the optimizer step, skips the step when a gradient is inf or NaN, and adapts the scale.

On the CPU, bfloat16 is ml_dtypes' NumPy type; CuPy has none, so ``autocast('cuda', dtype=bfloat16)`` is refused.

>>> import dtorch
>>> lin = dtorch.nn.Linear(3, 2)
>>> with dtorch.autocast("cpu"):
...     out = lin(dtorch.ones(4, 3))
>>> out.dtype
dtorch.bfloat16
>>> out.float().sum().backward(); lin.weight.grad.dtype   # the gradient in the parameter's own dtype
dtorch.float32
>>> scaler = dtorch.amp.GradScaler("cpu", init_scale=4.0)
>>> w = dtorch.nn.Parameter(dtorch.ones(1))
>>> opt = dtorch.optim.SGD([w], lr=0.1)
>>> scaler.scale((w * 3).sum()).backward(); w.grad      # the gradient of the scaled loss
tensor([12.])
>>> scaler.step(opt); scaler.update(); w                 # unscaled to 3 before the step
Parameter containing:
tensor([0.7000], requires_grad=True)
"""

import functools
import math

from dtorch import _backend
from dtorch.autograd import grad_mode
from dtorch.tensor import Tensor
from dtorch._warnings import warn as _warn

_STATE = grad_mode.autocast_state
_LOWER_DTYPES = {"cpu": (_backend.bfloat16, _backend.float16), "cuda": (_backend.float16, _backend.bfloat16)}


def _check_device_type(device_type):
    if not isinstance(device_type, str):
        raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
    if device_type not in _LOWER_DTYPES:
        raise RuntimeError(f"User specified an unsupported autocast device_type '{device_type}'")


def is_autocast_enabled(device_type=None):
    """Whether an enabled autocast region is in force for ``device_type`` (``'cuda'`` when not given, as PyTorch).

    >>> import dtorch
    >>> with dtorch.autocast("cpu"):
    ...     dtorch.is_autocast_enabled("cpu"), dtorch.is_autocast_enabled()
    (True, False)
    """
    device_type = "cuda" if device_type is None else device_type
    _check_device_type(device_type)
    return _STATE.enabled[device_type]


def get_autocast_dtype(device_type):
    """The dtype autocast casts to on ``device_type`` (the innermost region's, or the default: ``bfloat16`` for
    ``'cpu'``, ``float16`` for ``'cuda'``).

    >>> import dtorch
    >>> dtorch.get_autocast_dtype("cpu"), dtorch.get_autocast_dtype("cuda")
    (dtorch.bfloat16, dtorch.float16)
    """
    _check_device_type(device_type)
    return _STATE.dtype[device_type]


def set_autocast_enabled(device_type, enabled):
    """Turn autocast on or off for ``device_type`` outside any region (``autocast`` is the usual way)."""
    _check_device_type(device_type)
    _STATE.set_enabled(device_type, enabled)


def set_autocast_dtype(device_type, dtype):
    """Set the dtype autocast casts to on ``device_type``."""
    _check_device_type(device_type)
    _STATE.dtype[device_type] = dtype


def is_autocast_cpu_enabled():
    """``is_autocast_enabled('cpu')`` (PyTorch's older spelling)."""
    return _STATE.enabled["cpu"]


def get_autocast_cpu_dtype():
    """``get_autocast_dtype('cpu')`` (PyTorch's older spelling)."""
    return _STATE.dtype["cpu"]


class autocast:
    """A region (context manager or decorator) where matmuls, linear layers and convolutions on ``device_type``
    compute in ``dtype`` and the losses in float32, as PyTorch's ``torch.autocast`` (see the module docstring for the
    op lists).

    Args:
        device_type: ``'cuda'`` or ``'cpu'``. dtype: the lower precision (default ``float16`` for CUDA, ``bfloat16``
            for the CPU). enabled: False makes a region that turns autocast off. cache_enabled: accepted; dtorch
            keeps no cast cache.

    As PyTorch: a ``'cuda'`` region where no GPU is available, or a dtype the device type cannot autocast to, warns
    and is disabled. A ``'cuda'`` region with ``dtype=bfloat16`` on a GPU is a TypeError (CuPy has no bfloat16).

    >>> import dtorch
    >>> with dtorch.autocast("cpu", dtype=dtorch.bfloat16):
    ...     (dtorch.ones(2, 2) @ dtorch.ones(2, 2)).dtype
    dtorch.bfloat16
    """

    def __init__(self, device_type="cuda", dtype=None, enabled=True, cache_enabled=None):
        # (device_type defaults to 'cuda' so that the older ``dtorch.cuda.amp.autocast(...)`` spelling works)
        _check_device_type(device_type)
        self.device = device_type
        self.device_type = device_type
        self.fast_dtype = _STATE.dtype[device_type] if dtype is None else dtype
        self._cache_enabled = cache_enabled
        enabled = bool(enabled)
        if enabled and device_type == "cuda" and not _backend.cuda_is_available():
            _warn("User provided device_type of 'cuda', but CUDA is not available. Disabling")
            enabled = False
        if enabled and self.fast_dtype not in _LOWER_DTYPES[device_type]:
            if device_type == "cpu":
                _warn("In CPU autocast, but the target dtype is not supported. Disabling autocast.\n"
                      "CPU Autocast only supports dtypes of torch.bfloat16, torch.float16 currently.")
            else:
                _warn("In CUDA autocast, but the target dtype is not supported. Disabling autocast.\n"
                      "CUDA Autocast only supports dtypes of torch.float16 and torch.bfloat16 currently.")
            enabled = False
        if enabled and device_type == "cuda" and self.fast_dtype is _backend.bfloat16:
            _backend.check_cuda_dtype(_backend.BFLOAT16_NUMPY)  # raises: CuPy has no bfloat16
        self._enabled = enabled
        self._saved = []  # (enabled, dtype) before each __enter__ of this object, innermost last

    def __enter__(self):
        device_type = self.device_type
        self._saved.append((_STATE.enabled[device_type], _STATE.dtype[device_type]))
        if self._enabled:
            _STATE.dtype[device_type] = self.fast_dtype
        _STATE.set_enabled(device_type, self._enabled)
        return self

    def __exit__(self, *exc_info):
        enabled, dtype = self._saved.pop()
        _STATE.dtype[self.device_type] = dtype
        _STATE.set_enabled(self.device_type, enabled)
        return False

    def __call__(self, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with self:
                return function(*args, **kwargs)

        return wrapper


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
