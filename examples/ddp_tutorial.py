"""PyTorch's "Getting Started with Distributed Data Parallel" tutorial, run with dtorch.

    python examples/ddp_tutorial.py --world-size 2

``mp.spawn`` starts the processes (through MPI, so ``init_process_group("gloo", rank=rank, world_size=...)`` just
works); ``demo_basic`` takes one DDP step; ``demo_checkpoint`` saves the model on rank 0, waits at a barrier, and
loads it on every rank with ``map_location``, then checks that every rank holds the same parameters after a step.
"""

import argparse
import os
import tempfile

import dtorch as torch
import dtorch.distributed as dist
import dtorch.multiprocessing as mp
import dtorch.nn as nn
import dtorch.optim as optim
from dtorch.nn.parallel import DistributedDataParallel as DDP


def setup(rank, world_size):
    os.environ["MASTER_ADDR"] = "localhost"
    os.environ["MASTER_PORT"] = "12355"
    dist.init_process_group("gloo", rank=rank, world_size=world_size)


def cleanup():
    dist.destroy_process_group()


class ToyModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.net1 = nn.Linear(10, 10)
        self.relu = nn.ReLU()
        self.net2 = nn.Linear(10, 5)

    def forward(self, x):
        return self.net2(self.relu(self.net1(x)))


def demo_basic(rank, world_size):
    print(f"Running basic DDP example on rank {rank}.")
    setup(rank, world_size)
    torch.manual_seed(rank)  # different data on each rank; DDP makes the models equal anyway
    model = ToyModel()
    ddp_model = DDP(model)
    loss_fn = nn.MSELoss()
    optimizer = optim.SGD(ddp_model.parameters(), lr=0.001)
    optimizer.zero_grad()
    outputs = ddp_model(torch.randn(20, 10))
    labels = torch.randn(20, 5)
    loss_fn(outputs, labels).backward()
    optimizer.step()
    check_equal_on_every_rank(model, "demo_basic")
    cleanup()
    print(f"Finished running basic DDP example on rank {rank}.")


def demo_checkpoint(rank, world_size, checkpoint_path):
    print(f"Running DDP checkpoint example on rank {rank}.")
    setup(rank, world_size)
    torch.manual_seed(rank)
    model = ToyModel()
    ddp_model = DDP(model)
    if rank == 0:
        # every rank holds the same parameters, so one saves them for all
        torch.save(ddp_model.state_dict(), checkpoint_path)
    dist.barrier()  # nobody loads before rank 0 has saved
    map_location = {"cuda:0": "cpu"}  # a checkpoint written on a GPU loads onto this rank's device
    ddp_model.load_state_dict(torch.load(checkpoint_path, map_location=map_location, weights_only=True))
    loss_fn = nn.MSELoss()
    optimizer = optim.SGD(ddp_model.parameters(), lr=0.001)
    optimizer.zero_grad()
    outputs = ddp_model(torch.randn(20, 10))
    loss_fn(outputs, torch.randn(20, 5)).backward()
    optimizer.step()
    check_equal_on_every_rank(model, "demo_checkpoint")
    dist.barrier()  # rank 0 removes the file only when every rank has loaded it
    if rank == 0:
        os.remove(checkpoint_path)
    cleanup()
    print(f"Finished running DDP checkpoint example on rank {rank}.")


def check_equal_on_every_rank(model, what):
    """Every rank's parameters after the step must be rank 0's (DDP averaged the gradients)."""
    for name, p in model.named_parameters():
        reference = p.detach().clone()
        dist.broadcast(reference, src=0)
        if not torch.equal(reference, p.detach()):
            raise RuntimeError(f"{what}: parameter {name} differs from rank 0's on rank {dist.get_rank()}")


def run_demo(demo_fn, world_size, *args):
    mp.spawn(demo_fn, args=(world_size,) + args, nprocs=world_size, join=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world-size", type=int, default=2)
    world_size = parser.parse_args().world_size
    run_demo(demo_basic, world_size)
    run_demo(demo_checkpoint, world_size, os.path.join(tempfile.mkdtemp(), "model.checkpoint"))
    print("both demos done")
