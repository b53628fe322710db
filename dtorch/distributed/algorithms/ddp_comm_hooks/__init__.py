"""DDP communication hooks, at PyTorch's paths: ``default_hooks`` (``allreduce_hook``, ``fp16_compress_hook``) and
``powerSGD_hook`` (``PowerSGDState``, ``powerSGD_hook``). Register one with ``ddp.register_comm_hook(state, hook)``.

>>> from dtorch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook as powerSGD
>>> powerSGD.PowerSGDState(process_group=None, matrix_approximation_rank=2).matrix_approximation_rank
2
"""

from dtorch.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook  # noqa: F401

__all__ = ["default_hooks", "powerSGD_hook"]
