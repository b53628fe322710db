"""DDP communication hooks, at PyTorch's paths: ``default_hooks`` (``allreduce_hook``, ``fp16_compress_hook``,
``fp16_compress_wrapper``) and ``powerSGD_hook`` (``PowerSGDState``, ``powerSGD_hook``, ``batched_powerSGD_hook``).
Register one with ``ddp.register_comm_hook(state, hook)``, or by name with :func:`register_ddp_comm_hook`.

>>> from dtorch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook as powerSGD
>>> powerSGD.PowerSGDState(process_group=None, matrix_approximation_rank=2).matrix_approximation_rank
2
"""

import enum
import functools

from dtorch.distributed.algorithms.ddp_comm_hooks import default_hooks, powerSGD_hook  # noqa: F401

__all__ = ["DDPCommHookType", "default_hooks", "powerSGD_hook", "register_ddp_comm_hook"]


def _ddp_comm_hook_wrapper(comm_hook, model, state):
    model.register_comm_hook(state, comm_hook)


def _powerSGD_comm_hook_wrapper(comm_hook, model, state, matrix_approximation_rank,  # noqa: N802
                                start_powerSGD_iter=1_000):
    powerSGD_state = powerSGD_hook.PowerSGDState(process_group=state,  # noqa: N806 - PyTorch's name
                                                 matrix_approximation_rank=matrix_approximation_rank,
                                                 start_powerSGD_iter=start_powerSGD_iter)
    model.register_comm_hook(powerSGD_state, comm_hook)


class DDPCommHookType(enum.Enum):
    """The built-in hooks by name (PyTorch's enum, without the quantisation and bfloat16 ones); for PowerSGD the
    ``state`` given to :func:`register_ddp_comm_hook` is the process group."""

    ALLREDUCE = functools.partial(_ddp_comm_hook_wrapper, comm_hook=default_hooks.allreduce_hook)
    FP16_COMPRESS = functools.partial(_ddp_comm_hook_wrapper, comm_hook=default_hooks.fp16_compress_hook)
    POWER_SGD = functools.partial(_powerSGD_comm_hook_wrapper, comm_hook=powerSGD_hook.powerSGD_hook,
                                  matrix_approximation_rank=1)
    POWER_SGD_RANK2 = functools.partial(_powerSGD_comm_hook_wrapper, comm_hook=powerSGD_hook.powerSGD_hook,
                                        matrix_approximation_rank=2)
    BATCHED_POWER_SGD = functools.partial(_powerSGD_comm_hook_wrapper,
                                          comm_hook=powerSGD_hook.batched_powerSGD_hook, matrix_approximation_rank=1)
    BATCHED_POWER_SGD_RANK2 = functools.partial(_powerSGD_comm_hook_wrapper,
                                                comm_hook=powerSGD_hook.batched_powerSGD_hook,
                                                matrix_approximation_rank=2)


def register_ddp_comm_hook(comm_hook_type, model, state=None):
    """Register the built-in hook ``comm_hook_type`` (a :class:`DDPCommHookType`) on the DDP ``model``.

    >>> register_ddp_comm_hook(DDPCommHookType.FP16_COMPRESS, ddp)             # doctest: +SKIP
    """
    if not isinstance(comm_hook_type, DDPCommHookType):
        raise TypeError(f"register_ddp_comm_hook: expected a DDPCommHookType, got {comm_hook_type!r}")
    comm_hook_type.value(model=model, state=state)
