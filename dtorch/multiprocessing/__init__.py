"""PyTorch's ``torch.multiprocessing`` for dtorch: the standard ``multiprocessing`` names, and :func:`spawn`.

``import dtorch.multiprocessing as mp`` gives what ``torch.multiprocessing`` gives: every name of Python's
``multiprocessing`` (``Process``, ``Queue``, ``get_context``, ``set_start_method``, ``cpu_count``, ...), the
sharing-strategy functions, and :func:`spawn` / :func:`start_processes` with :class:`ProcessContext` and the
exceptions that carry a child's traceback.

``spawn`` starts its children through the MPI launcher, so they form an MPI world and
``init_process_group("gloo", rank=i, world_size=nprocs)`` in child ``i`` works (see :mod:`dtorch.multiprocessing.spawn`
for why). The sharing strategy is kept for PyTorch's API only: dtorch passes tensors between processes by pickling
(DataLoader batches travel through files in ``/dev/shm``), so it changes nothing.

>>> import dtorch.multiprocessing as mp
>>> mp.get_sharing_strategy()
'file_descriptor'
>>> mp.cpu_count() >= 1
True
"""

import multiprocessing as _multiprocessing
from multiprocessing import *  # noqa: F401,F403  (PyTorch re-exports the whole module)

from dtorch.multiprocessing.spawn import (  # noqa: F401
    ProcessContext,
    ProcessException,
    ProcessExitedException,
    ProcessRaisedException,
    spawn,
    start_processes,
)

_sharing_strategy = "file_descriptor"
_all_sharing_strategies = {"file_descriptor", "file_system"}


def set_sharing_strategy(new_strategy):
    """Choose how tensors are shared between processes (``'file_descriptor'`` or ``'file_system'``).

    Kept for PyTorch's API: dtorch's tensors travel between processes by pickling either way.

    >>> set_sharing_strategy("file_system"); get_sharing_strategy()
    'file_system'
    >>> set_sharing_strategy("file_descriptor")
    """
    global _sharing_strategy
    if new_strategy not in _all_sharing_strategies:
        raise ValueError(f"sharing strategy {new_strategy!r} is not one of {sorted(_all_sharing_strategies)}")
    _sharing_strategy = new_strategy


def get_sharing_strategy():
    """The current sharing strategy (see :func:`set_sharing_strategy`).

    >>> get_sharing_strategy() in get_all_sharing_strategies()
    True
    """
    return _sharing_strategy


def get_all_sharing_strategies():
    """The sharing strategies this platform supports.

    >>> sorted(get_all_sharing_strategies())
    ['file_descriptor', 'file_system']
    """
    return set(_all_sharing_strategies)


__all__ = ["set_sharing_strategy", "get_sharing_strategy", "get_all_sharing_strategies", "spawn",
           "start_processes", "ProcessContext", "ProcessException", "ProcessRaisedException",
           "ProcessExitedException"] + list(_multiprocessing.__all__)
