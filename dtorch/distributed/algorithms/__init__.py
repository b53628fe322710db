"""Training algorithms built on the collectives: ``Join`` for uneven inputs and the DDP communication hooks
(``ddp_comm_hooks``), at PyTorch's module paths.

>>> from dtorch.distributed.algorithms import Join
>>> from dtorch.distributed.algorithms.ddp_comm_hooks import default_hooks
>>> default_hooks.allreduce_hook.__name__
'allreduce_hook'
"""

from dtorch.distributed.algorithms.grad_bucket import GradBucket
from dtorch.distributed.algorithms.join import Join, Joinable, JoinHook

__all__ = ["GradBucket", "Join", "JoinHook", "Joinable"]
