"""PyTorch's ``torch.nn.parallel.data_parallel`` module: ``DataParallel`` and the functional ``data_parallel``.

dtorch runs one process per device (use ``DistributedDataParallel`` to use several); these run the module as it
is on the CPU, or on the one device of ``device_ids``, as PyTorch's do when fewer than two GPUs are visible.
"""

from dtorch.nn.modules.data_parallel import DataParallel

__all__ = ["DataParallel", "data_parallel"]


def data_parallel(module, inputs, device_ids=None, output_device=None, dim=0, module_kwargs=None):
    """Evaluate ``module(*inputs, **module_kwargs)`` the way ``DataParallel(module, device_ids)`` would.

    Args:
        module: the module to run.
        inputs: one input, or a tuple of positional inputs.
        device_ids: None, or the one device to run on (inputs are moved there).
        output_device, dim: accepted for PyTorch's signature.
        module_kwargs: keyword arguments for the module.

    >>> import dtorch
    >>> data_parallel(dtorch.nn.Linear(2, 4), (dtorch.ones(3, 2),)).shape
    dtorch.Size([3, 4])
    """
    if not isinstance(inputs, tuple):
        inputs = (inputs,)
    wrapper = DataParallel(module, device_ids=device_ids, output_device=output_device, dim=dim)
    return wrapper(*inputs, **(module_kwargs or {}))
