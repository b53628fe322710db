"""ZeroRedundancyOptimizer: the same trajectory as DDP with the whole optimizer on every rank, with the state
sharded; consolidated state dicts load into the plain optimizer. Runs at any world size."""

import os
import tempfile

import numpy as np
import pytest

import dtorch
import dtorch.distributed as dist
from dtorch import nn
from dtorch.distributed.optim import ZeroRedundancyOptimizer
from dtorch.nn.parallel import DistributedDataParallel as DDP


def _model():
    dtorch.manual_seed(11)
    return nn.Sequential(nn.Linear(5, 9), nn.Tanh(), nn.Linear(9, 7), nn.Tanh(), nn.Linear(7, 2)).double()


def _groups(model, lr):
    params = list(model.parameters())
    return [{"params": params[:2], "lr": lr * 2}, {"params": params[2:]}]


def _steps(ddp, optimizer, steps, seed=0):
    rank = dist.get_rank()
    rng = np.random.default_rng(seed + rank)
    for _ in range(steps):
        optimizer.zero_grad()
        x = dtorch.tensor(rng.standard_normal((4, 5)))
        ddp(x).pow(2).mean().backward()
        optimizer.step()


def _params(module):
    return [p.detach().numpy().copy() for p in module.parameters()]


@pytest.mark.parametrize("optimizer_class,kwargs", [(dtorch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
                                                    (dtorch.optim.Adam, {"lr": 0.01})])
def test_zero_trajectory_equals_plain_ddp(world, optimizer_class, kwargs):
    plain = DDP(_model())
    _steps(plain, optimizer_class(_groups(plain, kwargs["lr"]), **kwargs), 4)
    sharded = DDP(_model())
    zero = ZeroRedundancyOptimizer(_groups(sharded, kwargs["lr"]), optimizer_class, **kwargs)
    _steps(sharded, zero, 4)
    for ours, theirs in zip(_params(sharded.module), _params(plain.module)):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_state_is_sharded_across_ranks(world):
    size = dist.get_world_size()
    model = DDP(_model())
    zero = ZeroRedundancyOptimizer(model.parameters(), dtorch.optim.Adam, lr=0.01)
    _steps(model, zero, 1)
    mine = {id(p) for p in zero.optim.state} if zero.optim is not None else set()
    names = {id(p): n for n, p in model.module.named_parameters()}
    owned = [None] * size
    dist.all_gather_object(owned, sorted(names[i] for i in mine))
    everything = sorted(n for part in owned for n in part)
    assert everything == sorted(names.values())  # each parameter's state lives on exactly one rank
    elements = dict(model.module.named_parameters())
    loads = [sum(elements[n].numel() for n in part) for part in owned]
    assert max(loads) <= sum(loads) // size + max(p.numel() for p in model.parameters())


def test_lr_changes_in_param_groups_reach_the_shards(world):
    model = DDP(_model())
    zero = ZeroRedundancyOptimizer(model.parameters(), dtorch.optim.SGD, lr=0.1)
    before = _params(model.module)
    for group in zero.param_groups:
        group["lr"] = 0.0
    _steps(model, zero, 1)
    for a, b in zip(_params(model.module), before):
        np.testing.assert_array_equal(a, b)


def test_consolidated_state_dict_loads_into_the_plain_optimizer_and_back(world):
    rank = dist.get_rank()
    model = DDP(_model())
    zero = ZeroRedundancyOptimizer(model.parameters(), dtorch.optim.Adam, lr=0.01)
    _steps(model, zero, 2)
    zero.consolidate_state_dict(to=0)
    folder = [tempfile.mkdtemp() if rank == 0 else None]
    dist.broadcast_object_list(folder)
    path = os.path.join(folder[0], "zero.pt")
    if rank == 0:
        dtorch.save(zero.state_dict(), path)
    else:
        with pytest.raises(RuntimeError, match="consolidate_state_dict"):
            zero.state_dict()
    dist.barrier()
    saved = dtorch.load(path)

    # the plain optimizer continues from it as ZeRO itself does
    reference = DDP(_model())
    for p, q in zip(reference.parameters(), model.parameters()):
        p.data.copy_(q.data)
    plain = dtorch.optim.Adam(reference.parameters(), lr=0.01)
    plain.load_state_dict(saved)
    resumed = DDP(_model())
    for p, q in zip(resumed.parameters(), model.parameters()):
        p.data.copy_(q.data)
    zero_again = ZeroRedundancyOptimizer(resumed.parameters(), dtorch.optim.Adam, lr=0.5)
    zero_again.load_state_dict(saved)
    assert zero_again.param_groups[0]["lr"] == 0.01
    _steps(model, zero, 2, seed=7)
    _steps(reference, plain, 2, seed=7)
    _steps(resumed, zero_again, 2, seed=7)
    for a, b, c in zip(_params(model.module), _params(reference.module), _params(resumed.module)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
        np.testing.assert_allclose(c, b, rtol=0, atol=1e-12)
    dist.barrier()
    if rank == 0:
        os.remove(path)
        os.rmdir(folder[0])


def test_bad_optimizer_class(world):
    with pytest.raises(TypeError, match="optimizer_class"):
        ZeroRedundancyOptimizer(_model().parameters(), object, lr=0.1)


def test_zero_with_ddp_under_join_matches_one_optimizer_stepping_every_iteration(world):
    from dtorch.distributed.algorithms.join import Join

    rank, size = dist.get_rank(), dist.get_world_size()
    steps = [2 + r for r in range(size)]
    rng = np.random.default_rng(3)
    data = [rng.standard_normal((4 * size, 5)) for _ in range(max(steps))]
    model = DDP(_model())
    zero = ZeroRedundancyOptimizer(model.parameters(), dtorch.optim.SGD, lr=0.05, momentum=0.9)
    with Join([model, zero]):
        for x in data[:steps[rank]]:
            zero.zero_grad()
            model(dtorch.tensor(x[4 * rank:4 * rank + 4])).pow(2).mean().backward()
            zero.step()
    reference = _model()
    plain = dtorch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.9)
    for step, x in enumerate(data):
        plain.zero_grad()
        active = [r for r in range(size) if step < steps[r]]
        total = sum(reference(dtorch.tensor(x[4 * r:4 * r + 4])).pow(2).mean() for r in active)
        (total / size).backward()
        plain.step()
    for ours, theirs in zip(_params(model.module), _params(reference)):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
