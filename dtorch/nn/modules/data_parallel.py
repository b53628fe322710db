"""``DataParallel``: PyTorch's single-process wrapper, for scripts that wrap their model in it.

Without a GPU it calls the module, as PyTorch's does. dtorch does not split a batch over several GPUs in one
process: with one device the inputs move to it and the module runs there; asking for several devices raises (use
``DistributedDataParallel``, one process per GPU).
"""

from dtorch import _backend
from dtorch.nn.modules.module import Module
from dtorch.tensor import Tensor

__all__ = ["DataParallel"]


class DataParallel(Module):
    """Wraps ``module``; ``forward`` runs it on the (at most one) device of ``device_ids``.

    >>> import dtorch
    >>> model = dtorch.nn.DataParallel(dtorch.nn.Linear(2, 1))
    >>> list(model.state_dict())
    ['module.weight', 'module.bias']
    >>> model(dtorch.ones(3, 2)).shape
    dtorch.Size([3, 1])
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        self.module = module
        if not _backend.cuda_is_available():
            self.device_ids = []
            return
        if device_ids is None:
            device_ids = [0]  # one process drives one GPU in dtorch
        device_ids = [d.index if hasattr(d, "index") else int(d) for d in device_ids]
        if len(device_ids) > 1:
            raise NotImplementedError(
                f"dtorch's DataParallel runs on one device, got device_ids={device_ids}: use "
                "DistributedDataParallel with one process per GPU"
            )
        self.device_ids = device_ids
        self.output_device = device_ids[0] if output_device is None else output_device
        self.dim = dim
        self.src_device_obj = _backend.as_device(f"cuda:{device_ids[0]}")

    def forward(self, *inputs, **kwargs):
        if not self.device_ids:
            return self.module(*inputs, **kwargs)
        device = self.src_device_obj

        def move(value):
            return value.to(device) if isinstance(value, Tensor) else value

        return self.module(*[move(v) for v in inputs], **{k: move(v) for k, v in kwargs.items()})
