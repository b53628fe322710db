"""SyncBatchNorm against torch's BatchNorm over the whole (global) batch.

Every rank takes its slice of a seeded global batch; outputs, input gradients, the group-summed parameter gradients
and the running statistics must equal those of one BatchNorm over the global batch. Under plain pytest the world
is one rank (the synchronised path still runs, through ``_synchronised``); ``mpirun -n 2 python -m pytest
tests/nn/test_sync_batchnorm.py`` runs the same checks across ranks.
"""

import os

import numpy as np
import pytest
import torch

import dtorch
import dtorch.distributed as dist
from dtorch import nn
from helpers import check_module


_RANK_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


@pytest.fixture
def world():
    """The default group; one this test made is destroyed afterwards, with the rank variables it set put back."""
    before = {name: os.environ.get(name) for name in _RANK_VARIABLES}
    created = not dist.is_initialized()
    if created:
        dist.init_process_group("mpi", timeout=60)
    yield dist.group.WORLD
    if created:
        dist.destroy_process_group()
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def test_without_a_process_group_it_is_batch_norm_like_torchs():
    check_module("SyncBatchNorm", (3,), {}, [(4, 3, 5)])
    check_module("SyncBatchNorm", (3,), {"affine": False, "momentum": None}, [(4, 3, 2, 2)])


@pytest.mark.parametrize("shape, kwargs", [((8, 3, 5), {}), ((6, 2, 3, 3), {"momentum": None}),
                                           ((8, 4), {"affine": False})])
def test_synchronised_statistics_and_gradients_match_batch_norm_on_the_global_batch(world, shape, kwargs):
    rank, size = dist.get_rank(), dist.get_world_size()
    rng = np.random.default_rng(0)
    global_shape = (shape[0] * size,) + shape[1:]
    x = rng.standard_normal(global_shape).astype(np.float32) * 2 + 1
    upstream = rng.standard_normal(global_shape).astype(np.float32)
    reference = torch.nn.BatchNorm1d(shape[1], **kwargs) if len(shape) < 4 else torch.nn.BatchNorm2d(shape[1],
                                                                                                       **kwargs)
    module = nn.SyncBatchNorm(shape[1], **kwargs)
    if module.affine:
        with torch.no_grad():
            reference.weight.uniform_(0.5, 1.5)
            reference.bias.uniform_(-0.5, 0.5)
        module.weight._array[...] = reference.weight.detach().numpy()
        module.bias._array[...] = reference.bias.detach().numpy()
    mine = slice(rank * shape[0], (rank + 1) * shape[0])
    for step in range(2):  # twice: the running statistics (and the momentum=None average) move the same way
        tx = torch.from_numpy(x.copy()).requires_grad_()
        out_t = reference(tx)
        out_t.backward(torch.from_numpy(upstream))
        dx = dtorch.from_numpy(x[mine].copy()).requires_grad_()
        out = module._synchronised(dx, world) if size == 1 else module(dx)
        out.backward(dtorch.from_numpy(upstream[mine].copy()))
        np.testing.assert_allclose(out.detach().numpy(), out_t.detach().numpy()[mine], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(dx.grad.numpy(), tx.grad.numpy()[mine], rtol=1e-4, atol=1e-5)
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            np.testing.assert_allclose(getattr(module, name).numpy(), getattr(reference, name).numpy(), rtol=1e-5)
        if module.affine:
            for ours, theirs in ((module.weight, reference.weight), (module.bias, reference.bias)):
                total = ours.grad.clone()
                dist.all_reduce(total)  # what DDP does (before averaging)
                np.testing.assert_allclose(total.numpy(), theirs.grad.numpy(), rtol=1e-4, atol=1e-4)
                ours.grad = None
            reference.zero_grad()


def test_convert_sync_batchnorm_shares_parameters_and_buffers():
    model = nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3), nn.Sequential(nn.BatchNorm1d(4, affine=False)))
    bn = model[1]
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert converted is model and type(model[1]) is nn.SyncBatchNorm and type(model[2][0]) is nn.SyncBatchNorm
    assert model[1].weight is bn.weight and model[1].running_mean is bn.running_mean
    expected = torch.nn.SyncBatchNorm.convert_sync_batchnorm(
        torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3),
                            torch.nn.Sequential(torch.nn.BatchNorm1d(4, affine=False))))
    assert repr(model) == repr(expected)
    with pytest.raises(ValueError, match="at least 2D"):
        nn.SyncBatchNorm(3)(dtorch.ones(3))
