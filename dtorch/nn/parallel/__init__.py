"""``dtorch.nn.parallel``: ``DistributedDataParallel`` (one process per device, gradients averaged over the ranks
during backward), and ``DataParallel``/``data_parallel`` for scripts written for PyTorch's single-process wrapper
(they run the module as it is on the CPU or the one device).

>>> import dtorch
>>> from dtorch.nn.parallel import data_parallel
>>> data_parallel(dtorch.nn.Linear(3, 1), dtorch.ones(2, 3)).shape
dtorch.Size([2, 1])
"""

from dtorch.nn.parallel.data_parallel import DataParallel, data_parallel
from dtorch.nn.parallel.distributed import DistributedDataParallel

__all__ = ["DataParallel", "DistributedDataParallel", "data_parallel"]
