"""``dtorch.cuda``: whether a GPU can be used, and the few device controls scripts call.

Everything here works without CuPy: ``is_available()`` is then False and ``device_count()`` is 0.
"""

from dtorch import _backend, random


def is_available():
    """True when CuPy is installed and sees a GPU.

    >>> import dtorch
    >>> isinstance(dtorch.cuda.is_available(), bool)
    True
    """
    return _backend.cuda_is_available()


def device_count():
    return _backend.cuda_device_count()


def current_device():
    return _backend.cupy().cuda.runtime.getDevice()


def set_device(device):
    index = device if isinstance(device, int) else _backend.as_device(device).index
    _backend.cupy().cuda.Device(index).use()


def synchronize(device=None):
    if is_available():
        _backend.cupy().cuda.Device(device if isinstance(device, int) else None).synchronize()


def manual_seed(seed):
    """Random tensors for CUDA are drawn on the host from the default generator: seeding that covers them."""
    random.manual_seed(seed)


manual_seed_all = manual_seed


def is_initialized():
    return is_available()


def _require_cuda(what):
    if not is_available():
        raise RuntimeError(f"dtorch.cuda.{what}: no CUDA device is available (CuPy is missing or sees no GPU)")
    return _backend.cupy()


def empty_cache():
    """Return the cached, unused GPU memory of CuPy's pools to the driver (nothing to do without a GPU)."""
    if is_available():
        cupy = _backend.cupy()
        cupy.get_default_memory_pool().free_all_blocks()
        cupy.get_default_pinned_memory_pool().free_all_blocks()


def get_device_name(device=None):
    """The GPU's name, e.g. ``'NVIDIA H100 80GB HBM3'``."""
    cupy = _require_cuda("get_device_name")
    index = current_device() if device is None else (device if isinstance(device, int)
                                                      else _backend.as_device(device).index or 0)
    name = cupy.cuda.runtime.getDeviceProperties(index)["name"]
    return name.decode() if isinstance(name, bytes) else name


def memory_allocated(device=None):
    """Bytes of GPU memory held by tensors now (CuPy's default pool); 0 without a GPU."""
    if not is_available():
        return 0
    return _backend.cupy().get_default_memory_pool().used_bytes()


def memory_reserved(device=None):
    """Bytes of GPU memory CuPy's default pool holds from the driver (used plus cached); 0 without a GPU."""
    if not is_available():
        return 0
    return _backend.cupy().get_default_memory_pool().total_bytes()


class _PeakTracker:
    """Counts the peak of ``pool.used_bytes()`` by wrapping the pool's ``malloc`` as CuPy's allocator.

    Installed on the first call of ``reset_peak_memory_stats`` or ``max_memory_allocated``, not at import: the
    wrapper adds a Python call to every allocation, which only code that asks for the peak should pay. So the peak
    counts from that first call (PyTorch counts from the start of the program): call ``reset_peak_memory_stats()``
    before the code you measure, as PyTorch's docs recommend anyway.
    """

    def __init__(self, pool):
        self.pool = pool
        self.peak = pool.used_bytes()

    def malloc(self, size):
        memory = self.pool.malloc(size)
        used = self.pool.used_bytes()
        if used > self.peak:
            self.peak = used
        return memory


_peak_tracker = None


def _tracker():
    global _peak_tracker
    if _peak_tracker is None:
        cupy = _backend.cupy()
        _peak_tracker = _PeakTracker(cupy.get_default_memory_pool())
        cupy.cuda.set_allocator(_peak_tracker.malloc)
    return _peak_tracker


def max_memory_allocated(device=None):
    """The peak of ``memory_allocated()`` since the first call of this or ``reset_peak_memory_stats`` (see
    ``_PeakTracker`` for why not since the start); 0 without a GPU.

    >>> import dtorch
    >>> dtorch.cuda.max_memory_allocated() >= 0
    True
    """
    if not is_available():
        return 0
    return _tracker().peak


def reset_peak_memory_stats(device=None):
    """Start counting ``max_memory_allocated()`` afresh from the memory in use now (nothing without a GPU)."""
    if is_available():
        tracker = _tracker()
        tracker.peak = tracker.pool.used_bytes()


def get_device_capability(device=None):
    """The GPU's compute capability as ``(major, minor)``, e.g. ``(9, 0)`` for an H100."""
    cupy = _require_cuda("get_device_capability")
    index = current_device() if device is None else _device_index(device)
    properties = cupy.cuda.runtime.getDeviceProperties(index)
    return properties["major"], properties["minor"]


def _device_index(device):
    if isinstance(device, int):
        return device
    return _backend.as_device(device).index or 0


class device:
    """A context manager that makes ``device`` the current GPU inside it, as ``torch.cuda.device``.

    >>> import dtorch
    >>> with dtorch.cuda.device(0) if dtorch.cuda.is_available() else __import__("contextlib").nullcontext():
    ...     pass
    """

    def __init__(self, device):
        self.index = _device_index(device)
        self.previous = None

    def __enter__(self):
        self.previous = current_device()
        set_device(self.index)
        return self

    def __exit__(self, *exc_info):
        set_device(self.previous)
        return False


class Event:
    """A CUDA event for timing GPU work, ``torch.cuda.Event`` (CuPy's event underneath).

    >>> import dtorch
    >>> if dtorch.cuda.is_available():
    ...     start, end = dtorch.cuda.Event(enable_timing=True), dtorch.cuda.Event(enable_timing=True)
    ...     start.record(); _ = dtorch.ones(1000, device="cuda").sum(); end.record(); end.synchronize()
    ...     assert start.elapsed_time(end) >= 0
    """

    def __init__(self, enable_timing=False, blocking=False, interprocess=False):
        if interprocess:
            raise NotImplementedError("dtorch.cuda.Event(interprocess=True): CuPy events cannot be shared between "
                                      "processes")
        cupy = _require_cuda("Event")
        self.enable_timing = enable_timing
        self._event = cupy.cuda.Event(block=blocking, disable_timing=not enable_timing)

    def record(self, stream=None):
        """Record the event on ``stream`` (the current stream by default)."""
        self._event.record(stream)

    def synchronize(self):
        """Wait until the work recorded before the event has finished."""
        self._event.synchronize()

    def query(self):
        """True when the work recorded before the event has finished."""
        return self._event.done

    def wait(self, stream=None):
        """Make ``stream`` (the current stream by default) wait for this event."""
        cupy = _backend.cupy()
        (stream or cupy.cuda.get_current_stream()).wait_event(self._event)

    def elapsed_time(self, end_event):
        """Milliseconds between this event and ``end_event`` (both recorded with ``enable_timing=True``)."""
        if not (self.enable_timing and end_event.enable_timing):
            raise RuntimeError("Both events must be created with argument 'enable_timing=True'.")
        return _backend.cupy().cuda.get_elapsed_time(self._event, end_event._event)
