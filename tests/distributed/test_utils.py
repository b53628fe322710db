"""dtorch/distributed/utils.py: the coalesced broadcast DDP and ZeroRedundancyOptimizer share, and the default-group
lookup with PyTorch's error where there is no group."""

import numpy as np
import pytest

import dtorch
import dtorch.distributed as dist
from dtorch.distributed.optim import ZeroRedundancyOptimizer
from dtorch.distributed.utils import _broadcast_coalesced, _group_or_world
from dtorch.nn.parallel import DistributedDataParallel as DDP


def test_broadcast_coalesced_gives_every_rank_the_source_values_per_dtype(world):
    rank, size = dist.get_rank(), dist.get_world_size()
    src = size - 1
    tensors = [dtorch.full((2, 3), float(rank)), dtorch.full((4,), rank, dtype=dtorch.int64),
               dtorch.full((1,), rank + 0.5, dtype=dtorch.float64), dtorch.full((3,), float(-rank))]
    _broadcast_coalesced(tensors, src, None)
    expected = [np.full((2, 3), src, np.float32), np.full((4,), src, np.int64), np.full((1,), src + 0.5),
                np.full((3,), -src, np.float32)]
    for got, want in zip(tensors, expected):
        assert got.dtype == dtorch.tensor(want).dtype and got.shape == want.shape
        np.testing.assert_array_equal(got.numpy(), want)
    _broadcast_coalesced([], src, None)  # nothing to send: no collective, no error


def test_without_a_default_group_ddp_and_zero_raise_pytorchs_error(monkeypatch):
    monkeypatch.setattr(dist.group, "WORLD", None)
    message = "Default process group has not been initialized"
    with pytest.raises(RuntimeError, match=message):
        _group_or_world(None)
    with pytest.raises(RuntimeError, match=message):
        DDP(dtorch.nn.Linear(2, 2))
    with pytest.raises(RuntimeError, match=message):
        ZeroRedundancyOptimizer(dtorch.nn.Linear(2, 2).parameters(), dtorch.optim.SGD, lr=0.1)
    assert _group_or_world("a group") == "a group"
