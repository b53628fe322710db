"""``dtorch.cuda``: whether a GPU can be used, and the few device controls scripts call.

Everything here works without CuPy: ``is_available()`` is then False and ``device_count()`` is 0.
"""

from dtorch import _backend


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
    from dtorch.random import manual_seed as seed_default

    seed_default(seed)


manual_seed_all = manual_seed


def is_initialized():
    return is_available()
