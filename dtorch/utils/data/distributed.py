"""``DistributedSampler``: each rank's share of a map-style dataset, with PyTorch's exact semantics.

Every rank builds the same global order (``0..N-1``, or one permutation seeded by ``seed + epoch``), pads it by
repeating its front up to ``num_replicas * ceil(N / num_replicas)`` (or, with ``drop_last``, cuts it to a multiple
of ``num_replicas``), and takes the interleaved slice ``rank::num_replicas``. No communication happens: ranks agree
because they compute the same thing. Call ``set_epoch(epoch)`` before every epoch, or every epoch repeats the same
order.
"""
import math
import os
import warnings

import numpy as np

from dtorch import distributed as dist
from dtorch.utils.data import _rng
from dtorch.utils.data.sampler import Sampler


# what launchers export as the number of processes (dtorchrun/torchrun, MPICH/Hydra, Open MPI, MVAPICH)
_LAUNCHER_SIZE_VARIABLES = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def _launched_world_size():
    """The job size a launcher announced in the environment, or 1."""
    for name in _LAUNCHER_SIZE_VARIABLES:
        try:
            return max(int(os.environ[name]), 1)
        except (KeyError, ValueError):
            continue
    return 1


def _default_world(who="DistributedSampler"):
    """``(world_size, rank)`` of dtorch's default process group, or ``(1, 0)`` where none is initialised.

    PyTorch raises where no process group exists; dtorch treats a single process as a world of one (DESIGN.md), but
    warns when a launcher says the job has more processes: every rank would then read the whole dataset.
    """
    if dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    launched = _launched_world_size()
    if launched > 1:
        warnings.warn(f"{who}: dtorch.distributed is not initialised, so num_replicas=1 and rank=0, although the "
                      f"launcher started {launched} processes: every rank will read the whole dataset. Call "
                      "dtorch.distributed.init_process_group() first, or pass num_replicas and rank.",
                      RuntimeWarning, stacklevel=3)
    return 1, 0


class DistributedSampler(Sampler):
    """Restricts sampling to this rank's share of ``dataset``.

    Args:
        dataset: a sized dataset.
        num_replicas: the number of ranks sharing the data; default: the default process group's world size
            (1 when ``dtorch.distributed`` is not initialised, where PyTorch would raise; with a RuntimeWarning
            when the launcher's environment says the job has more processes).
        rank: this rank, in ``[0, num_replicas)``; default: the default process group's rank (0 likewise).
        shuffle: permute the indices every epoch (seeded by ``seed + epoch``, identical on every rank).
        seed: the base seed; must be the same on every rank.
        drop_last: drop the tail so every rank gets ``floor(N / num_replicas)`` samples, instead of padding to
            ``ceil(N / num_replicas)`` by repeating the first indices.

    Example:
        >>> list(DistributedSampler(range(5), num_replicas=2, rank=1, shuffle=False))
        [1, 3, 0]
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if num_replicas is None or rank is None:
            world, default_rank = _default_world()
            num_replicas = world if num_replicas is None else num_replicas
            rank = default_rank if rank is None else rank
        if isinstance(num_replicas, bool) or not isinstance(num_replicas, (int, np.integer)) or num_replicas < 1:
            raise ValueError(f"num_replicas should be a positive integer, but got num_replicas={num_replicas!r}")
        if not isinstance(rank, (int, np.integer)) or rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.epoch = 0
        self.drop_last = drop_last
        n = len(dataset)
        if drop_last and n % self.num_replicas != 0:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def _global_order(self):
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n, dtype=np.int64)
        return _rng.seeded_numpy_generator(self.seed + self.epoch).permutation(n)

    def __iter__(self):
        indices = self._global_order()
        if not self.drop_last:
            padding = self.total_size - len(indices)
            if padding > 0:
                indices = np.concatenate([indices, np.resize(indices, padding)])
        else:
            indices = indices[: self.total_size]
        assert len(indices) == self.total_size
        mine = indices[self.rank : self.total_size : self.num_replicas]
        assert len(mine) == self.num_samples
        return iter(mine.tolist())

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """Sets the epoch that seeds the shuffle; call it with the same value on every rank before each epoch."""
        self.epoch = epoch
