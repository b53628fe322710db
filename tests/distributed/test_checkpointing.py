"""The rank-0 checkpoint helper: one rank writes atomically, every rank waits and then loads onto its device; a
failed write raises on every rank. Runs at any world size."""

import os
import tempfile

import numpy as np
import pytest

import dtorch
import dtorch.distributed as dist
from dtorch import nn
from dtorch.distributed.checkpointing import default_map_location, load_checkpoint, save_checkpoint
from dtorch.nn.modules.utils import consume_prefix_in_state_dict_if_present
from dtorch.nn.parallel import DistributedDataParallel as DDP


@pytest.fixture
def shared_folder(world):
    """A folder every rank sees (made by rank 0, its path broadcast), removed afterwards."""
    folder = [tempfile.mkdtemp() if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(folder)
    yield folder[0]
    dist.barrier()
    if dist.get_rank() == 0:
        for name in os.listdir(folder[0]):
            os.remove(os.path.join(folder[0], name))
        os.rmdir(folder[0])


def _net():
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))


def test_a_ddp_checkpoint_loads_into_a_plain_model_on_every_rank(world, shared_folder):
    rank = dist.get_rank()
    dtorch.manual_seed(rank)  # DDP makes rank 0's weights everyone's
    model = DDP(_net())
    optimizer = dtorch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(dtorch.randn(3, 4)).sum().backward()
    optimizer.step()
    path = os.path.join(shared_folder, "ddp.pt")
    save_checkpoint(lambda: {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": 1}, path)
    state = load_checkpoint(path)
    assert state["step"] == 1
    consume_prefix_in_state_dict_if_present(state["model"], "module.")
    plain = _net()
    plain.load_state_dict(state["model"])
    for ours, theirs in zip(plain.parameters(), model.module.parameters()):
        np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())
        assert ours.device == dtorch.device(default_map_location())
    resumed = dtorch.optim.SGD(plain.parameters(), lr=0.1, momentum=0.9)
    resumed.load_state_dict(state["optimizer"])
    assert sorted(resumed.state_dict()["state"]) == [0, 1, 2, 3]
    assert not [name for name in os.listdir(shared_folder) if name != "ddp.pt"]  # no temporary file left


def test_only_the_source_rank_writes(world, shared_folder):
    rank, size = dist.get_rank(), dist.get_world_size()
    path = os.path.join(shared_folder, "who.pt")
    save_checkpoint({"writer": rank, "values": dtorch.full((2,), float(rank))}, path, src=size - 1)
    state = load_checkpoint(path, map_location="cpu")
    assert state["writer"] == size - 1
    assert state["values"].tolist() == [float(size - 1)] * 2


def test_a_failed_write_raises_on_every_rank(world, shared_folder):
    path = os.path.join(shared_folder, "missing-folder", "x.pt")
    with pytest.raises(RuntimeError, match=r"rank 0 could not write .*missing-folder"):
        save_checkpoint({"a": 1}, path)
