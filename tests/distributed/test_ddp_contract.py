"""The contract DistributedDataParallel will build on (DESIGN.md): post-accumulate-grad hooks start async
all_reduces while backward still runs, an end-of-backward callback waits for them, and the averaged gradients
equal those of one process over the whole batch. Runs at any world size (1 under plain pytest)."""

import numpy as np

import dtorch
import dtorch.distributed as dist
from dtorch import nn
from dtorch.autograd import queue_callback


def _model():
    dtorch.manual_seed(3)  # the same weights on every rank
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))


def _global_batch(world_size):
    rng = np.random.default_rng(11)
    return (rng.standard_normal((4 * world_size, 5)).astype(np.float32),
            rng.integers(0, 3, 4 * world_size))


def test_hooks_overlap_async_all_reduce_with_backward_and_average_like_one_process(world):
    rank, size = dist.get_rank(), dist.get_world_size()
    inputs, targets = _global_batch(size)
    model = _model()
    pending = []
    order = []

    def reduce_when_ready(param):
        order.append(id(param))
        pending.append((param, dist.all_reduce(param.grad, async_op=True)))
        if len(pending) == 1:
            queue_callback(finish)

    def finish():
        for param, work in pending:
            work.wait()
            param.grad.div_(size)
        pending.clear()

    for param in model.parameters():
        param.register_post_accumulate_grad_hook(reduce_when_ready)
    mine = slice(4 * rank, 4 * rank + 4)
    loss = nn.functional.cross_entropy(model(dtorch.tensor(inputs[mine])), dtorch.tensor(targets[mine]))
    loss.backward()
    assert not pending  # the callback waited for every all_reduce before backward returned
    assert len(order) == 4
    assert set(order[:2]) == {id(model[2].weight), id(model[2].bias)}  # the last layer's gradients come first

    reference = _model()
    full = nn.functional.cross_entropy(reference(dtorch.tensor(inputs)), dtorch.tensor(targets))
    full.backward()
    for ours, theirs in zip(model.parameters(), reference.parameters()):
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-5, atol=1e-6)
