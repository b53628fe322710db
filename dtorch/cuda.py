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
