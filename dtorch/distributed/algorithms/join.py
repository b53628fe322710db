"""Training with uneven inputs: PyTorch's ``Join`` context manager, ``Joinable`` and ``JoinHook``.

When ranks run different numbers of iterations, a rank that runs out of data would leave the others waiting in
their collectives. Inside ``with Join([model, ...]):`` every iteration of a still-active rank calls
:meth:`Join.notify_join_context` (DDP does it in its forward), which all-reduces a 1; a rank that has left its loop
enters ``__exit__``, all-reduces a 0 in step with those calls and, while the sum is not 0, runs each joinable's
``main_hook`` to *shadow* one iteration of the others' collectives (DDP all-reduces zero gradients). When every
rank has joined, each joinable's ``post_hook(is_last_joiner)`` runs (DDP broadcasts the final parameters from a rank
that was active until the end).

Contract: every collective of a shadowed iteration is issued in the same order on the joined rank as on the active
ones; the joinables must not run other collectives in their iterations (SyncBatchNorm cannot be shadowed).

>>> import dtorch.distributed as dist
>>> with Join([ddp_model]):                      # doctest: +SKIP
...     for batch in my_shard_of_uneven_length:
...         ddp_model(batch).sum().backward()
"""

import abc

import numpy as np

import dtorch.distributed as dist
from dtorch.tensor import Tensor

__all__ = ["Join", "JoinHook", "Joinable"]


class JoinHook:
    """What a :class:`Joinable` does once its rank has joined: ``main_hook`` shadows one iteration of the active
    ranks' collectives; ``post_hook(is_last_joiner)`` runs once every rank has joined."""

    def main_hook(self):
        """Shadow one training iteration of the ranks that still have data."""

    def post_hook(self, is_last_joiner):
        """Called after all ranks joined; ``is_last_joiner`` is True on the ranks active until the very end."""


class Joinable(abc.ABC):
    """Something that takes part in :class:`Join`: it gives a :class:`JoinHook` and the device and process group of
    its per-iteration collectives, and calls ``Join.notify_join_context(self)`` once per iteration."""

    def __init__(self):
        super().__init__()
        self._join_config = _JoinConfig.construct_disabled_join_config()

    @abc.abstractmethod
    def join_hook(self, **kwargs):
        """The :class:`JoinHook` for this joinable (``kwargs`` are those given to ``Join``)."""

    @property
    @abc.abstractmethod
    def join_device(self):
        """The device of the join context's collectives."""

    @property
    @abc.abstractmethod
    def join_process_group(self):
        """The process group of the join context's collectives."""


class _JoinConfig:
    __slots__ = ("enable", "throw_on_early_termination", "is_first_joinable")

    def __init__(self, enable, throw_on_early_termination, is_first_joinable):
        self.enable = enable
        self.throw_on_early_termination = throw_on_early_termination
        self.is_first_joinable = is_first_joinable

    @staticmethod
    def construct_disabled_join_config():
        return _JoinConfig(False, False, False)


class Join:
    """Context manager for ranks with different numbers of inputs (PyTorch's ``torch.distributed.algorithms.Join``).

    Args:
        joinables: the :class:`Joinable` objects of the loop (a DDP model, ...); all must use one process group.
        enable: False turns the context into a no-op.
        throw_on_early_termination: raise RuntimeError on every rank as soon as one rank has run out of inputs,
            instead of shadowing it.
        kwargs: passed to each joinable's ``join_hook`` (DDP reads ``divide_by_initial_world_size``).

    >>> with Join([ddp_model], throw_on_early_termination=False):     # doctest: +SKIP
    ...     train_my_shard()
    """

    def __init__(self, joinables, enable=True, throw_on_early_termination=False, **kwargs):
        joinables = list(joinables)
        if not joinables:
            raise ValueError("The join context manager requires at least one joinable")
        for joinable in joinables:
            if not isinstance(joinable, Joinable):
                raise TypeError(f"Join: {type(joinable).__name__} is not a Joinable")
        self._joinables = joinables
        self._join_hooks = [joinable.join_hook(**kwargs) for joinable in joinables]
        self._enable = enable
        self._throw_on_early_termination = throw_on_early_termination
        self._process_group = joinables[0].join_process_group
        for joinable in joinables[1:]:
            if joinable.join_process_group is not self._process_group:
                raise ValueError("Using join context manager with multiple process groups")
        self._device = joinables[0].join_device
        self._set_configs()

    def _set_configs(self, enable=None):
        for index, joinable in enumerate(self._joinables):
            joinable._join_config = _JoinConfig(self._enable if enable is None else enable,
                                                self._throw_on_early_termination, index == 0)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        try:
            if not self._enable or exc_type is not None:
                return False  # an error in the loop propagates; shadowing would only hide it behind a hang
            is_last_joiner = True
            while True:
                active = self._count_active(0)
                if active == 0:
                    break
                if self._throw_on_early_termination:
                    raise RuntimeError("Detected at least one rank that exhausted inputs. Throwing across all ranks.")
                is_last_joiner = False
                for hook in self._join_hooks:
                    hook.main_hook()
            for hook in self._join_hooks:
                hook.post_hook(is_last_joiner)
            return False
        finally:
            self._set_configs(enable=False)

    def _count_active(self, mine):
        flag = Tensor._from_array(np.array([mine], np.int64), None)
        dist.all_reduce(flag, group=self._process_group)
        return int(flag._array[0])

    @staticmethod
    def notify_join_context(joinable):
        """Tell the join context that ``joinable``'s rank runs another iteration (call once per iteration).

        Returns the Work of the all-reduce that counts the active ranks (its tensor holds the count) for the first
        joinable of the context, None otherwise or outside an enabled context. With
        ``throw_on_early_termination`` it raises RuntimeError on every rank once one rank has joined.
        """
        config = getattr(joinable, "_join_config", None)
        if config is None:
            raise RuntimeError(f"{type(joinable).__name__} must call Joinable.__init__() to take part in Join")
        if not (config.is_first_joinable and config.enable):
            return None
        group = joinable.join_process_group
        ones = Tensor._from_array(np.ones(1, np.int64), None)
        if config.throw_on_early_termination:
            dist.all_reduce(ones, group=group)
            if int(ones._array[0]) < dist.get_world_size(group):
                raise RuntimeError("Detected at least one rank that exhausted inputs. Throwing across all ranks.")
            return None
        return dist.all_reduce(ones, group=group, async_op=True)
