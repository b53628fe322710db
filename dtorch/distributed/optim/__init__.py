"""``dtorch.distributed.optim``: optimizers that know about the ranks, PyTorch's ``torch.distributed.optim``.

>>> from dtorch.distributed.optim import ZeroRedundancyOptimizer
>>> ZeroRedundancyOptimizer.__name__
'ZeroRedundancyOptimizer'
"""

from dtorch.distributed.optim.zero_redundancy_optimizer import ZeroRedundancyOptimizer

__all__ = ["ZeroRedundancyOptimizer"]
